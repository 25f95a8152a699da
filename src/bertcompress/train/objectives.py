"""Objectives for the shared loop: the supervised one on a task's labels (finetune, LSQ without
distillation, BERT-of-Theseus), and the frozen teacher every distillation objective holds."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bertcompress.data.tagging import IGNORE
from bertcompress.models.inputs import model_inputs


def task_loss(logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """Cross-entropy (classification) or MSE (regression) on the labels, in fp32 under autocast too.
    Token classification ((B, L, C) logits, (B, L) labels): the mean over labelled positions."""
    logits = logits.float()
    if regression:
        return F.mse_loss(logits.squeeze(-1), labels.float())
    return F.cross_entropy(logits.flatten(0, -2), labels.flatten(), ignore_index=IGNORE)


class SupervisedObjective(nn.Module):
    """`task_loss` of a classifier, for the shared loop: `forward(batch) -> (loss, logs)`."""

    def __init__(self, model: nn.Module, regression: bool):
        super().__init__()
        self.model = model
        self.regression = regression

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.model(**model_inputs(batch, self.model)).logits
        return task_loss(logits, batch["labels"], self.regression), {}


class WithFrozenTeacher(nn.Module):
    """Holds a teacher that is never trained, never in train mode and never saved with the
    objective, but moves with it (`.to(device)`)."""

    def hold_teacher(self, teacher: nn.Module) -> None:
        self._teacher = [teacher.eval().requires_grad_(False)]  # a list: not a submodule

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def _apply(self, fn, *args, **kwargs):
        self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher never uses dropout
        return self
