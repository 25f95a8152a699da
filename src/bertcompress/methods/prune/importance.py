"""How much each unit of an encoder matters: attention heads (and each head's dimensions), FFN
neurons, hidden dimensions and, from those, layers.

taylor — first-order Taylor importance (Molchanov et al. 2017; Michel et al. 2019). Removing a
unit with activation a changes the loss by about -a·∂L/∂a, so a unit scores |Σ_tokens a·∂L/∂a|
per example (the gradient of a 0/1 mask on the unit), summed over a data sample. Activations are
read with forward hooks and their gradients with tensor hooks, so the model runs unchanged:
  head:   the context vectors of its dimensions (the input of the attention output projection),
          summed over the head's dimensions inside the |·| — one mask for the whole head;
  neuron: the FFN intermediate activation (the input of the FFN output projection);
  hidden: the residual stream wherever it appears (embeddings output and every layer output);
          one dimension is one set of coordinates in all of them, so its places' scores add up.
The loss: the task loss for a classifier given labels; the masked-LM loss for a model with an
MLM head (15% of tokens masked); otherwise `hidden_norm`, ½‖h_L‖² averaged over real tokens. A
bare encoder has no loss of its own, and the loss a student will be distilled with compares it to
the teacher — which it still *is* at extraction time, so that loss and its gradient are zero.
The squared norm of the last hidden state needs no head or labels and rewards units that carry the
representation the student will be asked to reproduce.

magnitude — no data: the L2 norm of the weights a unit owns (a head's Q/K/V rows and output
columns; a neuron's input row and output column) and, for a hidden dimension, the summed |γ| of
every LayerNorm on the residual stream (each dimension's output scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.models.architecture import base_model
from bertcompress.models.inputs import model_inputs
from bertcompress.models.units import encoder

MLM_PROBABILITY = 0.15


@dataclass
class Importance:
    """Scores per unit; lists are per layer (pruned layers can differ in size)."""

    heads: list[torch.Tensor]  # [heads in layer]
    units: list[torch.Tensor]  # [heads in layer × head_dim]: each head dimension (Q/K/V row)
    ffn: list[torch.Tensor]  # [FFN neurons in layer]
    hidden: torch.Tensor  # [hidden_size]
    method: str
    loss: str | None = None  # the loss Taylor importance used

    def layer_scores(self) -> torch.Tensor:
        """A layer's share of all head importance plus its share of all neuron importance."""
        heads = torch.stack([h.sum() for h in self.heads])
        ffn = torch.stack([f.sum() for f in self.ffn])
        return heads / heads.sum().clamp_min(1e-12) + ffn / ffn.sum().clamp_min(1e-12)


def compute_importance(model: nn.Module, method: str, batches: Iterable[dict] | None = None, *,
                       loss: str = "auto", mask_token_id: int | None = None, seed: int = 0) -> Importance:
    if method == "magnitude":
        return magnitude_importance(model)
    if method != "taylor":
        raise UserError(f"unknown importance method {method!r}: use 'taylor' or 'magnitude'")
    if batches is None:
        raise UserError("taylor importance needs a data sample; use importance 'magnitude' to score without data")
    return taylor_importance(model, batches, loss=loss, mask_token_id=mask_token_id, seed=seed)


@torch.no_grad()
def magnitude_importance(model: nn.Module) -> Importance:
    enc = encoder(model)
    heads, units, ffn = [], [], []
    for p in enc.parts:
        u = sum(p[n].weight.float().pow(2).sum(1) for n in ("query", "key", "value"))
        u = u + p["out"].weight.float().pow(2).sum(0)
        units.append(u.sqrt())
        heads.append(u.view(-1, enc.head_dim).sum(-1).sqrt())
        ffn.append((p["ffn_in"].weight.float().pow(2).sum(1) + p["ffn_out"].weight.float().pow(2).sum(0)).sqrt())
    norms = [m.weight.float().abs() for m in base_model(model).modules()
             if isinstance(m, nn.LayerNorm) and tuple(m.normalized_shape) == (enc.hidden_size,)]
    hidden = torch.stack(norms).sum(0).cpu() if norms else torch.ones(enc.hidden_size)
    cpu = lambda xs: [x.cpu() for x in xs]  # noqa: E731 - scores live on the CPU, like Taylor's
    return Importance(heads=cpu(heads), units=cpu(units), ffn=cpu(ffn), hidden=hidden, method="magnitude")


