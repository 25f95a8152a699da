"""The TinyBERT losses, as small functions in a registry.

Each term is `fn(student, teacher, ctx) -> scalar`, found by name in loss_registry.py; adding a
loss is one function here and one line there. The tensor-level helpers below are what the tests check by hand.

Padding: every term averages over real tokens only (hidden/embedding: real positions × width;
attention: real (query, key) pairs × heads, whose scores are zeroed at padded pairs as in the
reference code), so the amount of padding in a batch never changes the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.data.tagging import IGNORE
from bertcompress.models.intermediates import Intermediates

# ------------------------------------------------------------------ tensor-level losses

class _SumSquaredError(torch.autograd.Function):
    """Σ w·(s − t)² in fp32, for inputs in any float dtype. Autograd's own backward of
    `(s − t).pow(2).sum(dtype=float32)` broadcasts the fp32 output gradient and so makes fp32 copies
    of the whole tensor (several B·H·L² passes per attention term); this one is a single pass in
    the inputs' dtype: ∂/∂s = 2·w·(s − t)·g."""

    @staticmethod
    def forward(ctx, student: torch.Tensor, teacher: torch.Tensor, row_weight: torch.Tensor | None):
        diff = student - teacher
        if row_weight is None:
            total = diff.pow(2).sum(dtype=torch.float32)
        else:
            total = (diff.pow(2).sum(-1, dtype=torch.float32) * row_weight).sum()
        ctx.save_for_backward(diff, row_weight)
        ctx.dtypes = student.dtype, teacher.dtype
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        diff, row_weight = ctx.saved_tensors
        scale = 2 * grad.to(diff.dtype)
        if row_weight is not None:
            scale = scale * row_weight.to(diff.dtype).unsqueeze(-1)
        g = diff * scale
        s_dtype, t_dtype = ctx.dtypes
        return (g.to(s_dtype) if ctx.needs_input_grad[0] else None,
                -g.to(t_dtype) if ctx.needs_input_grad[1] else None, None)


