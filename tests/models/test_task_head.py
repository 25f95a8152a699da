"""A task model must bring its trained head: a pre-trained encoder (no classifier tensors in its
weights) is refused as a teacher, a student to quantize or a model to evaluate, in one line naming
`finetune`; the verbs that mean a fresh head (finetune, task distillation of a bare student) say so."""

from __future__ import annotations

import json

import pytest
import torch

from bertcompress.cli import main
from bertcompress.core.errors import UserError
from bertcompress.models.loading import load_model
from conftest import tiny_config

TAG_COLUMN = ["--set", "data.tagging.tag_column=1"]
TRAIN = ["--set", "train.max_steps=2", "--set", "train.batch_size=4"]


@pytest.fixture(scope="module")
def bare_encoder(tmp_path_factory, tiny_tokenizer):
    """A tiny pre-trained encoder as published: a BertModel (pooler, no classifier) and its tokenizer."""
    from transformers import AutoModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("bare")
    AutoModel.from_config(tiny_config("bert", len(tiny_tokenizer))).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def tagged_dir(tmp_path):
    lines = []
    for i in range(12):
        lines += ["the DET", "good ADJ" if i % 2 else "bad ADJ", "movie NOUN", ". .", ""]
    folder = tmp_path / "pos"
    folder.mkdir()
    for split in ("train.conll", "dev.conll"):
        (folder / split).write_text("\n".join(lines), encoding="utf-8")
    return folder


def _one_line(capsys, args, *expected):
    code = main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("bertcompress: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_load_model_refuses_a_missing_head_unless_a_new_one_is_meant(bare_encoder, tiny_bert_dir):
    for kind, what in (("classifier", "classification"), ("token_classifier", "token-classification")):
        with pytest.raises(UserError, match=rf"no trained {what} head \(classifier.bias, classifier.weight not in "
                                            r"its weights.*`bertcompress finetune`"):
            load_model(str(bare_encoder), kind, num_labels=2)
        assert load_model(str(bare_encoder), kind, num_labels=3, new_head=True).config.num_labels == 3
    assert type(load_model(str(bare_encoder), "base")).__name__ == "BertModel"
    assert load_model(str(tiny_bert_dir), "classifier").config.num_labels == 2  # a saved head: accepted


def test_a_pruned_bare_encoder_is_refused_as_a_classifier(tmp_path):
    """The check reads the saved weights for every format, not only plain folders."""
    from transformers import AutoModel

    from bertcompress.models.pruned import prune_units, record_sizes

    torch.manual_seed(0)
    model = AutoModel.from_config(tiny_config("bert", 100, layers=2))
    prune_units(model, heads=[[0, 2], [1]])
    record_sizes(model)
    model.save_pretrained(tmp_path / "pruned")
    with pytest.raises(UserError, match="no trained classification head"):
        load_model(str(tmp_path / "pruned"), "classifier")
    assert load_model(str(tmp_path / "pruned"), "classifier", new_head=True).config.num_labels == 2
    assert load_model(str(tmp_path / "pruned"), "base") is not None


def test_sentence_commands_refuse_a_bare_encoder(capsys, tmp_path, bare_encoder, tiny_bert_dir, sentiment_tsv):
    data = ["--task", "sst2", "--data", str(sentiment_tsv)]
    expected = (f"{bare_encoder} has no trained classification head", "`bertcompress finetune`")
    _one_line(capsys, ["distill", "--stage", "task", "--teacher", str(bare_encoder), "-o", str(tmp_path / "d")]
              + data, *expected)
    _one_line(capsys, ["quantize", "--student", str(tiny_bert_dir), "--teacher", str(bare_encoder),
                       "-o", str(tmp_path / "q")] + data + TRAIN, *expected)
    _one_line(capsys, ["quantize", "--student", str(bare_encoder), "-o", str(tmp_path / "q")] + data + TRAIN,
              *expected)
    _one_line(capsys, ["evaluate", str(bare_encoder), "--no-latency", "--no-onnx"] + data, *expected)
    assert not any((tmp_path / name).exists() for name in ("d", "q"))


def test_a_fine_tuned_encoder_is_accepted(capsys, tmp_path, bare_encoder, sentiment_tsv):
    """The remedy the message names: finetune gives the bare encoder its head, then it is a teacher."""
    data = ["--task", "sst2", "--data", str(sentiment_tsv)]
    teacher = tmp_path / "teacher"
    assert main(["finetune", "--model", str(bare_encoder), "-o", str(teacher)] + data + TRAIN) == 0
    assert main(["evaluate", str(teacher), "--no-latency", "--no-onnx", "--json", str(tmp_path / "r.json")]
                + data) == 0
    assert json.loads((tmp_path / "r.json").read_text())[0]["examples"] == 10
    # task distillation from it of the bare encoder as the student: a fresh student head is meant
    assert main(["distill", "--stage", "task", "--teacher", str(teacher), "--student", str(bare_encoder),
                 "-o", str(tmp_path / "s"), "--set", "prediction_train.max_steps=1",
                 "--set", "prediction_train.batch_size=4"] + data + TRAIN) == 0
    assert main(["quantize", "--student", str(tmp_path / "s"), "--teacher", str(teacher), "-o",
                 str(tmp_path / "q")] + data + TRAIN) == 0


def test_tagging_commands_refuse_a_bare_encoder(capsys, tmp_path, bare_encoder, tagged_dir):
    data = ["--task", "tagging", "--data", str(tagged_dir)] + TAG_COLUMN
    expected = (f"{bare_encoder} has no trained token-classification head", "`bertcompress finetune`")
    _one_line(capsys, ["evaluate", str(bare_encoder), "--no-latency", "--no-onnx"] + data, *expected)
    _one_line(capsys, ["distill", "--stage", "task", "--teacher", str(bare_encoder), "-o", str(tmp_path / "d")]
              + data, *expected)
    tagger = tmp_path / "tagger"
    assert main(["finetune", "--model", str(bare_encoder), "-o", str(tagger)] + data + TRAIN) == 0
    assert main(["evaluate", str(tagger), "--no-latency", "--no-onnx"] + data) == 0
