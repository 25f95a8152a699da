"""Resumable training state: written atomically, read without unpickling arbitrary objects."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_write

CHECKPOINT_NAME = "last.pt"


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    """A kill or a full disk mid-save leaves the previous checkpoint intact and nothing half-written:
    not the file, nor a checkpoint folder this save created."""
    created = [p for p in (folder.parent, folder) if not p.exists()]
    try:
        return atomic_write(folder / CHECKPOINT_NAME, lambda tmp: torch.save(state, tmp))
    except BaseException:
        for p in reversed(created):
            with contextlib.suppress(OSError):
                p.rmdir()  # only if still empty
        raise


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    path = folder / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a corrupt file is a user-facing problem
        raise UserError(f"cannot resume: checkpoint {path} is unreadable ({type(e).__name__})") from None
