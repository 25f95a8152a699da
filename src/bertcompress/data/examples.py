"""The record types every loader returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One labelled (or unlabelled) example. `label` is a class index for classification tasks,
    a float for regression tasks, None when the split has no labels."""

    text_a: str
    text_b: str | None = None
    label: int | float | None = None


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: its labels (None for regression), whether it takes sentence pairs,
    and its metrics (the first is the one reported as the task's score)."""

    name: str
    labels: tuple[str, ...] | None
    is_pair: bool
    metrics: tuple[str, ...]

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)
