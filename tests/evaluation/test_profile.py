"""Profiler: statistics on a fake clock, size counts, ratios, and latency records from tiny models."""

import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.evaluation.evaluator import compare
from bertcompress.evaluation.profile import (
    bytes_on_disk,
    measure_latency,
    parameter_counts,
    profile_latency,
    ratios_against,
    time_call,
)
from bertcompress.models.inputs import synthetic_batch
from conftest import tiny_config


class FakeClock:
    """Time moves only when the timed function runs: call k takes durations_ms[k]."""

    def __init__(self, durations_ms):
        self.durations = list(durations_ms)
        self.now = 0.0
        self.calls = 0

    def __call__(self):
        return self.now

    def work(self):
        self.now += self.durations[self.calls] / 1000.0
        self.calls += 1


def test_time_call_statistics_on_fake_clock():
    # two warm-up calls (100 ms, 90 ms) must not count; then ten timed calls
    clock = FakeClock([100, 90, 7, 1, 9, 3, 5, 10, 2, 8, 4, 6])
    syncs = []
    stats = time_call(clock.work, warmup=2, repeats=10, clock=clock, sync=lambda: syncs.append(1))
    assert clock.calls == 12
    assert stats["median_ms"] == pytest.approx(5.5)
    assert stats["p90_ms"] == pytest.approx(9.0)  # nearest rank: the 9th of 10 sorted
    assert stats["min_ms"] == pytest.approx(1.0)
    assert (stats["repeats"], stats["warmup"]) == (10, 2)
    assert len(syncs) == 11  # after the warm-up and after every timed call


def test_time_call_single_repeat_and_bad_counts():
    clock = FakeClock([4])
    stats = time_call(clock.work, warmup=0, repeats=1, clock=clock)
    assert stats["median_ms"] == stats["p90_ms"] == pytest.approx(4.0)
    with pytest.raises(UserError):
        time_call(clock.work, repeats=0)


def test_bytes_on_disk_counts_one_weight_format(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x" * 100)
    (tmp_path / "model.onnx").write_bytes(b"x" * 70)  # an export beside the weights is not counted twice
    (tmp_path / "vocab.txt").write_text("a\nb\n")
    assert bytes_on_disk(tmp_path) == 100
    (tmp_path / "model.safetensors").unlink()
    assert bytes_on_disk(tmp_path) == 70


def test_parameter_counts(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    counts = parameter_counts(model)
    emb = sum(p.numel() for p in model.bert.embeddings.parameters())
    assert counts["parameters"] == sum(p.numel() for p in model.parameters())
    assert counts["non_embedding_parameters"] == counts["parameters"] - emb > 0


def _record(params, non_emb, disk, score, ms):
    lat = {"batch1": {"median_ms": ms}}
    return {"parameters": params, "non_embedding_parameters": non_emb, "bytes_on_disk": disk, "score": score,
            "latency": lat, "latency_onnx": {"batch1": {"median_ms": ms / 2}}}


def test_ratios_against_baseline():
    teacher, student = _record(1000, 800, 4000, 0.9, 20.0), _record(250, 100, 1000, 0.81, 5.0)
    r = ratios_against(teacher, student)
    assert r["retention"] == pytest.approx(0.9)
    assert (r["size_ratio"], r["non_embedding_size_ratio"], r["disk_ratio"]) == (4.0, 8.0, 4.0)
    assert r["latency_ratio_batch1"] == r["latency_ratio_onnx_batch1"] == pytest.approx(4.0)
    assert "latency_ratio_cuda_batch1" not in r
    assert all(v == pytest.approx(1.0) for v in ratios_against(teacher, teacher).values())
    # the pipeline's report states CPU eager ratios only
    assert sorted(k for k in compare(teacher, student) if k.startswith("latency")) == ["latency_ratio_batch1"]


def _tiny(model_type):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(tiny_config(model_type, 100)).eval()


def test_synthetic_batch_matches_the_models_inputs():
    assert list(synthetic_batch(_tiny("bert"), 2, 16)) == ["input_ids", "attention_mask", "token_type_ids"]
    distil = synthetic_batch(_tiny("distilbert"), 3, 16)
    assert list(distil) == ["input_ids", "attention_mask"] and distil["input_ids"].shape == (3, 16)
    with pytest.raises(UserError, match="longer than the model allows"):
        synthetic_batch(_tiny("roberta"), 1, 130)  # positions start at 2: 129 fit in 130


def test_latency_records_state_their_settings_and_restore_threads():
    model = _tiny("bert")
    before = torch.get_num_threads()
    lat = measure_latency(model, batch_size=2, seq_len=16, repeats=2, warmup=1, threads=1)
    assert lat["threads"] == 1 and torch.get_num_threads() == before
    assert (lat["runtime"], lat["device"], lat["batch_size"], lat["seq_len"]) == ("pytorch-eager", "cpu", 2, 16)
    assert 0 < lat["min_ms"] <= lat["median_ms"] <= lat["p90_ms"]
    prof = profile_latency(model, batch_sizes=(1, 2), seq_len=16, repeats=2, warmup=0, cuda=False)
    assert list(prof) == ["latency"] and list(prof["latency"]) == ["batch1", "batch2"]
    assert prof["latency"]["batch1"]["threads"] == torch.get_num_threads()
