"""The tasks we know: the nine GLUE tasks, the embedded default, two generic ones for user files,
and two token-classification (tagging) tasks: `tagging` for user files and `brown-pos`.

A task fixes the label set and the metrics, so that a teacher fine-tuned on it and a student
distilled from that teacher agree on what class index 1 means and on how they are scored.
"""

from __future__ import annotations

from dataclasses import replace

from bertcompress.core.errors import UserError
from bertcompress.data.config import DEFAULT_TASK
from bertcompress.data.examples import TaskSpec

_BINARY = ("0", "1")
_ENTAIL = ("entailment", "not_entailment")

GLUE_TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("cola", _BINARY, False, ("mcc",)),
        TaskSpec("sst2", _BINARY, False, ("accuracy",)),
        TaskSpec("mrpc", _BINARY, True, ("f1", "accuracy")),
        TaskSpec("stsb", None, True, ("pearson", "spearman")),
        TaskSpec("qqp", _BINARY, True, ("accuracy", "f1")),
        TaskSpec("mnli", ("contradiction", "entailment", "neutral"), True, ("accuracy",)),
        TaskSpec("qnli", _ENTAIL, True, ("accuracy",)),
        TaskSpec("rte", _ENTAIL, True, ("accuracy",)),
        TaskSpec("wnli", _BINARY, True, ("accuracy",)),
    )
}

# Generic tasks for user files. `classification` has an empty label set here: load_examples
# fills it with the sorted label strings of the training file. `is_pair` of both is likewise
# decided by the data (whether a second text column exists).
CLASSIFICATION = TaskSpec("classification", (), False, ("accuracy",))
REGRESSION = TaskSpec("regression", None, False, ("pearson", "spearman"))

# Tagging: one tag per word; the tags are filled in by data/tagging_loaders.py (from the training split of
# your files, or Brown's fixed tag sets), and so are the metrics: ("span_f1", "accuracy") for a
# BIO/BIOES tag set, else ("accuracy",), word accuracy.
TAGGING = TaskSpec("tagging", (), False, ("accuracy",), kind="tagging")
BROWN_POS = TaskSpec("brown-pos", (), False, ("accuracy",), kind="tagging")

# What `data.metric` may choose as the score (evaluation/metrics.py computes them all).
CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
TAGGING_METRICS = ("span_f1", "accuracy")


def with_metric(task: TaskSpec, metric: str | None) -> TaskSpec:
    """`task` scored by `metric` first (its score, what retention and the trivial baseline compare);
    None keeps the task's own order."""
    if metric is None or task.metrics[:1] == (metric,):
        return task
    if task.kind == "tagging":
        allowed = TAGGING_METRICS if "span_f1" in task.metrics else ("accuracy",)
    else:
        allowed = REGRESSION_METRICS if task.is_regression else CLASSIFICATION_METRICS
    if metric not in allowed:
        raise UserError(f"data.metric {metric!r} does not fit task {task.name} (choose {', '.join(allowed)})")
    return replace(task, metrics=(metric, *(m for m in task.metrics if m != metric)))


TASKS: dict[str, TaskSpec] = {
    **GLUE_TASKS,
    DEFAULT_TASK: TaskSpec(DEFAULT_TASK, ("negative", "positive"), False, ("accuracy",)),
    CLASSIFICATION.name: CLASSIFICATION,
    REGRESSION.name: REGRESSION,
    TAGGING.name: TAGGING,
    BROWN_POS.name: BROWN_POS,
}


def _norm(name: str) -> str:
    return "".join(c for c in name.strip().lower() if c not in "-_ ")


_BY_NORM = {_norm(n): n for n in TASKS}


def get_task(name: str) -> TaskSpec:
    """Look a task up by name, case- and dash-insensitively ("SST-2", "sts_b", "MNLI")."""
    key = _BY_NORM.get(_norm(name))
    if key is None:
        raise UserError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return TASKS[key]


def needs_inferred_labels(task: TaskSpec) -> bool:
    """True for the generic classification and tagging tasks, whose labels come from the data."""
    return task.labels == ()
