"""NAS-BERT supernet: block-wise losses, single-path sampling, pruning state, training and resume,
assembly into a standalone model, and the latency table."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.evaluation.profile import torch_threads
from bertcompress.methods.nas.assemble import assemble, assembled_parameters
from bertcompress.methods.nas.latency import (
    LatencyTable,
    arch_keys,
    block_ms,
    measure_model_ms,
    measure_table,
    predict_ms,
)
from bertcompress.methods.nas.supernet import (
    BlockwiseObjective,
    Supernet,
    heldout_block_losses,
    heldout_embedding_losses,
    teacher_block_ends,
)
from bertcompress.models.nasbert.arch import BlockArch, NasArch
from bertcompress.models.nasbert.modeling import NasBertConfig, NasBertForSequenceClassification, NasBertModel
from bertcompress.train.config import TrainConfig
from bertcompress.train.loop import train_loop
from conftest import tiny_config

VOCAB, T, HEAD = 60, 32, 8
WIDTHS, EMBEDDINGS = (16, 24, 32), (16, 32)
BLOCK_OPS = (["mha", "ffn"], ["conv3", "ffn"], ["ffn", "identity"], ["identity", "identity"])


@pytest.fixture(autouse=True)
def one_thread():
    """Tensors this small gain nothing from a second thread, which stalls badly on busy cores."""
    with torch_threads(1):
        yield


def teacher(model_type: str = "bert"):
    from transformers import AutoModel

    torch.manual_seed(0)
    return AutoModel.from_config(tiny_config(model_type, VOCAB, layers=4, hidden=T, heads=4)).eval()


def supernet(t=None, seed: int = 1) -> Supernet:
    torch.manual_seed(seed)
    return Supernet.from_teacher(t or teacher(), num_blocks=2, slots=2, hidden_sizes=WIDTHS,
                                 embedding_sizes=EMBEDDINGS)


def candidates() -> list[list[BlockArch]]:
    return [[BlockArch(h, ops) for h in WIDTHS for ops in BLOCK_OPS] for _ in range(2)]


def objective(seed: int = 1) -> BlockwiseObjective:
    t = teacher()
    return BlockwiseObjective(supernet(t, seed), t, candidates())


def batch(seed: int = 2) -> dict[str, torch.Tensor]:
    """Three rows of 7 tokens, two of them padded."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    return {"input_ids": torch.randint(5, VOCAB, (3, 7), generator=g), "attention_mask": mask,
            "token_type_ids": torch.randint(0, 2, (3, 7), generator=g)}


def test_teacher_block_ends():
    assert teacher_block_ends(6, 3) == [2, 4, 6]
    assert teacher_block_ends(12, 4) == [3, 6, 9, 12]
    assert teacher_block_ends(4, 1) == [4]
    with pytest.raises(UserError, match="6 layers into equal blocks: 4 blocks") as err:
        teacher_block_ends(6, 4)
    assert "\n" not in str(err.value)


def test_block_loss_by_hand_ignores_padding():
    net = supernet()
    g = torch.Generator().manual_seed(3)
    states = [torch.randn(2, 5, T, generator=g) for _ in range(3)]
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    choice = BlockArch(24, ["identity", "identity"])
    block = net.blocks[1]
    out = block.output_proj["24"](block.input_proj["24"](states[1]))
    real = mask.bool()
    expected = ((out - states[2]) ** 2)[real].sum() / (real.sum() * T)
    torch.testing.assert_close(net.block_loss(1, choice, states, mask), expected)
    states[2][~real] = 1e6  # garbage where the target is padding changes nothing
    torch.testing.assert_close(net.block_loss(1, choice, states, mask), expected)
    with pytest.raises(UserError, match="block 2: hidden size 20 is not in the supernet"):
        net.check_choice(1, BlockArch(20, ["ffn"]))
    with pytest.raises(UserError, match="block 1: 3 ops, but the supernet has 2 slots"):
        net.check_choice(0, BlockArch(16, ["ffn", "ffn", "ffn"]))


