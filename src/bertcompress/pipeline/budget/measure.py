"""Latency and bytes on disk of the candidates, measured on this machine before anything trains.

Untrained weights run as fast as trained ones and take as many bytes, so each shape is built once
with random weights (the task's head included), written in each format into a temporary folder
(the real files: safetensors, ONNX, the packed KDLSQ folder with its int8 ONNX model) and timed
there. Timing follows the benchmarks: each shape's formats and the teacher in interleaved rounds
(`evaluation.profile.least_of_rounds`), every latency the least of its rounds, the teacher's the
least over all of them. One shape at a time is held in memory.

Shapes go smallest first. A shape at least as large in every size as one that missed a budget in a
format (beyond the margin) is not measured in that format: it is at least as slow and as big. A
format whose file misses a size budget is not timed.
"""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.core.log import log, progress_bar
from bertcompress.evaluation.budget import Budget, check
from bertcompress.evaluation.profile import (
    bytes_on_disk,
    latency_timer,
    least_of_rounds,
    onnx_latency_timer,
    parameter_counts,
)
from bertcompress.models.config import StudentConfig
from bertcompress.models.loading import auto_class, transformers_bars_off
from bertcompress.models.student import student_config
from bertcompress.pipeline.budget.grid import FORMATS, Candidate, Shape
from bertcompress.pipeline.budget.pick import assess


@dataclass(frozen=True)
class Setting:
    """How every latency is measured: stated in the report."""

    device: str = "cpu"
    threads: int = 1
    batch_size: int = 1
    seq_len: int = 128
    rounds: int = 3
    repeats: int = 5
    warmup: int = 2


def untrained(config, kind: str, num_labels: int | None, shape: Shape | None = None) -> nn.Module:
    """A model of `config`'s family with random weights, at `shape` (None: the config's own)."""
    if shape is not None:
        config = student_config(config, StudentConfig(num_layers=shape.layers, hidden_size=shape.hidden,
                                                      num_heads=shape.heads, ffn_size=shape.ffn), num_labels)
    else:
        config = copy.deepcopy(config)
        if num_labels is not None:
            config.num_labels = num_labels
    torch.manual_seed(0)
    return auto_class(kind).from_config(config).float().eval()


def onnx_timer(path: Path, model: nn.Module, setting: Setting) -> Callable[[], float]:
    from bertcompress.export.onnx import onnx_session

    session = onnx_session(path, setting.threads)
    return onnx_latency_timer(session, model, batch_size=setting.batch_size, seq_len=setting.seq_len,
                              repeats=setting.repeats, warmup=setting.warmup)


def torch_timer(model: nn.Module, setting: Setting) -> Callable[[], float]:
    return latency_timer(model, batch_size=setting.batch_size, seq_len=setting.seq_len, repeats=setting.repeats,
                         warmup=setting.warmup, device=setting.device, threads=setting.threads)


def write_formats(model: nn.Module, formats: list[str], folder: Path, setting: Setting
                  ) -> dict[str, tuple[int, Callable[[], Callable[[], float]]]]:
    """Each format of `model` written under `folder`: {format: (bytes on disk, a function making
    its timer)}; timers are made only for the formats that are timed (they hold sessions)."""
    from bertcompress.export.onnx import export_onnx

    out: dict[str, tuple[int, Callable[[], Callable[[], float]]]] = {}
    if "fp32" in formats:
        with transformers_bars_off():
            model.save_pretrained(folder / "fp32")
        out["fp32"] = (bytes_on_disk(folder / "fp32"), lambda: torch_timer(model, setting))
    if "onnx" in formats:
        fp32_onnx = export_onnx(model, folder / "onnx" / "model.onnx")
        out["onnx"] = (fp32_onnx.stat().st_size, lambda: onnx_timer(fp32_onnx, model, setting))
    for bits in dict.fromkeys(FORMATS[f].bits for f in formats if FORMATS[f].bits):
        packed = _packed(model, bits, folder / bits, with_onnx="onnx-int8" in formats and bits == "w8a8")
        if bits in formats:  # (a default argument: each bit width's own folder, not the loop's last)
            out[bits] = (bytes_on_disk(packed), lambda packed=packed: torch_timer(_load_packed(packed), setting))
        if "onnx-int8" in formats and bits == "w8a8":
            int8_onnx = packed / "onnx" / "model.onnx"
            out["onnx-int8"] = (int8_onnx.stat().st_size, lambda: onnx_timer(int8_onnx, model, setting))
    return out


def _packed(model: nn.Module, bits: str, folder: Path, with_onnx: bool) -> Path:
    """The packed KDLSQ folder of `model` at `bits` (activation steps from one synthetic batch)."""
    from bertcompress.export.onnx_int8 import export_onnx_int8
    from bertcompress.models.inputs import synthetic_batch
    from bertcompress.models.quantized.config import QuantConfig
    from bertcompress.models.quantized.modules import calibrate_, quantize_
    from bertcompress.models.quantized.packed import save_packed

    quant = QuantConfig.parse(bits)
    q = quantize_(copy.deepcopy(model), quant)
    calibrate_(q, synthetic_batch(q, 2, 16))
    kind = "token_classifier" if "TokenClassification" in type(model).__name__ else "classifier"
    return save_packed(folder, q, quant, write_onnx=export_onnx_int8 if with_onnx else None, model_kind=kind)


