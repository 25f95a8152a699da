"""Attention scores taken by our hooks equal QKᵀ/√d computed by hand, for every family."""

import math

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from bertcompress.models.architecture import describe
from bertcompress.models.intermediates import ScoreRecorder, run_with_intermediates
from conftest import tiny_config

FAMILIES = ["bert", "roberta", "mpnet", "distilbert", "electra"]


@pytest.mark.parametrize("mode", ["hooks", "attention"])
@pytest.mark.parametrize("family", FAMILIES)
def test_scores_equal_manual_qk(family, mode):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(family, 100, layers=3)).eval()
    view = describe(model)
    assert view.num_layers == 3 and view.num_heads == 4 and view.hidden_size == 32
    batch = {"input_ids": torch.randint(5, 100, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long),
             "token_type_ids": torch.zeros(2, 7, dtype=torch.long)}
    batch["attention_mask"][1, 5:] = 0
    rec = ScoreRecorder(model, [1, 3], mode=mode)
    with torch.no_grad():
        out = run_with_intermediates(model, batch, rec)
    assert len(out.hidden_states) == 4 and out.logits.shape == (2, 2)
    assert sorted(out.scores) == [1, 3]
    for layer in (1, 3):
        h = out.hidden_states[layer - 1]  # the layer's input
        q, k = view.queries[layer - 1](h), view.keys[layer - 1](h)
        q = q.view(2, 7, 4, 8).transpose(1, 2)
        k = k.view(2, 7, 4, 8).transpose(1, 2)
        manual = q @ k.transpose(-1, -2) / math.sqrt(8)
        if family == "mpnet":  # its relative-position bias is part of the scores its softmax sees
            manual = manual + model.base_model.encoder.compute_position_bias(h)
        # real (query, key) pairs: QKᵀ/√d; pairs that touch padding: exactly 0
        m = batch["attention_mask"]
        pair = (m[:, None, :, None] * m[:, None, None, :]).bool().expand_as(manual)
        torch.testing.assert_close(out.scores[layer][pair], manual[pair])
        assert torch.count_nonzero(out.scores[layer][~pair]) == 0
    expected = "attention" if mode == "attention" and family != "mpnet" else "hooks"  # MPNet: no interface
    assert rec.mode == expected
    rec.remove()
    assert not view.queries[0]._forward_hooks


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert", "electra"])
def test_recording_attention_changes_nothing_at_real_tokens(family):
    """The recording attention function is eager attention: hidden states at real tokens, logits
    and gradients equal the model's own (SDPA) forward; the implementation is restored after."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(family, 100, layers=2)).eval()
    batch = {"input_ids": torch.randint(5, 100, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    batch["attention_mask"][0, 4:] = 0
    own = model(**batch, output_hidden_states=True)
    own.logits.sum().backward()
    own_grad = describe(model).queries[0].weight.grad.clone()
    model.zero_grad()
    before = model.config._attn_implementation
    rec = ScoreRecorder(model, [1, 2], mode="attention")
    out = run_with_intermediates(model, batch, rec)
    assert model.config._attn_implementation == before
    real = batch["attention_mask"].bool()
    for mine, theirs in zip(out.hidden_states, own.hidden_states):
        torch.testing.assert_close(mine[real], theirs[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logits, own.logits, atol=1e-5, rtol=1e-5)
    out.logits.sum().backward()
    torch.testing.assert_close(describe(model).queries[0].weight.grad, own_grad, atol=1e-5, rtol=1e-4)
    # outside a recording, the model is untouched: its own implementation, nothing kept
    assert set(model(**batch).logits.shape) == {2} and rec.pop_scores() == {}


def test_scores_match_eager_attention_probs():
    """Softmax of our scores plus the padding mask equals BERT's own attention probabilities."""
    torch.manual_seed(0)
    cfg = tiny_config("bert", 100, layers=2)
    cfg._attn_implementation = "eager"
    model = AutoModelForSequenceClassification.from_config(cfg).eval()
    ids = torch.randint(5, 100, (1, 6))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    rec = ScoreRecorder(model, [2])
    with torch.no_grad():
        probs = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions[1]
    scores = rec.pop_scores()[2]  # no mask given: raw scores everywhere
    mine = torch.softmax(scores.masked_fill(mask[:, None, None, :] == 0, float("-inf")), -1)
    torch.testing.assert_close(mine, probs)


def test_not_an_encoder():
    from bertcompress.errors import UserError

    with pytest.raises(UserError, match="not a supported encoder"):
        describe(torch.nn.Linear(2, 2))


def test_recording_attention_on_xlm_roberta():
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    torch.manual_seed(0)
    cfg = XLMRobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=40)
    model = XLMRobertaForSequenceClassification(cfg).eval()
    batch = {"input_ids": torch.randint(5, 100, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    batch["attention_mask"][0, 4:] = 0
    own = model(**batch).logits
    rec = ScoreRecorder(model, [1, 2], mode="attention")
    out = run_with_intermediates(model, batch, rec)
    assert rec.mode == "attention" and sorted(out.scores) == [1, 2]
    torch.testing.assert_close(out.logits, own)


def test_mpnet_scores_give_its_own_attention_probs_and_train_its_position_table():
    """Softmax of MPNet's recorded scores plus the padding mask equals its eager attention
    probabilities at real queries (the relative-position bias included), and the attention loss's
    gradient reaches a student's position table."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config("mpnet", 100, layers=2)).eval()
    table = model.base_model.encoder.relative_attention_bias
    with torch.no_grad():
        table.weight.normal_(0, 2.0)  # a bias large enough to matter
    batch = {"input_ids": torch.randint(5, 100, (2, 6)), "attention_mask": torch.ones(2, 6, dtype=torch.long)}
    batch["attention_mask"][1, 4:] = 0
    rec = ScoreRecorder(model, [1, 2], mode="hooks")
    out = run_with_intermediates(model, batch, rec)
    probs = model(**batch, output_attentions=True).attentions
    additive = (1.0 - batch["attention_mask"][:, None, None, :].float()) * torch.finfo(torch.float32).min
    for layer in (1, 2):
        mine = torch.softmax(out.scores[layer] + additive, dim=-1)
        real = batch["attention_mask"].bool()
        torch.testing.assert_close(mine.transpose(1, 2)[real], probs[layer - 1].transpose(1, 2)[real],
                                   atol=1e-5, rtol=1e-5)
        assert torch.count_nonzero(out.scores[layer][1, :, 4:, :]) == 0  # padded pairs stay 0
    out.scores[1].pow(2).sum().backward()
    assert table.weight.grad is not None and table.weight.grad.abs().sum() > 0
    rec.remove()
