"""The frozen teacher's outputs, computed once and read back from disk.

For a base teacher and a small student, the teacher's forward is most of a task-distillation step,
and it is the same every epoch, in both phases and in every resumed or repeated run. One pass over
the training set (the task data and its augmentations, dropout off) stores what the losses read:
the logits always, and the mapped layers' hidden states and attention scores unpadded, in half
precision by default (`teacher_cache.dtype`). A training step then reads its rows back instead of
running the teacher; the result is the live teacher's to the storage precision (in float32, to the
rounding of a batch padded to another width).

The folder is keyed by everything that determines its values: the teacher's weight and config
bytes, the teacher's token ids of every training example (so the tokenizer, the examples, their
order and the max length), the storage dtype and the precision the teacher ran in. Any change is
another key, so a stale folder is never read; it is written whole or not at all. A folder serves any
request for the layers it holds (a prediction-only run reads an intermediate run's logits); asked
for layers it lacks, it is rebuilt with the asked ones.

Layer outputs larger than `teacher_cache.max_gb`, or than the free disk, are not stored: then only
the logits are (the prediction phase still skips the teacher) and the intermediate phase runs the
teacher live, said in one console line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from bertcompress.core.errors import UserError
from bertcompress.core.log import log, progress_bar
from bertcompress.methods.distill.config import TeacherCacheConfig
from bertcompress.models.assets import cache_root
from bertcompress.models.intermediates import Intermediates
from bertcompress.models.loading import hub_kwargs, resolve_model_path

CACHE_FORMAT = "bertcompress-teacher-outputs/1"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json")


@dataclass(frozen=True)
class CachedLayers:
    """What a cache holds beside the logits: hidden states (0 = the embedding output) and
    attention scores (1-based layers)."""

    hidden: tuple[int, ...] = ()
    scores: tuple[int, ...] = ()

    def covers(self, other: CachedLayers) -> bool:
        return set(other.hidden) <= set(self.hidden) and set(other.scores) <= set(self.scores)


def teacher_fingerprint(teacher: str) -> str:
    """sha256 over the teacher folder's weight and config files (contents, not dates)."""
    path = Path(resolve_model_path(teacher))
    h = hashlib.sha256()
    files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix in _WEIGHT_SUFFIXES) if path.is_dir() else []
    if not files:
        # a hub id: its name and the revision it pins (the hub pins the files)
        h.update((str(path) + "".join(f"@{v}" for v in hub_kwargs(teacher).values())).encode())
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            while block := fh.read(1 << 24):
                h.update(block)
    return h.hexdigest()


_TEACHER_INPUTS = {"teacher_input_ids": "input_ids", "teacher_attention_mask": "attention_mask",
                   "teacher_token_type_ids": "token_type_ids"}


