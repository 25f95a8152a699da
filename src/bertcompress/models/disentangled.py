"""DeBERTa's pre-softmax scores, rebuilt from what hooks saw during the forward.

DeBERTa-v2/v3 adds two relative-position terms to QKᵀ before its softmax (content-to-position and
position-to-content, "disentangled attention"), and scales all three by √(d·(1 + terms)). Its
attention does not run through transformers' AttentionInterface, so the scores are rebuilt after the
forward: the content term from the hooked query and key projections, the position terms by the
attention module's own `disentangled_attention_bias`, on the relative positions it was called with
and the relative embeddings after its own position dropout (hooked, so a training student's scores
are those its softmax saw, dropout included). The gradient flows through all of them.
"""

from __future__ import annotations

import torch
from torch import nn


class DisentangledInputs:
    """Per recorded layer: the relative positions and (dropped-out) relative embeddings of the call."""

    def __init__(self):
        self.relative_pos: dict[int, torch.Tensor | None] = {}
        self.rel_embeddings: dict[int, torch.Tensor | None] = {}

    def hooks(self, attention: nn.Module, layer: int) -> list:
        def on_call(_module, _args, kwargs):
            self.relative_pos[layer] = kwargs.get("relative_pos")

        def on_dropout(_module, _inputs, output):
            self.rel_embeddings[layer] = output

        handles = [attention.register_forward_pre_hook(on_call, with_kwargs=True)]
        if getattr(attention, "relative_attention", False):
            handles.append(attention.pos_dropout.register_forward_hook(on_dropout))
        return handles

    def clear(self) -> None:
        self.relative_pos.clear()
        self.rel_embeddings.clear()


def disentangled_scores(attention: nn.Module, q: torch.Tensor, k: torch.Tensor, inputs: DisentangledInputs,
                        layer: int) -> torch.Tensor:
    """(B, L, H·d) query and key projections of one DeBERTa attention -> (B, H, L, L) scores as its
    softmax sees them (before the padding mask)."""
    heads = attention.num_attention_heads
    b, length, _ = q.shape
    qh, kh = attention.transpose_for_scores(q, heads), attention.transpose_for_scores(k, heads)  # (B·H, L, d)
    scale_factor = 1 + sum(term in attention.pos_att_type for term in ("c2p", "p2c"))
    scores = torch.bmm(qh, kh.transpose(-1, -2)) / (qh.shape[-1] * scale_factor) ** 0.5
    rel_embeddings = inputs.rel_embeddings.get(layer)
    if getattr(attention, "relative_attention", False) and rel_embeddings is not None:
        scores = scores + attention.disentangled_attention_bias(qh, kh, inputs.relative_pos.get(layer),
                                                                rel_embeddings, scale_factor)
    return scores.view(b, heads, length, length)
