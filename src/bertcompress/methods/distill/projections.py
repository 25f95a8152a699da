"""Learnable maps W from the student's width d' to the teacher's width d (TinyBERT W_e, W_h).

A registry keeps the choice open: `linear` (default, learnable d'×d) or `identity` (widths equal,
no parameters). W_e is separate from W_h; W_h is shared by all mapped layers (as in the reference
code) or one per layer, by `losses.hidden_projection`. A student whose layers differ in width (a
NAS-BERT model's blocks, models/nasbert/blocks.py) gets one per layer, each of its layer's width.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from bertcompress.core.errors import UserError

PROJECTIONS: dict[str, Callable[[int, int], nn.Module]] = {
    "linear": lambda d_student, d_teacher: nn.Linear(d_student, d_teacher),
    "identity": lambda d_student, d_teacher: nn.Identity(),
}


class Projections(nn.Module):
    def __init__(self, d_student: int, d_teacher: int, num_layers: int, shared: bool = True,
                 kind: str | None = None, layer_widths: list[int] | None = None):
        super().__init__()
        widths = layer_widths or [d_student] * num_layers
        self.shared = shared and len(set(widths)) == 1  # layers of other widths cannot share one W_h
        self.embedding_proj = _make(kind, d_student, d_teacher)
        self.hidden_proj = nn.ModuleList([_make(kind, w, d_teacher) for w in (widths[:1] if self.shared else widths)])

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding_proj(x)

    def hidden(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """layer is the 1-based student layer."""
        return self.hidden_proj[0 if self.shared else layer - 1](x)


def _make(kind: str | None, d_student: int, d_teacher: int) -> nn.Module:
    if kind in (None, "auto"):
        kind = "identity" if d_student == d_teacher else "linear"
    if kind not in PROJECTIONS:
        raise UserError(f"unknown projection {kind!r} (known: {', '.join(PROJECTIONS)})")
    if kind == "identity" and d_student != d_teacher:
        raise UserError(f"identity projection needs equal widths, got student {d_student}, teacher {d_teacher}")
    return PROJECTIONS[kind](d_student, d_teacher)
