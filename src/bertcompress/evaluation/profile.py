"""Size and latency, measured the same way for every model in a run so that ratios are fair.

Every model sees the same synthetic full-length batch (every token real), the same thread count,
warm-up and repeat count; each runtime (PyTorch eager on CPU, ONNX Runtime on CPU, PyTorch eager
on CUDA when present) reports the median and p90 of its repeats and the settings it ran with.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.models.architecture import base_model
from bertcompress.models.inputs import synthetic_batch

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx")  # in order of preference


def parameter_counts(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    emb = sum(p.numel() for p in base_model(model).embeddings.parameters())
    return {"parameters": total, "non_embedding_parameters": total - emb}


def bytes_on_disk(folder: str | Path) -> int:
    """Bytes of one copy of the saved weights: the safetensors files if any, else .bin, .pt, .onnx.

    One format only, so a folder holding both safetensors and an ONNX export is not counted twice;
    tokenizer and config files are not weights. A packed quantized folder counts its packed file
    only, not the dequantized fp32 copy beside it (models/quantized/packed.py).
    """
    from bertcompress.models.quantized.packed import WEIGHTS_FILE, is_packed

    if is_packed(folder) and (Path(folder) / WEIGHTS_FILE).is_file():
        return (Path(folder) / WEIGHTS_FILE).stat().st_size
    files = [p for p in Path(folder).iterdir() if p.is_file()]
    for suffix in WEIGHT_SUFFIXES:
        chosen = [p for p in files if p.suffix == suffix]
        if chosen:
            return sum(p.stat().st_size for p in chosen)
    return 0


def time_call(fn: Callable[[], object], *, warmup: int = 3, repeats: int = 20,
              clock: Callable[[], float] = time.perf_counter, sync: Callable[[], None] = lambda: None) -> dict:
    """Median and p90 (nearest rank) wall time of `fn` in milliseconds, after `warmup` untimed calls."""
    if repeats < 1 or warmup < 0:
        raise UserError(f"latency needs repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    for _ in range(warmup):
        fn()
    sync()  # queued GPU work from the warm-up must not land in the first timed call
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        sync()
        times.append((clock() - t0) * 1000.0)
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[math.ceil(0.9 * len(times)) - 1],
            "min_ms": times[0], "repeats": repeats, "warmup": warmup}


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the body with `threads` intra-op threads (None: as is), then restore the old count."""
    old = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise UserError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def machine_load() -> dict[str, float]:
    """The 1-minute load average and CPU count right after a measurement: a load above the CPU
    count means other work shared the cores and the times are not to be trusted."""
    try:
        return {"load_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count() or 0}
    except (AttributeError, OSError):  # no load average on this platform
        return {}


@torch.no_grad()
def measure_latency(model: nn.Module, *, batch_size: int = 1, seq_len: int = 128, repeats: int = 20,
                    warmup: int = 3, device: str = "cpu", threads: int | None = None) -> dict:
    """PyTorch eager forward latency (float32). The model is returned to the CPU afterwards."""
    dev = torch.device(device)
    inputs = {k: v.to(dev) for k, v in synthetic_batch(model, batch_size, seq_len).items()}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model.eval().to(dev)
    try:
        with torch_threads(threads) as used:
            stats = time_call(lambda: model(**inputs), warmup=warmup, repeats=repeats, sync=sync)
    finally:
        model.to("cpu")
    return {**stats, "runtime": "pytorch-eager", "device": dev.type, "batch_size": batch_size,
            "seq_len": seq_len, "threads": used, **machine_load()}


def measure_onnx_latency(session: Any, model: nn.Module, *, batch_size: int = 1, seq_len: int = 128,
                         repeats: int = 20, warmup: int = 3) -> dict:
    """ONNX Runtime latency of an exported `model` on the same batch PyTorch is timed on.

    The thread count is fixed when the session is made (see `export.onnx.onnx_session`).
    """
    feed = {k: v.numpy().astype(np.int64) for k, v in synthetic_batch(model, batch_size, seq_len).items()}
    stats = time_call(lambda: session.run(None, feed), warmup=warmup, repeats=repeats)
    threads = session.get_session_options().intra_op_num_threads
    return {**stats, "runtime": "onnxruntime", "device": "cpu", "batch_size": batch_size, "seq_len": seq_len,
            "threads": threads, **machine_load()}


def latency_timer(model: nn.Module, *, batch_size: int = 1, seq_len: int = 128, repeats: int = 5, warmup: int = 2,
                  device: str = "cpu", threads: int | None = None) -> Callable[[], float]:
    """A measure for `least_of_rounds`: each call times PyTorch eager (float32) as `measure_latency`
    does and returns the median in ms. The model moves to `device` now and stays there."""
    dev = torch.device(device)
    inputs = {k: v.to(dev) for k, v in synthetic_batch(model, batch_size, seq_len).items()}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model.eval().to(dev)

    @torch.no_grad()
    def measure() -> float:
        with torch_threads(threads):
            return time_call(lambda: model(**inputs), warmup=warmup, repeats=repeats, sync=sync)["median_ms"]
    return measure


def onnx_latency_timer(session: Any, model: nn.Module, *, batch_size: int = 1, seq_len: int = 128, repeats: int = 5,
                       warmup: int = 2) -> Callable[[], float]:
    """`latency_timer` for an ONNX Runtime session, on the batch PyTorch is timed on (`model` says
    which inputs it takes); threads are the session's own."""
    feed = {k: v.numpy().astype(np.int64) for k, v in synthetic_batch(model, batch_size, seq_len).items()}
    feed = {i.name: feed[i.name] for i in session.get_inputs()}
    return lambda: time_call(lambda: session.run(None, feed), warmup=warmup, repeats=repeats)["median_ms"]


def least_of_rounds(measures: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Every measure run `rounds` times, interleaved (each once per round, the order rotated): on a
    shared machine interference only adds time and it comes and goes, so one measurement can be 30%
    off while the least of several interleaved ones is steady. Returns every measure's values; its
    estimate is their min."""
    if rounds < 1:
        raise UserError(f"latency needs at least one round, got {rounds}")
    names = list(measures)
    seen: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seen[name].append(measures[name]())
    return seen


def profile_latency(model: nn.Module, *, batch_sizes: tuple[int, ...] = (1, 32), seq_len: int = 128,
                    repeats: int = 10, warmup: int = 3, threads: int | None = None,
                    cuda: bool | None = None) -> dict[str, dict]:
    """PyTorch eager latency per batch size: {"latency": CPU, "latency_cuda": CUDA}, each
    {"batch1": {...}, "batch32": {...}}. `threads` default: torch's current count; `cuda=None`:
    when a GPU is present."""
    threads = threads or torch.get_num_threads()
    out = {"latency": {f"batch{b}": measure_latency(model, batch_size=b, seq_len=seq_len, repeats=repeats,
                                                    warmup=warmup, threads=threads) for b in batch_sizes}}
    if torch.cuda.is_available() if cuda is None else cuda:
        out["latency_cuda"] = {f"batch{b}": measure_latency(model, batch_size=b, seq_len=seq_len, repeats=repeats,
                                                            warmup=warmup, device="cuda") for b in batch_sizes}
    return out


def onnx_latency(session: Any, model: nn.Module, *, batch_sizes: tuple[int, ...] = (1, 32), seq_len: int = 128,
                 repeats: int = 10, warmup: int = 3) -> dict[str, dict]:
    """ONNX Runtime latency per batch size, on the batches PyTorch is timed on."""
    return {f"batch{b}": measure_onnx_latency(session, model, batch_size=b, seq_len=seq_len, repeats=repeats,
                                              warmup=warmup) for b in batch_sizes}


LATENCY_KEYS = ("latency", "latency_onnx", "latency_cuda")


def ratios_against(baseline: dict, record: dict) -> dict[str, float]:
    """How much smaller and faster `record` is than `baseline` (> 1: smaller or faster), and the
    share of the baseline's score it keeps."""
    b_score, score = baseline.get("score"), record.get("score")
    # a share of a score that is no better than a constant predictor's means nothing
    meaningful = b_score and score is not None and baseline.get("learned", True)
    out = {"retention": score / b_score if meaningful else None,
           "size_ratio": baseline["parameters"] / record["parameters"],
           "non_embedding_size_ratio": (baseline["non_embedding_parameters"]
                                        / max(1, record["non_embedding_parameters"])),
           "disk_ratio": baseline["bytes_on_disk"] / max(1, record["bytes_on_disk"])}
    for key in LATENCY_KEYS:
        prefix = key.replace("latency", "latency_ratio")  # latency_ratio, latency_ratio_onnx, ...
        for batch, lat in record.get(key, {}).items():
            if batch in baseline.get(key, {}):
                out[f"{prefix}_{batch}"] = baseline[key][batch]["median_ms"] / lat["median_ms"]
    return out
