"""The NAS-BERT search space of one block: every candidate block, and the default space for a teacher.

A block of `slots` slots at width `h` is one of the real ops in each of its first `d` slots and
`identity` in the rest (models/nasbert/arch.py: identity may only fill a block's tail), for every depth `d` from
`slots` down to 0. With `r` real ops and identity allowed that is sum(r**d for d in 0..slots)
candidates per width, each spelled once.
"""

from __future__ import annotations

import itertools
import math

from bertcompress.core.errors import UserError
from bertcompress.models.nasbert.arch import OPS, BlockArch, op_parameters

# A block's candidates grow as 5**slots: NAS-BERT's blocks have 6 slots (3 layers), and so do ours at most.
MAX_LAYERS_PER_BLOCK = 3


def block_candidates(hiddens: list[int], slots: int, ops: list[str], head_size: int | None = None) -> list[BlockArch]:
    """Every block of each width in `hiddens` with `slots` slots made of `ops`, in a fixed order: by width
    as given, then deepest first, then the ops in the order of `ops` (itertools.product). With `head_size`,
    a width that cannot hold whole attention heads is refused when `mha` is among the ops."""
    check_ops(ops)
    if slots < 1:
        raise UserError(f"NAS blocks need at least one slot, got {slots}")
    for h in hiddens:
        if isinstance(h, bool) or not isinstance(h, int) or h < 1:
            raise UserError(f"NAS hidden sizes must be positive integers, got {h!r}")
        if head_size and "mha" in ops and h % head_size:
            raise UserError(f"NAS hidden size {h} is not a multiple of the head size {head_size}")
    if len(set(hiddens)) != len(hiddens):
        raise UserError(f"NAS hidden sizes must not repeat, got {hiddens}")
    real = [op for op in ops if op != "identity"]
    depths = range(slots, -1, -1) if "identity" in ops else [slots]
    return [BlockArch(h, list(chosen) + ["identity"] * (slots - depth))
            for h in hiddens for depth in depths for chosen in itertools.product(real, repeat=depth)]


def check_ops(ops: list[str]) -> None:
    """Raise UserError unless `ops` names known ops, each once, and at least one that is not identity."""
    for op in ops:
        if op not in OPS:
            raise UserError(f"unknown NAS op {op!r}; known ops: {', '.join(OPS)}")
    if len(set(ops)) != len(ops):
        raise UserError(f"NAS ops must not repeat, got {', '.join(ops)}")
    if not any(op != "identity" for op in ops):
        raise UserError("NAS ops need at least one op besides identity")


def block_parameters(candidate: BlockArch) -> int:
    """Parameters of the block's ops; the projections between widths belong to the whole model."""
    return sum(op_parameters(op, candidate.hidden) for op in candidate.ops)


def default_hiddens(teacher_width: int, head_size: int, count: int = 4) -> list[int]:
    """`count` widths spaced geometrically from a third of the teacher's width up to it, each rounded to
    the nearest multiple of the head size (at least one head), repeats dropped. This gives NAS-BERT's
    128/192/256/384 for a 384-wide teacher with 32-wide heads, and 256/384/512/768 for 768/64."""
    if teacher_width < 1 or head_size < 1 or teacher_width % head_size:
        raise UserError(f"teacher width {teacher_width} is not a multiple of its head size {head_size}")
    if count < 1:
        raise UserError(f"NAS needs at least one hidden size, got {count}")
    low = teacher_width / 3
    widths = []
    for i in range(count):
        w = teacher_width if i == count - 1 else low * 3 ** (i / (count - 1))
        w = max(head_size, round(w / head_size) * head_size)
        if w not in widths:
            widths.append(w)
    return widths


def default_num_blocks(num_layers: int) -> int:
    """Blocks for a teacher of `num_layers` layers: each block gets the divisor of `num_layers` closest to
    sqrt(num_layers) in layers (the smaller one on a tie), at most MAX_LAYERS_PER_BLOCK, so that the count
    of blocks and their depth grow together. 6 layers: 3 blocks of 2; 12: 4 of 3; 24: 8 of 3."""
    if num_layers < 1:
        raise UserError(f"the teacher needs at least one layer, got {num_layers}")
    divisors = [d for d in range(1, MAX_LAYERS_PER_BLOCK + 1) if num_layers % d == 0]
    per_block = min(divisors, key=lambda d: (abs(d - math.sqrt(num_layers)), d))
    return num_layers // per_block


def block_slots(num_layers: int, num_blocks: int) -> int:
    """Slots of each block: two (attention-like, FFN-like) per teacher layer the block stands for."""
    if num_blocks < 1 or num_layers % num_blocks:
        raise UserError(f"nas num_blocks must divide the teacher's {num_layers} layers, got {num_blocks}")
    return 2 * num_layers // num_blocks
