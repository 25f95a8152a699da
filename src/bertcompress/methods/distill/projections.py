"""Learnable maps W from the student's width d' to the teacher's width d (TinyBERT W_e, W_h).

A registry keeps the choice open: `linear` (default, learnable d'×d) or `identity` (widths equal,
no parameters). W_e is separate from W_h; W_h is shared by all mapped layers (as in the reference
code) or one per layer, by `losses.hidden_projection`.
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
                 kind: str | None = None):
        super().__init__()
        if kind in (None, "auto"):
            kind = "identity" if d_student == d_teacher else "linear"
        if kind not in PROJECTIONS:
            raise UserError(f"unknown projection {kind!r} (known: {', '.join(PROJECTIONS)})")
        if kind == "identity" and d_student != d_teacher:
            raise UserError(f"identity projection needs equal widths, got student {d_student}, teacher {d_teacher}")
        make = PROJECTIONS[kind]
        self.shared = shared
        self.embedding_proj = make(d_student, d_teacher)
        self.hidden_proj = nn.ModuleList([make(d_student, d_teacher) for _ in range(1 if shared else num_layers)])

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding_proj(x)

    def hidden(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """layer is the 1-based student layer."""
        return self.hidden_proj[0 if self.shared else layer - 1](x)
