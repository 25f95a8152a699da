"""The one lazy-import mechanism: objects named by "module:attribute" (module relative to the
bertcompress package), imported on first use. The command table and the package's public API name
their verbs and configs this way, so `import bertcompress` and `bertcompress --help` never import
torch or transformers."""

from __future__ import annotations

import importlib
from typing import Any, Callable

PACKAGE = "bertcompress"


def resolve(ref: str) -> Any:
    """The object a "module:attribute" reference names, e.g. "methods.distill.verb:distill"."""
    module, attr = ref.split(":")
    return getattr(importlib.import_module(f"{PACKAGE}.{module}"), attr)


def lazy_getattr(module_name: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` that serves `table[name]` (a "module:attribute" reference)."""
    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        return resolve(table[name])
    return __getattr__
