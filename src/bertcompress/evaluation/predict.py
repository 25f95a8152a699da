"""Batched inference over encoded features, and task scores from it."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.examples import TaskSpec
from ..models.intermediates import model_inputs
from .metrics import compute_metrics, predictions_from_logits


@torch.no_grad()
def predict_logits(model: nn.Module, features: list[dict], collate: Callable, batch_size: int = 64,
                   device: torch.device | None = None, desc: str | None = None) -> torch.Tensor:
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    starts = range(0, len(features), batch_size)
    for i in tqdm(starts, desc=desc, disable=desc is None, leave=False):
        batch = {k: v.to(device) for k, v in collate(features[i:i + batch_size]).items()}
        out.append(model(**model_inputs(batch, model)).logits.float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def score(model: nn.Module, task: TaskSpec, features: list[dict], collate: Callable,
          batch_size: int = 64) -> dict[str, float]:
    logits = predict_logits(model, features, collate, batch_size)
    labels = [f["labels"] for f in features]
    return compute_metrics(task, predictions_from_logits(task, logits), labels)
