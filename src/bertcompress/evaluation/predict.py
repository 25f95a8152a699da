"""Batched inference over encoded features, and task scores from it.

Every function here works on a model's *scored outputs*: one logit row per example for a sentence
model, and for a token (tagging) model one row per labelled position, i.e. per word (its first
word piece), in word order. So predictions, scores and loyalty read the same (N, C) arrays for both.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from torch import nn

from bertcompress.core.log import progress_bar
from bertcompress.data.examples import TaskSpec
from bertcompress.data.tagging import IGNORE
from bertcompress.evaluation.task_scores import task_scores
from bertcompress.models.inputs import model_inputs


def scored_outputs(logits: Any, batch: dict[str, Any]) -> Any:
    """A batch's scored outputs: all of a sentence model's (B, C) logits; a token model's (B, L, C)
    logits at the positions whose label is not IGNORE -> (W, C). Tensors or numpy arrays."""
    if logits.ndim != 3:
        return logits
    mask = batch["labels"] != IGNORE
    return logits[mask if isinstance(logits, torch.Tensor) else mask.cpu().numpy()]


def batches(features: list[dict], collate: Callable, batch_size: int = 64,
            desc: str | None = None) -> Iterator[dict[str, torch.Tensor]]:
    starts = range(0, len(features), batch_size)
    for i in progress_bar(starts, desc=desc, disable=desc is None, leave=False):
        yield collate(features[i:i + batch_size])


@torch.no_grad()
def predict_logits(model: nn.Module, features: list[dict], collate: Callable, batch_size: int = 64,
                   device: torch.device | None = None, desc: str | None = None) -> torch.Tensor:
    """The scored outputs of `model` on `features` (see the module docstring), on the CPU in fp32."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for batch in batches(features, collate, batch_size, desc):
        logits = model(**model_inputs({k: v.to(device) for k, v in batch.items()}, model)).logits
        out.append(scored_outputs(logits.float().cpu(), batch))
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def score(model: nn.Module, task: TaskSpec, features: list[dict], collate: Callable,
          batch_size: int = 64) -> dict[str, float]:
    """The task's metrics of `model` on `features`, with "score" (the task's first metric)."""
    return task_scores(task, predict_logits(model, features, collate, batch_size), features)
