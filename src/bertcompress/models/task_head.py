"""The task's label names written into a task model's config, so pipelines outside bertcompress read them."""

from __future__ import annotations

from torch import nn

from bertcompress.data.examples import TaskSpec


def label_task_head(model: nn.Module, task: TaskSpec) -> None:
    """Record the task's label (or tag) names in the model config, so pipelines outside us read them."""
    if task.labels is not None:
        model.config.id2label = dict(enumerate(task.labels))
        model.config.label2id = {name: i for i, name in enumerate(task.labels)}
        model.config.problem_type = "single_label_classification"
    else:
        model.config.problem_type = "regression"
