"""Tagging sentences with a CVT tagger, and scoring it on tagged sentences."""

from __future__ import annotations

from typing import Any

import torch

from bertcompress.core.errors import UserError
from bertcompress.data.tagging import TaggedSentence
from bertcompress.evaluation.tagging_metrics import tagging_metrics
from bertcompress.methods.cvt.model import CvtTagger
from bertcompress.methods.cvt.text import split_words
from bertcompress.methods.cvt.vocab import CvtCollator

PREDICT_BATCH = 64


def _words(sentence: Any) -> list[str]:
    if isinstance(sentence, TaggedSentence):
        return sentence.tokens
    if isinstance(sentence, str):
        return split_words(sentence)
    if isinstance(sentence, (list, tuple)) and all(isinstance(w, str) and w for w in sentence):
        return list(sentence)
    raise UserError(f"a sentence to tag must be a string, a list of words or a TaggedSentence, got {sentence!r}")


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding), longest first."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def predict_ids(tagger: CvtTagger, sentences: list[list[str]], batch_size: int = PREDICT_BATCH) -> list[list[int]]:
    """Tag ids per word of each sentence, in the order given."""
    device = next(tagger.parameters()).device
    collate = CvtCollator(tagger.min_chars)
    out: list[list[int]] = [[] for _ in sentences]
    for chunk in length_batches([len(s) for s in sentences], batch_size):
        batch = collate([tagger.vocab.encode(sentences[i]) for i in chunk])
        logits = tagger(batch["input_ids"].to(device), batch["chars"].to(device), batch["attention_mask"].to(device))
        best = logits.argmax(-1).cpu()
        for row, i in enumerate(chunk):
            out[i] = best[row, :len(sentences[i])].tolist()
    return out


def predict_tags(tagger: CvtTagger, sentences: list, batch_size: int = PREDICT_BATCH) -> list[list[str]]:
    """The tags of each sentence: a string (split into words by `text.split_words`), a list of
    words, or a TaggedSentence (its tags are ignored)."""
    words = [_words(s) for s in sentences]
    return [[tagger.vocab.tags[i] for i in row] for row in predict_ids(tagger, words, batch_size)]


def score_tagger(tagger: CvtTagger, sentences: list[TaggedSentence], batch_size: int = PREDICT_BATCH) -> dict:
    """`tagging_metrics` of the tagger's predictions (accuracy; span F1 for BIO-style tag sets)."""
    predicted = predict_tags(tagger, sentences, batch_size)
    return tagging_metrics([s.tags for s in sentences], predicted, tagger.vocab.tags)
