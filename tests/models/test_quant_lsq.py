"""LSQ quantizer values and gradients against hand-computed numbers; the quantized layers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bertcompress.models.quantized.config import QuantConfig
from bertcompress.models.quantized.lsq import LSQQuantizer, q_range
from bertcompress.models.quantized.modules import QuantEmbedding, QuantLinear, quantize_


def _quantizer(bits, signed, step, channels=None):
    q = LSQQuantizer(bits, signed=signed, channels=channels)
    with torch.no_grad():
        q.step.copy_(torch.tensor(step))
    q.initialized.fill_(True)
    return q


def test_ranges():
    assert q_range(2, True) == (2, 1) and q_range(8, True) == (128, 127)
    assert q_range(3, False) == (0, 7) and q_range(8, False) == (0, 255)
    for bits in (1, 9):
        with pytest.raises(ValueError):
            LSQQuantizer(bits)


def test_signed_2bit_values_and_gradients_by_hand():
    # s = 0.5, Q_N = 2, Q_P = 1.  v/s = [0.6, -2.4, 5.2, 0.1]
    #   clip -> [0.6, -2, 1, 0.1]  round -> [1, -2, 1, 0]  v̂ = [0.5, -1.0, 0.5, 0.0]
    #   ∂v̂/∂s: 0.6 inside: -0.6 + 1 = 0.4;  -2.4 below: -Q_N = -2;  5.2 above: Q_P = 1;  0.1: -0.1
    #   loss = Σ w·v̂ with w = [1, 2, 3, 4]:  Σ w·∂v̂/∂s = 0.4 - 4 + 3 - 0.4 = -1.0
    #   g = 1/√(N·Q_P) = 1/√(4·1) = 0.5  ->  ∂loss/∂s = -0.5
    #   ∂loss/∂v = w inside the range, 0 outside = [1, 0, 0, 4]
    q = _quantizer(2, True, [0.5])
    v = torch.tensor([0.3, -1.2, 2.6, 0.05], requires_grad=True)
    out = q(v)
    assert torch.equal(out, torch.tensor([0.5, -1.0, 0.5, 0.0]))
    (out * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert q.step.grad.item() == pytest.approx(-0.5, abs=1e-6)
    assert torch.equal(v.grad, torch.tensor([1.0, 0.0, 0.0, 4.0]))
    assert torch.equal(q.codes(v), torch.tensor([1, -2, 1, 0], dtype=torch.int16))


def test_unsigned_3bit_by_hand():
    # s = 0.25, Q_N = 0, Q_P = 7.  v/s = [0.8, -1.2, 3.6, 20]  -> codes [1, 0, 4, 7]
    #   ∂v̂/∂s = [-0.8 + 1, -Q_N = 0, -3.6 + 4, Q_P = 7] = [0.2, 0, 0.4, 7], sum 7.6, g = 1/√(4·7)
    q = _quantizer(3, False, [0.25])
    v = torch.tensor([0.2, -0.3, 0.9, 5.0], requires_grad=True)
    out = q(v)
    assert torch.equal(out, torch.tensor([0.25, 0.0, 1.0, 1.75]))
    out.sum().backward()
    assert q.step.grad.item() == pytest.approx(7.6 / math.sqrt(28), rel=1e-6)
    assert torch.equal(v.grad, torch.tensor([1.0, 0.0, 1.0, 0.0]))


def test_per_channel_gradient_uses_row_size():
    # rows: [0.3, -1.2] with s = 0.5 -> ∂/∂s = 0.4 - 2 = -1.6;  [2.6, 0.05] with s = 1 -> 1 - 0.05 = 0.95
    # N = 2 elements per step, Q_P = 1: g = 1/√2
    q = _quantizer(2, True, [0.5, 1.0], channels=2)
    v = torch.tensor([[0.3, -1.2], [2.6, 0.05]])
    out = q(v)
    assert torch.equal(out, torch.tensor([[0.5, -1.0], [1.0, 0.0]]))
    out.sum().backward()
    assert torch.allclose(q.step.grad, torch.tensor([-1.6, 0.95]) / math.sqrt(2))


def test_step_init_is_lsq():
    v = torch.tensor([0.3, -1.2, 2.6, 0.05])
    q = LSQQuantizer(2)
    q(v)  # the first tensor seen sets s = 2·mean|v|/√Q_P
    assert q.step.item() == pytest.approx(2 * 1.0375 / math.sqrt(1))
    pc = LSQQuantizer(4, channels=2)
    pc.init_from(torch.tensor([[1.0, -3.0], [0.5, 0.5]]))
    assert torch.allclose(pc.step, torch.tensor([4.0, 1.0]) / math.sqrt(7))


def test_quant_linear_quantizes_weights_and_inputs():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    q = QuantLinear.from_linear(lin, weight_bits=4, act_bits=8, per_channel=True)
    x = torch.randn(2, 5, 4)
    expected = nn.functional.linear(q.act_quant(x), q.weight_quant(q.weight), q.bias)
    assert torch.equal(q(x), expected)
    assert q.act_quant.grad_n == 4  # activations: N = the feature width
    assert q.weight_quant.step.shape == (3,) and q.act_quant.step.shape == (1,)
    assert not torch.equal(q(x), lin(x))


def test_embedding_gather_equals_whole_table_quantization():
    torch.manual_seed(0)
    for per_channel in (True, False):
        emb = QuantEmbedding.from_embedding(nn.Embedding(10, 6, padding_idx=0), bits=3, per_channel=per_channel)
        ids = torch.tensor([[1, 2, 2, 9], [0, 3, 1, 1]])
        fast = emb(ids)
        fast.pow(2).sum().backward()
        g_fast = emb.weight_quant.step.grad.clone()
        emb.zero_grad()
        slow = nn.functional.embedding(ids, emb.weight_quant(emb.weight))
        slow.pow(2).sum().backward()
        assert torch.equal(fast, slow)
        assert torch.allclose(g_fast, emb.weight_quant.step.grad, rtol=1e-5, atol=1e-7)


def _tiny_model(model_type="bert"):
    from transformers import AutoModelForSequenceClassification

    from conftest import tiny_config

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(tiny_config(model_type, 120, layers=2)).eval()


@pytest.mark.parametrize("model_type", ["bert", "roberta", "xlm-roberta", "distilbert", "deberta-v2", "modernbert",
                                        "albert"])
def test_quantize_swaps_encoder_linears_and_word_embeddings(model_type):
    model = quantize_(_tiny_model(model_type), QuantConfig.parse("w4a8e2"))
    base = model.base_model
    encoder_linears = [m for m in base.modules() if isinstance(m, nn.Linear)]
    assert encoder_linears and all(isinstance(m, QuantLinear) for m in encoder_linears)
    assert isinstance(base.get_input_embeddings(), QuantEmbedding)
    assert base.get_input_embeddings().weight_quant.bits == 2
    # the learned position table is quantized too, at the weights' width (ModernBERT's are rotary: none)
    positions = getattr(base.embeddings, "position_embeddings", None)
    assert (positions is None) == (model_type == "modernbert")
    assert positions is None or (isinstance(positions, QuantEmbedding) and positions.weight_quant.bits == 4)
    head = [m for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and not n.startswith(model.base_model_prefix)]
    assert head and not any(isinstance(m, QuantLinear) for m in head)  # the task head stays float by default
    ids = torch.randint(5, 120, (2, 7))
    assert model(input_ids=ids).logits.shape == (2, 2)


def test_quantize_classifier_and_weight_only():
    model = quantize_(_tiny_model(), QuantConfig(weight_bits=8, act_bits=None, quantize_classifier=True,
                                                 quantize_embeddings=False))
    assert isinstance(model.classifier, QuantLinear) and model.classifier.act_quant is None
    assert type(model.bert.embeddings.word_embeddings) is nn.Embedding


def test_distillation_hooks_still_find_quantized_attention():
    from bertcompress.models.architecture import describe
    from bertcompress.models.intermediates import ScoreRecorder, run_with_intermediates

    model = quantize_(_tiny_model(), QuantConfig.parse("w2a8"))
    view = describe(model)
    assert all(isinstance(q, QuantLinear) for q in view.queries)
    rec = ScoreRecorder(model, [1, 2], mode="attention")
    ids = torch.randint(5, 120, (2, 7))
    out = run_with_intermediates(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, rec)
    assert set(out.scores) == {1, 2} and out.scores[1].shape == (2, 4, 7, 7)


def test_loaded_steps_are_kept_not_reinitialised():
    torch.manual_seed(0)
    trained = QuantLinear.from_linear(nn.Linear(4, 3), weight_bits=4, act_bits=8, per_channel=True)
    x = torch.randn(2, 4)
    trained(x)  # sets the activation step from x
    with torch.no_grad():
        trained.act_quant.step.mul_(3)
    fresh = QuantLinear(4, 3, weight_bits=4, act_bits=8, per_channel=True)
    fresh.load_state_dict(trained.state_dict())
    assert torch.equal(fresh(5 * x), trained(5 * x))  # a new first batch must not reset the step
    assert fresh.act_quant.step.item() == trained.act_quant.step.item()