def loss_kind(model: nn.Module, batch: dict, loss: str = "auto", mask_token_id: int | None = None) -> str:
    if loss != "auto":
        return loss
    name = type(model).__name__
    if name.endswith("ForSequenceClassification") and "labels" in batch:
        return "task"
    if name.endswith("ForMaskedLM") and mask_token_id is not None:
        return "mlm"
    return "hidden_norm"


def mask_tokens(batch: dict, mask_token_id: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking of 15% of the real tokens, never the first ([CLS]) or last ([SEP]) one."""
    ids, attn = batch["input_ids"], batch["attention_mask"].bool()
    candidates = attn.clone()
    candidates[:, 0] = False
    last = attn.long().sum(1) - 1
    candidates[torch.arange(len(ids), device=ids.device), last] = False
    chosen = (torch.rand(ids.shape, generator=generator).to(ids.device) < MLM_PROBABILITY) & candidates
    if not chosen.any():  # a tiny batch: mask one token so the loss exists
        chosen = candidates & (candidates.cumsum(1) == 1)
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    return torch.where(chosen, torch.full_like(ids, mask_token_id), ids), labels


def _loss(model: nn.Module, batch: dict, kind: str, mask_token_id: int | None, gen: torch.Generator):
    inputs = model_inputs(batch, model)
    if kind == "task":
        return model(**inputs, labels=batch["labels"]).loss
    if kind == "mlm":
        inputs["input_ids"], labels = mask_tokens(batch, mask_token_id, gen)
        return model(**inputs, labels=labels).loss
    if kind != "hidden_norm":
        raise UserError(f"unknown importance loss {kind!r}: use auto, task, mlm or hidden_norm")
    last = model(**inputs, output_hidden_states=True).hidden_states[-1]
    real = batch["attention_mask"].to(last.dtype)
    return 0.5 * (last.pow(2).sum(-1) * real).sum() / real.sum()


def taylor_importance(model: nn.Module, batches: Iterable[dict], *, loss: str = "auto",
                      mask_token_id: int | None = None, seed: int = 0) -> Importance:
    enc = encoder(model)
    d = enc.head_dim
    heads = [torch.zeros(enc.heads_in(i)) for i in range(enc.num_layers)]
    units = [torch.zeros(p["out"].in_features) for p in enc.parts]
    ffn = [torch.zeros(p["ffn_out"].in_features) for p in enc.parts]
    hidden = torch.zeros(enc.hidden_size)

    def on_grad(x: torch.Tensor, use: Callable[[torch.Tensor], object]) -> None:
        """Calls `use` with [batch, units] = Σ over tokens of a·∂L/∂a once x's gradient is known. The
        hook holds a *detached* view of x: holding x itself would form a cycle through autograd that
        Python's collector cannot see, keeping every batch's activations alive (0.9 GB a batch of
        16 x 128 on a 110M teacher)."""
        a = x.detach()

        def grad(g):  # returns None: a tensor hook's return value would replace the gradient
            use((a.float() * g.float()).sum(1))
        x.register_hook(grad)

    def add_heads(i: int, s: torch.Tensor) -> None:
        units[i] += s.abs().sum(0).cpu()
        heads[i] += s.view(len(s), -1, d).sum(-1).abs().sum(0).cpu()

    def add_to(store: torch.Tensor, x: torch.Tensor) -> None:
        on_grad(x, lambda s: store.add_(s.abs().sum(0).cpu()))

    def on_context(i: int):
        return lambda _module, args: on_grad(args[0], lambda s: add_heads(i, s))

    def on_input(store: list, i: int):
        return lambda _module, args: add_to(store[i], args[0])

    def on_stream(_module, _args, out):
        add_to(hidden, out[0] if isinstance(out, tuple) else out)

    handles = [enc.stream_start.register_forward_hook(on_stream)]
    for i, (layer, p) in enumerate(zip(enc.layers, enc.parts)):
        handles += [p["out"].register_forward_pre_hook(on_context(i)),
                    p["ffn_out"].register_forward_pre_hook(on_input(ffn, i)),
                    layer.register_forward_hook(on_stream)]
    was_training, kind = model.training, None
    model.eval()  # no dropout: the scores are a property of the model, not of a random mask
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    try:
        with torch.enable_grad():
            for batch in batches:
                batch = {k: v.to(device) for k, v in batch.items()}
                kind = kind or loss_kind(model, batch, loss, mask_token_id)
                _loss(model, batch, kind, mask_token_id, gen).backward()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if kind is None:
        raise UserError("taylor importance got no data batches")
    return Importance(heads=heads, units=units, ffn=ffn, hidden=hidden, method="taylor", loss=kind)
