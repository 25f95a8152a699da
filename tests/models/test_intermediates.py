"""Attention scores taken by our hooks equal QKᵀ/√d computed by hand, for every family."""

import math

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertPreTrainedModel

from bertcompress.models.architecture import describe
from bertcompress.models.intermediates import ScoreRecorder, run_with_intermediates
from conftest import tiny_config

FAMILIES = ["bert", "roberta", "xlm-roberta", "mpnet", "distilbert", "electra"]
# transformers 5 runs BERT's attention through its AttentionInterface (our recording attention);
# transformers 4 has per-model eager/SDPA classes, and the recorder uses hooks there
INTERFACE = bool(getattr(BertPreTrainedModel, "_supports_attention_backend", False))


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
    # MPNet: no interface; transformers 4 models: no attention backends, so hooks (the same scores)
    expected = "attention" if mode == "attention" and family != "mpnet" and INTERFACE else "hooks"
    assert rec.mode == expected
    rec.remove()
    assert not view.queries[0]._forward_hooks


@pytest.mark.parametrize("family", ["bert", "roberta", "xlm-roberta", "distilbert", "electra", "modernbert", "albert"])
def test_recording_attention_changes_nothing_at_real_tokens(family):
    """The recording attention function is eager attention: hidden states at real tokens, logits
    and gradients equal the model's own (SDPA) forward; the implementation is restored after."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(family, 100, layers=2)).eval()
    batch = {"input_ids": torch.randint(5, 100, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    batch["attention_mask"][0, 4:] = 0
    own = model(**batch, output_hidden_states=True)
    own.logits.sum().backward()
    own_grad = next(describe(model).attentions[0].parameters()).grad.clone()
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
    torch.testing.assert_close(next(describe(model).attentions[0].parameters()).grad, own_grad, atol=1e-5, rtol=1e-4)
    # outside a recording, the model is untouched: its own implementation, nothing kept (hooks,
    # transformers 4: the last forward's projections are kept, as for a teacher)
    assert set(model(**batch).logits.shape) == {2} and (rec.mode == "hooks" or rec.pop_scores() == {})


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
    from bertcompress.core.errors import UserError

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
    assert rec.mode == ("attention" if INTERFACE else "hooks") and sorted(out.scores) == [1, 2]
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


def test_fast_capture_that_records_nothing_falls_back_to_hooks_with_the_same_losses(monkeypatch):
    """A student whose attention bypasses our recording function (BERT before transformers 5 has
    its own eager and SDPA classes) records nothing on its first forward: the recorder switches to
    hooks and runs that forward again from the same random state. Losses and gradients equal the
    fast capture's (transformers 4: the hooks path's), in train mode with dropout on."""
    import copy

    from bertcompress.methods.distill.config import LossConfig
    from bertcompress.methods.distill.objective import DistillationObjective
    from bertcompress.models import intermediates

    torch.manual_seed(0)
    teacher = AutoModelForSequenceClassification.from_config(tiny_config("bert", 100, layers=4)).eval()
    config = tiny_config("bert", 100, layers=2)
    config.attention_probs_dropout_prob = 0.0  # SDPA and our eager attention draw their dropout differently
    student = AutoModelForSequenceClassification.from_config(config).train()  # hidden dropout 0.1 stays
    batch = {"input_ids": torch.randint(5, 100, (3, 9)), "attention_mask": torch.ones(3, 9, dtype=torch.long),
             "token_type_ids": torch.zeros(3, 9, dtype=torch.long), "labels": torch.tensor([0, 1, 1])}
    batch["attention_mask"][1, 6:] = 0
    weights = {"embedding": 1.0, "hidden": 1.0, "attention": 1.0, "prediction": 1.0}

    def run():
        model = copy.deepcopy(student)
        objective = DistillationObjective(model, teacher, LossConfig(), weights)
        torch.manual_seed(1)
        steps = []
        for _ in range(2):  # the first forward falls back, the second runs on hooks alone
            total, logs = objective(batch)
            model.zero_grad()
            total.backward()
            steps.append(({k: v.item() for k, v in logs.items()},
                          {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
        return objective._s_rec, steps

    fast_rec, fast = run()
    assert fast_rec.mode == ("attention" if INTERFACE else "hooks")
    monkeypatch.setattr(intermediates, "_uses_attention_interface", lambda model, view: True)
    if INTERFACE:  # our name dispatches to plain SDPA: the model runs, nothing is recorded
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        monkeypatch.setattr(intermediates, "_recording_attention", sdpa_attention_forward)
    else:  # the model ignores the name (transformers 4.48-4.57); before 4.48 there is nothing to register
        monkeypatch.setattr(intermediates, "_register_recording_attention", lambda: None)
    try:
        calls = []
        real_fall_back = intermediates.ScoreRecorder.fall_back_to_hooks
        monkeypatch.setattr(intermediates.ScoreRecorder, "fall_back_to_hooks",
                            lambda self: (calls.append(1), real_fall_back(self)))
        slow_rec, slow = run()
    finally:
        monkeypatch.undo()
        if INTERFACE:
            intermediates._register_recording_attention()  # the real recording function again
    assert calls == [1] and slow_rec.mode == "hooks"
    for (fast_logs, fast_grads), (slow_logs, slow_grads) in zip(fast, slow):
        assert fast_logs.keys() == slow_logs.keys() == set(weights)
        for k in weights:
            assert slow_logs[k] == pytest.approx(fast_logs[k], rel=1e-5, abs=1e-7), k
        assert fast_grads.keys() == slow_grads.keys()
        for n in fast_grads:
            torch.testing.assert_close(slow_grads[n], fast_grads[n], rtol=1e-4, atol=1e-6)
    assert fast[0][0] != fast[1][0]  # dropout drew differently per step: the random state matters


@pytest.mark.parametrize("mode", ["hooks", "attention"])
@pytest.mark.parametrize("family", ["deberta-v2", "modernbert", "albert"])
def test_scores_give_the_familys_own_eager_attention(family, mode):
    """Softmax of the recorded scores (padding and, for ModernBERT's local layers, pairs outside
    the window masked) equals the family's own eager attention probabilities at real queries, layer
    by layer: DeBERTa's disentangled position terms, ModernBERT's rotary positions and local/global
    layers, ALBERT's one layer applied three times (each call its own scores)."""
    torch.manual_seed(0)
    cfg = tiny_config(family, 100, layers=3)
    cfg._attn_implementation = "eager"
    model = AutoModelForSequenceClassification.from_config(cfg).eval()
    if family == "deberta-v2":
        with torch.no_grad():  # relative embeddings large enough for the position terms to matter
            model.base_model.encoder.rel_embeddings.weight.normal_(0, 2.0)
    batch = {"input_ids": torch.randint(5, 100, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    batch["attention_mask"][1, 5:] = 0
    with torch.no_grad():
        probs = model(**batch, output_attentions=True).attentions
    rec = ScoreRecorder(model, [1, 2, 3], mode=mode)
    with torch.no_grad():
        scores = run_with_intermediates(model, batch, rec).scores
    assert rec.mode == ("attention" if family == "modernbert" or (mode == "attention" and family == "albert")
                        else "hooks")
    real = batch["attention_mask"].bool()
    for layer in (1, 2, 3):
        allowed = probs[layer - 1] > 0  # padding and the local window, as the model's softmax saw them
        mine = torch.softmax(scores[layer].masked_fill(~allowed, float("-inf")), -1)
        torch.testing.assert_close(mine.transpose(1, 2)[real], probs[layer - 1].transpose(1, 2)[real])
        pair = (real[:, None, :, None] & real[:, None, None, :]).expand_as(allowed)
        assert torch.count_nonzero(scores[layer][~pair | ~allowed]) == 0
    if family == "modernbert":  # layer 2 is local: the window cuts real pairs of the 7-token row
        assert (~probs[1][0].gt(0)).any() and not (~probs[0][0].gt(0)).any()
    if family == "albert":  # one module, three calls, three different score maps
        assert not torch.allclose(scores[1], scores[2])
    rec.remove()


def test_deberta_scores_train_the_relative_embeddings():
    """The attention loss's gradient reaches a DeBERTa student's relative-position embeddings,
    through the position terms rebuilt from the hooked (dropped-out) embeddings."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config("deberta-v2", 100, layers=2)).train()
    rec = ScoreRecorder(model, [1, 2], mode="attention")
    batch = {"input_ids": torch.randint(5, 100, (2, 6)), "attention_mask": torch.ones(2, 6, dtype=torch.long)}
    out = run_with_intermediates(model, batch, rec)
    out.scores[2].square().sum().backward()
    grad = model.base_model.encoder.rel_embeddings.weight.grad
    assert grad is not None and grad.abs().sum() > 0
