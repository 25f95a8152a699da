"""Structured pruning: exactly the chosen heads/neurons go, the pruned model computes what the
masked original does, and saved models load (plain transformers where a config can say it)."""

from __future__ import annotations

import json

import pytest
import torch
from test_extract import FAMILIES, batch, run, tiny

from bertcompress.core.config import from_dict, to_dict
from bertcompress.core.errors import UserError
from bertcompress.methods.prune.config import PruneConfig
from bertcompress.methods.prune.structured import prune_model
from bertcompress.models.pruned import is_pruned, load_pruned, prune_units
from bertcompress.models.units import encoder


def masked_copy(model, heads: list[list[int]], ffn: list[list[int]]):
    """The original with removed units silenced: a head's output-projection columns and a
    neuron's FFN-output column zeroed, which is exactly what removing them does."""
    import copy

    masked = copy.deepcopy(model)
    enc = encoder(masked)
    d = enc.head_dim
    with torch.no_grad():
        for p, keep_h, keep_f in zip(enc.parts, heads, ffn):
            for h in set(range(enc.num_heads)) - set(keep_h):
                p["out"].weight[:, h * d:(h + 1) * d] = 0
            for n in set(range(p["ffn_out"].in_features)) - set(keep_f):
                p["ffn_out"].weight[:, n] = 0
    return masked


@pytest.mark.parametrize("family", FAMILIES)
def test_pruned_model_equals_the_masked_original(family):
    model, b = tiny(family), batch()
    heads = [[0, 2], [1], [0, 1, 2, 3], [3]] if family != "mpnet" else [[0, 2]] * 4  # MPNet: one set
    ffn = [[i for i in range(64) if i % (layer + 2)] for layer in range(4)]
    expected = run(masked_copy(model, heads, ffn), b)
    prune_units(model, heads, ffn)
    enc = encoder(model)
    assert [enc.heads_in(i) for i in range(4)] == [len(h) for h in heads]
    assert [p["ffn_in"].out_features for p in enc.parts] == [len(f) for f in ffn]
    assert enc.parts[0]["query"].weight.shape == (8 * len(heads[0]), 32)
    torch.testing.assert_close(run(model, b), expected)


def test_pruned_weights_are_the_kept_rows_and_columns():
    model = tiny()
    original = encoder(tiny()).parts[1]
    prune_units(model, [[0, 1, 2, 3], [1, 3], [0], [2]], [list(range(64))] * 4)
    p = encoder(model).parts[1]
    rows = list(range(8, 16)) + list(range(24, 32))
    assert torch.equal(p["key"].weight, original["key"].weight[rows])
    assert torch.equal(p["out"].weight, original["out"].weight[:, rows])
    assert torch.equal(p["out"].bias, original["out"].bias)  # the output bias is not per head


def test_uniform_ffn_pruning_saves_a_plain_transformers_model(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model, b = tiny(), batch()
    model.save_pretrained(tmp_path / "full")
    kept = prune_model(model, PruneConfig(ffn_keep=0.5, importance="magnitude"))
    assert model.config.intermediate_size == 32 and not hasattr(model.config, "bertcompress_pruned")
    assert all(len(f) == 32 for f in kept["ffn"])
    model.save_pretrained(tmp_path / "pruned")
    assert not is_pruned(tmp_path / "pruned")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "pruned").eval()
    torch.testing.assert_close(run(loaded, b), run(model, b))
    size = lambda name: (tmp_path / name / "model.safetensors").stat().st_size  # noqa: E731
    assert size("pruned") < 0.85 * size("full")


