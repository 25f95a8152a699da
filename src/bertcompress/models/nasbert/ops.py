"""The ops a NAS-BERT slot can hold, each a post-LayerNorm BERT sub-layer:

    y = LayerNorm(x + Dropout(transform(x)))        identity: y = x

All take `(x [batch, seq, hidden], attention_mask [batch, seq] of 1/0 or None)`. Padding never
reaches a real position: attention gives padded keys no weight, a convolution zeroes padded
positions of its input first (so it sees the same zeros as at the sequence ends), and the FFN
is per-position. Padded positions' own outputs are left as they come.

Parameter names follow BERT (`query`, `key`, `value`, `LayerNorm`, `intermediate`) so weights can
be copied from a BERT layer; arch.op_parameters counts them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn
from torch.nn import functional as F

from bertcompress.core.errors import UserError
from bertcompress.models.nasbert.arch import CONV_KERNELS, OPS


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[batch, seq] of 1/0 -> [batch, 1, 1, seq]: 0 where attended, dtype's minimum at padding
    (not -inf: a row with no real key then softmaxes to uniform instead of NaN)."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class Sublayer(nn.Module, ABC):
    """The residual, dropout and LayerNorm every non-identity op shares."""

    def __init__(self, hidden: int, dropout: float, layer_norm_eps: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.LayerNorm = nn.LayerNorm(hidden, eps=layer_norm_eps)

    @abstractmethod
    def transform(self, x: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The op itself, before the residual, dropout and LayerNorm."""

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.LayerNorm(x + self.dropout(self.transform(x, attention_mask)))


class SelfAttention(Sublayer):
    """Multi-head self-attention with hidden // head_size heads."""

    def __init__(self, hidden: int, head_size: int, dropout: float, attention_dropout: float,
                 layer_norm_eps: float):
        super().__init__(hidden, dropout, layer_norm_eps)
        if hidden % head_size:
            raise UserError(f"attention width {hidden} is not a multiple of the head size {head_size}")
        self.num_heads, self.head_size, self.attention_dropout = hidden // head_size, head_size, attention_dropout
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.dense = nn.Linear(hidden, hidden)

    def transform(self, x: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        b, length, hidden = x.shape

        def heads(proj: nn.Linear) -> torch.Tensor:
            return proj(x).view(b, length, self.num_heads, self.head_size).transpose(1, 2)

        q, k, v = heads(self.query), heads(self.key), heads(self.value)
        bias = None if attention_mask is None else additive_mask(attention_mask, q.dtype)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                                 dropout_p=self.attention_dropout if self.training else 0.0)
        return self.dense(context.transpose(1, 2).reshape(b, length, hidden))


class FeedForward(Sublayer):
    """hidden -> 4·hidden -> hidden with GELU, as in BERT."""

    def __init__(self, hidden: int, dropout: float, layer_norm_eps: float):
        super().__init__(hidden, dropout, layer_norm_eps)
        self.intermediate = nn.Linear(hidden, 4 * hidden)
        self.output = nn.Linear(4 * hidden, hidden)

    def transform(self, x: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(F.gelu(self.intermediate(x)))


class SeparableConv(Sublayer):
    """Depthwise Conv1d over the sequence (same length), GELU, then a pointwise Linear. The
    nonlinearity sits between the two like the FFN's, so the op ends in a linear map into the
    residual stream as attention and the FFN do."""

    def __init__(self, hidden: int, kernel_size: int, dropout: float, layer_norm_eps: float):
        super().__init__(hidden, dropout, layer_norm_eps)
        self.kernel_size = kernel_size
        self.depthwise = nn.Conv1d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)
        self.pointwise = nn.Linear(hidden, hidden)

    def transform(self, x: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is not None:  # padded positions must look like the zeros beyond the ends
            x = x * attention_mask[:, :, None].to(x.dtype)
        mixed = self.depthwise(x.transpose(1, 2)).transpose(1, 2)
        return self.pointwise(F.gelu(mixed))


class Identity(nn.Module):
    """An empty slot: y = x, no parameters."""

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return x


def make_op(name: str, hidden: int, head_size: int, dropout: float, layer_norm_eps: float,
            attention_dropout: float | None = None) -> nn.Module:
    """One slot of op `name` at width `hidden`; `attention_dropout` (on the attention
    probabilities) defaults to `dropout`."""
    if name == "mha":
        return SelfAttention(hidden, head_size, dropout, dropout if attention_dropout is None else attention_dropout,
                             layer_norm_eps)
    if name == "ffn":
        return FeedForward(hidden, dropout, layer_norm_eps)
    if name in CONV_KERNELS:
        return SeparableConv(hidden, CONV_KERNELS[name], dropout, layer_norm_eps)
    if name == "identity":
        return Identity()
    raise UserError(f"unknown NAS op {name!r}; known ops: {', '.join(OPS)}")
