"""The CVT objective for the shared loop: the primary module's cross-entropy on labelled
minibatches and the auxiliary modules' cross-view loss on unlabelled ones, by `schedule`:

- alternate (the reference code's trainer): optimizer steps alternate, a labelled minibatch (the
  loop's) then an unlabelled one, each its own update. The loop hands a labelled batch to every
  step, so the one of an unlabelled step is not used: per step, half the labelled minibatches.
- joint: every step holds both, and the update follows their summed loss (weighted by
  `unlabelled.weight`): per step, one minibatch of each.

The labelled batch comes from the loop (its order, epochs and resume), the unlabelled batch from
`UnlabelledBatches`. Each minibatch gets its own forward pass and dropout rate, and the primary
module's targets on the unlabelled batch are computed first, with no dropout and no gradient, from
the current weights, as in the paper.

Exact resume: the unlabelled batch of draw k is a pure function of (seed, k), and the draw count
lives in the module's state (`get_extra_state`), so the loop's checkpoint restores it with the
weights, the EMA copy, the optimizer and the RNG.
"""

from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn

from bertcompress.data.tagging import IGNORE
from bertcompress.methods.cvt.model import CvtTagger
from bertcompress.methods.cvt.vocab import CvtCollator, CvtVocab
from bertcompress.train.loop import epoch_batches

Batch = dict[str, torch.Tensor]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real words (mask 1) of -sum_c targets_c log softmax(logits)_c. Against fixed
    targets it is the KL divergence plus the targets' entropy: the same gradient."""
    per_word = -(targets * F.log_softmax(logits.float(), -1)).sum(-1)
    mask = mask.to(per_word.dtype)
    return (per_word * mask).sum() / mask.sum().clamp(min=1.0)