def sum_squared_error(student: torch.Tensor, teacher: torch.Tensor,
                      row_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Σ (student − teacher)² as an fp32 scalar; with `row_weight` (student.shape[:-1]) each row's
    sum over the last dimension is weighted by it."""
    return _SumSquaredError.apply(student, teacher, row_weight)


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error over real positions. student/teacher (B, L, D); mask (B, L) of 0/1."""
    if mask is None:
        return sum_squared_error(student, teacher) / student.numel()
    m = mask.float()
    return sum_squared_error(student, teacher, m) / (m.sum() * student.shape[-1]).clamp_min(1)


def attention_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(1/h)·Σ_i MSE(A_i^S, A_i^T) over pre-softmax scores (B, H, L, L), averaged over real
    (query, key) pairs. Both inputs must be 0 at pairs that touch padding (`attention_scores` makes
    them so), so the squared error is one fused pass over every entry and only the count needs the
    mask."""
    squared = sum_squared_error(student, teacher)
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


def masked_soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
                              temperature: float = 1.0) -> torch.Tensor:
    """`soft_cross_entropy` per position of (B, L, C) logits, averaged over the positions where
    `mask` (B, L) is true. Weighted rather than indexed: no host sync, and a batch's shape alone
    fixes the work (what CUDA graphs need)."""
    t = temperature
    p_teacher = F.softmax(teacher_logits.float() / t, dim=-1)
    per_position = -(p_teacher * F.log_softmax(student_logits.float() / t, dim=-1)).sum(-1)
    weight = mask.float()
    return (per_position * weight).sum() / weight.sum().clamp_min(1)


def gather_positions(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """(B, L, D) states at (B, K) positions -> (B, K, D)."""
    return x.gather(1, positions[..., None].expand(-1, -1, x.shape[-1]))


def gather_pairs(scores: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, H, L, L) scores at the (query, key) pairs of (B, K) positions -> (B, H, K, K), 0 at every
    pair with a position `mask` (B, K) leaves out (what `attention_mse` counts on)."""
    b, h, length, _ = scores.shape
    k = positions.shape[1]
    rows = scores.gather(2, positions[:, None, :, None].expand(b, h, k, length))
    pairs = rows.gather(3, positions[:, None, None, :].expand(b, h, k, k))
    m = mask.to(pairs.dtype)
    return pairs * (m[:, None, :, None] * m[:, None, None, :])


def merge_heads(scores: torch.Tensor, groups: int) -> torch.Tensor:
    """Average (B, H, L, L) scores over `groups` equal head groups -> (B, groups, L, L)."""
    b, h, q_len, k_len = scores.shape
    return scores.view(b, groups, h // groups, q_len, k_len).mean(2)


# ------------------------------------------------------------------ the terms (loss_registry.py names them)

@dataclass
class LossContext:
    mapping: list[int]  # 1-based teacher layer for each student layer
    projections: nn.Module  # .embedding(x), .hidden(i, x)
    attention_mask: torch.Tensor
    temperature: float = 1.0
    regression: bool = False
    head_rule: str = "strict"
    labels: torch.Tensor | None = None  # the batch's labels: (B, L) for a tagging task, IGNORE where unscored
    attention_mapping: list[int] | None = None  # the attention loss's own mapping; None: `mapping`
    # a teacher of another vocabulary (data/alignment.py): (student positions, teacher positions,
    # mask), each (B, K); the layer losses compare those pairs of positions only
    alignment: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def positions(self, s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(student states, teacher states, mask) over the positions the layer losses compare."""
        if self.alignment is None:
            return s, t, self.attention_mask
        s_pos, t_pos, mask = self.alignment
        return gather_positions(s, s_pos), gather_positions(t, t_pos), mask

    def pairs(self, s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(student scores, teacher scores, mask) over the (query, key) pairs the attention loss compares."""
        if self.alignment is None:
            return s, t, self.attention_mask
        s_pos, t_pos, mask = self.alignment
        return gather_pairs(s, s_pos, mask), gather_pairs(t, t_pos, mask), mask


def embedding_loss(s: Intermediates, t: Intermediates, ctx: LossContext) -> torch.Tensor:
    s_emb, t_emb, mask = ctx.positions(s.hidden_states[0], t.hidden_states[0])
    return masked_mse(ctx.projections.embedding(s_emb), t_emb, mask)


def hidden_loss(s: Intermediates, t: Intermediates, ctx: LossContext) -> torch.Tensor:
    terms = []
    for m, n in enumerate(ctx.mapping, start=1):
        s_h, t_h, mask = ctx.positions(s.hidden_states[m], t.hidden_states[n])
        terms.append(masked_mse(ctx.projections.hidden(m, s_h), t_h, mask))
    return torch.stack(terms).sum()


def attention_loss(s: Intermediates, t: Intermediates, ctx: LossContext) -> torch.Tensor:
    terms = []
    for m, n in enumerate(ctx.attention_mapping or ctx.mapping, start=1):
        a_s, a_t, mask = ctx.pairs(s.scores[m], t.scores[n])
        if a_s.shape[1] != a_t.shape[1]:  # head_rule == "mean": compare head-group averages
            g = min(a_s.shape[1], a_t.shape[1])
            a_s, a_t = merge_heads(a_s, g), merge_heads(a_t, g)
        terms.append(attention_mse(a_s, a_t, mask))
    return torch.stack(terms).sum()


def prediction_loss(s: Intermediates, t: Intermediates, ctx: LossContext) -> torch.Tensor:
    if ctx.regression:
        return F.mse_loss(s.logits.float().squeeze(-1), t.logits.float().squeeze(-1))
    return soft_cross_entropy(s.logits, t.logits, ctx.temperature)


def token_prediction_loss(s: Intermediates, t: Intermediates, ctx: LossContext) -> torch.Tensor:
    """Tagging: soft cross-entropy at every labelled position (each word's first piece); continuation
    pieces, special tokens and padding carry IGNORE and are not scored."""
    if ctx.labels is None or ctx.labels.dim() != 2:
        raise UserError("the token prediction loss needs a tagging batch: (batch, tokens) labels, IGNORE where "
                        "unscored")
    return masked_soft_cross_entropy(s.logits, t.logits, ctx.labels != IGNORE, ctx.temperature)
