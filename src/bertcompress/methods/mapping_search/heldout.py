"""The `heldout_loss` proxy metric of the layer-mapping search: one loss, the same for every mapping.

After a candidate's proxy general distillation, the student and the teacher read the corpus
sequences right after the proxy's training ones (sequences proxy_sequences .. proxy_sequences +
heldout_sequences - 1, never trained on), and the score is the MSE between the student's last
hidden states, through the hidden projection general distillation used, and the teacher's last
hidden states, over real (non-padding) tokens and every width dimension.

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
                       device: str) -> tuple[list[dict[str, torch.Tensor]], list[torch.Tensor], int]:
    """The held-out batches and the teacher's last hidden states on them, and the teacher's width:
    the same for every candidate of a search, so computed once (the corpus config comes as JSON to
    be a cache key)."""
    corpus = from_dict(CorpusConfig, json.loads(corpus_json))
    tokenizer = load_tokenizer(teacher)
    t_model = load_model(teacher, "base").to(device).eval()
    features = heldout_features(tokenizer, corpus, skip, count)
    collate = Collator(tokenizer.pad_token_id or 0)
    batches = [{k: v.to(device) for k, v in collate(features[i:i + batch_size]).items()}
               for i in range(0, len(features), batch_size)]
    targets = [run_with_intermediates(t_model, batch, None).hidden_states[-1].float() for batch in batches]
    return batches, targets, describe(t_model).hidden_size


@torch.no_grad()
def heldout_loss(student_path: str | Path, teacher: str, losses: LossConfig, corpus: CorpusConfig, skip: int,
                 count: int, batch_size: int = 32, device: str = "auto") -> float:
    """MSE of the student's and the teacher's last hidden states on the held-out
    sequences, in fp32, averaged over every real token and width dimension of the whole set."""
    dev = str(pick_device(device))
    batches, targets, d_teacher = _teacher_reference(teacher, json.dumps(to_dict(corpus), sort_keys=True), skip,
                                                     count, batch_size, dev)
    s_model = load_model(str(student_path), "base").to(dev).eval()
    check_widths(losses, describe(s_model).hidden_size, d_teacher)  # W_h is the identity
    squared, count_real = torch.zeros((), dtype=torch.float64), 0.0
    for batch, t_last in zip(batches, targets):
        mask = batch["attention_mask"].float()
        s_last = run_with_intermediates(s_model, batch, None).hidden_states[-1]
        squared += sum_squared_error(s_last.float(), t_last, mask).double().cpu()
        count_real += float(mask.sum()) * t_last.shape[-1]
    return float(squared / count_real)
