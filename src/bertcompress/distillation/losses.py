"""The TinyBERT losses, as small functions in a registry.

Each term is `fn(student, teacher, ctx) -> scalar`; adding a loss is one function and one
`@register_loss` line. The tensor-level helpers below are what the tests check by hand.

Padding: every term averages over real tokens only (hidden/embedding: real positions × width;
attention: real (query, key) pairs × heads, whose scores are zeroed at padded pairs as in the
reference code), so the amount of padding in a batch never changes the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models.intermediates import Intermediates

# ------------------------------------------------------------------ tensor-level losses

def masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error over real positions. student/teacher (B, L, D); mask (B, L) of 0/1."""
    diff = (student.float() - teacher.float()) ** 2
    if mask is None:
        return diff.mean()
    m = mask.to(diff.dtype).unsqueeze(-1)
    return (diff * m).sum() / (m.sum() * diff.shape[-1]).clamp_min(1)


def attention_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(1/h)·Σ_i MSE(A_i^S, A_i^T) over pre-softmax scores (B, H, L, L), averaged over real
    (query, key) pairs. Both inputs must be 0 at pairs that touch padding (`attention_scores` makes
    them so), so the squared error is one fused pass over every entry and only the count needs the
    mask."""
    # the difference in the inputs' dtype (bf16 under autocast), the sum in fp32: no fp32 copies
    # of two B·H·L² tensors (a third faster on CPU)
    squared = (student - teacher).pow(2).sum(dtype=torch.float32)
    if mask is None:
        return squared / student.numel()
    real = mask.float().sum(-1)  # real tokens per sequence: real² real pairs
    return squared / ((real * real).sum() * student.shape[1]).clamp_min(1)


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       temperature: float = 1.0) -> torch.Tensor:
    """−softmax(z^T/t)·log_softmax(z^S/t), averaged over the batch."""
    t = temperature
    p_teacher = F.softmax(teacher_logits.float() / t, dim=-1)
    return -(p_teacher * F.log_softmax(student_logits.float() / t, dim=-1)).sum(-1).mean()


def merge_heads(scores: torch.Tensor, groups: int) -> torch.Tensor:
    """Average (B, H, L, L) scores over `groups` equal head groups -> (B, groups, L, L)."""
    b, h, q_len, k_len = scores.shape
    return scores.view(b, groups, h // groups, q_len, k_len).mean(2)


# ------------------------------------------------------------------ the registry of terms

@dataclass
class LossContext:
    mapping: list[int]  # 1-based teacher layer for each student layer
    projections: nn.Module  # .embedding(x), .hidden(i, x)
    attention_mask: torch.Tensor
    temperature: float = 1.0
    regression: bool = False
    head_rule: str = "strict"


LossFn = Callable[[Intermediates, Intermediates, LossContext], torch.Tensor]
LOSSES: dict[str, LossFn] = {}


def register_loss(name: str) -> Callable[[LossFn], LossFn]:
    def deco(fn: LossFn) -> LossFn:
        LOSSES[name] = fn
        return fn
    return deco


@register_loss("embedding")
def embedding_loss(s: Intermediates, t: Intermediates, ctx: LossContext) -> torch.Tensor:
    return masked_mse(ctx.projections.embedding(s.hidden_states[0]), t.hidden_states[0], ctx.attention_mask)


@register_loss("hidden")
def hidden_loss(s: Intermediates, t: Intermediates, ctx: LossContext) -> torch.Tensor:
    terms = [masked_mse(ctx.projections.hidden(m, s.hidden_states[m]), t.hidden_states[n], ctx.attention_mask)
             for m, n in enumerate(ctx.mapping, start=1)]
    return torch.stack(terms).sum()


@register_loss("attention")
def attention_loss(s: Intermediates, t: Intermediates, ctx: LossContext) -> torch.Tensor:
    terms = []
    for m, n in enumerate(ctx.mapping, start=1):
        a_s, a_t = s.scores[m], t.scores[n]
        if a_s.shape[1] != a_t.shape[1]:  # head_rule == "mean": compare head-group averages
            g = min(a_s.shape[1], a_t.shape[1])
            a_s, a_t = merge_heads(a_s, g), merge_heads(a_t, g)
        terms.append(attention_mse(a_s, a_t, ctx.attention_mask))
    return torch.stack(terms).sum()


@register_loss("prediction")
def prediction_loss(s: Intermediates, t: Intermediates, ctx: LossContext) -> torch.Tensor:
    if ctx.regression:
        return F.mse_loss(s.logits.float().squeeze(-1), t.logits.float().squeeze(-1))
    return soft_cross_entropy(s.logits, t.logits, ctx.temperature)
