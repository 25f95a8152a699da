"""Helpers shared by the benchmark scripts: where the shared data is, and writing results."""

from __future__ import annotations

import inspect
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bertcompress.core.log import show_messages  # noqa: E402

show_messages()  # the verbs' progress lines, as the CLI shows them

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BERTCOMPRESS_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "benchmarks" / "results"


def environment() -> dict[str, Any]:
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def write_result(name: str, result: dict[str, Any]) -> Path:
    from bertcompress.core.io import atomic_write_json

    path = RESULTS / f"{name}.json"
    atomic_write_json(path, result)
    return path


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:,.0f}"
    return "-" if v is None else str(v)


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


class Stages:
    """Runs a benchmark's stages once each. A stage whose output folder is finished (it holds
    bertcompress_config.yaml) is reused; one killed half-way resumes from its checkpoints; the wall
    seconds of the stages this work folder ran are kept in WORK/seconds.json across runs."""

    def __init__(self, work: Path, measure_only: bool = False, tag: str | None = None) -> None:
        self.work, self.measure_only, self.tag = Path(work), measure_only, tag
        self.seconds: dict[str, float] = dict(load_json(self.work / "seconds.json"))
        self.reused: list[str] = []  # stages found finished, not run by this call

    def __call__(self, name: str, fn: Callable[..., Any], cfg: Any) -> Path:
        out = Path(cfg.output)
        if (out / "bertcompress_config.yaml").is_file():
            self.reused.append(name)
            return out
        if self.measure_only:
            raise SystemExit(f"--measure-only: {out} is not finished; run without it first")
        t0 = time.perf_counter()
        if "resume" in inspect.signature(fn).parameters:
            fn(cfg, resume=(out.parent / f".{out.name}.checkpoints").is_dir())
        else:  # a quick stage with no checkpoints (extract)
            fn(cfg)
        self.record(name, time.perf_counter() - t0)
        return out

    def record(self, name: str, seconds: float) -> None:
        """Keep the wall time of a step that is not a stage (evaluation, timing)."""
        self.seconds[name] = round(seconds, 1)
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "seconds.json").write_text(json.dumps(self.seconds, indent=1))
        if self.tag:
            print(f"[{self.tag}] {name}: {self.seconds[name]:.0f} s", flush=True)


def min_over_rounds(measures: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Every measure's least value over `rounds` interleaved rounds (evaluation/profile.py
    `least_of_rounds`: interference only adds time, so the least of several is steady)."""
    from bertcompress.evaluation.profile import least_of_rounds

    return {name: min(values) for name, values in least_of_rounds(measures, rounds).items()}
