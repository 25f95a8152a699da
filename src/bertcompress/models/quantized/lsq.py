"""LSQ: learned step size quantization (Esser et al. 2020), as used by KDLSQ (docs/methods.md, "KDLSQ quantization").

For a tensor v, step s (a parameter) and b bits:
    signed:   Q_N = 2^(b-1), Q_P = 2^(b-1) - 1        unsigned: Q_N = 0, Q_P = 2^b - 1
    v̄ = round(clip(v/s, -Q_N, Q_P)),   v̂ = v̄·s
Rounding passes gradients straight through, so
    ∂v̂/∂s = -v/s + round(v/s) inside the range, -Q_N below it, Q_P above it
    ∂v̂/∂v = 1 inside the range, 0 outside,
and the gradient reaching s is scaled by g = 1/√(N·Q_P), N = the number of elements sharing the
step (the whole tensor for a per-tensor weight step, one row for a per-channel one, the feature
width for activations). s starts at 2·mean|v|/√Q_P over the first tensor it sees.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bertcompress.models.quantized.config import MAX_BITS, MIN_BITS

MIN_STEP = 1e-8  # keeps s > 0: a step pushed to zero or below would divide by zero


def q_range(bits: int, signed: bool) -> tuple[int, int]:
    """(Q_N, Q_P): codes run from -Q_N to Q_P."""
    if signed:
        return 2 ** (bits - 1), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


class _ScaleGrad(torch.autograd.Function):
    """Identity forward, gradient times g backward. A Function rather than the usual
    `(x - x*g).detach() + x*g` trick so the forward value is exactly s, which lets the packed
    export (codes × s) reproduce the fake-quantized model bit for bit."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, g: float) -> torch.Tensor:
        ctx.g = g
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.g, None


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round() forward, identity backward. (round(x) - x) + x is exactly round(x) in floating
    point (Sterbenz: round(x) and x are within a factor of two of each other, or round(x) is 0)."""
    return (x.round() - x).detach() + x


def lsq_quantize(x: torch.Tensor, step: torch.Tensor, q_n: int, q_p: int, g: float) -> torch.Tensor:
    """v̂ = round(clip(x/s, -Q_N, Q_P))·s with LSQ's gradients; `step` broadcasts against x."""
    s = _ScaleGrad.apply(step.clamp_min(MIN_STEP), g)
    return round_ste(torch.clamp(x / s, -q_n, q_p)) * s


class LSQQuantizer(nn.Module):
    """Fake-quantizer with a learned step: one per tensor, or one per row (`channels` rows, dim 0)
    for weights. Call it on a tensor to get v̂; `codes(x)` gives the integers v̄.

    `grad_n` fixes N in g = 1/√(N·Q_P) where the tensor seen is not the one the step belongs to
    (activations: the feature width; embeddings: the whole table, of which a batch sees a few rows).
    None: the elements sharing one step in the tensor quantized."""

    def __init__(self, bits: int, signed: bool = True, channels: int | None = None, grad_n: int | None = None):
        super().__init__()
        if not MIN_BITS <= bits <= MAX_BITS:
            raise ValueError(f"LSQ supports {MIN_BITS} to {MAX_BITS} bits, got {bits}")
        self.bits, self.signed, self.grad_n = bits, signed, grad_n
        self.q_n, self.q_p = q_range(bits, signed)
        self.per_channel = channels is not None
        # 1-D even per channel: the train loop gives ndim < 2 parameters no weight decay.
        self.step = nn.Parameter(torch.ones(channels or 1))
        self.register_buffer("initialized", torch.tensor(False))
        self._ready = False  # a Python copy of `initialized`: reading the buffer would sync a GPU every call

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._ready = False  # consult the loaded buffer on the next call

    def extra_repr(self) -> str:
        kind = "per-channel" if self.per_channel else "per-tensor"
        return f"bits={self.bits}, {'signed' if self.signed else 'unsigned'}, {kind}"

    @torch.no_grad()
    def init_from(self, x: torch.Tensor) -> None:
        """s = 2·mean|x|/√Q_P (per row for per-channel steps)."""
        x = x.detach().float()
        mean_abs = x.abs().flatten(1).mean(1) if self.per_channel else x.abs().mean().reshape(1)
        # floor: an all-zero row (the padding embedding) would otherwise start with a zero step
        self.step.copy_((2 * mean_abs / math.sqrt(self.q_p)).clamp_min(1e-5))
        self.initialized.fill_(True)

    def shaped_step(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The step broadcast against x: per row of x, or per gathered row (`rows`: token ids)."""
        if not self.per_channel:
            return self.step
        if rows is not None:
            return self.step[rows].unsqueeze(-1)
        return self.step.view(-1, *([1] * (x.dim() - 1)))

    def forward(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """v̂ for x; with `rows`, x holds rows gathered from the tensor the steps belong to."""
        if not self._ready:
            if not bool(self.initialized):
                self.init_from(x)
            self._ready = True
        g = 1.0 / math.sqrt(self._elements_per_step(x, rows) * self.q_p)
        # fp32 arithmetic: under bf16 autocast, x/s would not round to the right integer.
        return lsq_quantize(x.float(), self.shaped_step(x, rows).float(), self.q_n, self.q_p, g).to(x.dtype)

    def _elements_per_step(self, x: torch.Tensor, rows: torch.Tensor | None) -> int:
        if self.grad_n:
            return self.grad_n
        if rows is not None:
            return x.shape[-1]  # one gathered row per step
        return x[0].numel() if self.per_channel else x.numel()

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The integer codes v̄ in [-Q_N, Q_P] (int16: unsigned 8-bit needs 255)."""
        step = self.shaped_step(x).float().clamp_min(MIN_STEP)
        return torch.clamp(x.float() / step, -self.q_n, self.q_p).round().to(torch.int16)
