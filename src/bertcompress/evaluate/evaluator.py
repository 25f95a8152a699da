"""`evaluate`: score saved models on a task's split, with size and CPU latency, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..config import DataConfig
from ..data import Collator, encode_examples, load_examples
from ..models.loading import load_model, load_tokenizer, resolve_model_path
from .predict import score
from .profile import bytes_on_disk, measure_latency, parameter_counts


def evaluate(models: list[str], data: DataConfig, *, split: str | None = None, latency: bool = True,
             seq_len: int = 128, batch_sizes: tuple[int, ...] = (1, 32), threads: int | None = None,
             repeats: int = 10) -> list[dict[str, Any]]:
    """One record per model: task metrics, parameter counts, bytes on disk, latency."""
    split = split or data.eval_split
    task, examples = load_examples(data, split)
    records = []
    for name in models:
        tokenizer = load_tokenizer(name)
        model = load_model(name, "classifier", num_labels=task.num_labels).eval()
        features = encode_examples(tokenizer, examples, data.max_seq_len)
        metrics = score(model, task, features, Collator(tokenizer.pad_token_id or 0))
        record: dict[str, Any] = {"model": name, "task": task.name, "split": split, "examples": len(examples),
                                  **metrics, **parameter_counts(model),
                                  "bytes_on_disk": bytes_on_disk(resolve_model_path(name))}
        if latency:
            with torch.inference_mode():
                record["latency"] = {f"batch{b}": measure_latency(model, batch_size=b, seq_len=seq_len,
                                                                   repeats=repeats, threads=threads)
                                     for b in batch_sizes}
        records.append(record)
    return records


def compare(teacher: dict[str, Any], student: dict[str, Any]) -> dict[str, float]:
    """Student-against-teacher ratios (> 1 means the student is smaller or faster)."""
    out = {"retention": student["score"] / teacher["score"] if teacher["score"] else float("nan"),
           "size_ratio": teacher["parameters"] / student["parameters"],
           "disk_ratio": teacher["bytes_on_disk"] / max(1, student["bytes_on_disk"])}
    for key, lat in student.get("latency", {}).items():
        if key in teacher.get("latency", {}):
            out[f"latency_ratio_{key}"] = teacher["latency"][key]["median_ms"] / lat["median_ms"]
    return out


def records_markdown(records: list[dict[str, Any]]) -> str:
    """A table of records, one row per model."""
    lat_keys = sorted({k for r in records for k in r.get("latency", {})}, key=lambda k: int(k[5:]))
    head = ["model", "score", "parameters", "MB on disk"] + [f"{k} ms" for k in lat_keys]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        cells = [Path(r["model"]).name or r["model"], f"{r['score']:.4f}", f"{r['parameters']:,}",
                 f"{r['bytes_on_disk'] / 1e6:.1f}"]
        cells += [f"{r['latency'][k]['median_ms']:.1f}" if k in r.get("latency", {}) else "-" for k in lat_keys]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