def teacher_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What the teacher reads: its own encoding when the batch carries one, else the shared batch."""
    if "teacher_input_ids" not in batch:
        return batch
    return {new: batch[old] for old, new in _TEACHER_INPUTS.items() if old in batch}


def teacher_ids(feature: dict[str, Any]) -> tuple[list[int], list[int] | None]:
    """The ids the teacher reads for a feature: its own encoding where the student has another
    vocabulary (data/alignment.py), else the shared one."""
    if "teacher_input_ids" in feature:
        return feature["teacher_input_ids"], feature.get("teacher_token_type_ids")
    return feature["input_ids"], feature.get("token_type_ids")


def cache_key(fingerprint: str, features: list[dict[str, Any]], dtype: str, precision: str) -> str:
    """What determines every stored value: the stored layers are not part of it (a folder that holds
    more layers than asked serves the request; one that lacks some is rebuilt)."""
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_FORMAT, fingerprint, dtype, precision]).encode())
    for f in features:
        h.update(json.dumps(teacher_ids(f)).encode())
    return h.hexdigest()


class TeacherOutputs:
    """A finished cache folder, read through memory maps."""

    def __init__(self, folder: Path, build_seconds: float = 0.0) -> None:
        self.folder = folder
        self.build_seconds = build_seconds  # 0: found on disk
        meta = json.loads((folder / "meta.json").read_text())
        self.layers = CachedLayers(tuple(meta["hidden"]), tuple(meta["scores"]))
        self.lengths = np.asarray(meta["lengths"], dtype=np.int64)
        self.heads = meta["heads"]
        self.num_layers = meta["num_layers"]
        self.token_logits = meta["token_logits"]
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.pair_starts = np.concatenate([[0], np.cumsum(self.heads * self.lengths ** 2)[:-1]])
        self.logits = np.load(folder / "logits.npy", mmap_mode="r")
        self.hidden = {i: np.load(folder / f"hidden_{i}.npy", mmap_mode="r") for i in self.layers.hidden}
        self.scores = {i: np.load(folder / f"scores_{i}.npy", mmap_mode="r") for i in self.layers.scores}

    def fetch(self, index: torch.Tensor, width: int, device: torch.device) -> Intermediates:
        """The teacher's outputs for the training examples `index` (B,), padded to `width` tokens as
        a live forward of that batch would be (zeros at padding, scores 0 at padded pairs)."""
        rows = index.tolist()
        b = len(rows)

        def tokens(store: np.ndarray) -> torch.Tensor:
            out = np.zeros((b, width, store.shape[-1]), dtype=np.float32)
            for r, i in enumerate(rows):
                out[r, :self.lengths[i]] = store[self.starts[i]:self.starts[i] + self.lengths[i]]
            return torch.from_numpy(out).to(device, non_blocking=True)

        hidden: list[torch.Tensor | None] = [None] * (self.num_layers + 1)
        for layer, store in self.hidden.items():
            hidden[layer] = tokens(store)
        scores = {}
        for layer, store in self.scores.items():
            out = np.zeros((b, self.heads, width, width), dtype=np.float32)
            for r, i in enumerate(rows):
                n = int(self.lengths[i])
                start = self.pair_starts[i]
                out[r, :, :n, :n] = store[start:start + self.heads * n * n].reshape(self.heads, n, n)
            scores[layer] = torch.from_numpy(out).to(device, non_blocking=True)
        logits = tokens(self.logits) if self.token_logits else \
            torch.from_numpy(np.asarray(self.logits[rows], dtype=np.float32)).to(device, non_blocking=True)
        return Intermediates(hidden_states=tuple(hidden), scores=scores, logits=logits)


def build_teacher_outputs(run_teacher: Callable[[dict[str, torch.Tensor]], Intermediates],
                          features: list[dict[str, Any]], collate: Callable[[list[dict]], dict],
                          layers: CachedLayers, cfg: TeacherCacheConfig, *, teacher: str, hidden_size: int,
                          heads: int, num_layers: int, precision: str, device: torch.device,
                          batch_size: int = 64, progress: bool = True) -> TeacherOutputs:
    """The cache of `features` (their teacher ids, in this order), from the folder of its key when
    one exists, else by one pass of `run_teacher` (a batch of teacher inputs, `teacher_inputs` ->
    Intermediates) written to that folder. Layer outputs too big for `cfg.max_gb` or the free disk
    are left out (logits only), said once."""
    root = Path(cfg.dir).expanduser() if cfg.dir else cache_root() / "teacher_outputs"
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key(teacher_fingerprint(teacher), features, cfg.dtype, precision)
    folder = root / key[:32]
    meta_path = folder / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("key") == key:
        found = TeacherOutputs(folder)
        if found.layers.covers(layers):
            log.info(f"teacher cache: reusing {folder}")
            return found
    lengths = [len(teacher_ids(f)[0]) for f in features]
    itemsize = np.dtype(cfg.dtype).itemsize
    layer_bytes = itemsize * (sum(lengths) * hidden_size * len(layers.hidden)
                              + sum(n * n for n in lengths) * heads * len(layers.scores))
    free = shutil.disk_usage(root).free
    if layers != CachedLayers() and (layer_bytes > cfg.max_gb * 1e9 or layer_bytes > 0.8 * free):
        log.info(f"teacher cache: the layer outputs would take {layer_bytes / 1e9:.1f} GB (teacher_cache."
                 f"max_gb {cfg.max_gb:g}, {free / 1e9:.0f} GB free): caching the logits only; the intermediate phase "
                 "runs the teacher live")
        layers = CachedLayers()

    t0 = time.perf_counter()
    tmp = root / f".{key[:32]}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        per_token = _write(tmp, run_teacher, features, collate, layers, cfg.dtype, lengths, heads, batch_size,
                           device, progress)
        meta = {"format": CACHE_FORMAT, "key": key, "teacher": str(teacher), "hidden": list(layers.hidden),
                "scores": list(layers.scores), "lengths": lengths, "heads": heads, "num_layers": num_layers,
                "dtype": cfg.dtype, "precision": precision, "token_logits": per_token}
        (tmp / "meta.json").write_text(json.dumps(meta))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(f.stat().st_size for f in folder.iterdir())
    seconds = time.perf_counter() - t0
    log.info(f"teacher cache: {len(features):,} examples, {size / 1e6:,.0f} MB in {folder} "
             f"({seconds:.0f} s)")
    return TeacherOutputs(folder, seconds)


def _write(folder: Path, run_teacher, features, collate, layers: CachedLayers, dtype: str, lengths: list[int],
           heads: int, batch_size: int, device: torch.device, progress: bool) -> bool:
    """Fills the folder's arrays; whether the logits are per token (a tagging teacher)."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    pair_sizes = [heads * n * n for n in lengths]
    pair_starts = np.concatenate([[0], np.cumsum(pair_sizes)[:-1]]).astype(np.int64)
    stores: dict[str, np.ndarray] = {}
    limit = np.finfo(dtype).max

    def fits(values: np.ndarray, name: str) -> np.ndarray:
        if np.abs(values).max(initial=0) > limit:
            raise UserError(f"teacher cache: {name} has values beyond {dtype}'s range; set teacher_cache.dtype: "
                               "float32")
        return values

    def store(name: str, shape: tuple[int, ...], np_dtype: str) -> np.ndarray:
        if name not in stores:
            stores[name] = np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=np_dtype, shape=shape)
        return stores[name]

    order = sorted(range(len(features)), key=lambda i: lengths[i])  # little padding per batch
    per_token = False
    with torch.no_grad():
        for at in progress_bar(range(0, len(order), batch_size), desc="teacher outputs", unit="batch",
                       disable=not progress, dynamic_ncols=True):
            rows = order[at:at + batch_size]
            batch = teacher_inputs({k: v.to(device) for k, v in collate([features[i] for i in rows]).items()})
            out = run_teacher(batch)
            logits = out.logits.float().cpu().numpy()
            per_token = logits.ndim == 3
            for layer in layers.hidden:
                h = fits(out.hidden_states[layer].to(torch.float32).cpu().numpy(), f"layer {layer}'s hidden states")
                dest = store(f"hidden_{layer}", (sum(lengths), h.shape[-1]), dtype)
                for r, i in enumerate(rows):
                    dest[starts[i]:starts[i] + lengths[i]] = h[r, :lengths[i]]
            for layer in layers.scores:
                s = fits(out.scores[layer].to(torch.float32).cpu().numpy(), f"layer {layer}'s attention scores")
                dest = store(f"scores_{layer}", (sum(pair_sizes),), dtype)
                for r, i in enumerate(rows):
                    n = lengths[i]
                    dest[pair_starts[i]:pair_starts[i] + pair_sizes[i]] = s[r, :, :n, :n].reshape(-1)
            if per_token:
                dest = store("logits", (sum(lengths), logits.shape[-1]), "float32")
                for r, i in enumerate(rows):
                    dest[starts[i]:starts[i] + lengths[i]] = logits[r, :lengths[i]]
            else:
                dest = store("logits", (len(features), logits.shape[-1]), "float32")
                dest[rows] = logits
    for arr in stores.values():
        arr.flush()
    return per_token
