"""A NAS-BERT student goes through task distillation and quantization: its blocks are not
Transformer layers, but each block's output is read as a layer (embedding and hidden-state
losses, models/nasbert/blocks.py); the attention loss is dropped, and the console says so."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from bertcompress.cli import main
from bertcompress.models.nasbert.modeling import NasBertConfig, NasBertForSequenceClassification


@pytest.fixture
def nas_student_dir(tmp_path, tiny_tokenizer):
    torch.manual_seed(0)
    config = NasBertConfig(arch="e16/32:mha,ffn|16:conv3,ffn", vocab_size=len(tiny_tokenizer), head_size=8,
                           max_position_embeddings=64, num_labels=2)
    folder = tmp_path / "nas_student"
    NasBertForSequenceClassification(config).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def test_task_distillation_of_a_nas_student_reads_its_blocks(capsys, tmp_path, tiny_bert_dir, nas_student_dir,
                                                              sentiment_tsv):
    out = tmp_path / "student"
    assert main(["distill", "--stage", "task", "--teacher", str(tiny_bert_dir), "--student", str(nas_student_dir),
                 "--task", "sst2", "--data", str(sentiment_tsv), "--set", "train.max_steps=2",
                 "--set", "prediction_train.max_steps=2", "--set", "train.batch_size=4",
                 "--set", "prediction_train.batch_size=4", "-o", str(out)]) == 0
    assert "blocks hold no attention maps to compare" in capsys.readouterr().err
    result = json.loads((out / "bertcompress_result.json").read_text())
    assert result["mapping"] == [2, 4]  # 2 blocks on the tiny teacher's 4 layers
    assert {"embedding", "hidden"} <= set(result["intermediate"]["history"][-1]) and "attention" not in \
        result["intermediate"]["history"][-1]
    assert len(result["prediction"]["history"]) >= 1
    before = AutoModelForSequenceClassification.from_pretrained(nas_student_dir)
    after = AutoModelForSequenceClassification.from_pretrained(out)
    assert after.config.model_type == "nasbert"
    assert not torch.equal(before.classifier.weight, after.classifier.weight)  # it trained


def test_a_nas_student_is_quantized_with_distillation(capsys, tmp_path, tiny_bert_dir, nas_student_dir,
                                                      sentiment_tsv):
    out = tmp_path / "q"
    assert main(["quantize", "--student", str(nas_student_dir), "--teacher", str(tiny_bert_dir), "--bits", "w8a8",
                 "--task", "sst2", "--data", str(sentiment_tsv), "--set", "train.max_steps=2",
                 "--set", "train.batch_size=4", "-o", str(out)]) == 0
    assert "blocks hold no attention maps to compare" in capsys.readouterr().err
    result = json.loads((out / "bertcompress_result.json").read_text())
    assert result["method"] == "kdlsq" and 0.0 <= result["dev"]["score"] <= 1.0
    packed = json.loads((out / "quantization.json").read_text())["tensors"]
    assert {"nasbert.blocks.0.slots.0.query.weight", "nasbert.blocks.1.slots.0.pointwise.weight"} <= set(packed)
