"""The `heldout_loss` proxy metric of the layer-mapping search: one loss, the same for every mapping.

After a candidate's proxy general distillation, the student and the teacher read the corpus
sequences right after the proxy's training ones (sequences proxy_sequences .. proxy_sequences +
heldout_sequences - 1, never trained on). Each student layer m is scored against the teacher layer
g(m) it learned: the MSE of their hidden states over real (non-padding) tokens and every width
dimension, divided by that teacher layer's mean square (the share of the layer the student does not
reproduce; the teacher's layers differ in scale, MiniLM's last one 5x smaller than its fourth, and
raw MSEs would rank mappings by which teacher layers are small). The loss is the mean over the
student's layers. The last layer's raw MSE alone, the metric before issue 29, is recorded beside it:
it favours mappings whose last student layer learns the teacher's last layer, whatever the others do.

General distillation does not save its learned projection W_h: `stages.distill` publishes the
student alone, and W_h lives in the objective, whose checkpoints are dropped. So the loss can only
be measured where W_h is the identity (the student as wide as the teacher, `losses.projection`
auto or identity), and then it compares the hidden states as they are; anything else is a
UserError up front rather than a loss through an unfitted projection.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch

from bertcompress.core.config import from_dict, to_dict
from bertcompress.core.errors import UserError
from bertcompress.data.config import CorpusConfig
from bertcompress.data.corpus import chunk_corpus, load_corpus
from bertcompress.data.encoding import Collator
from bertcompress.methods.distill.config import LossConfig
from bertcompress.methods.distill.losses import sum_squared_error
from bertcompress.models.architecture import describe
from bertcompress.models.intermediates import run_with_intermediates
from bertcompress.models.loading import load_model, load_tokenizer
from bertcompress.train.distributed import pick_device


def heldout_features(tokenizer, corpus: CorpusConfig, skip: int, count: int) -> list[dict[str, list[int]]]:
    """Corpus sequences skip .. skip + count - 1, cut exactly as general distillation cuts them
    (chunk_corpus of more sequences begins with the same ones), so the first `skip` are the proxy's."""
    features = chunk_corpus(tokenizer, load_corpus(corpus), corpus.max_seq_len, skip + count)[skip:]
    if not features:
        raise UserError(f"the corpus has no sequences after the proxy's first {skip} to hold out; use a larger "
                        "corpus or fewer proxy_sequences")
    return features


def check_widths(losses: LossConfig, d_student: int, d_teacher: int) -> None:
    """The one-line error for a student whose last-layer loss needs a projection that is not saved."""
    if d_student != d_teacher:
        raise UserError(f"proxy_metric heldout_loss needs the student as wide as the teacher ({d_teacher}), got "
                        f"{d_student}: general distillation does not save its learned hidden projection")
    if losses.projection == "linear":
        raise UserError("proxy_metric heldout_loss needs losses.projection auto or identity: general distillation "
                        "does not save the learned linear projection")


@functools.lru_cache(maxsize=1)
@torch.no_grad()
def _teacher_reference(teacher: str, corpus_json: str, skip: int, count: int, batch_size: int,
                       device: str) -> tuple[list[dict[str, torch.Tensor]], list[tuple[torch.Tensor, ...]], list[float],
                                         int]:
    """The held-out batches, the teacher's hidden states on them (every layer), each layer's mean
    square over real tokens and width, and the teacher's width: the same for every candidate of a
    search, so computed once (the corpus config comes as JSON to be a cache key)."""
    corpus = from_dict(CorpusConfig, json.loads(corpus_json))
    tokenizer = load_tokenizer(teacher)
    t_model = load_model(teacher, "base").to(device).eval()
    features = heldout_features(tokenizer, corpus, skip, count)
    collate = Collator(tokenizer.pad_token_id or 0)
    batches = [{k: v.to(device) for k, v in collate(features[i:i + batch_size]).items()}
               for i in range(0, len(features), batch_size)]
    states = [tuple(h.float() for h in run_with_intermediates(t_model, batch, None).hidden_states) for batch in batches]
    real = sum(float(b["attention_mask"].sum()) for b in batches) * describe(t_model).hidden_size
    energy = [sum(float(sum_squared_error(h[n], torch.zeros_like(h[n]), b["attention_mask"].float()))
                  for h, b in zip(states, batches)) / real for n in range(len(states[0]))]
    return batches, states, energy, describe(t_model).hidden_size


@torch.no_grad()
def heldout_scores(student_path: str | Path, teacher: str, losses: LossConfig, corpus: CorpusConfig, skip: int,
                   count: int, mapping: list[int], batch_size: int = 32, device: str = "auto") -> dict[str, Any]:
    """On the held-out sequences, in fp32, over every real token and width dimension of the whole set:
    `layer_mse`, each student layer's MSE against its teacher layer `mapping[m]`; `layer_relative`, each
    divided by that teacher layer's mean square; `loss`, their mean (the metric); `last_mse`, the last
    student layer's MSE against the teacher's last layer (the metric before issue 29)."""
    dev = str(pick_device(device))
    batches, states, energy, d_teacher = _teacher_reference(teacher, json.dumps(to_dict(corpus), sort_keys=True),
                                                            skip, count, batch_size, dev)
    s_model = load_model(str(student_path), "base").to(dev).eval()
    check_widths(losses, describe(s_model).hidden_size, d_teacher)  # W_h is the identity
    pairs = [(m, n) for m, n in enumerate(mapping, start=1)] + [(len(mapping), len(states[0]) - 1)]
    squared = torch.zeros(len(pairs), dtype=torch.float64)
    count_real = 0.0
    for batch, t_states in zip(batches, states):
        mask = batch["attention_mask"].float()
        s_states = run_with_intermediates(s_model, batch, None).hidden_states
        squared += torch.stack([sum_squared_error(s_states[m].float(), t_states[n], mask).double().cpu()
                                for m, n in pairs])
        count_real += float(mask.sum()) * d_teacher
    mse = (squared / count_real).tolist()
    relative = [mse[i] / energy[n] for i, (_, n) in enumerate(pairs[:-1])]
    return {"loss": sum(relative) / len(relative), "layer_mse": mse[:-1], "layer_relative": relative,
            "last_mse": mse[-1]}
