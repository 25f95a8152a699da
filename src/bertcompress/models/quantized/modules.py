"""Fake-quantized layers and `quantize_`, which swaps them into a Hugging Face model in place.

QuantLinear and QuantEmbedding subclass nn.Linear and nn.Embedding, so everything that finds
layers by type (our encoder view and its score hooks, `transformers` itself) still finds them, and
the float weight stays where it was: the state dict only gains the quantizers' steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bertcompress.models.architecture import base_model
from bertcompress.models.quantized.config import QuantConfig
from bertcompress.models.quantized.lsq import LSQQuantizer


class QuantLinear(nn.Linear):
    """y = Q_a(x) · Q_w(W)ᵀ + b: weights and input activations quantized at their own bit widths
    (either quantizer may be None: left in float). Weights are signed, one step per output row when
    per_channel; activations signed per tensor (BERT's linear inputs are LayerNorm, attention or
    GELU outputs, all of which go negative)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, weight_bits: int | None = 8,
                 act_bits: int | None = 8, per_channel: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.weight_quant = LSQQuantizer(weight_bits, signed=True, channels=out_features if per_channel else None) \
            if weight_bits else None
        # N = the feature width: LSQ's "number of features" for activations
        self.act_quant = LSQQuantizer(act_bits, signed=True, grad_n=in_features) if act_bits else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, weight_bits: int | None, act_bits: int | None,
                    per_channel: bool) -> QuantLinear:
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, weight_bits=weight_bits,
                act_bits=act_bits, per_channel=per_channel).to(linear.weight.device)
        with torch.no_grad():
            q.weight.copy_(linear.weight)
            if linear.bias is not None:
                q.bias.copy_(linear.bias)
        if q.weight_quant is not None:
            q.weight_quant.init_from(q.weight)
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_quant is not None:
            x = self.act_quant(x)
        w = self.weight_quant(self.weight) if self.weight_quant is not None else self.weight
        return F.linear(x, w, self.bias)


class QuantEmbedding(nn.Embedding):
    """An embedding table with LSQ-quantized rows. Only the rows a batch looks up are quantized:
    the same values and the same gradients as quantizing the whole table (unused rows get no
    gradient either way), at a fraction of the cost for a 30k-row vocabulary."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *,
                 bits: int = 8, per_channel: bool = True):
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)
        # per-tensor: N is the whole table although a batch sees only some rows
        self.weight_quant = LSQQuantizer(bits, signed=True, channels=num_embeddings if per_channel else None,
                                         grad_n=None if per_channel else num_embeddings * embedding_dim)

    @classmethod
    def from_embedding(cls, emb: nn.Embedding, bits: int, per_channel: bool) -> QuantEmbedding:
        q = cls(emb.num_embeddings, emb.embedding_dim, emb.padding_idx, bits=bits,
                per_channel=per_channel).to(emb.weight.device)
        with torch.no_grad():
            q.weight.copy_(emb.weight)
        q.weight_quant.init_from(q.weight)
        return q

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(ids, self.weight, self.padding_idx)
        return self.weight_quant(rows, rows=ids if self.weight_quant.per_channel else None)


def head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Module-name prefixes of the task head: every child outside the base encoder."""
    base = base_model(model)
    if base is model:
        return ()
    return tuple(f"{name}." for name, child in model.named_children() if child is not base)


def quantize_(model: nn.Module, cfg: QuantConfig) -> nn.Module:
    """Swap (in place) the layers `cfg` names for fake-quantized ones; returns the model.

    Weight steps start from the weights (2·mean|W|/√Q_P); activation steps from the first batch
    that goes through, so run one batch (`calibrate_`) before training or wrapping in DDP."""
    head = head_prefixes(model)
    swaps: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if type(module) is nn.Linear:
            if (name + ".").startswith(head) and not cfg.quantize_classifier:
                continue
            swaps.append((name, QuantLinear.from_linear(module, cfg.weight_bits, cfg.act_bits, cfg.per_channel)))
    if cfg.quantize_embeddings:
        base = base_model(model)
        positions = getattr(getattr(base, "embeddings", None), "position_embeddings", None) \
            if cfg.quantize_positions else None
        # word embeddings at their own width (most of a small student's bytes); the learned position
        # table (512 rows: as large as a 4x312 student's attention layer) at the weights' width
        for table, bits in ((base.get_input_embeddings(), cfg.emb_bits), (positions, cfg.weight_bits)):
            if type(table) is nn.Embedding:
                name = next(n for n, m in model.named_modules() if m is table)
                swaps.append((name, QuantEmbedding.from_embedding(table, bits, cfg.per_channel)))
    for name, new in swaps:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return model


@torch.no_grad()
def calibrate_(model: nn.Module, batch: dict[str, torch.Tensor]) -> None:
    """Initialise every activation step from one batch (eval mode: no dropout in the statistics)."""
    from bertcompress.models.inputs import model_inputs

    was_training = model.training
    model.eval()
    model(**model_inputs(batch, model))
    model.train(was_training)
