"""Sequence-tagging metrics over words (one tag per word, word pieces already folded away).

Token accuracy always; for span tag sets (BIO, BIOES: every tag "O" or B-/I-/E-/S-<type>) also
span precision, recall and F1 as seqeval computes them by default (conlleval's lenient chunking,
micro-averaged over span types). "score" is span F1 for span tag sets, accuracy otherwise.
"""

from __future__ import annotations

from collections import Counter

from bertcompress.core.errors import UserError
from bertcompress.data.tagging import is_span_tagset


def _check(gold: list[list[str]], predicted: list[list[str]]) -> int:
    if len(gold) != len(predicted):
        raise UserError(f"{len(predicted)} predicted sentences for {len(gold)} gold sentences")
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise UserError(f"sentence {i}: {len(p)} predicted tags for {len(g)} gold tags")
    total = sum(len(g) for g in gold)
    if total == 0:
        raise UserError("no tagged words to score")
    return total


def tagging_metrics(gold: list[list[str]], predicted: list[list[str]], tag_names: list[str] | None = None,
                    truncated_words: int = 0) -> dict[str, float]:
    """accuracy (share of words tagged right), words (how many were scored), span_precision,
    span_recall and span_f1 for span tag sets, and score. Whether the tags are a span set is
    read from `tag_names` (the task's tag set) when given, else from the tags seen here.
    `truncated_words` (words cut by max_seq_len, unscored) is passed through for the record."""
    words = _check(gold, predicted)
    correct = sum(g == p for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps))
    out = {"accuracy": correct / words, "words": words, "truncated_words": truncated_words}
    seen = tag_names if tag_names is not None else {t for rows in (gold, predicted) for row in rows for t in row}
    if is_span_tagset(seen):
        from seqeval.metrics import f1_score, precision_score, recall_score

        # zero_division=0: no predicted (or no gold) spans scores 0 rather than warning.
        out["span_precision"] = float(precision_score(gold, predicted, zero_division=0))
        out["span_recall"] = float(recall_score(gold, predicted, zero_division=0))
        out["span_f1"] = float(f1_score(gold, predicted, zero_division=0))
    out["score"] = out.get("span_f1", out["accuracy"])
    return out


def tagging_trivial_baseline(gold: list[list[str]], tag_names: list[str] | None = None) -> dict[str, object]:
    """The most frequent gold tag predicted for every word (ties: the first in sorted order),
    scored like a model: its accuracy is that tag's share, and its span F1 is 0 whenever that tag
    is "O", as in every real BIO set. What a tagger that learned nothing scores."""
    counts = Counter(t for row in gold for t in row)
    if not counts:
        raise UserError("no tagged words to score")
    majority = min(counts, key=lambda t: (-counts[t], t))
    scores = tagging_metrics(gold, [[majority] * len(row) for row in gold], tag_names)
    return {"trivial_score": scores["score"], "trivial_predictor": f"majority tag {majority}",
            **{f"trivial_{k}": v for k, v in scores.items() if k in ("accuracy", "span_f1")}}


def tagging_scores(task, outputs, features: list[dict]) -> dict[str, float]:
    """A tagging task's metrics from its scored outputs: one logit row per labelled word, in the
    order of `features` (data/kinds.py), with "score" the task's first metric (data.metric)."""
    import numpy as np

    from bertcompress.data.tagging import IGNORE, ids_to_tags

    outputs = outputs.detach().cpu().numpy() if hasattr(outputs, "detach") else np.asarray(outputs)
    predicted = outputs.argmax(-1).tolist()
    gold, rows, start = [], [], 0
    for f in features:
        gold.append([label for label in f["labels"] if label != IGNORE])
        rows.append(predicted[start:start + len(gold[-1])])
        start += len(gold[-1])
    if start != len(predicted):
        raise UserError(f"{len(predicted)} word predictions for {start} labelled words")
    names = list(task.labels)
    truncated = sum(f.get("words", f["word_count"]) - f["word_count"] for f in features)
    out = tagging_metrics(ids_to_tags(gold, names), ids_to_tags(rows, names), names, truncated)
    out["score"] = out[task.metrics[0]]
    return out


def tagging_trivial(task, examples) -> dict[str, object]:
    """`tagging_trivial_baseline` on these tagged sentences, its score in the task's first metric."""
    out = tagging_trivial_baseline([s.tags for s in examples], list(task.labels))
    out["trivial_score"] = out[f"trivial_{task.metrics[0]}"]
    return out
