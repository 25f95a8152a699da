"""Each TinyBERT loss against numbers worked out by hand."""

import math

import pytest
import torch

from bertcompress.methods.distill.losses import (
    attention_mse,
    masked_mse,
    merge_heads,
    soft_cross_entropy,
    sum_squared_error,
)


def test_masked_mse_no_mask_is_plain_mse():
    s = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    t = torch.tensor([[[0.0, 2.0], [3.0, 6.0]]])
    # squared errors 1, 0, 0, 4 -> mean 5/4
    assert masked_mse(s, t, None).item() == pytest.approx(1.25)


def test_masked_mse_ignores_padding():
    s = torch.tensor([[[1.0, 2.0], [100.0, 100.0]]])
    t = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 0]])
    # only the first position counts: (1 + 4) / 2
    assert masked_mse(s, t, mask).item() == pytest.approx(2.5)


def test_sum_squared_error_value_and_gradient_by_hand():
    s = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]], requires_grad=True)
    t = torch.tensor([[[0.0, 2.0], [3.0, 6.0]]], requires_grad=True)
    w = torch.tensor([[0.5, 2.0]])
    # rows: 0.5·(1 + 0) + 2·(0 + 4) = 8.5; ∂/∂s = 2·w·(s − t), ∂/∂t = −∂/∂s
    total = sum_squared_error(s, t, w)
    assert total.dtype == torch.float32 and total.item() == pytest.approx(8.5)
    total.backward()
    torch.testing.assert_close(s.grad, torch.tensor([[[1.0, 0.0], [0.0, -8.0]]]))
    torch.testing.assert_close(t.grad, -s.grad)


def test_sum_squared_error_matches_autograd_and_keeps_bf16_grads():
    torch.manual_seed(0)
    s, t = torch.randn(3, 5, 7, requires_grad=True), torch.randn(3, 5, 7)
    w = torch.rand(3, 5)
    sum_squared_error(s, t, w).backward(torch.tensor(0.7))
    ref_s = s.detach().clone().requires_grad_()
    (0.7 * ((ref_s - t) ** 2 * w[..., None]).sum()).backward()
    torch.testing.assert_close(s.grad, ref_s.grad)
    # bf16 inputs: an fp32 total, a bf16 gradient (one pass in the inputs' dtype)
    sb = s.detach().bfloat16().requires_grad_()
    total = sum_squared_error(sb, t.bfloat16())
    assert total.dtype == torch.float32
    torch.testing.assert_close(total, ((sb.float() - t.bfloat16().float()) ** 2).sum(), rtol=1e-2, atol=0)
    total.backward()
    assert sb.grad.dtype == torch.bfloat16
    torch.testing.assert_close(sb.grad.float(), 2 * (sb.float() - t.bfloat16().float()), rtol=1e-2, atol=1e-2)


def test_attention_mse_averages_heads_over_real_pairs():
    s = torch.zeros(1, 2, 2, 2)
    t = torch.zeros(1, 2, 2, 2)
    t[0, 0, 0, 0] = 2.0  # head 0, real pair (0, 0): error 4
    t[0, 1, 0, 0] = 1.0  # head 1, real pair (0, 0): error 1
    mask = torch.tensor([[1, 0]])  # pairs touching position 1 are 0 in both, as attention_scores makes them
    # one real pair per head: (1/h) Σ_i MSE_i = (4 + 1) / 2
    assert attention_mse(s, t, mask).item() == pytest.approx(2.5)
    # without a mask: mean over all 8 entries
    t[0, 1, 1, 1] = 50.0
    assert attention_mse(s, t, None).item() == pytest.approx(2505 / 8)


def test_attention_scores_zero_padded_pairs_and_keep_real_ones():
    from bertcompress.models.intermediates import attention_scores

    torch.manual_seed(0)
    q, k = torch.randn(2, 5, 8), torch.randn(2, 5, 8)  # 2 heads of 4 dimensions
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    scores = attention_scores(q, k, 2, mask)
    manual = q.view(2, 5, 2, 4).transpose(1, 2) @ k.view(2, 5, 2, 4).permute(0, 2, 3, 1) / 2.0  # √4
    pair = (mask[:, None, :, None] * mask[:, None, None, :]).bool().expand_as(scores)
    torch.testing.assert_close(scores[pair], manual[pair])
    assert torch.count_nonzero(scores[~pair]) == 0 and (~pair).sum() == 2 * (25 - 9)
    # so the fused loss equals the explicitly masked mean over real pairs
    other = attention_scores(torch.randn(2, 5, 8), torch.randn(2, 5, 8), 2, mask)
    explicit = ((scores - other) ** 2)[pair].sum() / (pair.sum())
    torch.testing.assert_close(attention_mse(scores, other, mask), explicit)


def test_soft_cross_entropy_hand_value():
    zs = torch.tensor([[0.0, 0.0]])
    zt = torch.tensor([[math.log(3.0), 0.0]])  # teacher probs 3/4, 1/4
    # -(3/4 log 1/2 + 1/4 log 1/2) = log 2
    assert soft_cross_entropy(zs, zt).item() == pytest.approx(math.log(2.0))
    # temperature 2: teacher probs ∝ (√3, 1); student uniform, so still log 2
    assert soft_cross_entropy(zs, zt, temperature=2.0).item() == pytest.approx(math.log(2.0))
    zs2 = torch.tensor([[math.log(3.0), 0.0]])
    # student equals teacher: the entropy of (3/4, 1/4)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert soft_cross_entropy(zs2, zt).item() == pytest.approx(h)


def test_merge_heads_means_groups():
    x = torch.arange(4.0).view(1, 4, 1, 1)
    assert merge_heads(x, 2).flatten().tolist() == [0.5, 2.5]


def test_projection_kind_is_a_setting():
    from bertcompress.core.errors import UserError
    from bertcompress.methods.distill.config import LossConfig
    from bertcompress.methods.distill.projections import Projections

    assert isinstance(Projections(8, 8, 2).embedding_proj, torch.nn.Identity)  # auto, equal widths
    assert isinstance(Projections(8, 8, 2, kind="linear").embedding_proj, torch.nn.Linear)
    with pytest.raises(UserError, match="identity projection needs equal widths"):
        Projections(8, 16, 2, kind="identity")
    with pytest.raises(UserError, match="unknown projection"):
        Projections(8, 16, 2, kind="conv")
    assert LossConfig().projection == "auto"
