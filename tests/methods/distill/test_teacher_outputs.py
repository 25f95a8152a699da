"""The teacher's outputs computed once (methods/distill/teacher_outputs.py): equal to the live ones,
keyed by everything that determines them, and a distillation that reads them trains as one that
runs the teacher."""

from __future__ import annotations

import json

import pytest
import torch

from bertcompress.data.config import DataConfig
from bertcompress.data.encoding import Collator, encode_examples
from bertcompress.data.examples import Example
from bertcompress.methods.distill.config import DistillConfig, LossConfig, TeacherCacheConfig
from bertcompress.methods.distill.objective import DistillationObjective
from bertcompress.methods.distill.teacher_outputs import CachedLayers, build_teacher_outputs
from bertcompress.methods.distill.verb import distill
from bertcompress.models.config import StudentConfig
from bertcompress.models.loading import load_model
from bertcompress.models.student import build_student
from bertcompress.train.config import TrainConfig

TEXTS = ["a good movie", "the plot was really dull and boring", "fun", "i love this film so much", "bad"]


def _objective(tiny_bert_dir):
    teacher = load_model(str(tiny_bert_dir), "classifier")
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=32),
                            kind="classifier", num_labels=2)
    weights = {"embedding": 1.0, "hidden": 1.0, "attention": 1.0}
    return DistillationObjective(student, teacher, LossConfig(), weights)


def _features(tok):
    examples = [Example(t, None, i % 2) for i, t in enumerate(TEXTS)]
    return [dict(f, index=i) for i, f in enumerate(encode_examples(tok, examples, 32))]


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("float16", 2e-3)])
def test_cached_outputs_equal_live_ones(tmp_path, tiny_bert_dir, tiny_tokenizer, dtype, tol):
    objective = _objective(tiny_bert_dir).eval()
    features, collate = _features(tiny_tokenizer), Collator(0)
    layers = objective.teacher_layers()
    assert layers == CachedLayers(hidden=(0, 2, 4), scores=(2, 4))  # uniform mapping of 2 onto 4 layers
    cache = build_teacher_outputs(objective.run_teacher, features, collate, layers,
                                  TeacherCacheConfig(dir=str(tmp_path), dtype=dtype), teacher=str(tiny_bert_dir),
                                  hidden_size=32, heads=4, num_layers=4, precision="fp32",
                                  device=torch.device("cpu"), batch_size=2, progress=False)
    batch = collate([features[i] for i in (3, 0, 2)])  # another order and grouping than the build's
    live = objective.run_teacher(batch)
    got = cache.fetch(batch["index"], batch["input_ids"].shape[1], torch.device("cpu"))
    mask = batch["attention_mask"].bool()
    for layer in layers.hidden:
        torch.testing.assert_close(got.hidden_states[layer][mask], live.hidden_states[layer][mask], atol=tol * 10,
                                   rtol=tol)
        assert (got.hidden_states[layer][~mask] == 0).all()
    for layer in layers.scores:
        torch.testing.assert_close(got.scores[layer], live.scores[layer], atol=tol * 10, rtol=tol)
    torch.testing.assert_close(got.logits, live.logits, atol=1e-6, rtol=1e-5)  # logits are kept in float32


