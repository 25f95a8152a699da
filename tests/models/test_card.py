"""Model cards: every model folder gets a README.md that huggingface_hub's own parser reads, with
the scores in its model-index equal to the result record's."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from bertcompress.cli import main
from bertcompress.models.card import CardFacts, add_comparison, model_card, write_model_card


def test_a_finetuned_model_has_a_card_with_its_scores(tmp_path, tiny_bert_dir, sentiment_tsv):
    out = tmp_path / "teacher"
    assert main(["finetune", "--model", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
                 "--set", "train.max_steps=2", "-o", str(out), "--quiet"]) == 0
    result = json.loads((out / "bertcompress_result.json").read_text())
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert (data["library_name"], data["pipeline_tag"], data["datasets"]) == (
        "transformers", "text-classification", ["nyu-mll/glue"])
    assert "base_model" not in data  # a local folder: nothing the Hub could link to
    (evaluation,) = card.data.eval_results
    assert (evaluation.metric_type, evaluation.dataset_name, evaluation.dataset_split) == ("accuracy", "sst2", "dev")
    assert evaluation.metric_value == pytest.approx(result["dev"]["accuracy"], abs=5e-5)
    assert "made by `bertcompress finetune`" in card.text and "AutoModelForSequenceClassification" in card.text


def test_a_pruned_model_says_it_needs_bertcompress(tmp_path, tiny_bert_dir, sentiment_tsv):
    out = tmp_path / "pruned"
    assert main(["prune", "--model", str(tiny_bert_dir), "--heads-keep", "0.5", "--task", "sst2", "--data",
                 str(sentiment_tsv), "--importance", "magnitude", "-o", str(out), "--quiet"]) == 0
    card = ModelCard.load(out / "README.md")
    assert card.data.to_dict()["library_name"] == "bertcompress" and "load_model(" in card.text


def test_hub_metadata_and_the_teacher_comparison(tmp_path):
    facts = CardFacts(name="student", command="quantize", model_kind="token_classifier", shape="A bert model",
                      base_model="sentence-transformers/all-MiniLM-L6-v2", base_relation="quantized",
                      task="brown-pos", split="dev", scores={"accuracy": 0.91234, "score": 0.91234})
    card = ModelCard(model_card(facts))
    data = card.data.to_dict()
    assert (data["base_model"], data["base_model_relation"], data["pipeline_tag"]) == (
        "sentence-transformers/all-MiniLM-L6-v2", "quantized", "token-classification")
    assert card.data.eval_results[0].metric_value == 0.9123
    write_model_card(tmp_path, facts)
    for _ in range(2):  # written again (a resumed run): replaced, not repeated
        add_comparison(tmp_path, ["retention (student score / teacher score): 0.990"])
    text = (tmp_path / "README.md").read_text()
    assert text.count("## Against the teacher") == 1 and text.index("Against") < text.index("How it was made")
    assert ModelCard.load(tmp_path / "README.md").data.to_dict()["library_name"] == "transformers"
