"""A standalone NAS-BERT model from one architecture's weights in a trained supernet.

Supernet blocks talk to each other at the teacher's width T through their projections. In the
assembled model each pair of consecutive projections composes exactly into one Linear
(W = W_in @ W_out, b = W_in @ b_out + b_in), also where the widths match:

    embedding_proj      = blocks[0].input_proj[h_1] ∘ embedding_out[E]        E -> h_1
    blocks.b.input_proj = blocks[b].input_proj[h_b] ∘ blocks[b-1].output_proj[h_{b-1}]
    output_proj         = blocks[N-1].output_proj[h_N]                      h_N -> T

so the model computes what `Supernet.forward(arch)` computes, and its last_hidden_state lives in
the teacher's space, where the pooler and task heads (fresh weights) work.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bertcompress.methods.nas.supernet import Supernet
from bertcompress.models.nasbert.arch import NasArch
from bertcompress.models.nasbert.modeling import NasBertConfig, NasBertForSequenceClassification, NasBertModel


def student_config(supernet: Supernet, arch: NasArch | dict | str, **kwargs: Any) -> NasBertConfig:
    """The config of `arch` assembled from `supernet`; `kwargs` (num_labels, id2label...) go to the config."""
    return NasBertConfig(
        arch=arch, vocab_size=supernet.vocab_size, max_position_embeddings=supernet.max_position_embeddings,
        type_vocab_size=supernet.type_vocab_size, head_size=supernet.head_size,
        hidden_dropout_prob=supernet.dropout, attention_probs_dropout_prob=supernet.dropout,
        layer_norm_eps=supernet.layer_norm_eps, initializer_range=supernet.initializer_range,
        pad_token_id=supernet.pad_token_id, project_every_block=True, output_size=supernet.teacher_width, **kwargs)


@torch.no_grad()
def _compose_into(target: nn.Linear, outer: nn.Linear, inner: nn.Linear) -> None:
    """target(x) = outer(inner(x)), computed in float64 so the product adds no rounding of its own."""
    w_out, w_in = inner.weight.double(), outer.weight.double()
    target.weight.copy_(w_in @ w_out)
    target.bias.copy_(w_in @ inner.bias.double() + outer.bias.double())


@torch.no_grad()
def assemble(supernet: Supernet, arch: NasArch | dict | str, *, num_labels: int | None = None,
             **config_kwargs: Any) -> NasBertModel | NasBertForSequenceClassification:
    """`arch` with its supernet weights, in eval mode: the bare encoder, or with `num_labels` a
    sequence classifier (fresh pooler and classifier) ready to fine-tune. `config_kwargs` go to
    the config (id2label, problem_type...)."""
    arch = NasArch.coerce(arch)
    supernet.check_arch(arch)
    if num_labels is not None:
        config_kwargs["num_labels"] = num_labels
    config = student_config(supernet, arch, **config_kwargs)
    model = NasBertForSequenceClassification(config) if num_labels is not None else NasBertModel(config)
    encoder = model.nasbert if num_labels is not None else model
    device = next(supernet.parameters()).device

    e = str(arch.embedding_width)
    encoder.embeddings.load_state_dict(supernet.embeddings[e].state_dict())
    previous = supernet.embedding_out[e]
    for b, (choice, source, target) in enumerate(zip(arch.blocks, supernet.blocks, encoder.blocks)):
        h = str(choice.hidden)
        _compose_into(encoder.embedding_proj if b == 0 else target.input_proj, source.input_proj[h], previous)
        for slot, op, built in zip(source.slots[h], choice.ops, target.slots):
            built.load_state_dict(slot[op].state_dict())
        previous = source.output_proj[h]
    encoder.output_proj.load_state_dict(previous.state_dict())
    return model.to(device).eval()


def assembled_parameters(arch: NasArch | dict | str, teacher_width: int, vocab_size: int, max_positions: int,
                         type_vocab_size: int = 2, pooler: bool = True) -> int:
    """Parameters of the bare model `assemble` builds for `arch`, without building it: the arch's
    own count with a projection before every block and one back to the teacher's width, and the
    pooler at that width."""
    arch = NasArch.coerce(arch)
    total = arch.num_parameters(vocab_size, max_positions, type_vocab_size, pooler=False)
    width = arch.embedding_width
    for block in arch.blocks:
        if block.hidden == width:  # num_parameters counts only the projections that change the width
            total += width * block.hidden + block.hidden
        width = block.hidden
    total += width * teacher_width + teacher_width
    return total + (teacher_width * teacher_width + teacher_width if pooler else 0)
