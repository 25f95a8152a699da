"""The distillation losses by name: what `losses.weights` in a config may name.

Each entry names its function in losses.py, `fn(student, teacher, ctx) -> scalar`, and whether it
reads the Transformer layers (the intermediate phase of task distillation; the others belong to
the prediction phase). A new loss is one function in losses.py and one line here. Free of torch,
so a config checks its names without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bertcompress.core.lazy import resolve


@dataclass(frozen=True)
class Loss:
    function: str  # "module:function" (core/lazy.py)
    reads_layers: bool


LOSSES: dict[str, Loss] = {
    "embedding": Loss("methods.distill.losses:embedding_loss", reads_layers=True),
    "hidden": Loss("methods.distill.losses:hidden_loss", reads_layers=True),
    "attention": Loss("methods.distill.losses:attention_loss", reads_layers=True),
    "prediction": Loss("methods.distill.losses:prediction_loss", reads_layers=False),
    "token_prediction": Loss("methods.distill.losses:token_prediction_loss", reads_layers=False),
}
# A config's "prediction" weight is the task kind's prediction term (data/kinds.py): "prediction" for
# a sentence task, "token_prediction" (per word) for a tagging task.
PREDICTION = "prediction"


def loss_function(name: str) -> Callable[..., Any]:
    return resolve(LOSSES[name].function)


def is_layer_loss(name: str) -> bool:
    return LOSSES[name].reads_layers


def without_layer_losses(weights: dict[str, float]) -> dict[str, float]:
    return {name: w for name, w in weights.items() if not is_layer_loss(name)}


def task_weights(weights: dict[str, float], prediction_loss: str = PREDICTION, *,
                 layers: bool | None = None) -> dict[str, float]:
    """A config's `weights` for a task: "prediction" renamed to the task kind's `prediction_loss`;
    only the layer losses (layers=True), only the others (False), or all (None)."""
    out = {}
    for name, weight in weights.items():
        if layers is not None and is_layer_loss(name) != layers:
            continue
        out[prediction_loss if name == PREDICTION else name] = weight
    return out
