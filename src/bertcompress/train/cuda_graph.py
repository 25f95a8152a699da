"""One training step (forward, backward, clipping, AdamW) replayed from a CUDA graph.

Why: a small student's step on a GPU is bound by the host, not the GPU. A 4×312 student at
batch 128 issues over a thousand kernels per step, many a few microseconds long, and Python launches
them more slowly than the H100 runs them. A CUDA graph records the step's kernels once per input
shape and replays them all with one launch.

What it needs (the loop checks the first three): a CUDA device, one process, no gradient
accumulation, and a step that never reads a device value on the host (no `.item()`, no
`if mask.all()`): `no_mask_skip()` removes the one such read that `transformers` makes.
Batches are padded to a multiple of `multiple` tokens, so a handful of shapes (graphs) covers an
epoch; padding changes no loss here, since every term averages over real tokens only.

Everything that must outlive a replay (weights, AdamW state, the learning rate as a device
tensor that the scheduler fills in place) is allocated before the first capture; what a graph
allocates (activations, gradients, its outputs) lives only within one replay, which is why all
graphs can share one memory pool. Outputs are cloned right after each replay.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.models.intermediates import no_mask_skip

Batch = dict[str, torch.Tensor]
StepOut = tuple[torch.Tensor, dict[str, torch.Tensor]]


def pad_batch(batch: Batch, multiple: int, max_len: int | None = None, pad_token_id: int = 0) -> Batch:
    """Pad every (B, L, ...) tensor of `batch` along L to the next multiple of `multiple` (at most
    `max_len`): input_ids with `pad_token_id` (RoBERTa numbers positions by it), token labels with
    -100 (ignored by cross-entropy), the rest (attention_mask too) with 0."""
    length = batch["input_ids"].shape[1]
    target = math.ceil(length / multiple) * multiple
    if max_len is not None:
        target = max(length, min(target, max_len))
    if target == length:
        return batch
    out = {}
    for k, v in batch.items():
        if v.ndim >= 2 and v.shape[1] == length:
            value = {"input_ids": pad_token_id, "labels": -100}.get(k, 0)
            pad = v.new_full((v.shape[0], target - length, *v.shape[2:]), value)
            v = torch.cat([v, pad], dim=1)
        out[k] = v
    return out


class GraphedStep:
    """`step(batch) -> (loss, logs)`: one full optimizer step of `module` (whose forward returns
    `(loss, logs)`), eager for the first `warmup` calls, then replayed from a CUDA graph per shape.
    `forward` (default: `module` itself) runs the module's forward: a `torch.compile`d one is
    compiled during the warm-up and its kernels are captured like any others."""

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer, *, max_grad_norm: float = 0.0,
                 bf16: bool = True, warmup: int = 3, multiple: int = 32, max_len: int | None = None,
                 pad_token_id: int = 0, forward: Callable[[Batch], StepOut] | None = None):
        if not any(g.get("capturable") for g in optimizer.param_groups):
            raise ValueError("GraphedStep needs an optimizer built with capturable=True")
        self.forward, self.optimizer = forward or module, optimizer
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.max_grad_norm, self.bf16 = max_grad_norm, bf16
        self.pad = dict(multiple=multiple, max_len=max_len, pad_token_id=pad_token_id)
        self._eager_left = warmup
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, Batch, torch.Tensor, dict[str, torch.Tensor]]] = {}
        self._pool = None

    @property
    def num_graphs(self) -> int:
        return len(self._graphs)

    def _step(self, batch: Batch) -> StepOut:
        # autocast's weight-cast cache must be off under capture (it would outlive the graph)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16, cache_enabled=False):
            loss, logs = self.forward(batch)
        loss.backward()
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        return loss.detach(), {k: v.detach() for k, v in logs.items()}

    def __call__(self, batch: Batch) -> StepOut:
        batch = pad_batch(batch, **self.pad)
        with no_mask_skip():
            if self._eager_left > 0:  # warm-up: lazy initialisation (cuBLAS, AdamW state) happens here
                self._eager_left -= 1
                return self._on_side_stream(lambda: self._step(batch))
            key = tuple((k, v.dtype, *v.shape) for k, v in sorted(batch.items()))
            graph, static_in, loss, logs = self._graphs.get(key) or self._capture(key, batch)
        for k, v in batch.items():
            static_in[k].copy_(v)
        graph.replay()
        return loss.clone(), {k: v.clone() for k, v in logs.items()}

    def _on_side_stream(self, fn: Callable[[], StepOut]) -> StepOut:
        """Warm-up runs on a side stream, as torch's CUDA-graph notes prescribe."""
        self.optimizer.zero_grad(set_to_none=True)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = fn()
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _capture(self, key: tuple, batch: Batch):
        static_in = {k: v.clone() for k, v in batch.items()}
        self.optimizer.zero_grad(set_to_none=True)  # so backward allocates the grads inside the graph
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, pool=self._pool):
                loss, logs = self._step(static_in)
        except RuntimeError as e:
            # a host read or host copy somewhere in the model. No eager fallback: a failed capture
            # leaves the CUDA random generator mid-capture, and dropout would fail from then on
            raise UserError(f"train.cuda_graphs: this model's step cannot be captured in a CUDA graph "
                            f"({str(e).splitlines()[0]}); set train.cuda_graphs: false") from None
        self._pool = self._pool or graph.pool()
        self._graphs[key] = (graph, static_in, loss, logs)
        return self._graphs[key]
