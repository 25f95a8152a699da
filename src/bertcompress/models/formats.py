"""Model-folder formats that plain `transformers` cannot load, and their loaders.

Two formats are ours: a pruned model with uneven layers (pruned.py) and a packed low-bit model
(quantized/packed.py). `load_model` asks `format_of(folder)`; no match means a plain `transformers`
folder. A new format is a detector and a loader in its own module, and one line in `registered_formats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from bertcompress.core.errors import UserError

# (folder, kind, num_labels) -> model; kind is "classifier", "base" or "masked_lm"
Loader = Callable[[Path, str, int | None], nn.Module]



@dataclass(frozen=True)
class ModelFormat:
    name: str
    detect: Callable[[Path], bool]
    load: Loader


def registered_formats() -> list[ModelFormat]:
    # imported here: each loader imports transformers, and the packed one the quantized modules
    from bertcompress.models.pruned import is_pruned, load_pruned
    from bertcompress.models.quantized.packed import is_packed, load_packed_as

    return [ModelFormat("pruned", is_pruned, load_pruned), ModelFormat("packed-quantized", is_packed, load_packed_as)]


def format_of(folder: str | Path) -> ModelFormat | None:
    """The format that claims `folder`, or None for a plain `transformers` folder (or a hub id)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    claims = [f for f in registered_formats() if f.detect(folder)]
    if len(claims) > 1:  # e.g. a head-pruned model saved packed: no loader reads both
        raise UserError(f"{folder} is in more than one format ({', '.join(f.name for f in claims)}); "
                        "cannot load it")
    return claims[0] if claims else None
