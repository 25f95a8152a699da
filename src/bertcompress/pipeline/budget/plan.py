"""The budget's decision in `run`: measure the candidates, print the table, pick (or refuse), and
the pick applied to the run's config: the student's shape and start, and the quantization stage
its format needs.

How a pick starts: from a pre-trained student (`student.init` names one) the shapes are its own,
cut by ETD when smaller (`run`'s extract stage); from the teacher (`student.init: teacher_layers`,
the default) a shape at the teacher's width copies whole teacher layers, a narrower one is an ETD
cut of the teacher followed by general distillation (extract, then distil); `student.init:
random` starts every shape from new weights.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bertcompress.core.config import to_dict
from bertcompress.core.errors import UserError
from bertcompress.core.log import log
from bertcompress.data.kinds import kind_of, load_examples
from bertcompress.evaluation.budget import parse_budgets
from bertcompress.models.loading import model_config
from bertcompress.pipeline.budget.grid import FORMATS, Candidate, candidate_table, shapes, source_sizes
from bertcompress.pipeline.budget.measure import Setting, measure_grid, untrained
from bertcompress.pipeline.budget.pick import pick
from bertcompress.pipeline.config import PipelineConfig

BUDGET_FILE = "budget.json"


@dataclass
class Decision:
    targets: list[str]
    setting: dict[str, Any]  # how latency was measured, the margin and the pick rule
    source: str  # the model whose family and sizes the shapes take
    teacher_ms: float  # the untrained teacher, least over every round
    candidates: list[Candidate]
    pick: Candidate
    why: str
    init: str  # student.init of the pick: teacher_layers, random, or the model it is cut from
    general_distillation: str
    head_rule: str  # losses.head_rule: mean when the pick has fewer heads than the teacher
    seconds: float
    inputs: dict[str, Any] = field(default_factory=dict)  # what the decision depends on (reused on resume)

    @property
    def bits(self) -> str | None:
        """The KDLSQ bit widths the pick is trained at, if it ships quantized."""
        return FORMATS[self.pick.format].bits

    def to_dict(self) -> dict[str, Any]:
        return {"targets": self.targets, "setting": self.setting, "source": self.source,
                "teacher_ms": self.teacher_ms, "candidates": [c.to_dict() for c in self.candidates],
                "pick": {**self.pick.to_dict(), "why": self.why, "init": self.init,
                         "general_distillation": self.general_distillation, "head_rule": self.head_rule,
                         "bits": self.bits,
                         "runtime": FORMATS[self.pick.format].runtime, "ships": FORMATS[self.pick.format].ships},
                "decision_seconds": self.seconds, "inputs": self.inputs}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        p = d["pick"]
        return cls(d["targets"], d["setting"], d["source"], d["teacher_ms"],
                   [Candidate.from_dict(c) for c in d["candidates"]], Candidate.from_dict(p), p["why"], p["init"],
                   p["general_distillation"], p["head_rule"], d["decision_seconds"], d.get("inputs", {}))

    def table(self) -> str:
        return candidate_table([c.to_dict() for c in self.candidates], self.teacher_ms)


def decision_inputs(cfg: PipelineConfig) -> dict[str, Any]:
    """What the decision depends on: a resumed run reuses its pick when these are unchanged."""
    budget = {k: v for k, v in to_dict(cfg.budget).items() if k not in ("soft", "dry_run")}
    return {"budget": budget, "teacher": cfg.teacher, "init": cfg.student.init, "task": cfg.data.task,
            "general_distillation": cfg.general_distillation}


def decide(cfg: PipelineConfig, out: Path, resume: bool = False) -> Decision:
    """Measure, show the table and pick; reused from OUT/budget.json when resuming the same decision.
    A one-line UserError when no candidate meets every budget (the table is logged first)."""
    inputs = decision_inputs(cfg)
    saved = out / BUDGET_FILE
    if resume and saved.is_file():
        try:
            earlier = Decision.from_dict(json.loads(saved.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            earlier = None
        if earlier is not None and earlier.inputs == json.loads(json.dumps(inputs)):
            log.info(f"budget: reusing the pick of {saved}: {earlier.why}")
            return earlier
    budget = cfg.budget
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise UserError("--budget measures this machine from one process: under torchrun, pick first with "
                        "`bertcompress run ... --budget ... --dry-run` and pass the picked shape (--set student.*)")
    import torch

    if budget.device == "cuda" and not torch.cuda.is_available():
        raise UserError("budget.device cuda asked for, but no CUDA device is available")
    formats = budget.run_formats
    if budget.device == "cuda" and formats != ["fp32"]:
        raise UserError(f"budget.device cuda times PyTorch on the GPU: budget.formats must be fp32 there "
                        f"(ONNX Runtime and the packed models run on the CPU here), got {', '.join(formats)}")
    t0 = time.perf_counter()
    budgets = parse_budgets(budget.targets)
    task, _ = load_examples(cfg.data, cfg.data.eval_split, allow_tagging=True)
    kind = kind_of(task).model_kind
    source = cfg.student.pretrained or cfg.teacher
    teacher_config, source_config = _config(cfg.teacher, "teacher"), _config(source, "student.init")
    what = f"student.init {source}" if cfg.student.pretrained else f"the teacher {source}"
    grid = shapes(source_config, budget.depths, budget.widths, budget.ffn_ratios, what)
    setting = Setting(device=budget.device, threads=budget.threads or torch.get_num_threads(),
                      batch_size=budget.batch_size, seq_len=budget.seq_len, rounds=budget.rounds,
                      repeats=budget.repeats)
    log.info(f"budget: {', '.join(b.text for b in budgets)}; timing the teacher and {len(grid)} shapes x "
             f"{len(formats)} formats ({', '.join(formats)}) on {setting.device}, {setting.threads} threads, batch "
             f"{setting.batch_size} x {setting.seq_len} tokens, least of {setting.rounds} interleaved rounds")
    teacher = untrained(teacher_config, kind, task.num_labels)
    teacher_ms, candidates = measure_grid(source_config, teacher, grid, formats, budgets, budget.margin, setting,
                                          kind, task.num_labels)
    setting_dict = {**vars(setting), "margin": budget.margin, "pick": budget.pick, "formats": formats,
                    "teacher_runtime": "PyTorch eager, float32"}
    try:
        chosen, why = pick(candidates, budgets, teacher_ms, budget.margin)
    finally:
        log.info(f"budget: the teacher takes {teacher_ms:.1f} ms; the candidates:\n"
                 + candidate_table([c.to_dict() for c in candidates], teacher_ms))
    init, general = start_of(cfg, chosen, teacher_config)
    head_rule = cfg.losses.head_rule
    if chosen.shape.heads != source_sizes(teacher_config)[2] and cfg.losses.weights.get("attention", 0) > 0:
        head_rule = "mean"  # the attention loss then compares head-averaged maps (losses.head_rule)
    decision = Decision(list(budget.targets), setting_dict, source, teacher_ms, candidates, chosen, why, init,
                        general, head_rule, round(time.perf_counter() - t0, 1), json.loads(json.dumps(inputs)))
    log.info(f"budget: picked {why}; it starts from {_start_words(decision)} (decided in {decision.seconds:.0f} s)")
    return decision


def _config(name: str, role: str):
    try:
        return model_config(name)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read the config of {role} {name}: {str(e).strip().splitlines()[0]}") from None


def start_of(cfg: PipelineConfig, pick: Candidate, teacher_config) -> tuple[str, str]:
    """student.init and general_distillation for the pick (the module's docstring says which)."""
    general = cfg.general_distillation
    if cfg.student.pretrained is not None or cfg.student.init == "random":
        return cfg.student.init, general
    _, hidden, heads, ffn = source_sizes(teacher_config)
    if (pick.shape.hidden, pick.shape.heads, pick.shape.ffn) == (hidden, heads, ffn):
        return "teacher_layers", general
    return cfg.teacher, "run" if general == "auto" else general


def _start_words(d: Decision) -> str:
    if d.init in ("teacher_layers", "random"):
        words = "whole teacher layers" if d.init == "teacher_layers" else "new weights"
    else:
        words = f"{d.init} (ETD-cut when smaller)" + (", then general distillation"
                                                     if d.general_distillation == "run" else "")
    if d.head_rule == "mean":
        words += "; with fewer heads than the teacher, its attention loss compares head-averaged maps"
    return words


def apply(cfg: PipelineConfig, decision: Decision) -> PipelineConfig:
    """`cfg` with the pick's shape and start as its student."""
    shape = decision.pick.shape
    student = replace(cfg.student, num_layers=shape.layers, hidden_size=shape.hidden, num_heads=shape.heads,
                      ffn_size=shape.ffn, init=decision.init, init_layers=None)
    losses = replace(cfg.losses, head_rule=decision.head_rule)
    return replace(cfg, student=student, general_distillation=decision.general_distillation, losses=losses)


def dry_run_result(decision: Decision) -> dict[str, Any]:
    """What `run` returns with budget.dry_run: the decision alone, nothing written."""
    return {"dry_run": True, "budget": decision.to_dict()}
