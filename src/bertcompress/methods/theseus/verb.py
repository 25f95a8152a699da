"""`theseus`: BERT-of-Theseus, compression by progressive module replacing (Xu et al., 2020).

The fine-tuned teacher (the predecessor) has N layers, cut into M groups of k = N/M consecutive
layers; each group gets one successor layer copied from a teacher layer (`successor_init`).

1. Replacing: at every training forward pass, and for each group independently, a Bernoulli(p_t)
   draw decides whether the group's successor layer stands in for its k teacher layers. Only the
   successor layers learn: teacher layers, embeddings and classifier head stay frozen (the
   reference code gives the optimizer only `scc_layer`), and the loss is the plain task loss.
2. Successor fine-tuning: the M-layer successor (embeddings + successor layers + head) alone.

Both phases run in the shared training loop. The successor is an ordinary M-layer model of the
teacher's family at every moment, so it is evaluated and saved as it is.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.core.io import writes_output
from bertcompress.data.encoding import Collator
from bertcompress.data.splits import load_task_splits
from bertcompress.evaluation.predict import score
from bertcompress.methods.theseus.config import TheseusConfig
from bertcompress.models.architecture import base_model, describe, size_fields
from bertcompress.models.family import check_movable_layers
from bertcompress.models.inputs import model_inputs
from bertcompress.models.loading import load_model, load_tokenizer
from bertcompress.models.saving import checkpoint_dir, publish_model_folder
from bertcompress.models.task_head import label_task_head
from bertcompress.train.loop import seed_run, train_loop
from bertcompress.train.objectives import SupervisedObjective, task_loss


def replace_rate(cfg: TheseusConfig, step: int) -> float:
    """p_t after `step` optimizer steps: constant, or min(1, k·t + b) as the reference scheduler
    (which starts at b and raises the rate after each optimizer step)."""
    if cfg.curriculum == "linear":
        return min(1.0, cfg.curriculum_k * step + cfg.curriculum_b)
    return cfg.replace_prob


def replace_mask(seed: int, draw: int, groups: int, p: float) -> list[bool]:
    """Draw number `draw`: which groups the successor replaces. A pure function of (seed, draw),
    from its own generator, so the draws neither disturb nor depend on the global RNG (dropout)."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + draw) % 2**63)
    return (torch.rand(groups, generator=g) < p).tolist()


def successor_init_layers(n: int, m: int, how: str) -> list[int]:
    """0-based teacher layer that each successor layer is copied from."""
    k = n // m
    return {"first": list(range(m)), "group_first": [g * k for g in range(m)],
            "group_last": [g * k + k - 1 for g in range(m)]}[how]


def _layer_slot(model: nn.Module) -> tuple[nn.Module, str]:
    """(parent module, attribute name) of the model's layer list, found by identity so every
    family `describe` knows works (`encoder.layer`, `transformer.layer`)."""
    layers = describe(model).layers
    for parent in base_model(model).modules():
        for name, child in parent.named_children():
            if child is layers:
                return parent, name
    raise UserError("cannot locate the model's layer list")  # pragma: no cover - describe found it


@contextlib.contextmanager
def _layers_swapped(slot: tuple[nn.Module, str], layers: list[nn.Module]) -> Iterator[None]:
    """Run the model with another layer list: every supported encoder just iterates over it."""
    parent, name = slot
    saved = parent._modules[name]
    parent._modules[name] = nn.ModuleList(layers)
    try:
        yield
    finally:
        parent._modules[name] = saved


def build_successor(teacher: nn.Module, m: int, init: str = "first") -> tuple[nn.Module, nn.ModuleList]:
    """The M-layer successor (a copy of the teacher with M copied layers; a model of the same class
    that `save_pretrained` writes as usual) and the teacher's own N layers (the predecessor)."""
    check_movable_layers(teacher, "module replacing (theseus)")
    n = describe(teacher).num_layers
    if m > n or n % m:
        raise UserError(f"successor_layers {m} must divide the teacher's {n} layers (k = N/M teacher layers "
                        "per successor layer)")
    parent, name = _layer_slot(teacher)
    predecessor = parent._modules[name]
    parent._modules[name] = nn.ModuleList()  # copy everything but the N layers
    try:
        successor = copy.deepcopy(teacher)
    finally:
        parent._modules[name] = predecessor
    path = next(p for p, mod in teacher.named_modules() if mod is parent)
    successor.get_submodule(path)._modules[name] = nn.ModuleList(
        copy.deepcopy(predecessor[i]) for i in successor_init_layers(n, m, init))
    setattr(successor.config, size_fields(successor.config.model_type)[0], m)
    if hasattr(successor.get_submodule(path), "n_layers"):  # DistilBERT keeps its own count
        successor.get_submodule(path).n_layers = m
    return successor, predecessor


