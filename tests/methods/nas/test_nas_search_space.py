"""NAS-BERT search space, pruning and selection on plain numbers (no models): candidate enumeration,
bins, pruning steps and schedule, budgets, selection against brute force, and NasConfig."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from bertcompress.core.config import from_dict, load_config, to_dict
from bertcompress.core.errors import UserError
from bertcompress.methods.nas.config import NasConfig
from bertcompress.methods.nas.selection import parse_budget, select
from bertcompress.methods.nas.space import (
    block_candidates,
    block_parameters,
    block_slots,
    default_hiddens,
    default_num_blocks,
)
from bertcompress.methods.nas.space_pruning import (
    PruningSchedule,
    alive_per_bin,
    bin_candidates,
    cheapest_per_op,
    is_finished,
    paced_drops,
    prune_step,
    sample_per_bin,
)
from bertcompress.models.nasbert.arch import OPS, BlockArch, NasArch, op_parameters

# --- the space -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ops", [["mha", "ffn", "conv3", "identity"], ["identity", "conv5", "ffn"], ["mha", "ffn"]])
def test_block_candidates_count_and_identity_tail(ops):
    hiddens, slots = [16, 24], 3
    found = block_candidates(hiddens, slots, ops)
    real = len([op for op in ops if op != "identity"])
    per_width = sum(real ** d for d in range(slots + 1)) if "identity" in ops else real ** slots
    assert len(found) == len(hiddens) * per_width
    assert len({f"{c.hidden}:{','.join(c.ops)}" for c in found}) == len(found)  # each architecture once
    for i, c in enumerate(found):
        assert len(c.ops) == slots and set(c.ops) <= set(ops)
        c.check(i)  # identity only in the tail
        assert "identity" not in c.ops or all(op == "identity" for op in c.ops[c.ops.index("identity"):])
    assert (BlockArch(16, ["identity"] * 3) in found) == ("identity" in ops)
    assert [c.hidden for c in found] == sorted(c.hidden for c in found)
    assert block_candidates(hiddens, slots, ops) == found  # deterministic


def test_block_candidates_errors():
    with pytest.raises(UserError, match="unknown NAS op 'gru'"):
        block_candidates([16], 2, ["mha", "gru"])
    with pytest.raises(UserError, match="besides identity"):
        block_candidates([16], 2, ["identity"])
    with pytest.raises(UserError, match="not a multiple of the head size 8"):
        block_candidates([20], 2, ["mha", "ffn"], head_size=8)
    with pytest.raises(UserError, match="positive integers"):
        block_candidates([0], 2, ["ffn"])
    assert len(block_candidates([20], 2, ["ffn", "conv3"], head_size=8)) == 4  # no attention: any width


def test_block_parameters_are_the_ops():
    block = BlockArch(32, ["mha", "ffn", "conv7", "identity"])
    assert block_parameters(block) == sum(op_parameters(op, 32) for op in block.ops)
    arch = NasArch([BlockArch(32, ["ffn"]), block])
    bare = NasArch([BlockArch(32, ["ffn"]), BlockArch(32, ["identity"])])
    assert arch.num_parameters(50, 16) - bare.num_parameters(50, 16) == block_parameters(block)


def test_default_hiddens_and_blocks():
    assert default_hiddens(384, 32) == [128, 192, 256, 384]
    assert default_hiddens(768, 64) == [256, 384, 512, 768]
    assert default_hiddens(128, 64) == [64, 128]  # at least one head; repeats dropped
    assert default_hiddens(384, 32, count=1) == [384]
    with pytest.raises(UserError, match="not a multiple of its head size"):
        default_hiddens(100, 32)
    assert [default_num_blocks(n) for n in (6, 12, 24, 4, 1)] == [3, 4, 8, 2, 1]
    assert block_slots(6, 3) == 4 and block_slots(12, 4) == 6
    with pytest.raises(UserError, match="must divide the teacher's 6 layers, got 4"):
        block_slots(6, 4)


# --- pruning ---------------------------------------------------------------------------------------------


def test_bins_cover_every_candidate_evenly():
    rng = np.random.default_rng(0)
    params = rng.permutation(200).astype(float)
    latency = params * 0.1 + rng.normal(size=200)  # correlated, as they are in a real space
    bins = bin_candidates(params, latency, 4, 5)
    assert bins.shape == (200,) and bins.min() >= 0 and bins.max() < 20
    assert np.bincount(bins, minlength=20).tolist() == [10] * 20  # quantiles within each parameter bin
    assert (bins // 5 == np.searchsorted(np.quantile(params, [.25, .5, .75]), params, side="right")).all()
    tied = bin_candidates(np.ones(7), np.arange(7.0), 3, 1)
    assert len(set(tied.tolist())) == 1  # equal parameters share a bin; the other bins stay empty


def test_prune_step_keeps_the_best_of_each_bin():
    bins = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    losses = np.array([6, 1, 5, 2, 4, 3, 9, 7, 8, 100.0])
    alive = np.ones(10, dtype=bool)
    kept = prune_step(alive, bins, losses, keep_per_bin=1)
    assert np.flatnonzero(kept).tolist() == [1, 3, 5, 7, 8, 9]  # bin 0: best 3 of 6; bin 1: best 2 of 3
    kept = prune_step(kept, bins, np.where(kept, losses, np.nan), keep_per_bin=1)  # dead losses unread
    assert np.flatnonzero(kept).tolist() == [1, 3, 7, 9]
    assert np.flatnonzero(prune_step(alive, bins, losses, keep_per_bin=5)).tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert not is_finished(kept, bins, 1)
    kept = prune_step(kept, bins, losses, keep_per_bin=1)
    assert np.flatnonzero(kept).tolist() == [1, 7, 9] and is_finished(kept, bins, 1)
    assert (prune_step(kept, bins, losses, keep_per_bin=1) == kept).all()
    nan_loses = prune_step(np.ones(2, bool), np.zeros(2, int), np.array([np.nan, 5.0]), 1)
    assert nan_loses.tolist() == [False, True]


def test_pruning_schedule():
    s = PruningSchedule(warmup_steps=40, every=10, total_steps=100)
    assert s.points() == [40, 50, 60, 70, 80, 90, 100]
    assert [t for t in range(0, 120) if s.is_point(t)] == s.points()
    s = PruningSchedule(warmup_steps=0, every=25, total_steps=60)
    assert s.points() == [25, 50] == [t for t in range(0, 120) if s.is_point(t)]
    # the loop's hook runs at multiples of `every`: a warm-up between two starts at the next one
    assert PruningSchedule(warmup_steps=45, every=10, total_steps=80).points() == [50, 60, 70, 80]
    s = PruningSchedule(warmup_steps=40, every=10, total_steps=100, finish_at=0.75)
    assert s.points() == [40, 50, 60, 70] and [s.points_left(t) for t in (40, 60, 70, 80)] == [4, 2, 1, 0]
    assert PruningSchedule(warmup_steps=40, every=10, total_steps=100, finish_at=0.1).points() == [40]
    with pytest.raises(UserError, match="every >= 1"):
        PruningSchedule(10, 0, 100)


def test_paced_drops_share_the_work_and_finish_on_the_last_point():
    bins = np.array([0] * 64 + [1] * 3 + [2] * 2)
    alive = np.ones(len(bins), dtype=bool)
    # 64 -> 2 over 5 points is a factor 2 a point: 64 * (2 / 64) ** (1 / 5) = 32 left; bin 1: ceil(2 * 1.5 ** .8) = 3
    assert paced_drops(alive, bins, keep_per_bin=2, points_left=5) == {0: 32, 1: 0}
    assert paced_drops(alive, bins, keep_per_bin=2, points_left=1) == {0: 62, 1: 1}  # the last point: all the way
    with pytest.raises(ValueError, match="points_left"):
        paced_drops(alive, bins, 2, 0)
    # run a schedule of 5 points on random losses: the bins shrink 64, 32, 16, 8, 4, 2 and pruning finishes
    rng = np.random.default_rng(0)
    sizes = []
    for left in range(5, 0, -1):
        drops = paced_drops(alive, bins, 2, left)
        scored = sample_per_bin(alive, bins, {b: 2 * d for b, d in drops.items() if d}, rng)
        alive = prune_step(alive, bins, np.where(scored, rng.random(len(bins)), np.nan), 2, scored, drops)
        sizes.append(alive_per_bin(alive, bins, 3))
    assert [s[0] for s in sizes] == [32, 16, 8, 4, 2] and sizes[-1] == [2, 2, 2] and is_finished(alive, bins, 2)


def test_cheapest_per_op_keeps_the_fastest_way_to_use_each_op():
    ops = [["mha", "ffn"], ["mha", "identity"], ["ffn", "identity"], ["conv3", "ffn"], ["conv3", "identity"]]
    latency = np.array([3.0, 2.0, 1.0, 2.5, 0.5])
    params = np.array([50, 20, 10, 30, 40])
    kept = cheapest_per_op(ops, latency, params)
    # mha -> 1, ffn -> 2, identity and conv3 and the fastest -> 4, the smallest -> 2
    assert np.flatnonzero(kept).tolist() == [1, 2, 4]
    tie = cheapest_per_op([["ffn"], ["ffn"]], np.array([1.0, 1.0]), np.array([9, 5]))
    assert tie.tolist() == [False, True]  # equal latency: fewer parameters
    with pytest.raises(ValueError, match="2 candidates, 1 latencies"):
        cheapest_per_op([["ffn"], ["mha"]], np.ones(1), np.ones(2))


def test_paced_prune_step_drops_the_worst_of_its_sample():
    bins = np.zeros(10, dtype=int)
    losses = np.array([5, 0, 9, 1, 8, 2, 7, 3, 6, 4.0])
    scored = np.array([True, True, True, True, False, False, False, False, True, True])
    kept = prune_step(np.ones(10, bool), bins, losses, keep_per_bin=1, scored=scored, drops={0: 3})
    assert np.flatnonzero(~kept).tolist() == [0, 2, 8]  # losses 5, 9, 6: the worst 3 scored, not 8 or 7 (unscored)
    assert prune_step(np.ones(10, bool), bins, losses, 1, scored, drops={}).all()  # a bin not named drops nothing
    assert (~prune_step(np.ones(10, bool), bins, losses, 8, scored, drops={0: 6})).sum() == 2  # keep_per_bin wins


# --- budgets and selection -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, kind, value", [
    ("4x", "speedup", 4.0), (" 2.5 X", "speedup", 2.5), ("12ms", "latency", 12.0), ("0.8ms", "latency", 0.8),
    ("10M", "params", 10_000_000), ("2.5M", "params", 2_500_000), ("500K", "params", 500_000),
    ("64k", "params", 64_000)])
def test_parse_budget(text, kind, value):
    budget = parse_budget(text)
    assert (budget.kind, budget.value) == (kind, value)
    assert budget.limit(teacher_ms=100.0) == (100.0 / value if kind == "speedup" else value)


@pytest.mark.parametrize("text", ["", "4", "x4", "-2x", "0x", "10m", "4xx", "1e6", "20MB", "fast"])
def test_parse_budget_rejects(text):
    with pytest.raises(UserError, match=r"bad NAS budget .*'4x'.*'12ms'.*'10M'"):
        parse_budget(text)


def test_speedup_budget_needs_the_teacher():
    with pytest.raises(UserError, match="teacher's measured latency"):
        parse_budget("4x").limit(None)


def _arch(e, blocks):
    return NasArch(list(blocks), embedding_size=None if e == blocks[0].hidden else e)


def _brute_force(per_block, embeddings, cost_of, metric, limit, top_k, min_attention=0):
    options = [[c for c, loss, ok in zip(*space) if ok] for space in per_block]
    losses = [{id(c): loss for c, loss in zip(space[0], space[1])} for space in per_block]
    scored = []
    for (e, e_loss), combo in itertools.product(zip(*embeddings), itertools.product(*options)):
        arch = _arch(e, combo)
        if cost_of(arch)[metric] <= limit and sum(c.ops.count("mha") for c in combo) >= min_attention:
            scored.append((e_loss + sum(loss[id(c)] for loss, c in zip(losses, combo)), str(arch)))
    return sorted(scored)[:top_k]


def _random_space(seed, blocks=3, hiddens=(8, 16, 24), ops=("mha", "ffn", "identity"), alive_share=0.6):
    rng = np.random.default_rng(seed)
    per_block = []
    for _ in range(blocks):
        candidates = block_candidates(list(hiddens), 2, list(ops))
        alive = rng.random(len(candidates)) < alive_share
        alive[rng.integers(len(candidates))] = True
        per_block.append((candidates, rng.random(len(candidates)), alive))
    embeddings = ([8, 24], rng.random(2))
    return per_block, embeddings, rng


def _table_latency(rng):
    """A lookup-table latency: per-op terms, plus projections that depend on neighbouring widths."""
    op_ms = {(op, h): rng.random() for op in OPS for h in (8, 16, 24)}
    op_ms.update({("identity", h): 0.0 for h in (8, 16, 24)})
    proj_ms = {(a, b): 0.0 if a == b else rng.random() for a in (8, 16, 24) for b in (8, 16, 24)}
    emb_ms = {8: 0.1, 16: 0.2, 24: 0.3}

    def latency(arch: NasArch) -> float:
        total, width = emb_ms[arch.embedding_width], arch.embedding_width
        for block in arch.blocks:
            total += proj_ms[width, block.hidden] + sum(op_ms[op, block.hidden] for op in block.ops)
            width = block.hidden
        return total + 0.05 * width  # a pooler-like term of the last width
    return latency


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("top_k", [1, 5])
@pytest.mark.parametrize("min_attention", [0, 2])
def test_select_equals_brute_force(seed, top_k, min_attention):
    per_block, embeddings, rng = _random_space(seed)
    latency = _table_latency(rng)

    def cost_of(arch):
        return latency(arch), arch.num_parameters(vocab_size=50, max_positions=16)

    every = [cost_of(_arch(e, c)) for e in embeddings[0]
             for c in itertools.product(*[[c for c, ok in zip(s[0], s[2]) if ok] for s in per_block])]
    for metric, quantile in itertools.product((0, 1), (0.02, 0.3, 0.7, 1.0)):
        limit = float(np.quantile([c[metric] for c in every], quantile))
        budget = parse_budget(f"{limit:.6f}ms" if metric == 0 else f"{limit / 1000:.3f}K")
        expected = _brute_force(per_block, embeddings, cost_of, metric, budget.limit(), top_k, min_attention)
        found = select(per_block, embeddings, cost_of, budget, top_k, min_attention=min_attention)
        assert [str(a) for a, _ in found] == [name for _, name in expected]
        assert [s for _, s in found] == pytest.approx([s for s, _ in expected])
        assert all(cost_of(a)[metric] <= budget.limit() for a, _ in found)


def test_select_speedup_budget_and_nothing_fits():
    per_block, embeddings, rng = _random_space(7, blocks=2)
    latency = _table_latency(rng)

    def cost_of(arch):
        return latency(arch), arch.num_parameters(vocab_size=50, max_positions=16)

    teacher_ms = 6.0
    expected = _brute_force(per_block, embeddings, cost_of, 0, teacher_ms / 3, 3)
    found = select(per_block, embeddings, cost_of, parse_budget("3x"), 3, teacher_latency_ms=teacher_ms)
    assert [str(a) for a, _ in found] == [name for _, name in expected] and expected
    assert select(per_block, embeddings, cost_of, parse_budget("1000x"), 3, teacher_latency_ms=teacher_ms) == []


def test_select_needs_the_attention_slots_asked_for():
    conv, mha = BlockArch(8, ["conv3"]), BlockArch(8, ["mha"])
    per_block = [([conv, mha], np.array([0.0, 1.0]), np.array([True, True]))] * 2

    def cost_of(arch):
        return 0.0, 1

    spell = [[str(a) for a, _ in select(per_block, ([8], np.zeros(1)), cost_of, parse_budget("1K"), 4, min_attention=k)]
             for k in (0, 1, 2, 3)]
    assert spell[0] == ["8:conv3|8:conv3", "8:conv3|8:mha", "8:mha|8:conv3", "8:mha|8:mha"]
    assert spell[1] == spell[0][1:]  # the conv-only model is the best and is never chosen
    assert spell[2] == ["8:mha|8:mha"]
    assert spell[3] == []


def test_select_refuses_a_cost_that_is_not_additive():
    ffn, mha = BlockArch(8, ["ffn"]), BlockArch(8, ["mha"])
    per_block = [([ffn, mha], np.array([1.0, 0.0]), np.array([True, True]))] * 2

    def cost_of(arch):  # attention blocks cost more together than apart
        return 0.0, sum(b.ops == ["mha"] for b in arch.blocks) ** 2

    with pytest.raises(ValueError, match="not additive"):
        select(per_block, ([8], np.zeros(1)), cost_of, parse_budget("1K"), 1)


# --- NasConfig -------------------------------------------------------------------------------------------


def test_nas_config_defaults_and_round_trip():
    cfg = NasConfig()
    assert cfg.ops == list(OPS) and cfg.budgets == ["2x", "3x", "4x", "6x", "8x", "10x"]
    assert cfg.final_general is None and cfg.latency.threads == 1 and cfg.corpus.max_seq_len == 128
    assert from_dict(NasConfig, to_dict(cfg)) == cfg
    changed = load_config(NasConfig, overrides=["hiddens=[64,128]", "ops=[ffn,conv3,identity]", "min_attention=0",
                                                "budgets=[2x,5M]",
                                                "prune.every=5", "latency.device=cuda", "final_general.lr=1e-4"])
    assert changed.hiddens == [64, 128] and changed.prune.every == 5 and changed.latency.device == "cuda"
    assert changed.final_general is not None and changed.final_general.lr == 1e-4
    assert changed.final_general.batch_size == 32  # the template's, not TrainConfig's bare defaults
    assert from_dict(NasConfig, json.loads(json.dumps(to_dict(changed)))) == changed


@pytest.mark.parametrize("override, message", [
    ("ops=[mha,gru]", "unknown NAS op 'gru'"),
    ("ops=[identity]", "at least one op besides identity"),
    ("ops=[ffn,ffn]", "NAS ops must not repeat"),
    ("budgets=[4x,fast]", "bad NAS budget 'fast'"),
    ("budgets=[4x,4X]", "nas budgets must not repeat"),
    ("budgets=[]", "at least one budget"),
    ("hiddens=[0,128]", "nas hiddens must be positive"),
    ("hiddens=[128,128]", "nas hiddens must not repeat"),
    ("embedding_sizes=[]", "nas embedding_sizes must list at least one size"),
    ("num_blocks=0", "nas num_blocks must be >= 1"),
    ("rerank_top=0", "nas rerank_top must be >= 1"),
    ("min_attention=-1", "nas min_attention must be >= 0"),
    ("ops=[ffn,conv3]", "min_attention=1 needs 'mha' among ops"),
    ("prune.keep_per_bin=0", "nas prune.keep_per_bin must be >= 1"),
    ("prune.warmup_steps=-1", "nas prune.warmup_steps must be >= 0"),
    ("latency.device=tpu", "latency.device must be one of cpu, cuda"),
    ("latency.threads=0", "nas latency.threads must be >= 1"),
])
def test_nas_config_errors(override, message):
    with pytest.raises(UserError, match=message) as raised:
        load_config(NasConfig, overrides=[override])
    assert str(raised.value).startswith("bad config: ") and "\n" not in str(raised.value)


def test_a_scored_sample_loses_its_worse_half_and_nothing_unscored_goes():
    bins = np.array([0] * 10 + [1] * 3)
    alive = np.ones(13, dtype=bool)
    losses = np.arange(13, dtype=float)  # lower index = better
    scored = sample_per_bin(alive, bins, 4, np.random.default_rng(0))
    assert scored[:10].sum() == 4 and scored[10:].all()  # a sample of the big bin, all of the small one
    kept = prune_step(alive, bins, np.where(scored, losses, np.nan), keep_per_bin=1, scored=scored)
    dropped = np.flatnonzero(~kept)
    sampled = np.flatnonzero(scored[:10])
    assert set(dropped[dropped < 10]) == set(sampled[2:])  # the worse 2 of the 4 scored, no unscored one
    assert list(dropped[dropped >= 10]) == [12]  # bin 1: all 3 scored, the worst floor(3 / 2) = 1 goes
    assert sample_per_bin(alive, bins, None, np.random.default_rng(0)).all()
