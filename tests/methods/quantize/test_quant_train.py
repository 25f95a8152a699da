"""The `quantize` verb on a tiny model: KDLSQ loss falls, the output is a working packed folder;
the LSQ-on-labels and dynamic-int8 baselines; the subcommand end to end."""

from __future__ import annotations

import json

import pytest
import torch

from bertcompress.core.config import read_saved_config
from bertcompress.core.errors import UserError
from bertcompress.data.config import DataConfig
from bertcompress.methods.distill.config import DEFAULT_LOSS_WEIGHTS, LossConfig
from bertcompress.methods.quantize.config import QuantizeTrainConfig
from bertcompress.methods.quantize.verb import load_ptq, ptq_baseline, ptq_dynamic_int8, quantize
from bertcompress.models.quantized.config import QuantConfig
from bertcompress.models.quantized.packed import is_packed, load_packed
from bertcompress.train.config import TrainConfig


def _cfg(student, data, output, steps=30, **kw):
    train = TrainConfig(max_steps=steps, batch_size=8, lr=2e-3, warmup_ratio=0.0, log_every=1, seed=0)
    return QuantizeTrainConfig(student=str(student), data=DataConfig(task="sst2", path=str(data)),
                               train=train, output=str(output), **kw)


def _dev_logits(model, data, model_folder):
    from bertcompress.data.encoding import Collator, encode_examples
    from bertcompress.data.kinds import load_examples
    from bertcompress.evaluation.predict import predict_logits
    from bertcompress.models.loading import load_tokenizer

    _, examples = load_examples(DataConfig(task="sst2", path=str(data)), "dev")
    features = encode_examples(load_tokenizer(str(model_folder)), examples, 32)
    return predict_logits(model, features, Collator(0))