def test_layout_and_teacher_embeddings():
    t = teacher()
    net = supernet(t)
    assert set(net.embeddings) == {"16", "32"} and net.embedding_out["16"].weight.shape == (T, 16)
    assert net.blocks[0].input_proj["24"].weight.shape == (24, T)
    assert set(net.blocks[1].slots["16"][1]) == {"mha", "ffn", "conv3", "conv5", "conv7", "identity"}
    assert not list(net.blocks[1].slots["16"][1]["identity"].parameters())
    b = batch()
    with torch.no_grad():
        expected = t(**b, output_hidden_states=True).hidden_states[0]
        got = net.eval().embeddings["32"](b["input_ids"], b["token_type_ids"])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)  # copied from the teacher
    assert 0.01 < net.embeddings["16"].word_embeddings.weight[1:].std() < 0.03  # the rest: BERT's init


@pytest.mark.parametrize("model_type", ["roberta", "distilbert"])
def test_teacher_embeddings_of_other_families(model_type):
    """RoBERTa's positions start after the padding id; DistilBERT has no token types."""
    t = teacher(model_type)
    net = supernet(t).eval()
    b = batch()
    from bertcompress.models.inputs import model_inputs

    with torch.no_grad():
        expected = t(**model_inputs(b, t), output_hidden_states=True).hidden_states[0]
        got = net.embeddings["32"](b["input_ids"], b["token_type_ids"] if net.type_vocab_size else None)
    real = b["attention_mask"].bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=0)


def test_only_the_sampled_path_gets_gradients_and_the_teacher_runs_once(monkeypatch):
    obj = objective()
    calls, chosen = [], {}
    obj.teacher.register_forward_hook(lambda *_: calls.append(1))
    real_block_loss, real_embedding_loss = obj.supernet.block_loss, obj.supernet.embedding_loss

    def block_loss(b, choice, *args):
        chosen[b] = choice
        return real_block_loss(b, choice, *args)

    def embedding_loss(e, *args):
        chosen["e"] = e
        return real_embedding_loss(e, *args)

    monkeypatch.setattr(obj.supernet, "block_loss", block_loss)
    monkeypatch.setattr(obj.supernet, "embedding_loss", embedding_loss)
    torch.manual_seed(5)
    loss, logs = obj(batch())
    loss.backward()
    assert len(calls) == 1 and set(logs) == {"embedding", "block1", "block2"}
    torch.testing.assert_close(loss, logs["embedding"] + logs["block1"] + logs["block2"])

    def has_grad(module):
        return any(p.grad is not None for p in module.parameters())

    net = obj.supernet
    for e in map(str, net.embedding_sizes):
        assert has_grad(net.embeddings[e]) == has_grad(net.embedding_out[e]) == (e == str(chosen["e"]))
    for b, block in enumerate(net.blocks):
        choice = chosen[b]
        for h in map(str, net.hidden_sizes):
            assert has_grad(block.input_proj[h]) == has_grad(block.output_proj[h]) == (h == str(choice.hidden))
            for s, slot in enumerate(block.slots[h]):
                for op, module in slot.items():
                    sampled = h == str(choice.hidden) and s < len(choice.ops) and choice.ops[s] == op
                    assert has_grad(module) == (sampled and op != "identity")
    assert not any(p.grad is not None for p in obj.teacher.parameters())


