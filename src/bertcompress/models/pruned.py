"""A pruned model: fewer attention heads or FFN neurons, removed for real (smaller, faster), and
how such a folder is saved and loaded.

`transformers` 5 removed `prune_heads` / `config.pruned_heads` (and `head_mask`), and its encoders
derive head_dim = hidden_size / num_heads with Q/K/V outputs of hidden_size, so a layer with fewer
heads than hidden_size / head_dim cannot be described by any plain config. FFN neurons can:
`intermediate_size` is one number for all layers. Hence:
  * the same FFN size in every layer and all heads kept: a plain model, which
    `AutoModel.from_pretrained` loads, no code of ours needed;
  * otherwise config.json records the per-layer sizes as `bertcompress_pruned` = {"heads": [...],
    "ffn": [...]}; `load_pruned` builds the model from its config, shrinks the layers to those
    sizes and loads the weights. Plain `from_pretrained` refuses such a folder with a size-mismatch
    error, never a silent misload.
What to prune is chosen by methods/prune/structured.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.models.architecture import base_model, child_module, size_fields
from bertcompress.models.family import family_of
from bertcompress.models.units import Encoder, encoder

RECORD = "bertcompress_pruned"


def _keep_rows_or_cols(linear: nn.Linear, index: torch.Tensor, dim: int) -> None:
    """Keep output rows (dim 0) or input columns (dim 1) of a Linear, in place."""
    index = index.to(linear.weight.device)
    with torch.no_grad():
        linear.weight = nn.Parameter(linear.weight.index_select(dim, index).clone())
        if dim == 0 and linear.bias is not None:
            linear.bias = nn.Parameter(linear.bias.index_select(0, index).clone())
    if dim == 0:
        linear.out_features = len(index)
    else:
        linear.in_features = len(index)


def prune_units(model: nn.Module, heads: list[list[int]] | None = None, ffn: list[list[int]] | None = None) -> None:
    """Keep only the listed heads / FFN neurons of each layer (indices into its current units)."""
    enc = encoder(model)
    d = enc.head_dim
    family = family_of(model)
    shared = family.shared_head_bias
    if heads is not None and shared:
        if any(h != heads[0] for h in heads):
            raise UserError(f"{family.name} shares {shared} across layers: prune the same heads in all")
        bias = child_module(base_model(model), shared)
        with torch.no_grad():
            bias.weight = nn.Parameter(bias.weight[:, heads[0]].clone())
        bias.embedding_dim = len(heads[0])
    for i, p in enumerate(enc.parts):
        if heads is not None and len(heads[i]) != enc.heads_in(i):
            if not heads[i]:
                raise UserError(f"cannot remove every head of layer {i + 1}")
            units = torch.tensor([h * d + j for h in heads[i] for j in range(d)])
            for name in ("query", "key", "value"):
                _keep_rows_or_cols(p[name], units, 0)
            _keep_rows_or_cols(p["out"], units, 1)
            for attr in ("num_attention_heads", "n_heads"):  # the modules' own bookkeeping
                if hasattr(p["attention"], attr):
                    setattr(p["attention"], attr, len(heads[i]))
            if hasattr(p["attention"], "all_head_size"):  # MPNet reshapes with it
                p["attention"].all_head_size = len(units)
        if ffn is not None and len(ffn[i]) != p["ffn_in"].out_features:
            if not ffn[i]:
                raise UserError(f"cannot remove every FFN neuron of layer {i + 1}")
            _keep_rows_or_cols(p["ffn_in"], torch.tensor(ffn[i]), 0)
            _keep_rows_or_cols(p["ffn_out"], torch.tensor(ffn[i]), 1)


def record_sizes(model: nn.Module, enc: Encoder | None = None) -> None:
    """Describe the layer sizes in the config: intermediate_size when one number does, else the
    `bertcompress_pruned` record that `load_pruned` reads."""
    enc = enc or encoder(model)
    heads = [enc.heads_in(i) for i in range(enc.num_layers)]
    ffn = [p["ffn_in"].out_features for p in enc.parts]
    record = {}
    if any(h != enc.num_heads for h in heads):
        record["heads"] = heads
    if len(set(ffn)) == 1:
        setattr(model.config, size_fields(model.config.model_type)[3], ffn[0])
    else:
        record["ffn"] = ffn
    if record:
        setattr(model.config, RECORD, record)
    elif hasattr(model.config, RECORD):
        delattr(model.config, RECORD)


def is_pruned(path: str | Path) -> bool:
    """True when a model folder needs `load_pruned` (plain `from_pretrained` cannot load it)."""
    config = Path(path) / "config.json"
    return config.is_file() and RECORD in json.loads(config.read_text(encoding="utf-8"))


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    single = folder / "model.safetensors"
    if single.is_file():
        return load_file(single)
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        raise UserError(f"{folder} has no model.safetensors")
    shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    return {k: v for shard in shards for k, v in load_file(folder / shard).items()}


def load_pruned(path: str | Path, kind: str = "classifier", num_labels: int | None = None) -> nn.Module:
    """Load a folder with a `bertcompress_pruned` record as `kind` (classifier / base / masked_lm).

    The saved keys are matched with or without the base-model prefix (`bert.`), so a pruned
    classifier loads as a bare encoder and a pruned encoder as a classifier with a fresh head,
    as `from_pretrained` does for plain models.
    """
    import transformers as tf

    folder = Path(path)
    config = tf.AutoConfig.from_pretrained(folder)
    if num_labels is not None:
        config.num_labels = num_labels
    auto = {"classifier": tf.AutoModelForSequenceClassification, "base": tf.AutoModel,
            "masked_lm": tf.AutoModelForMaskedLM}[kind]
    model = auto.from_config(config).float()
    record = getattr(config, RECORD, {})
    n_layers = len(encoder(model).parts)
    heads = [list(range(n)) for n in record["heads"]] if "heads" in record else None
    ffn = [list(range(n)) for n in record["ffn"]] if "ffn" in record else None
    if (heads and len(heads) != n_layers) or (ffn and len(ffn) != n_layers):
        raise UserError(f"{folder}: its {RECORD} record does not match its {n_layers} layers")
    prune_units(model, heads, ffn)
    own = model.state_dict()
    prefix = model.base_model_prefix + "."
    weights = {}
    for key, value in _read_weights(folder).items():
        for name in (key, prefix + key, key[len(prefix):] if key.startswith(prefix) else None):
            if name in own:
                weights[name] = value
                break
    missing, _ = model.load_state_dict(weights, strict=False)
    loaded = {own[k].data_ptr() for k in weights}
    is_base = base_model(model) is model
    lost = [k for k in missing if own[k].data_ptr() not in loaded and (is_base or k.startswith(prefix))]
    if lost:  # a missing head is a fresh head; a missing encoder weight is a broken folder
        raise UserError(f"{folder}: weights missing for {lost[0]} ({len(lost)} in all)")
    return model.eval()
