"""ONNX export (export/onnx.py): ONNX Runtime predicts what PyTorch predicts; writes are atomic;
evaluate checks it."""

import numpy as np
import pytest
import torch

from bertcompress.data.config import DataConfig
from bertcompress.evaluation.evaluator import evaluate
from bertcompress.evaluation.profile import measure_onnx_latency
from bertcompress.export.onnx import OnnxClassifier, export_onnx, onnx_input_names, onnx_logits, onnx_session
from conftest import tiny_config


def _padded_batch(vocab, batch, seq):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    mask[0, seq // 3:] = 0  # padding, at a batch and length other than the export's
    mask[-1, seq - 2:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


@pytest.mark.parametrize("model_type", ["bert", "distilbert", "deberta-v2", "modernbert", "albert"])
def test_onnx_matches_pytorch(model_type, tmp_path):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(model_type, 100, num_labels=3)).eval()
    path = export_onnx(model, tmp_path / "model.onnx")
    session = onnx_session(path, threads=1)
    expected = ["input_ids", "attention_mask"] + (["token_type_ids"] if model_type in ("bert", "albert")
                                                  else [])
    assert [i.name for i in session.get_inputs()] == expected == onnx_input_names(model)
    for batch, seq in [(1, 7), (5, 40)]:  # dynamic batch and sequence axes
        inputs = _padded_batch(100, batch, seq)
        with torch.no_grad():
            ref = model(**{k: inputs[k] for k in expected}).logits.numpy()
        got = onnx_logits(session, inputs)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-5)
        if "token_type_ids" in expected:  # a tokenizer that gives none (MPNet's): zeros, as PyTorch defaults to
            no_types = {k: v for k, v in inputs.items() if k != "token_type_ids"}
            np.testing.assert_allclose(onnx_logits(session, no_types), ref, atol=1e-5)
        assert (got.argmax(-1) == ref.argmax(-1)).all()
    lat = measure_onnx_latency(session, model, batch_size=2, seq_len=16, repeats=2, warmup=1)
    assert lat["runtime"] == "onnxruntime" and lat["threads"] == 1 and lat["median_ms"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary file left


def test_failed_export_leaves_earlier_file_untouched(tmp_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_config(tiny_config("bert", 100)).eval()
    target = tmp_path / "model.onnx"
    target.write_bytes(b"earlier")

    def broken_export(*args, **kwargs):
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    with pytest.raises(RuntimeError):
        export_onnx(model, target)
    assert target.read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_export_leaves_the_model_as_it_was_and_finish_runs_before_the_rename(tmp_path):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config("bert", 100)).eval()
    inputs = _padded_batch(100, 2, 9)
    with torch.no_grad():
        before = model(**inputs).logits
    target = tmp_path / "model.onnx"
    seen = []
    export_onnx(model, target, finish=lambda tmp: seen.append((tmp.parent, tmp.exists(), target.exists())))
    assert seen == [(tmp_path, True, False)]  # a sibling temporary file, edited before it takes the name
    assert not model.training  # the exporter restores the traced module's mode onto the model
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, before)
    classifier = OnnxClassifier(target, threads=1)  # the tensor-in, tensor-out form of the same session
    torch.testing.assert_close(classifier(inputs), torch.from_numpy(onnx_logits(classifier.session, inputs)))

    def broken_finish(tmp):
        raise RuntimeError("post-processing failed")

    with pytest.raises(RuntimeError):
        export_onnx(model, target, finish=broken_finish)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # earlier file kept, no temporary


def test_evaluate_records_onnx_agreement_and_both_runtimes(tiny_bert_dir, sentiment_tsv, tmp_path):
    data = DataConfig(task="sst2", path=str(sentiment_tsv), max_seq_len=32)
    (record,) = evaluate([str(tiny_bert_dir)], data, seq_len=16, batch_sizes=(1, 2), repeats=2, warmup=0,
                         threads=1, cuda=False, onnx_dir=str(tmp_path / "onnx"))
    assert record["onnx"]["prediction_agreement"] == 1.0
    assert record["onnx"]["max_abs_logit_diff"] < 1e-4
    assert (tmp_path / "onnx").is_dir() and record["onnx"]["path"].endswith(".onnx")
    for key in ("latency", "latency_onnx"):
        assert set(record[key]) == {"batch1", "batch2"}
        assert record[key]["batch1"]["threads"] == 1
    assert record["baseline"] == str(tiny_bert_dir)
    assert record["ratios"]["latency_ratio_onnx_batch2"] == pytest.approx(1.0)
    (fast,) = evaluate([str(tiny_bert_dir)], data, latency=False, onnx=False)
    assert "onnx" not in fast and "latency" not in fast and fast["accuracy"] == record["accuracy"]