def test_alive_buffers_are_state_and_sampling_respects_them(monkeypatch):
    obj = objective()
    assert {"alive_0", "alive_1"} <= set(obj.state_dict())
    assert not any(k.startswith("teacher") or k.startswith("_teacher") for k in obj.state_dict())
    keep = [i % 5 == 0 for i in range(len(obj.candidates[0]))]  # 0, 5, 10
    obj.set_alive(0, keep)
    assert obj.alive(0) == [0, 5, 10] and obj.alive(1) == list(range(len(obj.candidates[1])))
    seen = set()
    real_block_loss = obj.supernet.block_loss

    def block_loss(b, choice, *args):
        if b == 0:
            seen.add(obj.candidates[0].index(choice))
        return real_block_loss(b, choice, *args)

    monkeypatch.setattr(obj.supernet, "block_loss", block_loss)
    b = batch()
    with torch.no_grad():
        for _ in range(30):
            obj(b)
    assert seen == {0, 5, 10}

    fresh = objective(seed=9)
    assert len(fresh.alive(0)) == 12
    fresh.load_state_dict(obj.state_dict())
    assert fresh.alive(0) == [0, 5, 10]  # what a resumed run continues with
    with pytest.raises(UserError, match="at least one candidate"):
        obj.set_alive(1, [False] * len(obj.candidates[1]))
    with pytest.raises(UserError, match="has 12 candidates, got a mask of 3"):
        obj.set_alive(1, [True] * 3)


def test_heldout_losses_run_the_teacher_once_per_batch():
    obj = objective()
    calls = []
    obj.teacher.register_forward_hook(lambda *_: calls.append(1))
    batches = [batch(seed=s) for s in range(3)]
    obj.train()
    losses = heldout_block_losses(obj, batches, 1, [0, 3, 7])
    assert len(calls) == 3 and losses.shape == (3,) and obj.training  # the mode is restored
    # the token-weighted mean of each candidate's loss, in eval mode
    obj.eval()
    with torch.no_grad():
        for j, i in enumerate([0, 3, 7]):
            per_batch = [(obj.supernet.block_loss(1, obj.candidates[1][i], obj.teacher_states(b), b["attention_mask"]),
                          b["attention_mask"].sum()) for b in batches]
            expected = sum(float(loss * n) for loss, n in per_batch) / sum(int(n) for _, n in per_batch)
            assert losses[j] == pytest.approx(expected, rel=1e-5)
    emb = heldout_embedding_losses(obj, batches)
    assert emb.shape == (2,) and (emb > 0).all()
    with pytest.raises(UserError, match="embedding size 24 is not in"):
        heldout_embedding_losses(obj, batches, [24])