def _load_packed(folder: Path) -> nn.Module:
    from bertcompress.models.quantized.packed import load_packed

    return load_packed(folder)


def measure_grid(source_config, teacher: nn.Module, shape_list: list[Shape], formats: list[str],
                 budgets: list[Budget], margin: float, setting: Setting, kind: str,
                 num_labels: int | None) -> tuple[float, list[Candidate]]:
    """The teacher's latency (least over every round) and every candidate, measured or skipped,
    with its status against `budgets` (margin on latency) at that teacher latency."""
    teacher_timer = torch_timer(teacher, setting)
    teacher_values: list[float] = []
    missed: list[Candidate] = []  # candidates that miss a budget (latency: with the margin), by format
    candidates: list[Candidate] = []
    sized = sorted(((_parameters(source_config, s, kind, num_labels), s) for s in shape_list),
                   key=lambda p: (p[0][0], p[1].layers))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bertcompress-budget-") as scratch:
        for i, (params, shape) in enumerate(progress_bar(sized, desc="budget: measuring candidates",
                                                           unit="shape")):
            group = [Candidate(shape, f, *params) for f in formats]
            for c in group:
                bigger_than = next((m for m in missed if m.format == c.format and shape.covers(m.shape)), None)
                if bigger_than is not None:
                    c.status, c.note = "skipped", f"at least as large as {bigger_than.shape.name}, which misses"
                elif _misses(c, budgets, None, margin, only=("params",)):
                    c.status, c.note = "misses", "too many parameters"
            todo = [c for c in group if c.status == "not measured"]
            if todo:
                _measure_group(source_config, shape, todo, budgets, margin, setting, kind, num_labels,
                               Path(scratch) / f"{i:03d}", teacher_timer, teacher_values)
                timed = [c for c in todo if c.latency_ms is not None]
                if timed:  # at the teacher's least latency so far (it was timed with them)
                    assess(timed, budgets, min(teacher_values), margin)
            # a shape at least as large is ruled out by a clear miss only: over a limit itself, not just
            # inside the margin (one noisy round then rules out less)
            teacher_ms = min(teacher_values, default=None)
            missed += [c for c in group if c.status == "misses" and _clearly_misses(c, budgets, teacher_ms)]
            candidates += group
    if not teacher_values:  # every candidate was ruled out before timing: time the teacher alone
        teacher_values += least_of_rounds({"teacher": teacher_timer}, setting.rounds)["teacher"]
    teacher_ms = min(teacher_values)
    assess(candidates, budgets, teacher_ms, margin)  # against the teacher's least latency over all rounds
    log.info(f"budget: measured {sum(c.latency_ms is not None for c in candidates)} of {len(candidates)} "
             f"candidates in {time.perf_counter() - t0:.0f} s")
    return teacher_ms, candidates


def _parameters(source_config, shape: Shape, kind: str, num_labels: int | None) -> tuple[int, int]:
    """Parameters of the shape's model, all and outside the embeddings, from a model built on the
    meta device (no memory, no time)."""
    config = student_config(source_config, StudentConfig(num_layers=shape.layers, hidden_size=shape.hidden,
                                                         num_heads=shape.heads, ffn_size=shape.ffn), num_labels)
    with torch.device("meta"):
        counts = parameter_counts(auto_class(kind).from_config(config))
    return counts["parameters"], counts["non_embedding_parameters"]


def _clearly_misses(c: Candidate, budgets: list[Budget], teacher_ms: float | None) -> bool:
    """Over a limit itself (no margin); a speed-up is judged once the teacher has been timed."""
    usable = [b for b in budgets if b.kind != "speedup" or teacher_ms is not None]
    return not all(r["met"] for r in check(c.costs, usable, teacher_ms, 0.0))


def _misses(c: Candidate, budgets: list[Budget], teacher_ms: float | None, margin: float,
            only: tuple[str, ...]) -> bool:
    chosen = [b for b in budgets if b.kind in only]
    return bool(chosen) and not all(r["met"] for r in check(c.costs, chosen, teacher_ms, margin))


def _measure_group(source_config, shape: Shape, todo: list[Candidate], budgets: list[Budget], margin: float,
                   setting: Setting, kind: str, num_labels: int | None, folder: Path,
                   teacher_timer: Callable[[], float], teacher_values: list[float]) -> None:
    """Write one shape's formats, rule out those over a size budget, time the rest with the teacher."""
    model = untrained(source_config, kind, num_labels, shape)
    folder.mkdir(parents=True)
    try:
        written = write_formats(model, [c.format for c in todo], folder, setting)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - an exporter's or runtime's failure: one line naming the format to drop
        raise UserError(f"budget: cannot write candidate {shape.name} ({type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}); leave its format out "
                        "(budget.formats)") from None
    timers: dict[str, Callable[[], float]] = {}
    for c in todo:
        c.bytes = written[c.format][0]
        if _misses(c, budgets, None, margin, only=("bytes",)):
            c.status, c.note = "misses", "too large on disk"
        else:
            timers[c.format] = written[c.format][1]()
    if not timers:
        return
    values = least_of_rounds({"teacher": teacher_timer, **timers}, setting.rounds)
    teacher_values += values["teacher"]
    for c in todo:
        if c.format in timers:
            c.latency_ms = min(values[c.format])
    del timers, model
