"""The final check: the model `run` built, in the format it ships in, re-measured in interleaved
rounds with the fine-tuned teacher at the decision's setting; per budget, met or missed (no margin
here: the margin was for the decision).

What is timed and counted, by format: fp32, the student folder in PyTorch; onnx, its
student/onnx/model.onnx in ONNX Runtime; onnx-int8, the quantized folder's onnx/model.onnx; w8a8
and w4a8, the packed quantized folder in PyTorch (bytes: quantized.safetensors).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from bertcompress.core.log import log
from bertcompress.evaluation.budget import check, parse_budgets, result_line
from bertcompress.evaluation.profile import bytes_on_disk, least_of_rounds
from bertcompress.models.loading import count_parameters, load_model
from bertcompress.pipeline.budget.measure import Setting, onnx_timer, torch_timer
from bertcompress.pipeline.budget.plan import Decision

ONNX_FILE = Path("onnx") / "model.onnx"


def shipped(decision: Decision, student_dir: Path, quantized_dir: Path) -> Path:
    """The file or folder the pick ships as."""
    fmt = decision.pick.format
    if fmt == "fp32":
        return student_dir
    if fmt == "onnx":
        return student_dir / ONNX_FILE
    return quantized_dir / ONNX_FILE if fmt == "onnx-int8" else quantized_dir


def export_student_onnx(student_dir: Path, kind: str) -> Path:
    """student/onnx/model.onnx, the form an `onnx` pick ships in (kept when it is already there)."""
    from bertcompress.export.onnx import export_onnx

    path = student_dir / ONNX_FILE
    if not path.is_file():
        export_onnx(load_model(str(student_dir), kind), path)
    return path


def final_check(decision: Decision, teacher_dir: Path, student_dir: Path, quantized_dir: Path, kind: str
                ) -> dict[str, Any]:
    """The shipped model's latency (least of the rounds), bytes and parameters, the teacher's
    latency from the same rounds, and each budget's result; `met` when every budget is met."""
    s = decision.setting
    setting = Setting(**{f.name: s[f.name] for f in fields(Setting)})  # the decision's, saved beside its extras
    fmt, path = decision.pick.format, shipped(decision, student_dir, quantized_dir)
    model = load_model(str(quantized_dir if decision.bits else student_dir), kind)  # a quantized pick: KDLSQ's
    parameters = count_parameters(model)
    if path.suffix == ".onnx":
        size, timer = path.stat().st_size, onnx_timer(path, model, setting)
    else:
        size, timer = bytes_on_disk(path), torch_timer(model, setting)
    teacher = load_model(str(teacher_dir), kind)
    values = least_of_rounds({"teacher": torch_timer(teacher, setting), "final": timer}, setting.rounds)
    teacher_ms, ms = min(values["teacher"]), min(values["final"])
    results = check({"latency_ms": ms, "bytes": size, "parameters": parameters}, parse_budgets(decision.targets),
                    teacher_ms, margin=0.0)
    final = {"model": str(path), "format": fmt, "latency_ms": ms, "teacher_ms": teacher_ms,
             "speedup": teacher_ms / ms, "bytes": size, "parameters": parameters, "results": results,
             "met": all(r["met"] for r in results)}
    for r in results:
        (log.info if r["met"] else log.warning)(f"budget {result_line(r)} (final model {path}, re-measured beside "
                                                 f"the teacher: {teacher_ms:.1f} ms)")
    return final
