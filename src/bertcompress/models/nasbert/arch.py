"""A NAS-BERT architecture: blocks of sub-layer slots, each block at its own width.

A block is a hidden size and a list of ops, one per slot; each slot is one post-LayerNorm
sub-layer (ops.py). `identity` makes a block shallower, so it may only fill a block's tail:
the same architecture then has one spelling. A block made only of identity slots is allowed (it
passes its input on, projected to its width when that changes).

String form, for configs, logs and the command line:

    [e<embedding_size>/]<hidden>:<op>,<op>,...|<hidden>:<op>,...

e.g. "e128/384:mha,ffn,mha,ffn|256:conv5,ffn,identity,identity": a 128-wide factorised
embedding, then a 384-wide block of four slots and a 256-wide one of two real slots. Without the
"e.../" prefix the embedding is as wide as the first block. Spaces are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bertcompress.core.errors import UserError

OPS = ("mha", "ffn", "conv3", "conv5", "conv7", "identity")
CONV_KERNELS = {"conv3": 3, "conv5": 5, "conv7": 7}


@dataclass
class BlockArch:
    hidden: int
    ops: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.ops, str):  # list("mha") would be three unknown ops
            raise UserError(f"NAS arch block ops must be a list of op names, got the string {self.ops!r}")
        self.ops = list(self.ops)

    def check(self, index: int, head_size: int | None = None) -> None:
        """Raise UserError for this block (`index` is 0-based; messages say "block 1", ...)."""
        where = f"NAS arch block {index + 1}"
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 1:
            raise UserError(f"{where}: hidden size must be a positive integer, got {self.hidden!r}")
        if not self.ops:
            raise UserError(f"{where} has no ops; give at least one of {', '.join(OPS)}")
        for op in self.ops:
            if op not in OPS:
                raise UserError(f"{where}: unknown op {op!r}; known ops: {', '.join(OPS)}")
        first_identity = self.ops.index("identity") if "identity" in self.ops else len(self.ops)
        if any(op != "identity" for op in self.ops[first_identity:]):
            raise UserError(f"{where}: 'identity' may only fill the end of a block, got {','.join(self.ops)}")
        if head_size is not None and "mha" in self.ops and self.hidden % head_size:
            raise UserError(f"{where}: hidden size {self.hidden} is not a multiple of the head size {head_size}")

    @property
    def depth(self) -> int:
        """Slots that are not identity."""
        return sum(op != "identity" for op in self.ops)


@dataclass
class NasArch:
    blocks: list[BlockArch]
    embedding_size: int | None = None  # None: as wide as the first block

    def __post_init__(self) -> None:
        self.blocks = [b if isinstance(b, BlockArch) else BlockArch(**b) for b in self.blocks]
        self.validate()

    def validate(self, head_size: int | None = None) -> NasArch:
        """Raise UserError if this arch cannot be built; with `head_size`, attention widths are checked too."""
        if not self.blocks:
            raise UserError("NAS arch has no blocks")
        e = self.embedding_size
        if e is not None and (isinstance(e, bool) or not isinstance(e, int) or e < 1):
            raise UserError(f"NAS arch embedding size must be a positive integer, got {e!r}")
        for i, block in enumerate(self.blocks):
            block.check(i, head_size)
        return self

    @property
    def embedding_width(self) -> int:
        return self.embedding_size or self.blocks[0].hidden

    @property
    def output_width(self) -> int:
        return self.blocks[-1].hidden

    def to_dict(self) -> dict[str, Any]:
        return {"embedding_size": self.embedding_size,
                "blocks": [{"hidden": b.hidden, "ops": list(b.ops)} for b in self.blocks]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NasArch:
        try:
            blocks = [BlockArch(hidden=b["hidden"], ops=b["ops"]) for b in data["blocks"]]
            return cls(blocks=blocks, embedding_size=data.get("embedding_size"))
        except (KeyError, TypeError) as e:
            raise UserError(f"NAS arch must look like {{'blocks': [{{'hidden': 256, 'ops': [...]}}]}}: "
                            f"{type(e).__name__} {e}") from None

    def to_string(self) -> str:
        blocks = "|".join(f"{b.hidden}:{','.join(b.ops)}" for b in self.blocks)
        return blocks if self.embedding_size is None else f"e{self.embedding_size}/{blocks}"

    def __str__(self) -> str:
        return self.to_string()

    @classmethod
    def parse(cls, text: str) -> NasArch:
        """The arch written as in this module's docstring."""
        text = "".join(str(text).split())
        embedding_size = None
        if "/" in text:
            prefix, text = text.split("/", 1)
            if not (prefix.startswith("e") and prefix[1:].isdigit()):
                raise UserError(f"NAS arch: embedding prefix must look like 'e128/', got {prefix + '/'!r}")
            embedding_size = int(prefix[1:])
        blocks = []
        for part in text.split("|"):
            hidden, sep, ops = part.partition(":")
            if not sep or not hidden.isdigit():
                raise UserError(f"NAS arch: each block must look like '<hidden>:<op>,<op>,...', got {part!r}")
            blocks.append(BlockArch(int(hidden), [op for op in ops.split(",") if op]))
        return cls(blocks=blocks, embedding_size=embedding_size)

    @classmethod
    def coerce(cls, value: NasArch | dict | str) -> NasArch:
        """An arch from any of its forms: itself, its dict or its string."""
        if isinstance(value, NasArch):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, dict):
            return cls.from_dict(value)
        raise UserError(f"NAS arch must be a string, a dict or a NasArch, got {type(value).__name__}")

    def num_parameters(self, vocab_size: int, max_positions: int, type_vocab_size: int = 2,
                       pooler: bool = True) -> int:
        """Parameters of the bare NasBertModel for this arch, without building it (head size does not
        change the count). Kept equal to the built model by tests/models/test_nas_model.py."""
        e = self.embedding_width
        total = (vocab_size + max_positions + type_vocab_size) * e + 2 * e
        width = e
        for block in self.blocks:
            h = block.hidden
            if h != width:  # the embedding projection, or the block's input projection
                total += width * h + h
            total += sum(op_parameters(op, h) for op in block.ops)
            width = h
        return total + (width * width + width if pooler else 0)


def op_parameters(op: str, hidden: int) -> int:
    """Parameters of one slot of `op` at width `hidden`, its LayerNorm included (see ops.py)."""
    h = hidden
    if op == "identity":
        return 0
    if op == "mha":
        core = 4 * (h * h + h)  # query, key, value, output
    elif op == "ffn":
        core = h * 4 * h + 4 * h + 4 * h * h + h
    else:
        core = h * CONV_KERNELS[op] + h + h * h + h  # depthwise, pointwise
    return core + 2 * h
