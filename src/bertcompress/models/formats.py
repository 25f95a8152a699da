"""Model-folder formats that plain `transformers` cannot load, and their loaders.

A format is owned by the module that writes it; that module binds a detector and a loader here:

    @register_format("pruned", detect=is_pruned)
    def load_pruned(folder, kind, num_labels): ...

`load_model` asks `format_of(folder)`; no match means a plain `transformers` folder. The built-in
formats' modules are listed once, by dotted name, and imported on the first lookup, so a folder is
recognised even if nothing imported them yet, while models/ never imports pruning/ or quant/.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from ..errors import UserError

# (folder, kind, num_labels) -> model; kind is "classifier", "base" or "masked_lm"
Loader = Callable[[Path, str, int | None], nn.Module]

BUILTIN_FORMAT_MODULES = ("bertcompress.pruning.structured", "bertcompress.quant.pack")


@dataclass(frozen=True)
class ModelFormat:
    name: str
    detect: Callable[[Path], bool]
    load: Loader


_FORMATS: dict[str, ModelFormat] = {}


def register_format(name: str, detect: Callable[[Path], bool]) -> Callable[[Loader], Loader]:
    """Decorator: the decorated loader reads folders for which `detect` is true."""
    def bind(load: Loader) -> Loader:
        _FORMATS[name] = ModelFormat(name, detect, load)  # re-registering (a reload) replaces
        return load
    return bind


def registered_formats() -> list[ModelFormat]:
    for module in BUILTIN_FORMAT_MODULES:
        importlib.import_module(module)  # a no-op once imported
    return list(_FORMATS.values())


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
