"""The supervised objective on a task's labels, shared by finetune, LSQ without distillation
(quantize, kd false) and BERT-of-Theseus."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.intermediates import model_inputs


def task_loss(logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """Cross-entropy (classification) or MSE (regression) on the labels, in fp32 under autocast too."""
    logits = logits.float()
    if regression:
        return F.mse_loss(logits.squeeze(-1), labels.float())
    return F.cross_entropy(logits, labels)


class SupervisedObjective(nn.Module):
    """`task_loss` of a classifier, for the shared loop: `forward(batch) -> (loss, logs)`."""

    def __init__(self, model: nn.Module, regression: bool):
        super().__init__()
        self.model = model
        self.regression = regression

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.model(**model_inputs(batch, self.model)).logits
        return task_loss(logits, batch["labels"], self.regression), {}
