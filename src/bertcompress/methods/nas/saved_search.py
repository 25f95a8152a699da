"""The finished search a `nas` run keeps in its output (DIR/supernet/), so that new budgets are picked
later without training the supernet again (`nas --resume` on a finished output; NAS-BERT's point:
one supernet, many models).

    supernet/model.safetensors  the trained supernet and its alive masks (the objective's state)
    supernet/search.json        the settings that made it, the survivors' held-out losses, the latency
                                table, its calibration and the teacher's latency, the pruning record,
                                and every re-ranked model measured so far (not measured again)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_model, save_model
from torch import nn

from bertcompress.core.config import to_dict
from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_write_json
from bertcompress.methods.nas.latency import LatencyCalibration, LatencyTable

KEPT_SEARCH = "supernet"  # the folder in the output
# What decides the trained supernet: a saved search serves a config only when all of these match.
SEARCH_SETTINGS = ("teacher", "corpus", "num_blocks", "hiddens", "embedding_sizes", "ops", "train", "prune", "latency",
                   "rerank_sequences")


def search_settings(cfg: Any) -> dict[str, Any]:
    """The settings of a NasConfig that a saved search must match, as plain JSON values."""
    values = {name: getattr(cfg, name) for name in SEARCH_SETTINGS}
    return json.loads(json.dumps({k: to_dict(v) if is_dataclass(v) else v for k, v in values.items()}))


@dataclass
class SearchResult:
    """What selection needs from a trained, pruned supernet (besides its weights)."""

    block_losses: list[np.ndarray]  # per block, held-out loss of each candidate; NaN for the pruned ones
    embedding_losses: np.ndarray
    table: LatencyTable
    calibration: LatencyCalibration
    teacher_ms: float
    pruning: dict[str, Any]
    supernet_seconds: float
    checked: dict[str, dict[str, Any]]  # re-ranked architectures: losses, parameters, measured latency
    reused: bool = False  # loaded from an earlier run's output, not trained by this one

    def save(self, folder: Path, settings: dict[str, Any], objective: nn.Module,
             weights_from: Path | None = None) -> None:
        """Write the search to `folder`; the weights are `objective`'s, or linked from an earlier
        saved search (`weights_from`, when this one was loaded from it)."""
        folder.mkdir(parents=True, exist_ok=True)
        if weights_from is not None:
            link_or_copy(weights_from / "model.safetensors", folder / "model.safetensors")
        else:
            save_model(objective, str(folder / "model.safetensors"))
        atomic_write_json(folder / "search.json", {
            "settings": settings,
            "block_losses": [[None if np.isnan(x) else float(x) for x in losses] for losses in self.block_losses],
            "embedding_losses": self.embedding_losses.tolist(), "table": self.table.to_dict(),
            "calibration": self.calibration.to_dict(), "teacher_ms": self.teacher_ms, "pruning": self.pruning,
            "supernet_seconds": self.supernet_seconds, "checked": self.checked})

    @classmethod
    def load(cls, folder: Path, settings: dict[str, Any], objective: nn.Module) -> SearchResult | None:
        """The search saved in `folder`, its weights loaded into `objective`; None when there is none.
        A search made with other settings is an error, not silently replaced: say what differs."""
        path = folder / "search.json"
        if not path.is_file():
            return None
        try:
            saved = json.loads(path.read_text())
            differ = [k for k in SEARCH_SETTINGS if saved["settings"].get(k) != settings[k]]
        except (OSError, ValueError, KeyError, AttributeError) as e:
            raise UserError(f"nas --resume: {path} is unreadable ({e}); remove {folder} to search again") from None
        if differ:
            raise UserError(f"nas --resume: the search kept in {folder} was made with other {', '.join(differ)}; "
                            "resume with those settings, or run without --resume (a new output) to search again")
        missing, unexpected = load_model(objective, str(folder / "model.safetensors"), strict=False)
        if missing or unexpected:
            raise UserError(f"nas --resume: {folder}/model.safetensors does not match this supernet "
                            f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
        return cls(block_losses=[np.array([np.nan if x is None else x for x in b], dtype=float)
                                 for b in saved["block_losses"]],
                   embedding_losses=np.asarray(saved["embedding_losses"], dtype=float),
                   table=LatencyTable.from_dict(saved["table"]),
                   calibration=LatencyCalibration.from_dict(saved["calibration"]),
                   teacher_ms=float(saved["teacher_ms"]), pruning=saved["pruning"],
                   supernet_seconds=float(saved["supernet_seconds"]), checked=saved["checked"], reused=True)


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link (the weights can be large and are never changed in place), a copy where links fail."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
