"""Where things are inside a Hugging Face encoder, for every family we support.

Modules are looked up by their known names rather than listed per family: the layer
list (`encoder.layer` in BERT/RoBERTa/ELECTRA/MPNet, `transformer.layer` in DistilBERT) and each
layer's query/key projections (`query`/`key`, `q_lin`/`k_lin`, `q`/`k`). Config field names differ
too (DistilBERT says `n_layers`, `dim`, `n_heads`, `hidden_dim`); family.py knows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.models.family import family_of, supported_families

_LAYER_LISTS = ("encoder.layer", "transformer.layer")
_QUERY_NAMES = ("query", "q_lin", "q")
_KEY_NAMES = ("key", "k_lin", "k")


def size_fields(model_type: str) -> tuple[str, str, str, str]:
    """Config attribute names of (layers, hidden, heads, ffn) for this family."""
    return family_of(model_type).size_fields


@dataclass
class EncoderView:
    """The parts of an encoder distillation needs, found once."""

    base: nn.Module
    layers: nn.ModuleList
    queries: list[nn.Linear]
    keys: list[nn.Linear]
    num_heads: int
    hidden_size: int
    model_type: str

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def head_dim(self) -> int:
        return self.queries[0].out_features // self.num_heads


def base_model(model: nn.Module) -> nn.Module:
    """The bare encoder inside a task model (`model.bert`, ...), or the model itself."""
    return getattr(model, "base_model", model)


def child_module(module: nn.Module, dotted: str) -> nn.Module | None:
    """`module.a.b.c` for dotted = "a.b.c", or None where a part is missing."""
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _named_linear(layer: nn.Module, names: tuple[str, ...]) -> nn.Linear | None:
    for full, mod in layer.named_modules():
        if full.split(".")[-1] in names and isinstance(mod, nn.Linear):
            return mod
    return None


def describe(model: nn.Module) -> EncoderView:
    """Find layers and attention projections; a clear error for models we cannot read."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", type(model).__name__)
    base = base_model(model)
    layers = next((m for m in (child_module(base, p) for p in _LAYER_LISTS) if isinstance(m, nn.ModuleList)), None)
    if layers is None or len(layers) == 0:
        raise UserError(f"model type {model_type!r} is not a supported encoder: no transformer layer list found; "
                        f"supported families: {supported_families()}")
    queries, keys = [], []
    for i, layer in enumerate(layers):
        q, k = _named_linear(layer, _QUERY_NAMES), _named_linear(layer, _KEY_NAMES)
        if q is None or k is None:
            raise UserError(f"model type {model_type!r} is not a supported encoder: layer {i} has no query/key "
                            f"projections; supported families: {supported_families()}")
        queries.append(q)
        keys.append(k)
    _, hidden_f, heads_f, _ = size_fields(model_type)
    return EncoderView(base=base, layers=layers, queries=queries, keys=keys,
                       num_heads=int(getattr(config, heads_f)), hidden_size=int(getattr(config, hidden_f)),
                       model_type=model_type)