def _no_dropout_copy(folder, dest):
    """The tiny student without dropout, so the loss curve shows learning rather than dropout noise."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder, hidden_dropout_prob=0.0,
                                                               attention_probs_dropout_prob=0.0)
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(folder).save_pretrained(dest)
    return dest


def _mean(xs):
    return sum(xs) / len(xs)


def test_kdlsq_loss_falls_and_writes_packed_folder(tiny_bert_dir, sentiment_tsv, tmp_path):
    student = _no_dropout_copy(tiny_bert_dir, tmp_path / "student")
    cfg = _cfg(student, sentiment_tsv, tmp_path / "q", quant=QuantConfig.parse("w2a8"))
    out = quantize(cfg)
    result = json.loads((out / "bertcompress_result.json").read_text())
    steps = [h for h in result["history"] if "loss" in h]
    assert set(steps[0]) >= {"embedding", "hidden", "attention", "prediction"}
    # the soft cross-entropy is bounded below by the teacher's entropy (ln 2 for this untrained
    # head); the layer-matching terms can go to zero and must fall clearly
    layers = [h["embedding"] + h["hidden"] + h["attention"] for h in steps]
    assert _mean(layers[-5:]) < 0.75 * _mean(layers[:5]), layers
    assert _mean([h["loss"] for h in steps[-5:]]) < _mean([h["loss"] for h in steps[:5]])
    assert is_packed(out) and read_saved_config(QuantizeTrainConfig, out) == cfg
    assert result["bytes_on_disk"] < result["fp_bytes_on_disk"]
    assert not (tmp_path / ".q.checkpoints").exists()
    # the packed model predicts what the trained model scored
    model = load_packed(out)
    logits = _dev_logits(model, sentiment_tsv, out)
    assert (logits.argmax(-1) == torch.tensor([1] * 5 + [0] * 5)).float().mean().item() == pytest.approx(
        result["dev"]["accuracy"])


def test_lsq_baseline_on_labels_and_a_separate_teacher(tiny_bert_dir, sentiment_tsv, tmp_path):
    cfg = _cfg(tiny_bert_dir, sentiment_tsv, tmp_path / "lsq", steps=5, quant=QuantConfig.parse("w4a8"), kd=False)
    result = json.loads((quantize(cfg) / "bertcompress_result.json").read_text())
    assert result["method"] == "lsq" and set(result["history"][0]) == {"step", "lr", "loss"}
    # KD against an explicit teacher folder (here the same model: any fine-tuned teacher works)
    cfg = _cfg(tiny_bert_dir, sentiment_tsv, tmp_path / "kd", steps=5, teacher=str(tiny_bert_dir),
               losses=LossConfig(weights={**DEFAULT_LOSS_WEIGHTS, "attention": 0.0}), quant=QuantConfig.parse("w8a8"),
               onnx=True)
    out = quantize(cfg)
    assert (out / "onnx" / "model.onnx").is_file()


def test_wrong_label_count_is_a_user_error(tiny_bert_dir, tmp_path):
    data = tmp_path / "MNLI"
    data.mkdir()
    rows = "index\tsentence1\tsentence2\tgold_label\n" + "".join(
        f"{i}\ta movie\tthe film\t{lab}\n" for i, lab in enumerate(["entailment", "neutral", "contradiction"] * 3))
    for split in ("train.tsv", "dev_matched.tsv"):
        (data / split).write_text(rows)
    cfg = QuantizeTrainConfig(student=str(tiny_bert_dir), data=DataConfig(task="mnli", path=str(data),
                                                                          eval_split="dev_matched"),
                              output=str(tmp_path / "o"))
    with pytest.raises(UserError, match="labels"):
        quantize(cfg)
    assert not (tmp_path / "o").exists()


def test_ptq_dynamic_int8_baseline(tiny_bert_dir, sentiment_tsv, tmp_path):
    from transformers import AutoModelForSequenceClassification

    fp = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).eval()
    q = ptq_dynamic_int8(fp)
    assert type(q.bert.encoder.layer[0].attention.self.query).__name__ == "Linear" and q is not fp
    out = ptq_baseline(_cfg(tiny_bert_dir, sentiment_tsv, tmp_path / "ptq"))
    result = json.loads((out / "bertcompress_result.json").read_text())
    assert result["method"] == "ptq_dynamic_int8" and result["bytes_on_disk"] < result["fp_bytes_on_disk"]
    ids = torch.randint(5, 80, (3, 9))
    with torch.no_grad():
        assert torch.equal(load_ptq(out)(input_ids=ids).logits, q(input_ids=ids).logits)
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.to_dict()["library_name"] == "bertcompress" and "load_ptq(" in card.text
    assert card.data.eval_results[0].metric_value == pytest.approx(result["dev"]["accuracy"], abs=5e-5)


def test_quantize_subcommand(tiny_bert_dir, sentiment_tsv, tmp_path, capsys):
    from bertcompress.cli import main

    assert main(["quantize", "--student", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
                 "--bits", "w4a8", "-o", str(tmp_path / "cli"), "--set", "train.max_steps=2",
                 "--set", "train.batch_size=4", "--onnx"]) == 0
    assert is_packed(tmp_path / "cli") and "kdlsq" in capsys.readouterr().out


def test_quantize_output_loads_with_standard_tools(tiny_bert_dir, sentiment_tsv, tmp_path):
    """`quantize --onnx`'s folder, copied elsewhere: transformers and ONNX Runtime alone load it and
    agree with the quantized model; `evaluate` still counts only the packed file."""
    import shutil
    import subprocess
    import sys

    from bertcompress.evaluation.profile import bytes_on_disk
    from bertcompress.models.loading import load_tokenizer
    from conftest import SENTENCES, STANDARD_TOOLS, float_activations

    out = quantize(_cfg(tiny_bert_dir, sentiment_tsv, tmp_path / "q", steps=3, quant=QuantConfig.parse("w4a8"),
                        onnx=True))
    result = json.loads((out / "bertcompress_result.json").read_text())
    assert bytes_on_disk(out) == result["bytes_on_disk"] == (out / "quantized.safetensors").stat().st_size
    assert "bertcompress_result.json" in (out / "README.md").read_text()
    copy = shutil.copytree(out, tmp_path / "elsewhere")
    run = subprocess.run([sys.executable, "-c", STANDARD_TOOLS, str(copy), json.dumps(SENTENCES)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["info"]["missing_keys"] == [] and got["info"]["unexpected_keys"] == []
    quantized = load_packed(out, keep_weight_quantizers=True)  # the trained model, bit for bit
    with torch.no_grad():
        enc = load_tokenizer(str(out))(SENTENCES, padding=True, return_tensors="pt")
        logits, weights_only = quantized(**enc).logits, float_activations(quantized)(**enc).logits
    assert torch.allclose(torch.tensor(got["logits"]), weights_only, atol=1e-6, rtol=0)
    onnx = torch.tensor(got["onnx"])
    assert torch.allclose(onnx, logits, atol=0.05 * logits.abs().max().item(), rtol=0)
    assert torch.equal(onnx.argmax(-1), logits.argmax(-1))