def test_cache_is_keyed_and_reused(tmp_path, tiny_bert_dir, tiny_tokenizer, said):
    objective = _objective(tiny_bert_dir).eval()
    features, collate = _features(tiny_tokenizer), Collator(0)
    kw = dict(teacher=str(tiny_bert_dir), hidden_size=32, heads=4, num_layers=4, precision="fp32",
              device=torch.device("cpu"), progress=False)
    cfg = TeacherCacheConfig(dir=str(tmp_path))
    first = build_teacher_outputs(objective.run_teacher, features, collate, objective.teacher_layers(), cfg, **kw)
    again = build_teacher_outputs(objective.run_teacher, features, collate, objective.teacher_layers(), cfg, **kw)
    assert again.folder == first.folder and "reusing" in said.text
    fewer = build_teacher_outputs(objective.run_teacher, features, collate, CachedLayers(hidden=(0,)), cfg, **kw)
    assert fewer.folder == first.folder and fewer.layers == first.layers  # a superset serves the request
    more = build_teacher_outputs(objective.run_teacher, features, collate, CachedLayers(hidden=(1,)), cfg, **kw)
    assert more.folder == first.folder and more.layers == CachedLayers(hidden=(1,))  # lacked layer 1: rebuilt
    others = [
        build_teacher_outputs(objective.run_teacher, features[:4], collate, objective.teacher_layers(), cfg, **kw),
        build_teacher_outputs(objective.run_teacher, _features_len(tiny_tokenizer, 4), collate,
                              objective.teacher_layers(), cfg, **kw),
        build_teacher_outputs(objective.run_teacher, features, collate, objective.teacher_layers(),
                              TeacherCacheConfig(dir=str(tmp_path), dtype="float32"), **kw),
    ]
    assert len({first.folder, *(o.folder for o in others)}) == 4
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


def _features_len(tok, max_len):
    examples = [Example(t, None, i % 2) for i, t in enumerate(TEXTS)]
    return [dict(f, index=i) for i, f in enumerate(encode_examples(tok, examples, max_len))]


def test_cache_key_follows_the_teacher_weights(tmp_path, tiny_bert_dir, tiny_tokenizer):
    import shutil

    other = tmp_path / "teacher2"
    shutil.copytree(tiny_bert_dir, other)
    model = load_model(str(other), "classifier")
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    model.save_pretrained(other)
    objective = _objective(tiny_bert_dir).eval()
    kw = dict(hidden_size=32, heads=4, num_layers=4, precision="fp32", device=torch.device("cpu"), progress=False)
    cfg = TeacherCacheConfig(dir=str(tmp_path / "cache"))
    a = build_teacher_outputs(objective.run_teacher, _features(tiny_tokenizer), Collator(0), CachedLayers(), cfg,
                              teacher=str(tiny_bert_dir), **kw)
    b = build_teacher_outputs(objective.run_teacher, _features(tiny_tokenizer), Collator(0), CachedLayers(), cfg,
                              teacher=str(other), **kw)
    assert a.folder != b.folder


def test_layer_outputs_over_budget_cache_logits_only(tmp_path, tiny_bert_dir, tiny_tokenizer, said):
    objective = _objective(tiny_bert_dir).eval()
    cache = build_teacher_outputs(objective.run_teacher, _features(tiny_tokenizer), Collator(0),
                                  objective.teacher_layers(), TeacherCacheConfig(dir=str(tmp_path), max_gb=1e-9),
                                  teacher=str(tiny_bert_dir), hidden_size=32, heads=4, num_layers=4,
                                  precision="fp32", device=torch.device("cpu"), progress=False)
    assert cache.layers == CachedLayers() and "caching the logits only" in said.text
    assert not cache.layers.covers(objective.teacher_layers())  # the intermediate phase runs the teacher


def test_distill_with_the_cache_trains_as_without(tmp_path, tiny_bert_dir, sentiment_tsv):
    """float32 storage: the same student, weight for weight, as a run that calls the teacher."""
    def run(name, cache):
        train = TrainConfig(max_steps=4, batch_size=8, lr=1e-3)
        cfg = DistillConfig(stage="task", teacher=str(tiny_bert_dir),
                            student=StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=32),
                            data=DataConfig(task="sst2", path=str(sentiment_tsv), max_seq_len=32), train=train,
                            prediction_train=train, teacher_cache=cache, output=str(tmp_path / name))
        return distill(cfg)

    cached = run("cached", TeacherCacheConfig(dir=str(tmp_path / "c"), dtype="float32"))
    live = run("live", TeacherCacheConfig(enabled=False))
    record = json.loads((cached / "bertcompress_result.json").read_text())
    assert record["teacher_cache"]["hidden"] == [0, 2, 4]
    assert "teacher_cache" not in json.loads((live / "bertcompress_result.json").read_text())
    a = load_model(str(cached), "classifier").state_dict()
    b = load_model(str(live), "classifier").state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)
