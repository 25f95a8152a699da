"""The model-family adapter: each supported family's answers, BERT's for an unknown type, and the
places that ask it (inputs, usable length, config sizes, recording mode)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

from bertcompress.models.architecture import size_fields
from bertcompress.models.family import BERT, family_of
from bertcompress.models.inputs import max_sequence_length, model_inputs
from bertcompress.models.intermediates import ScoreRecorder, run_with_intermediates
from conftest import tiny_config

BERT_SIZES = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")

# model_type: (size fields, token_type_ids, positions after padding, attention interface, shared bias, embedding)
EXPECTED = {
    "bert": (BERT_SIZES, True, False, True, None, None),
    "roberta": (BERT_SIZES, True, True, True, None, None),
    "xlm-roberta": (BERT_SIZES, True, True, True, None, None),
    "camembert": (BERT_SIZES, True, True, True, None, None),
    "electra": (BERT_SIZES, True, False, True, None, "embedding_size"),
    "distilbert": (("n_layers", "dim", "n_heads", "hidden_dim"), False, False, True, None, None),
    "mpnet": (BERT_SIZES, False, True, False, "encoder.relative_attention_bias", None),
    "deberta-v2": (BERT_SIZES, True, False, False, None, None),
    "modernbert": (BERT_SIZES, False, False, True, None, None),
    "albert": (BERT_SIZES, True, False, True, None, "embedding_size"),
}
# model_type: (scores only inside attention, extra score terms, shared layers, extraction and pruning)
SCORES_AND_SURGERY = {"deberta-v2": (False, "disentangled", False, True), "modernbert": (True, None, False, False),
                      "albert": (False, None, True, False)}


@pytest.mark.parametrize("model_type", sorted(EXPECTED))
def test_each_family(model_type):
    config = tiny_config(model_type, 100)
    f = family_of(config)
    assert f.model_type == model_type and f is family_of(model_type)
    assert (f.size_fields, f.takes_token_type_ids, f.positions_after_padding, f.uses_attention_interface,
            f.shared_head_bias, f.embedding_size_field) == EXPECTED[model_type]
    assert size_fields(model_type) == f.size_fields
    assert all(hasattr(config, name) for name in f.size_fields)  # the names are the config's own
    if f.embedding_size_field:
        assert hasattr(config, f.embedding_size_field)
    assert (f.scores_inside_attention, f.score_terms, f.shared_layers, f.no_surgery is None) == \
        SCORES_AND_SURGERY.get(model_type, (False, None, False, True))


def test_unknown_type_gets_bert_defaults():
    f = family_of("some-new-encoder")
    assert f.model_type == "some-new-encoder" and f.size_fields == BERT.size_fields
    assert f.takes_token_type_ids and not f.positions_after_padding and f.shared_head_bias is None
    assert not f.uses_attention_interface  # not assumed: the hooks read scores from any model
    assert family_of(torch.nn.Linear(1, 1)).size_fields == BERT.size_fields  # no config at all


@pytest.mark.parametrize("model_type,usable", [("bert", 130), ("roberta", 129), ("mpnet", 129), ("distilbert", 128)])
def test_max_sequence_length(model_type, usable):
    model = AutoModelForSequenceClassification.from_config(tiny_config(model_type, 100, layers=1))
    assert max_sequence_length(model) == usable  # pad_token_id 0: RoBERTa-style positions start at 1
    config = AutoConfig.for_model("roberta", max_position_embeddings=514, pad_token_id=1)
    assert family_of(config).max_positions(config) == 512


@pytest.mark.parametrize("model_type", ["bert", "distilbert", "mpnet", "electra"])
def test_model_inputs_follow_the_family(model_type):
    model = AutoModelForSequenceClassification.from_config(tiny_config(model_type, 100, layers=1))
    ids = torch.ones(1, 4, dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": ids, "token_type_ids": ids * 0, "labels": ids[:, 0]}
    expected = {"input_ids", "attention_mask"} | ({"token_type_ids"} if model_type in ("bert", "electra") else set())
    assert set(model_inputs(batch, model)) == expected


def test_camembert_records_scores_through_the_interface():
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config("camembert", 100, layers=2)).eval()
    batch = {"input_ids": torch.randint(5, 100, (2, 6)), "attention_mask": torch.ones(2, 6, dtype=torch.long)}
    batch["attention_mask"][1, 4:] = 0
    scores = {}
    for mode in ("attention", "hooks"):
        rec = ScoreRecorder(model, [1, 2], mode=mode)
        assert rec.mode == mode
        with torch.no_grad():
            scores[mode] = run_with_intermediates(model, batch, rec).scores
        rec.remove()
    for layer in (1, 2):
        torch.testing.assert_close(scores["attention"][layer], scores["hooks"][layer])
