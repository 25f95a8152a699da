"""The prunable units of an encoder: each layer's attention heads and FFN neurons, found by module path."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.models.architecture import base_model, child_module, describe
from bertcompress.models.family import check_surgery, surgery_families

# Where each part sits inside one layer, per family: BERT/RoBERTa/ELECTRA, DistilBERT, MPNet, DeBERTa.
PART_PATHS = {
    "query": ("attention.self.query", "attention.q_lin", "attention.attn.q", "attention.self.query_proj"),
    "key": ("attention.self.key", "attention.k_lin", "attention.attn.k", "attention.self.key_proj"),
    "value": ("attention.self.value", "attention.v_lin", "attention.attn.v", "attention.self.value_proj"),
    "out": ("attention.output.dense", "attention.out_lin", "attention.attn.o"),
    "ffn_in": ("intermediate.dense", "ffn.lin1"),
    "ffn_out": ("output.dense", "ffn.lin2"),
}


@dataclass
class Encoder:
    """A model's layers and, per layer, its attention and FFN projections (found by name)."""

    model: nn.Module
    model_type: str
    layers: nn.ModuleList
    layer_prefix: str  # state-dict prefix of the layer list, e.g. "bert.encoder.layer."
    paths: dict[str, str]  # part -> path inside a layer
    parts: list[dict[str, nn.Module]]  # per layer: the parts plus "attention" (holds head counts)
    hidden_size: int
    num_heads: int  # of the config; pruned layers may hold fewer
    head_dim: int
    stream_start: nn.Module  # the module whose output is the first residual stream

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def heads_in(self, layer: int) -> int:
        return self.parts[layer]["out"].in_features // self.head_dim


def encoder(model: nn.Module, what: str = "extraction and pruning") -> Encoder:
    """The model's prunable units; refuses, naming `what`, a family they cannot be cut from."""
    check_surgery(model, what)
    view = describe(model)
    if child_module(view.layers[0], "attention.self.pos_key_proj") or child_module(
            view.layers[0], "attention.self.pos_query_proj"):
        raise UserError(f"{what} supports DeBERTa only with share_att_key=true (as DeBERTa-v3 and the released v2 "
                        "models have): this model has separate position projections; supported families: "
                        f"{surgery_families()}")
    paths = {}
    for part, candidates in PART_PATHS.items():
        found = next((p for p in candidates if isinstance(child_module(view.layers[0], p), nn.Linear)), None)
        if found is None:
            raise UserError(f"model type {view.model_type!r} is not supported for {what}: no {part} projection "
                            f"found in its layers; supported families: {surgery_families()}")
        paths[part] = found
    attention_path = paths["query"].rsplit(".", 1)[0]
    parts = [{**{p: child_module(layer, path) for p, path in paths.items()},
              "attention": child_module(layer, attention_path)} for layer in view.layers]
    prefix = next(name for name, mod in model.named_modules() if mod is view.layers) + "."
    base = base_model(model)
    start = getattr(base, "embeddings_project", None)  # ELECTRA with embedding_size != hidden_size
    start = base.embeddings if start is None else start
    return Encoder(model=model, model_type=view.model_type, layers=view.layers, layer_prefix=prefix,
                   paths=paths, parts=parts, hidden_size=view.hidden_size, num_heads=view.num_heads,
                   head_dim=view.hidden_size // view.num_heads, stream_start=start)
