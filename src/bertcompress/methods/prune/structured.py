"""Structured pruning: choose the attention heads and FFN neurons to remove by their importance
(importance.py), per layer or across layers (`layout`), and remove them (models/pruned.py, which
also says how the result is saved: a plain model when one FFN size and every head remain).

A family whose layers share one per-head table (MPNet's relative-position bias, one column per
head; `Family.shared_head_bias`) has its heads pruned as one set for all layers (layout `uniform` only).
"""

from __future__ import annotations

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.methods.prune.config import PruneConfig
from bertcompress.methods.prune.importance import compute_importance
from bertcompress.models.family import family_of
from bertcompress.models.pruned import prune_units, record_sizes
from bertcompress.models.units import encoder


def _choose(scores: list[torch.Tensor], keep: float, original: int, layout: str) -> list[list[int]]:
    """Indices to keep per layer: `keep` of the original count per layer (uniform) or in total
    over all layers (global: raw scores compete, as Taylor scores all estimate the same loss
    change, so a layer that matters little loses most; every layer keeps at least one unit)."""
    n_layers = len(scores)
    if layout == "uniform":
        k = max(1, round(keep * original))
        return [sorted(torch.argsort(s, descending=True, stable=True)[:k].tolist()) for s in scores]
    total = max(n_layers, round(keep * original * n_layers))
    chosen = [{int(torch.argmax(s))} for s in scores]
    rest = sorted(((-v, i, j) for i, s in enumerate(scores) for j, v in enumerate(s.tolist()) if j not in chosen[i]))
    for _, i, j in rest[:max(0, total - n_layers)]:
        chosen[i].add(j)
    return [sorted(c) for c in chosen]


def _shared_heads(scores: list[torch.Tensor], keep: float, original: int) -> list[list[int]]:
    k = max(1, round(keep * original))
    total = sum(s / s.norm().clamp_min(1e-12) for s in scores)
    return [sorted(torch.argsort(total, descending=True, stable=True)[:k].tolist())] * len(scores)


def prune_model(model: nn.Module, cfg: PruneConfig, *, batches=None, mask_token_id: int | None = None) -> dict:
    """Prune `model` in place to `cfg`'s targets; returns the kept (original) heads and neurons per layer.

    Iterative with cfg.steps > 1: step s keeps 1 - (1 - keep)·s/steps of the original units,
    importance recomputed on the pruned model each time (no training in between).
    """
    enc = encoder(model)
    n_heads, n_ffn = enc.num_heads, enc.parts[0]["ffn_in"].out_features
    family = family_of(model)
    shared = family.shared_head_bias is not None
    if cfg.heads_keep < 1 and shared and cfg.layout == "global":
        raise UserError(f"{family.name} heads can only be pruned with layout 'uniform' (its layers share "
                        f"{family.shared_head_bias})")
    kept_heads = [list(range(enc.heads_in(i))) for i in range(enc.num_layers)]
    kept_ffn = [list(range(p["ffn_in"].out_features)) for p in enc.parts]
    batches = list(batches) if batches is not None else None  # reused at every step
    for step in range(1, cfg.steps + 1):
        imp = compute_importance(model, cfg.importance, batches, mask_token_id=mask_token_id, seed=cfg.seed)
        heads = ffn = None
        if cfg.heads_keep < 1:
            frac = 1 - (1 - cfg.heads_keep) * step / cfg.steps
            heads = (_shared_heads(imp.heads, frac, n_heads) if shared
                     else _choose(imp.heads, frac, n_heads, cfg.layout))
            kept_heads = [[k[i] for i in h] for k, h in zip(kept_heads, heads)]
        if cfg.ffn_keep < 1:
            ffn = _choose(imp.ffn, 1 - (1 - cfg.ffn_keep) * step / cfg.steps, n_ffn, cfg.layout)
            kept_ffn = [[k[i] for i in f] for k, f in zip(kept_ffn, ffn)]
        prune_units(model, heads, ffn)
    record_sizes(model)
    return {"heads": kept_heads, "ffn": kept_ffn, "importance": cfg.importance,
            "loss": getattr(imp, "loss", None), "steps": cfg.steps, "layout": cfg.layout}


