"""`evaluate` with loyalty, AdvGLUE and the attack wired in, on a tiny model and small files."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from bertcompress.cli import main
from bertcompress.core.errors import UserError
from bertcompress.data.advglue import load_advglue
from bertcompress.data.config import DataConfig
from bertcompress.data.tasks import get_task
from bertcompress.evaluation.attack import AttackConfig
from bertcompress.evaluation.evaluator import evaluate


@pytest.fixture
def other_bert_dir(tmp_path, tiny_bert_dir, tiny_tokenizer):
    """The tiny BERT with its classifier's weights negated: its predictions are the opposite class."""
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    with torch.no_grad():
        model.classifier.weight.neg_()
        model.classifier.bias.neg_()
    model.save_pretrained(tmp_path / "flipped")
    tiny_tokenizer.save_pretrained(tmp_path / "flipped")
    return tmp_path / "flipped"


def _advglue_file(tmp_path):
    rows = {"sst2": [{"idx": 0, "sentence": "a great movie", "label": 1},
                     {"idx": 1, "sentence": "a terrible film", "label": 0}],
            "mnli": [{"idx": 0, "premise": "a cat sat", "hypothesis": "a dog sat", "label": 2}]}
    path = tmp_path / "dev_ann.json"
    path.write_text(json.dumps(rows))
    return path


def test_advglue_loader_maps_labels_by_name(tmp_path):
    path = _advglue_file(tmp_path)
    sst2 = load_advglue(path, get_task("sst2"))
    assert [(e.text_a, e.label) for e in sst2] == [("a great movie", 1), ("a terrible film", 0)]
    mnli = load_advglue(path, get_task("mnli"))
    # AdvGLUE's 2 is "contradiction", which is index 0 in our (GLUE-file) label order
    assert (mnli[0].text_a, mnli[0].text_b, mnli[0].label) == ("a cat sat", "a dog sat", 0)
    with pytest.raises(UserError, match="has no 'qqp'"):
        load_advglue(path, get_task("qqp"))
    with pytest.raises(UserError, match="AdvGLUE has no cola"):
        load_advglue(path, get_task("cola"))


def test_loyalty_advglue_and_attack_in_records(tiny_bert_dir, other_bert_dir, sentiment_tsv, tmp_path):
    data = DataConfig(task="sst2", path=str(sentiment_tsv))
    records = evaluate([str(tiny_bert_dir), str(other_bert_dir)], data, latency=False, onnx=False,
                       loyalty_to=str(tiny_bert_dir), advglue=str(_advglue_file(tmp_path)),
                       attack=AttackConfig(max_examples=4, sources=("embedding",), progress=False))
    teacher, flipped = records
    assert teacher["label_loyalty"] == 1.0 and teacher["probability_loyalty"] == pytest.approx(1.0)
    assert flipped["label_loyalty"] == 0.0  # negated logits: never the teacher's class
    assert 0.0 <= flipped["probability_loyalty"] < 1.0
    assert teacher["advglue_examples"] == 2 and teacher["advglue_accuracy"] + flipped["advglue_accuracy"] == 1.0
    for r in records:
        assert r["attack"]["examples"] == 4 and 0.0 <= r["attack_accuracy"] <= r["attack"]["clean_accuracy"]


def test_evaluate_cli_robustness_flags(tiny_bert_dir, sentiment_tsv, tmp_path):
    out = tmp_path / "r.json"
    assert main(["evaluate", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv), "--no-latency",
                 "--no-onnx", "--loyalty-to", str(tiny_bert_dir), "--attack", "3", "--json", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    assert record["label_loyalty"] == 1.0 and record["attack"]["examples"] == 3


def test_one_attack_for_every_model(tiny_bert_dir, other_bert_dir, sentiment_tsv, monkeypatch):
    """evaluate builds the candidates once, from the loyalty teacher, and hands the same ones to
    every model's attack; the records name that source."""
    from bertcompress.evaluation import evaluator

    seen = []
    real = evaluator.run_attack
    monkeypatch.setattr(evaluator, "run_attack", lambda *a, candidates=None, **k: (
        seen.append(candidates), real(*a, candidates=candidates, **k))[1])
    data = DataConfig(task="sst2", path=str(sentiment_tsv))
    records = evaluate([str(other_bert_dir), str(tiny_bert_dir)], data, latency=False, onnx=False,
                       loyalty_to=str(tiny_bert_dir),
                       attack=AttackConfig(max_examples=3, sources=("embedding",), progress=False))
    assert len(seen) == 2 and seen[0] is seen[1] and seen[0].reference == str(tiny_bert_dir)
    assert [r["attack"]["candidates_from"] for r in records] == [str(tiny_bert_dir)] * 2


def test_advglue_mnli_mismatched_is_scored(tmp_path, tiny_tokenizer):
    """MNLI has two AdvGLUE sets: both are scored, and the mismatched split's record reads the
    mismatched one."""
    from conftest import tiny_config

    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(tiny_config("bert", len(tiny_tokenizer), num_labels=3)) \
        .save_pretrained(tmp_path / "nli")
    tiny_tokenizer.save_pretrained(tmp_path / "nli")
    folder = tmp_path / "MNLI"
    folder.mkdir()
    rows = "sentence1\tsentence2\tgold_label\n" + "a cat sat\ta dog sat\tcontradiction\n" \
        "a cat sat\tan animal sat\tentailment\na cat sat\tit was big\tneutral\n"
    for split in ("train", "dev_matched", "dev_mismatched"):
        (folder / f"{split}.tsv").write_text(rows, encoding="utf-8")
    adv = tmp_path / "dev_ann.json"
    adv.write_text(json.dumps({"mnli": [{"idx": 0, "premise": "a b", "hypothesis": "c d", "label": 0}],
                               "mnli-mm": [{"idx": 0, "premise": "a b", "hypothesis": "c", "label": 1},
                                           {"idx": 1, "premise": "e", "hypothesis": "f", "label": 2}]}))
    data = DataConfig(task="mnli", path=str(folder), eval_split="dev_mismatched")
    (record,) = evaluate([str(tmp_path / "nli")], data, latency=False, onnx=False, advglue=str(adv))
    assert {k: v["examples"] for k, v in record["advglue"].items()} == {"mnli": 1, "mnli-mm": 2}
    assert record["advglue_set"] == "mnli-mm" and record["advglue_examples"] == 2
    assert record["advglue_accuracy"] == record["advglue"]["mnli-mm"]["accuracy"]
    (matched,) = evaluate([str(tmp_path / "nli")], DataConfig(task="mnli", path=str(folder), eval_split="dev_matched"),
                          latency=False, onnx=False, advglue=str(adv))
    assert matched["advglue_set"] == "mnli" and matched["advglue_examples"] == 1
