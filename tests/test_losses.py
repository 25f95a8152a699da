"""Each TinyBERT loss against numbers worked out by hand."""

import math

import pytest
import torch

from bertcompress.distillation.losses import attention_mse, masked_mse, merge_heads, soft_cross_entropy


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


def test_attention_mse_averages_heads_over_real_pairs():
    s = torch.zeros(1, 2, 2, 2)
    t = torch.zeros(1, 2, 2, 2)
    t[0, 0, 0, 0] = 2.0  # head 0, real pair (0, 0): error 4
    t[0, 1, 0, 0] = 1.0  # head 1, real pair (0, 0): error 1
    t[0, 1, 1, 1] = 50.0  # pair (1, 1) touches padding: ignored
    mask = torch.tensor([[1, 0]])
    # one real pair per head: (1/h) Σ_i MSE_i = (4 + 1) / 2
    assert attention_mse(s, t, mask).item() == pytest.approx(2.5)
    # without a mask: mean over all 8 entries of (4 + 1 + 2500)
    assert attention_mse(s, t, None).item() == pytest.approx(2505 / 8)


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
