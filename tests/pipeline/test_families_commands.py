"""Every command on tiny random DeBERTa-v2/v3, ModernBERT and ALBERT teachers, through the CLI:
general and task distillation into a student of the teacher's family, KDLSQ quantization with its
ONNX export, evaluation with ONNX Runtime, and extraction and pruning (DeBERTa) or their one-line
refusal (ModernBERT's fused projections, ALBERT's shared layer). Each student loads with plain
transformers and predicts what our loader's model predicts."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bertcompress.cli import main
from bertcompress.models.loading import load_model
from conftest import tiny_config

STUDENT = ["--set", "student.num_layers=2", "--set", "student.hidden_size=16", "--set", "student.num_heads=4",
           "--set", "student.ffn_size=32"]
STEPS = ["--set", "train.max_steps=3", "--set", "train.batch_size=4"]


def _teacher(family: str, folder, tokenizer) -> str:
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(family, len(tokenizer)))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("family", ["deberta-v2", "modernbert", "albert"])
def test_every_command_on_the_family(family, tmp_path, tiny_tokenizer, sentiment_tsv, corpus_file, capsys):
    teacher = _teacher(family, tmp_path / "teacher", tiny_tokenizer)
    data = ["--task", "sst2", "--data", str(sentiment_tsv)]
    general, student = tmp_path / "general", tmp_path / "student"
    assert main(["distill", "--stage", "general", "--teacher", teacher, "--corpus", str(corpus_file), "-o",
                 str(general), "--set", "corpus.max_seq_len=16"] + STEPS + STUDENT) == 0
    assert main(["distill", "--stage", "task", "--teacher", teacher, "--student", str(general), "-o", str(student),
                 "--set", "prediction_train.max_steps=2", "--set", "prediction_train.batch_size=4"] + data + STEPS) == 0
    result = json.loads((student / "bertcompress_result.json").read_text())
    assert result["mapping"] == [2, 4]
    assert {"embedding", "hidden", "attention"} <= set(result["intermediate"]["history"][-1])
    plain = AutoModelForSequenceClassification.from_pretrained(student).eval()
    assert plain.config.model_type == family and plain.config.num_hidden_layers == 2
    enc = AutoTokenizer.from_pretrained(student)(["a great movie", "an awful film"], padding=True, return_tensors="pt")
    enc = {k: v for k, v in enc.items() if k != "token_type_ids" or family == "albert"}
    with torch.no_grad():
        torch.testing.assert_close(load_model(str(student), "classifier").eval()(**enc).logits, plain(**enc).logits)

    quantized = tmp_path / "quantized"
    assert main(["quantize", "--student", str(student), "--teacher", teacher, "--bits", "w8a8", "-o", str(quantized),
                 "--onnx"] + data + STEPS) == 0
    assert (quantized / "onnx" / "model.onnx").is_file()
    records = tmp_path / "records.json"
    assert main(["evaluate", teacher, str(student), "--loyalty-to", teacher, "--no-latency", "--json", str(records)]
                + data) == 0
    t_rec, s_rec = json.loads(records.read_text())
    assert t_rec["label_loyalty"] == 1.0 and s_rec["onnx"]["prediction_agreement"] == 1.0

    capsys.readouterr()
    cut = ["--num-layers", "2", "--hidden", "16", "--samples", "8"]
    extract_code = main(["extract", "--teacher", teacher, "-o", str(tmp_path / "extracted")] + cut + data)
    prune_code = main(["prune", "--model", teacher, "--heads-keep", "0.5", "--ffn-keep", "0.5", "--samples", "8",
                       "-o", str(tmp_path / "pruned")] + data)
    if family == "deberta-v2":
        assert extract_code == prune_code == 0
        extracted = AutoModelForSequenceClassification.from_pretrained(tmp_path / "extracted")
        assert (extracted.config.num_hidden_layers, extracted.config.hidden_size,
                extracted.config.pooler_hidden_size) == (2, 16, 16)
        pruned = json.loads((tmp_path / "pruned" / "bertcompress_result.json").read_text())
        assert pruned["parameters_after"] < pruned["parameters_before"]
    else:
        assert extract_code == prune_code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2 and all("cannot cut" in line and "supported families" in line for line in err)
        assert not (tmp_path / "extracted").exists() and not (tmp_path / "pruned").exists()