def test_head_pruning_needs_our_loader_and_it_is_exact(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model, b = tiny(), batch()
    kept = prune_model(model, PruneConfig(heads_keep=0.5, ffn_keep=1.0, importance="taylor"), batches=[b])
    assert all(len(h) == 2 for h in kept["heads"]) and kept["loss"] == "task"
    assert model.config.bertcompress_pruned == {"heads": [2, 2, 2, 2]}
    model.save_pretrained(tmp_path)
    assert is_pruned(tmp_path)
    with pytest.raises(RuntimeError):  # plain transformers refuses it loudly (size mismatch)
        AutoModelForSequenceClassification.from_pretrained(tmp_path)
    loaded = load_pruned(tmp_path, "classifier")
    torch.testing.assert_close(run(loaded, b), run(model, b))
    base = load_pruned(tmp_path, "base")  # a pruned classifier loads as its bare encoder
    torch.testing.assert_close(run(base, b), run(model.base_model, b))


@pytest.mark.parametrize("family", ["distilbert", "mpnet", "deberta-v2"])
def test_other_families_round_trip_through_the_loader(tmp_path, family):
    model, b = tiny(family), batch()
    prune_model(model, PruneConfig(heads_keep=0.5, ffn_keep=0.25, importance="magnitude"))
    model.save_pretrained(tmp_path)
    torch.testing.assert_close(run(load_pruned(tmp_path, "classifier"), b), run(model, b))


def test_global_layout_ranks_across_layers_and_loads(tmp_path):
    model, b = tiny(), batch()
    with torch.no_grad():  # layer 1's FFN barely matters: global ranking should take most from it
        encoder(model).parts[0]["ffn_out"].weight.mul_(1e-3)
    kept = prune_model(model, PruneConfig(ffn_keep=0.5, layout="global", importance="taylor"), batches=[b])
    sizes = [len(f) for f in kept["ffn"]]
    assert sum(sizes) == 128 and min(sizes) >= 1 and sizes[0] < 32
    assert model.config.bertcompress_pruned == {"ffn": sizes}
    model.save_pretrained(tmp_path)
    torch.testing.assert_close(run(load_pruned(tmp_path, "classifier"), b), run(model, b))


def test_pruning_removes_the_least_important_units_first():
    model = tiny()
    with torch.no_grad():
        for p in encoder(model).parts:
            p["ffn_out"].weight[:, :16] *= 1e-4  # neurons 0..15 contribute almost nothing
    kept = prune_model(model, PruneConfig(ffn_keep=0.75, importance="taylor"), batches=[batch()])
    assert all(f == list(range(16, 64)) for f in kept["ffn"])


def test_iterative_pruning_reaches_the_target_in_steps():
    model = tiny()
    kept = prune_model(model, PruneConfig(heads_keep=0.25, ffn_keep=0.5, steps=3, importance="taylor"),
                       batches=[batch(), batch(seed=1)])
    assert all(len(h) == 1 for h in kept["heads"]) and all(len(f) == 32 for f in kept["ffn"])
    assert all(0 <= h[0] < 4 for h in kept["heads"])  # original head ids, not positions
    enc = encoder(model)
    assert [enc.heads_in(i) for i in range(4)] == [1] * 4 and enc.parts[0]["ffn_in"].out_features == 32


def test_bad_configs_are_one_line_user_errors():
    for bad in ({"heads_keep": 0}, {"ffn_keep": 1.5}, {"layout": "per_head"}, {"steps": 0},
                {"importance": "random"}, {"batch_size": 0}):
        with pytest.raises(UserError, match="^bad config: "):
            PruneConfig(**bad)
    assert from_dict(PruneConfig, to_dict(PruneConfig(heads_keep=0.5))) == PruneConfig(heads_keep=0.5)
    with pytest.raises(UserError, match="needs a data sample"):
        prune_model(tiny(), PruneConfig())
    with pytest.raises(UserError, match="MPNet heads"):
        prune_model(tiny("mpnet"), PruneConfig(heads_keep=0.5, layout="global", importance="magnitude"))
    with pytest.raises(UserError, match="every head of layer 2"):
        prune_units(tiny(), [[0], [], [0], [0]])


def test_prune_command_writes_a_smaller_model(tmp_path, tiny_bert_dir, sentiment_tsv):
    from bertcompress.cli import main
    from bertcompress.methods.prune.config import ExtractConfig
    from bertcompress.methods.prune.verb import extract
    from bertcompress.models.loading import load_model

    out = tmp_path / "pruned"
    assert main(["prune", "--model", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
                 "--heads-keep", "0.5", "--ffn-keep", "0.5", "--samples", "8", "-o", str(out)]) == 0
    result = json.loads((out / "bertcompress_result.json").read_text())
    assert result["parameters_after"] < result["parameters_before"] and not result["plain_transformers_loads"]
    model = load_model(str(out), "classifier")
    assert encoder(model).heads_in(0) == 2
    # a pruned folder is not an extraction teacher (its layers may differ in size)
    with pytest.raises(UserError, match="not a pruned model"):
        extract(ExtractConfig(teacher=str(out), num_layers=2, importance="magnitude", output=str(tmp_path / "x")))
