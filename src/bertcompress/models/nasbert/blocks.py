"""A NAS-BERT model's blocks read as layers, for the distillation losses.

Its `hidden_states` are the embedding output (after `embedding_proj`, so at block 1's width) and
then each block's output at its own width (modeling.py). Block n of a model from a supernet learned
the teacher's output at the end of its n-th equal share of layers, which is what the uniform layer
mapping names when the blocks divide the teacher's layers; so the hidden-state and embedding losses
read a NAS-BERT model as a student of `len(blocks)` layers whose widths differ, each through its
own projection. Its blocks hold no comparable attention maps (convolutions, FFNs, any head count).
"""

from __future__ import annotations

from typing import Any


def block_widths(model: Any) -> list[int] | None:
    """[width of hidden_states[0], width of block 1's output, ..., block N's] of a NAS-BERT model
    (or a model with one as its `nasbert` body); None for any other model."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "nasbert":
        return None
    blocks = config.nas_arch.blocks
    return [blocks[0].hidden] + [b.hidden for b in blocks]
