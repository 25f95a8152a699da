"""Task metrics, named as in `TaskSpec.metrics`, computed as GLUE reports them."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from bertcompress.core.errors import UserError
from bertcompress.data.examples import TaskSpec


def _as_array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor
        values = values.detach().cpu().numpy()
    return np.asarray(values).reshape(-1)


def _correlation(fn: Any, preds: np.ndarray, labels: np.ndarray) -> float:
    """A correlation, or 0.0 where it is undefined (constant input or fewer than 2 points)."""
    if len(preds) < 2:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant input, then returns NaN
        value = float(fn(preds, labels)[0])
    return 0.0 if np.isnan(value) else value


def _metric(name: str, task: TaskSpec, preds: np.ndarray, labels: np.ndarray) -> float:
    if name == "accuracy":
        return float(accuracy_score(labels, preds))
    if name == "f1":
        # GLUE's F1 (MRPC, QQP) is binary with class 1 positive; macro for wider label sets.
        average = "binary" if task.num_labels <= 2 else "macro"
        return float(f1_score(labels, preds, average=average, pos_label=1, zero_division=0))
    if name == "mcc":
        return float(matthews_corrcoef(labels, preds))
    if name == "pearson":
        return _correlation(pearsonr, preds.astype(float), labels.astype(float))
    if name == "spearman":
        return _correlation(spearmanr, preds.astype(float), labels.astype(float))
    raise UserError(f"unknown metric {name!r} for task {task.name}")


def compute_metrics(task: TaskSpec, predictions: Any, labels: Any) -> dict[str, float]:
    """The task's metrics plus "score" (its first metric). Predictions are class indices, or
    floats for regression."""
    preds, gold = _as_array(predictions), _as_array(labels)
    if len(gold) == 0:
        raise UserError(f"no examples to score for task {task.name}")
    if len(preds) != len(gold):
        raise UserError(f"{len(preds)} predictions for {len(gold)} labels (task {task.name})")
    if not task.is_regression:
        preds, gold = preds.astype(np.int64), gold.astype(np.int64)
    out = {name: _metric(name, task, preds, gold) for name in task.metrics}
    out["score"] = out[task.metrics[0]]
    return out


def sentence_scores(task: TaskSpec, outputs: Any, features: list[dict]) -> dict[str, float]:
    """A sentence task's metrics from its scored outputs (one logit row per example)."""
    return compute_metrics(task, predictions_from_logits(task, outputs), [f["labels"] for f in features])


# A model "learned" a task when its score closes at least this share of the gap between the trivial
# predictor's score and a perfect 1.0 (accuracy 0.527 -> 0.574; MCC or Pearson 0 -> 0.1).
LEARNED_SHARE = 0.1


def trivial_baseline(task: TaskSpec, labels: Any) -> dict[str, Any]:
    """The best constant predictor on these labels, scored with the task's metrics: the majority
    class (accuracy = its share, MCC 0, F1 of class 1 is 0 unless class 1 is the majority), or the
    mean for regression (correlations are 0). What a model that learned nothing scores."""
    gold = _as_array(labels)
    if task.is_regression:
        constant, what = float(gold.astype(float).mean()), "the mean"
    else:
        values, counts = np.unique(gold.astype(np.int64), return_counts=True)
        constant = int(values[counts.argmax()])
        what = f"majority class {task.labels[constant] if task.labels else constant}"
    scores = compute_metrics(task, np.full(len(gold), constant), gold)
    return {"trivial_score": scores["score"], "trivial_predictor": what}


def sentence_trivial_baseline(task: TaskSpec, examples: list) -> dict[str, Any]:
    """`trivial_baseline` on the labels of these examples."""
    return trivial_baseline(task, [e.label for e in examples])


def learned(score: float | None, trivial_score: float) -> bool:
    """Whether `score` is clearly above the trivial predictor's (see LEARNED_SHARE)."""
    return score is not None and score >= trivial_score + LEARNED_SHARE * (1.0 - trivial_score)


def predictions_from_logits(task: TaskSpec, logits: Any) -> np.ndarray:
    """Class indices (argmax) for classification, the single output for regression."""
    if hasattr(logits, "detach"):
        logits = logits.detach().float().cpu().numpy()
    arr = np.asarray(logits)
    if task.is_regression:
        return arr.reshape(-1).astype(np.float64)
    return arr.argmax(axis=-1).astype(np.int64)
