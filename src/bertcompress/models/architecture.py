"""Where things are inside a Hugging Face encoder, for every family we support.

Modules are looked up by their known names rather than listed per family: the layer
list (`encoder.layer` in BERT/RoBERTa/ELECTRA/MPNet/DeBERTa, `transformer.layer` in DistilBERT,
`layers` in ModernBERT) and each layer's query/key projections (`query`/`key`, `q_lin`/`k_lin`,
`q`/`k`, `query_proj`/`key_proj`; ModernBERT fuses them into one `Wqkv`). ALBERT applies one set of
layer weights N times: its layer list is that module N times, in call order. Config field names
differ too (DistilBERT says `n_layers`, `dim`, `n_heads`, `hidden_dim`); family.py knows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.models.family import family_of, supported_families

_LAYER_LISTS = ("encoder.layer", "transformer.layer", "layers")
_QUERY_NAMES = ("query", "q_lin", "q", "query_proj")
_KEY_NAMES = ("key", "k_lin", "k", "key_proj")
_FUSED_QKV_NAMES = ("Wqkv",)


def size_fields(model_type: str) -> tuple[str, str, str, str]:
    """Config attribute names of (layers, hidden, heads, ffn) for this family."""
    return family_of(model_type).size_fields


@dataclass
class EncoderView:
    """The parts of an encoder distillation needs, found once."""

    base: nn.Module
    layers: list[nn.Module]  # the layer applied at each depth (ALBERT: one module, N times)
    attentions: list[nn.Module]  # per layer: the module transformers hands to the attention function
    queries: list[nn.Linear] | None  # None where Q, K and V are one fused projection (ModernBERT)
    keys: list[nn.Linear] | None
    num_heads: int
    hidden_size: int
    model_type: str

    @property
    def num_layers(self) -> int:
        return len(self.layers)


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


def _owner(layer: nn.Module, child: nn.Module) -> nn.Module:
    return next(m for m in layer.modules() if any(c is child for c in m.children()))


def _shared_layer_calls(base: nn.Module, config) -> list[nn.Module] | None:
    """ALBERT: the layer applied at each of the N depths (group i·G/N, each of its inner layers)."""
    groups = child_module(base, "encoder.albert_layer_groups")
    if not isinstance(groups, nn.ModuleList) or len(groups) == 0:
        return None
    n, g = config.num_hidden_layers, len(groups)
    return [layer for i in range(n) for layer in groups[int(i / (n / g))].albert_layers]


def describe(model: nn.Module) -> EncoderView:
    """Find layers and attention projections; a clear error for models we cannot read."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", type(model).__name__)
    base = base_model(model)
    layers = next((m for m in (child_module(base, p) for p in _LAYER_LISTS) if isinstance(m, nn.ModuleList)), None)
    if layers is None:
        layers = _shared_layer_calls(base, config)
    if not layers:
        raise UserError(f"model type {model_type!r} is not a supported encoder: no transformer layer list found; "
                        f"supported families: {supported_families()}")
    queries, keys, attentions = [], [], []
    for i, layer in enumerate(layers):
        q, k = _named_linear(layer, _QUERY_NAMES), _named_linear(layer, _KEY_NAMES)
        fused = _named_linear(layer, _FUSED_QKV_NAMES)
        if (q is None or k is None) and fused is None:
            raise UserError(f"model type {model_type!r} is not a supported encoder: layer {i} has no query/key "
                            f"projections; supported families: {supported_families()}")
        queries.append(q)
        keys.append(k)
        attentions.append(_owner(layer, fused if q is None else q))
    _, hidden_f, heads_f, _ = size_fields(model_type)
    fused = any(q is None for q in queries)
    return EncoderView(base=base, layers=layers, attentions=attentions, queries=None if fused else queries,
                       keys=None if fused else keys, num_heads=int(getattr(config, heads_f)),
                       hidden_size=int(getattr(config, hidden_f)), model_type=model_type)