def cross_view_loss(view_logits: dict[str, torch.Tensor], primary_probs: torch.Tensor,
                    mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The unlabelled loss: the sum over auxiliary views of their soft cross-entropy to the primary
    module's predicted distribution. Also each view's share, for the logs."""
    per_view = {v: soft_cross_entropy(logits, primary_probs, mask) for v, logits in view_logits.items()}
    return torch.stack(list(per_view.values())).sum(), per_view


class UnlabelledBatches:
    """Unlabelled minibatches in a seeded order: draw k is a pure function of (seed, k), so a run
    resumed at draw k continues as if it had never stopped. Each pass over the sentences is a new
    shuffle; sentences of similar length share a batch (the loop's `epoch_batches`)."""

    def __init__(self, sentences: list[list[str]], vocab: CvtVocab, batch_size: int, seed: int, min_chars: int):
        self.sentences, self.vocab, self.batch_size, self.seed = sentences, vocab, batch_size, seed
        self.collate = CvtCollator(min_chars)
        lengths = [len(s) for s in sentences]
        self.per_epoch = -(-len(sentences) // batch_size)
        self._epoch = functools.lru_cache(maxsize=2)(
            lambda e: epoch_batches(len(sentences), seed, e, batch_size, lengths))

    def __len__(self) -> int:
        return len(self.sentences)

    def indices(self, draw: int) -> list[int]:
        epoch, within = divmod(draw, self.per_epoch)
        return self._epoch(epoch)[within]

    def batch(self, draw: int) -> Batch:
        return self.collate([self.vocab.encode(self.sentences[i]) for i in self.indices(draw)])


def _on(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class CvtObjective(nn.Module):
    """`forward(batch) -> (loss, logs)` for the shared loop (module docstring), and the EMA copy of
    the tagger that evaluation and saving use (`averaged`).

    The EMA is TensorFlow's ExponentialMovingAverage with a step count: decay min(ema, (1 + n) /
    (10 + n)) at update n. The reference code uses a constant decay (0.998) with no step count; the
    warm-up is ours, so that the average forgets its random start within a CPU-sized run too (at a
    constant 0.998, 600 updates still weigh the random start by 0.3). The loop gives no hook after
    its optimizer step, so the update
    for step s is applied when the weights are next read: at the next forward, at an evaluation,
    or at the end (`sync_ema`; idempotent)."""

    def __init__(self, tagger: CvtTagger, unlabelled: UnlabelledBatches | None, *, weight: float,
                 dropout_labelled: float, dropout_unlabelled: float, label_smoothing: float, ema: float,
                 grad_accum: int = 1, schedule: str = "joint"):
        super().__init__()
        if schedule not in ("joint", "alternate"):
            raise ValueError(f"unknown CVT schedule {schedule!r}")
        self.tagger, self.schedule = tagger, schedule
        self.unlabelled = unlabelled if weight > 0 else None
        self._last_logs: dict[str, torch.Tensor] = {}  # alternate: the other kind's latest terms, for the logs
        self.weight, self.ema_decay, self.grad_accum = weight, ema, grad_accum
        self.dropout_labelled, self.dropout_unlabelled = dropout_labelled, dropout_unlabelled
        self.label_smoothing = label_smoothing
        self.ema = copy.deepcopy(tagger).requires_grad_(False) if ema > 0 else None
        self.draws = 0  # forward calls so far: the unlabelled draw index
        self.ema_updates = 0  # optimizer steps folded into the EMA

    # -- state the loop's checkpoint carries (a tensor: checkpoints load with weights_only=True)
    def get_extra_state(self) -> torch.Tensor:
        return torch.tensor([self.draws, self.ema_updates], dtype=torch.long)

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.draws, self.ema_updates = (int(v) for v in state.tolist())

    @property
    def averaged(self) -> CvtTagger:
        """The weights to evaluate and save: the EMA when on, else the trained ones."""
        self.sync_ema()
        return self.ema if self.ema is not None else self.tagger

    @torch.no_grad()
    def sync_ema(self) -> None:
        steps = self.draws // self.grad_accum  # optimizer steps the trained weights have taken
        if self.ema is None or self.ema_updates >= steps:
            return
        decay = min(self.ema_decay, (1 + self.ema_updates) / (10 + self.ema_updates))
        for averaged, trained in zip(self.ema.parameters(), self.tagger.parameters()):
            averaged.lerp_(trained, 1.0 - decay)
        self.ema_updates = steps

    def is_unlabelled_step(self, draw: int) -> bool:
        """alternate: every other optimizer step (all micro-batches of it) is an unlabelled one."""
        return self.schedule == "alternate" and self.unlabelled is not None and (draw // self.grad_accum) % 2 == 1

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.sync_ema()  # folds in the update the loop made after the previous forward
        draw = self.draws
        self.draws += 1
        device = batch["input_ids"].device
        if self.is_unlabelled_step(draw):
            # the draw index of the unlabelled batch: unlabelled steps so far, so none is skipped
            cross_view, logs = self._cross_view(self._unlabelled_batch(draw // (2 * self.grad_accum) * self.grad_accum
                                                                       + draw % self.grad_accum, device))
            return self.weight * cross_view, self._with_last(logs)
        logits = self.tagger(batch["input_ids"], batch["chars"], batch["attention_mask"], self.dropout_labelled)
        supervised = F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE,
                                     label_smoothing=self.label_smoothing)
        logs = {"supervised": supervised.detach()}
        if self.unlabelled is None:
            return supervised, logs
        if self.schedule == "alternate":
            return supervised, self._with_last(logs)
        cross_view, unlabelled_logs = self._cross_view(self._unlabelled_batch(draw, device))
        return supervised + self.weight * cross_view, {**logs, **unlabelled_logs}

    def _unlabelled_batch(self, draw: int, device: torch.device) -> Batch:
        return _on(self.unlabelled.batch(draw), device)

    def _cross_view(self, unlabelled: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs = (unlabelled["input_ids"], unlabelled["chars"], unlabelled["attention_mask"])
        with torch.no_grad():  # the primary module's view is the target: no dropout, no gradient
            targets = F.softmax(self.tagger(*inputs, 0.0).float(), -1)
        encoded = self.tagger.encode(*inputs, self.dropout_unlabelled)
        cross_view, per_view = cross_view_loss(self.tagger.view_logits(encoded), targets, unlabelled["attention_mask"])
        return cross_view, {"unlabelled": cross_view.detach(), **{f"view_{v}": x.detach() for v, x in per_view.items()}}

    def _with_last(self, logs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """alternate: this step's terms, beside the other kind's latest (a logged step shows both)."""
        self._last_logs.update(logs)
        return dict(self._last_logs)
