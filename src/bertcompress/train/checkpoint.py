"""Resumable training state: written atomically, read without unpickling arbitrary objects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError

CHECKPOINT_NAME = "last.pt"


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_NAME
    tmp = folder / f".{CHECKPOINT_NAME}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # a kill mid-save leaves the previous checkpoint intact
    return path


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    path = folder / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a corrupt file is a user-facing problem
        raise UserError(f"cannot resume: checkpoint {path} is unreadable ({type(e).__name__})") from None