def features(n: int = 16) -> list[dict]:
    g = torch.Generator().manual_seed(4)
    out = []
    for i in range(n):
        length = 4 + i % 5
        out.append({"input_ids": torch.randint(5, VOCAB, (length,), generator=g).tolist(),
                    "token_type_ids": [0] * (length // 2) + [1] * (length - length // 2)})
    return out


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    longest = max(len(i["input_ids"]) for i in items)

    def pad(values):
        return values + [0] * (longest - len(values))

    return {"input_ids": torch.tensor([pad(i["input_ids"]) for i in items]),
            "token_type_ids": torch.tensor([pad(i["token_type_ids"]) for i in items]),
            "attention_mask": torch.tensor([pad([1] * len(i["input_ids"])) for i in items])}


class Crashing(BlockwiseObjective):
    crash_at: int | None = None
    calls = 0

    def forward(self, batch):
        self.calls += 1
        if self.calls == self.crash_at:
            raise KeyboardInterrupt  # a kill in the middle of training
        return super().forward(batch)


def test_training_prunes_and_resumes_exactly(tmp_path):
    """Pruning in the evaluation callback at step 3, a crash at step 5, a resume from the step-4
    checkpoint: the same weights and alive masks as an uninterrupted run."""
    heldout = [collate(features(6))]
    cfg = TrainConfig(max_steps=6, batch_size=4, lr=3e-3, warmup_ratio=0.0, save_every=2, eval_every=3,
                      log_every=1, device="cpu")

    def prune(module):  # keep the better half of block 1's alive candidates
        alive = module.alive(0)
        order = heldout_block_losses(module, heldout, 0, alive).argsort()
        mask = [False] * len(module.candidates[0])
        for j in order[:max(1, len(alive) // 2)]:
            mask[alive[j]] = True
        module.set_alive(0, mask)
        return {"alive": float(sum(mask))}

    def run(sub: str, crash_at: int | None = None, resume: bool = False) -> Crashing:
        t = teacher()
        obj = Crashing(supernet(t), t, candidates())
        obj.crash_at = crash_at
        train_loop(obj, features(), collate, cfg, work_dir=tmp_path / sub, evaluate=prune, resume=resume)
        return obj

    t = teacher()
    before = heldout_embedding_losses(BlockwiseObjective(supernet(t), t, candidates()), heldout)
    full = run("a")
    assert len(full.alive(0)) == 3  # pruned at steps 3 and 6: 12 -> 6 -> 3
    assert (heldout_embedding_losses(full, heldout) < before).all()  # the embeddings learn
    with pytest.raises(KeyboardInterrupt):
        run("b", crash_at=5)
    resumed = run("b", resume=True)
    assert resumed.alive(0) == full.alive(0)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


ARCHS = ["e16/24:mha,ffn|32:conv3,identity",
         "32:ffn,conv3|32:identity,identity",  # equal widths: the projections compose all the same
         "e32/16:identity,identity|24:mha,ffn"]


@pytest.mark.parametrize("text", ARCHS)
def test_assembled_model_equals_the_supernet_path(text):
    net = supernet()
    torch.manual_seed(3)
    with torch.no_grad():  # no zero biases or unit LayerNorms left to hide a wrong composition
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    net.eval()
    arch = NasArch.parse(text)
    model = assemble(net, arch)
    b = batch()
    with torch.no_grad():
        expected = net(arch, b["input_ids"], b["attention_mask"], b["token_type_ids"])
        out = model(**b, output_hidden_states=True)
    torch.testing.assert_close(out.last_hidden_state, expected, atol=1e-5, rtol=0)
    assert [h.shape[-1] for h in out.hidden_states] == [arch.blocks[0].hidden] + [blk.hidden for blk in arch.blocks]
    assert out.pooler_output.shape == (3, T) and model.config.hidden_size == T
    expected_size = assembled_parameters(arch, T, VOCAB, net.max_position_embeddings, 2)
    assert sum(p.numel() for p in model.parameters()) == expected_size

    classifier = assemble(net, arch, num_labels=3)
    assert type(classifier) is NasBertForSequenceClassification and not classifier.training
    with torch.no_grad():
        torch.testing.assert_close(classifier.nasbert(**b).last_hidden_state, expected, atol=1e-5, rtol=0)
        assert classifier(**b).logits.shape == (3, 3)


def test_assemble_refuses_archs_outside_the_supernet():
    net = supernet()
    with pytest.raises(UserError, match="has 1 blocks; the supernet has 2"):
        assemble(net, "16:ffn")
    with pytest.raises(UserError, match="embedding size 24 is not in"):
        assemble(net, "24:ffn|16:ffn")


def test_assembled_model_saves_and_loads(tmp_path):
    from transformers import AutoModel

    import bertcompress.models.nasbert.modeling  # noqa: F401 - registers "nasbert" with the Auto classes

    model = assemble(supernet(), "e16/24:mha,conv5|16:ffn,identity")
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is NasBertModel
    assert loaded.config.project_every_block and loaded.config.output_size == T
    b = batch()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**b).last_hidden_state, model(**b).last_hidden_state, atol=0, rtol=0)


def test_predict_ms_sums_the_arch_entries():
    arch = NasArch.parse("e16/32:mha,ffn|24:conv3,identity")
    keys = ["embed@16", "proj@16>32", "mha@32", "ffn@32", "proj@32>24", "conv3@24", "identity@24",
            "proj@24>32", "pooler@32"]
    assert arch_keys(arch, 32) == keys
    entries = {k: 2.0 ** -i for i, k in enumerate(keys)} | {"ffn@16": 100.0}
    table = LatencyTable(device="cpu", threads=1, batch_size=1, seq_len=8, output_width=32, entries=entries)
    assert predict_ms(table, arch) == sum(2.0 ** -i for i in range(len(keys)))
    assert predict_ms(table, arch, pooler=False) == sum(2.0 ** -i for i in range(len(keys) - 1))
    # a key used twice counts twice: the equal-width projections included
    same = NasArch.parse("32:ffn,ffn|32:ffn")
    table.entries.update({"embed@32": 1.0, "proj@32>32": 8.0, "ffn@32": 16.0})
    assert predict_ms(table, same) == 1.0 + 3 * 8.0 + 3 * 16.0 + table.entries["pooler@32"]
    assert block_ms(table, BlockArch(24, ["conv3", "identity"])) == entries["conv3@24"] + entries["identity@24"]
    with pytest.raises(UserError, match=re.escape("no entry 'mha@24' for NAS arch 32:ffn|24:mha")):
        predict_ms(table, "32:ffn|24:mha")
    assert LatencyTable.from_dict(json.loads(json.dumps(table.to_dict()))) == table
    with pytest.raises(UserError, match="not a NAS-BERT latency table"):
        LatencyTable.from_dict({"device": "cpu"})


def test_measured_table_covers_every_arch():
    table = measure_table([16, 20, 24], [16], 32, head_size=HEAD, vocab_size=VOCAB, threads=1,
                          batch_size=1, seq_len=8, repeats=2, warmup=1)
    assert (table.device, table.threads, table.seq_len, table.output_width) == ("cpu", 1, 8, 32)
    assert all(v > 0 and math.isfinite(v) for v in table.entries.values())
    assert "mha@20" not in table.entries and "conv7@20" in table.entries  # 20 is not whole heads of 8
    for text in ["e16/16:mha,ffn|24:conv7,identity", "16:identity|20:conv3,ffn|24:mha", "e16/24:ffn|24:ffn"]:
        assert predict_ms(table, text) > 0
    model = assemble(supernet(), "e16/16:mha,ffn|24:conv7,identity")
    assert measure_model_ms(model, threads=1, batch_size=1, seq_len=8, repeats=2, warmup=1) > 0


def test_config_options_default_off():
    def config(**kwargs):
        return NasBertConfig(arch="16:ffn|16:ffn", vocab_size=VOCAB, max_position_embeddings=16, head_size=HEAD,
                             **kwargs)

    plain = NasBertModel(config())
    assert plain.embedding_proj is None and plain.blocks[1].input_proj is None and plain.output_proj is None
    with pytest.raises(UserError, match="output_size must be a positive integer"):
        config(output_size=0)
    projected = NasBertModel(config(project_every_block=True, output_size=32))
    assert projected.embedding_proj is not None and projected.blocks[0].input_proj is None
    assert projected.blocks[1].input_proj is not None and projected.pooler.dense.weight.shape == (32, 32)


def test_latency_calibration_fits_a_line_and_falls_back_to_a_ratio():
    from bertcompress.methods.nas.latency import LatencyCalibration

    line = LatencyCalibration.fit([1.0, 2.0, 4.0], [3.5, 5.0, 8.0], ["a", "b", "c"])  # 1.5 x + 2
    assert (line.scale, line.offset_ms) == (pytest.approx(1.5), pytest.approx(2.0))
    assert line(10.0) == pytest.approx(17.0) and [m["arch"] for m in line.models] == ["a", "b", "c"]
    assert LatencyCalibration.from_dict(line.to_dict()) == line
    noisy = LatencyCalibration.fit([1.0, 2.0], [3.0, 2.0])  # a falling line is noise: the median ratio instead
    assert (noisy.scale, noisy.offset_ms) == (pytest.approx(2.0), 0.0)  # median of 3/1 and 2/2
    single = LatencyCalibration.fit([2.0, 2.0], [3.0, 3.0])
    assert (single.scale, single.offset_ms) == (pytest.approx(1.5), 0.0)
    assert LatencyCalibration()(7.0) == 7.0  # calibration_models 0: the raw sum
