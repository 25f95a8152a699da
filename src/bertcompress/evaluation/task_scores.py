"""A task's scores and its trivial baseline, by the task's kind: a sentence task (metrics.py) or a
tagging task (tagging_metrics.py). Here rather than in data/kinds.py: data sits below evaluation."""

from __future__ import annotations

from typing import Any

from bertcompress.data.examples import TaskSpec
from bertcompress.evaluation.metrics import sentence_scores, sentence_trivial_baseline
from bertcompress.evaluation.tagging_metrics import tagging_scores, tagging_trivial

# kind -> (scores of its scored outputs, trivial baseline record)
SCORERS = {"sentence": (sentence_scores, sentence_trivial_baseline), "tagging": (tagging_scores, tagging_trivial)}


def task_scores(task: TaskSpec, outputs: Any, features: list[dict]) -> dict[str, float]:
    """The task's metrics of scored outputs (evaluation/predict.py), with the one named `score`."""
    return SCORERS[task.kind][0](task, outputs, features)


def trivial_baseline(task: TaskSpec, examples: list) -> dict[str, Any]:
    """The trivial predictor's record (majority class, most frequent tag, ...) on `examples`."""
    return SCORERS[task.kind][1](task, examples)
