"""Size and CPU/GPU latency, measured the same way for every model so ratios are fair."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..models.architecture import base_model
from ..models.intermediates import model_inputs


def parameter_counts(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    emb = sum(p.numel() for p in base_model(model).embeddings.parameters())
    return {"parameters": total, "non_embedding_parameters": total - emb}


def bytes_on_disk(folder: str | Path) -> int:
    """Bytes of the saved weights (safetensors/bin), not of tokenizer or config files."""
    folder = Path(folder)
    return sum(p.stat().st_size for p in folder.iterdir()
               if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt", ".onnx"))


def time_call(fn: Callable[[], object], *, warmup: int = 3, repeats: int = 20,
              clock: Callable[[], float] = time.perf_counter, sync: Callable[[], None] = lambda: None) -> dict:
    """Median and p90 wall time of `fn` in milliseconds, after warm-up."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        sync()
        times.append((clock() - t0) * 1000.0)
    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return {"median_ms": statistics.median(times), "p90_ms": p90, "repeats": repeats}


@torch.no_grad()
def measure_latency(model: nn.Module, *, batch_size: int = 1, seq_len: int = 128, repeats: int = 20,
                    warmup: int = 3, device: str = "cpu", threads: int | None = None) -> dict:
    """Forward latency on a synthetic full-length batch (every token real)."""
    if threads is not None:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    model = model.to(dev).eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(5, vocab, (batch_size, seq_len), generator=g).to(dev),
             "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long, device=dev),
             "token_type_ids": torch.zeros(batch_size, seq_len, dtype=torch.long, device=dev)}
    inputs = model_inputs(batch, model)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    stats = time_call(lambda: model(**inputs), warmup=warmup, repeats=repeats, sync=sync)
    return {**stats, "batch_size": batch_size, "seq_len": seq_len, "device": device,
            "threads": torch.get_num_threads()}