class TheseusObjective(nn.Module):
    """Module replacing for the shared loop: `forward(batch) -> (task loss, logs)`.

    The draws are indexed by a count of training forward passes kept in the module's state dict
    (`get_extra_state`), so a checkpoint carries it and a resumed run continues the same stream.
    p_t uses t = draws // grad_accum, the optimizer steps taken so far.
    """

    def __init__(self, successor: nn.Module, predecessor: nn.ModuleList, rate: Callable[[int], float], *,
                 seed: int, grad_accum: int = 1, regression: bool = False):
        super().__init__()
        self.successor, self.predecessor = successor, predecessor
        self.rate, self.seed, self.grad_accum, self.regression = rate, seed, grad_accum, regression
        self.groups = describe(successor).num_layers
        self.k = len(predecessor) // self.groups
        self._slot = _layer_slot(successor)  # a tuple attribute: not registered twice
        self.anchor = nn.Parameter(torch.zeros(()))
        self.draws = 0

    def get_extra_state(self) -> dict[str, int]:
        return {"draws": self.draws}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.draws = int(state["draws"])

    def logits(self, batch: dict[str, torch.Tensor], mask: list[bool]) -> torch.Tensor:
        """Logits with group g run by its successor layer where mask[g], else by its k teacher layers."""
        own = describe(self.successor).layers
        layers: list[nn.Module] = []
        for g, replaced in enumerate(mask):
            layers += [own[g]] if replaced else list(self.predecessor[g * self.k:(g + 1) * self.k])
        with _layers_swapped(self._slot, layers):
            return self.successor(**model_inputs(batch, self.successor)).logits

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        if not self.training:  # inference is the successor alone, as in the paper
            p, mask = 1.0, [True] * self.groups
        else:
            p = self.rate(self.draws // self.grad_accum)
            mask = replace_mask(self.seed, self.draws, self.groups, p)
            self.draws += 1
        # When every group ran its frozen teacher layers ((1-p)^M of the passes) no trainable weight
        # is in the graph, yet the loop calls backward and DDP waits for a gradient hook. The zero-
        # weighted anchor gives both one; the successor layers keep no gradient (None), so AdamW
        # skips them as in the reference code, and the anchor's own update is 0 (its gradient is 0).
        loss = task_loss(self.logits(batch, mask), batch["labels"], self.regression) + 0.0 * self.anchor
        return loss, {"replace_rate": p, "replaced": sum(mask) / self.groups}


def _freeze(module: nn.Module, trainable: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(trainable)


@writes_output
def theseus(cfg: TheseusConfig, *, resume: bool = False) -> Path:
    """Compress `cfg.teacher` into a `cfg.successor_layers`-layer model; write it to `cfg.output`."""
    seed_run(cfg.replacing.seed)
    tokenizer = load_tokenizer(cfg.teacher)
    splits = load_task_splits(cfg.data, tokenizer)
    task = splits.task
    teacher = load_model(cfg.teacher, "classifier")
    # Phase 1 keeps the teacher's head frozen: a fresh random head would be trained against by
    # the successor layers alone, so insist on a fine-tuned classifier with the task's labels.
    if not any(a.endswith("ForSequenceClassification") for a in teacher.config.architectures or []):
        raise UserError(f"teacher {cfg.teacher} is not a fine-tuned sequence classifier; "
                        "fine-tune it on the task first (bertcompress finetune)")
    if teacher.config.num_labels != task.num_labels:
        raise UserError(f"teacher {cfg.teacher} predicts {teacher.config.num_labels} labels but task "
                        f"{task.name} has {task.num_labels}; fine-tune the teacher on the task first")
    successor, predecessor = build_successor(teacher, cfg.successor_layers, cfg.successor_init)
    del teacher
    label_task_head(successor, task)
    successor_layers = describe(successor).layers

    collate = Collator(tokenizer.pad_token_id or 0)
    features, dev_features = splits.train_features, splits.eval_features
    evaluate = lambda _: score(successor, task, dev_features, collate)  # noqa: E731
    n = len(predecessor)
    result: dict = {"task": task.name, "eval_split": splits.eval_split, "teacher": cfg.teacher, "teacher_layers": n,
                    "successor_layers": cfg.successor_layers, "layers_per_group": n // cfg.successor_layers,
                    "init_layers": [i + 1 for i in successor_init_layers(n, cfg.successor_layers,
                                                                          cfg.successor_init)]}

    _freeze(successor, False)
    _freeze(predecessor, False)
    _freeze(successor_layers, True)
    objective = TheseusObjective(successor, predecessor, functools.partial(replace_rate, cfg),
                                 seed=cfg.replacing.seed, grad_accum=cfg.replacing.grad_accum,
                                 regression=task.is_regression)
    curriculum = {k: getattr(cfg, k) for k in ("successor_init", "curriculum", "replace_prob", "curriculum_k",
                                               "curriculum_b")}
    run = train_loop(objective, features, collate, cfg.replacing, config=cfg, resume=resume, evaluate=evaluate,
                     work_dir=checkpoint_dir(cfg.output, "replacing"), desc="theseus (replacing)",
                     settings=curriculum)
    result["replacing"] = {"history": run.history, "train_seconds": run.seconds, "dev": run.final_eval,
                           "final_replace_rate": replace_rate(cfg, objective.draws // cfg.replacing.grad_accum)}
    del objective, predecessor  # phase 2 never needs the teacher layers

    _freeze(successor, cfg.finetune_shared)
    _freeze(successor_layers, True)
    run = train_loop(SupervisedObjective(successor, task.is_regression), features, collate, cfg.finetune,
                     config=cfg, resume=resume, evaluate=evaluate, work_dir=checkpoint_dir(cfg.output, "finetune"),
                     desc="theseus (successor fine-tuning)", settings={**curriculum, "shared": cfg.finetune_shared})
    result["finetune"] = {"history": run.history, "train_seconds": run.seconds, "dev": run.final_eval}
    successor.eval()
    result["dev"] = score(successor, task, dev_features, collate)
    return publish_model_folder(cfg.output, successor, tokenizer, cfg, result)
