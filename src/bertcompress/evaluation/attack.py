"""Robustness: a TextFooler-style word-substitution attack on a sequence classifier (docs/methods.md,
"Evaluation: loyalty, robustness, size, latency").

For each example the model classifies correctly (wrong ones are counted, not attacked, as in
TextFooler):
1. word importance by deletion: drop each attackable word; importance is the drop in the
   true-class probability, plus, when the prediction changes, the gain of the new class;
2. candidates for each word, merged round-robin from up to three sources: a masked-LM head
   (BERT-Attack style, when there is one), nearest whole words in an input embedding space
   (cosine; a stand-in for TextFooler's counter-fitted vectors), and WordNet synonyms (when the
   WordNet 3.0 database is installed, e.g. Debian's `wordnet-base`); or a word list of your own.
   The sources live in `data/substitutes.py`, shared with TinyBERT augmentation. They come from
   ONE reference (`build_candidates`: the teacher in `evaluate`, or `candidates_from`), built
   once and reused for every model compared: each model attacked with its own embeddings would
   face other candidate words, and a lower success rate could only mean worse candidates;
3. greedy substitution in importance order: all candidates of a word are scored in one batch;
   take the first (best-ranked) that flips the label, else the one that lowers the true-class
   probability most (only if it does); stop at the first flip.
Budgets: at most `max_change_share` of the words may change, and at most `max_queries` model
calls per example, counted exactly (one scored text = one query, the clean prediction included).

Attackable words: alphabetic, longer than one letter, not a stop word (scikit-learn's English
list); candidates that are stop words are dropped too. Left out from TextFooler: its
part-of-speech filter and Universal Sentence Encoder similarity threshold, which need extra
models; so adversarial texts here are less constrained, and success rates are upper bounds
relative to the paper's.

Why not TextAttack (0.3.11, checked): it pulls ~25 packages (flair, bert-score,
language_tool_python, datasets, OpenHowNet, jieba, ...), runs `nltk.download` (tagger, stopwords,
wordnet, omw, punkt) on first import, and its TextFooler recipe downloads counter-fitted
embeddings from textattack.s3.amazonaws.com and the Universal Sentence Encoder from tfhub.dev
(needing TensorFlow) at run time: it cannot run offline.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.core.log import progress_bar
from bertcompress.data.examples import Example
from bertcompress.data.substitutes import (
    CandidateSource,
    EmbeddingNeighbourCandidates,
    MaskedLMCandidates,
    WordListCandidates,
    WordNetSynonyms,
    WordVocab,
    stop_words,
)
from bertcompress.evaluation.config import SOURCES, AttackConfig
from bertcompress.models.inputs import model_inputs
from bertcompress.models.loading import check_same_vocab, has_mlm_head, load_model, load_tokenizer

_TOKEN = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks, with their spans


def is_attackable(word: str) -> bool:
    return word.isalpha() and len(word) > 1 and word.lower() not in stop_words()


# ------------------------------------------------------------------ sources and scoring

@dataclass
class Candidates:
    """The candidate sources of one attack, built once from one reference and shared by every
    model it is run on (their caches too). `reference` names it in the records."""

    reference: str
    sources: dict[str, CandidateSource]

    def to(self, device: torch.device) -> Candidates:
        for src in self.sources.values():
            if isinstance(src, MaskedLMCandidates):
                src.model.to(device)
        return self


def _reference_mlm(path: str, tokenizer: Any, cfg: AttackConfig) -> nn.Module | None:
    if cfg.mlm_model:
        if not has_mlm_head(cfg.mlm_model):
            raise UserError(f"{cfg.mlm_model} has no trained masked-LM head to propose attack candidates")
        check_same_vocab(tokenizer, load_tokenizer(cfg.mlm_model), "the candidates' reference", cfg.mlm_model)
        return load_model(cfg.mlm_model, "masked_lm")
    return load_model(path, "masked_lm") if path and has_mlm_head(path) else None


def build_candidates(cfg: AttackConfig, reference: str | None = None, *, model: nn.Module | None = None,
                     tokenizer: Any = None) -> Candidates:
    """The sources named in cfg.sources that are available, in that order, from
    `cfg.candidates_from`, else `reference` (a model folder), else an in-memory `model` and its
    `tokenizer` (a standalone attack on one model). Refuses an attack with no source at all: it
    would report a robustness it never tested."""
    unknown = set(cfg.sources) - set(SOURCES)
    if unknown:
        raise UserError(f"unknown attack candidate sources {sorted(unknown)}; choose from {list(SOURCES)}")
    name, path = cfg.candidates_from or reference, ""
    out: dict[str, CandidateSource] = {}
    if name is not None and WordListCandidates.is_word_list(name):
        if "embedding" in cfg.sources or "mlm" in cfg.sources:  # the list stands in for the model-based ones
            out["wordlist"] = WordListCandidates(name)
    elif name is not None or model is not None:
        if name is not None:
            tokenizer = load_tokenizer(name)
        path = name if name is not None else getattr(model, "name_or_path", "") or ""  # "" when built from a config
        for source in cfg.sources:
            if source == "mlm" and (mlm := _reference_mlm(path, tokenizer, cfg)) is not None:
                out[source] = MaskedLMCandidates(mlm, tokenizer, WordVocab(tokenizer))
            elif source == "embedding":
                embeddings = (load_model(name, "base") if name is not None else model).get_input_embeddings()
                out[source] = EmbeddingNeighbourCandidates(embeddings.weight, tokenizer, WordVocab(tokenizer))
    if "wordnet" in cfg.sources and (wn := WordNetSynonyms.find(cfg.wordnet_dir)) is not None:
        out["wordnet"] = wn
    out = {k: out[k] for k in (*cfg.sources, "wordlist") if k in out}  # cfg.sources' order
    if not out:
        raise UserError(f"none of the attack candidate sources {list(cfg.sources)} is available")
    return Candidates(name or path or "the attacked model", out)


def _candidates(sources: dict[str, CandidateSource], words: list[str], positions: list[int],
                k: int) -> dict[int, list[str]]:
    """Up to k candidates per position, taken round-robin from the sources' ranked lists so that
    every source contributes; duplicates, stop words and the word itself are dropped."""
    lists = [src.candidates_at(words, positions, k) for src in sources.values()]
    out = {}
    for j, p in enumerate(positions):
        seen, merged = {words[p].lower()}, []
        for rank in range(k):
            for per_source in lists:
                c = per_source[j][rank] if rank < len(per_source[j]) else None
                if c and is_attackable(c) and c.lower() not in seen:
                    seen.add(c.lower())
                    merged.append(_match_case(c, words[p]))
        out[p] = merged[:k]
    return out


def _match_case(candidate: str, word: str) -> str:
    if word.isupper() and len(word) > 1:
        return candidate.upper()
    return candidate.capitalize() if word[:1].isupper() else candidate.lower()


class _Scorer:
    """Class probabilities from the model, counting every text scored as one query and
    refusing to go past the budget (a batch is cut to what is left)."""

    def __init__(self, model: nn.Module, tokenizer: Any, text_b: str | None, cfg: AttackConfig) -> None:
        self.model, self.tokenizer, self.text_b, self.cfg = model, tokenizer, text_b, cfg
        self.device = next(model.parameters()).device
        self.queries = 0

    @property
    def left(self) -> int:
        return self.cfg.max_queries - self.queries

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        texts = texts[:max(0, self.left)]
        self.queries += len(texts)
        out = [torch.empty(0, self.model.config.num_labels)]
        for i in range(0, len(texts), self.cfg.batch_size):
            chunk = texts[i:i + self.cfg.batch_size]
            pair = [self.text_b] * len(chunk) if self.text_b is not None else None
            enc = self.tokenizer(chunk, pair, padding=True, truncation=True, max_length=self.cfg.max_seq_len,
                                 return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in enc.items()}
            out.append(self.model(**model_inputs(batch, self.model)).logits.float().softmax(-1).cpu())
        return torch.cat(out)


def _render(text: str, spans: list[tuple[int, int]], words: list[str]) -> str:
    """The original text with each token span replaced by `words` (spacing kept as it was)."""
    parts, prev = [], 0
    for (start, end), w in zip(spans, words):
        parts += [text[prev:start], w]
        prev = end
    return "".join(parts) + text[prev:]


def _importance(scorer: _Scorer, text: str, spans: list, words: list[str], positions: list[int],
                label: int, probs: torch.Tensor) -> list[tuple[int, float]]:
    """(position, importance) by deletion, most important first. Positions the query budget
    left unscored are not returned."""
    texts = [_render(text, spans, words[:p] + [""] + words[p + 1:]) for p in positions]
    deleted = scorer(texts)
    scores = []
    for p, q in zip(positions, deleted):
        score = float(probs[label] - q[label])
        new = int(q.argmax())
        if new != label:  # the deletion alone flips it: add how much the new class gained
            score += float(q[new] - probs[new])
        scores.append((p, score))
    return sorted(scores, key=lambda s: -s[1])


def word_importance(model: nn.Module, tokenizer: Any, text: str, label: int, *, text_b: str | None = None,
                    config: AttackConfig | None = None) -> list[tuple[str, float]]:
    """(word, importance) for the attackable words of `text`, most important first."""
    cfg = config or AttackConfig()
    scorer = _Scorer(model.eval(), tokenizer, text_b, cfg)
    spans, words = _tokens(text)
    positions = [i for i, w in enumerate(words) if is_attackable(w)]
    ranked = _importance(scorer, text, spans, words, positions, label, scorer([text])[0])
    return [(words[p], s) for p, s in ranked]


def _tokens(text: str) -> tuple[list[tuple[int, int]], list[str]]:
    matches = list(_TOKEN.finditer(text))
    return [m.span() for m in matches], [m.group() for m in matches]


# ------------------------------------------------------------------ the attack

def attack_example(model: nn.Module, tokenizer: Any, sources: dict[str, CandidateSource], text: str,
                   label: int, *, text_b: str | None = None, config: AttackConfig) -> dict[str, Any]:
    """Attack one example; a record with status "skipped" (already misclassified), "succeeded"
    or "failed" (budget spent, or no candidate flips it)."""
    cfg = config
    scorer = _Scorer(model, tokenizer, text_b, cfg)
    probs = scorer([text])[0]
    pred = int(probs.argmax())
    spans, words = _tokens(text)
    n_words = sum(w[0].isalnum() or w[0] == "_" for w in words)
    rec: dict[str, Any] = {"original": text, "text_b": text_b, "label": label, "original_prediction": pred,
                           "adversarial": None, "adversarial_prediction": pred, "changed_words": [],
                           "words_changed_share": 0.0, "queries": 0, "success": False, "status": "failed"}
    max_changes = int(cfg.max_change_share * n_words + 1e-9)
    positions = [i for i, w in enumerate(words) if is_attackable(w)]
    if pred != label:
        rec["status"] = "skipped"
    elif max_changes > 0 and positions:
        ranked = _importance(scorer, text, spans, words, positions, label, probs)
        cands = _candidates(sources, words, [p for p, _ in ranked], cfg.candidates_k)
        current, true_prob = list(words), float(probs[label])
        for p, _ in ranked:
            if len(rec["changed_words"]) >= max_changes or scorer.left <= 0:
                break
            options = cands[p]
            if not options:
                continue
            q = scorer([_render(text, spans, current[:p] + [c] + current[p + 1:]) for c in options])
            flips = (q.argmax(1) != label).nonzero().flatten().tolist()
            best = flips[0] if flips else int(q[:, label].argmin()) if len(q) else None
            if best is None or (not flips and float(q[best, label]) >= true_prob):
                continue  # nothing helps: keep the word, as TextFooler does
            current[p], true_prob = options[best], float(q[best, label])
            rec["changed_words"].append({"position": p, "original": words[p], "new": options[best]})
            if flips:
                rec.update(success=True, status="succeeded", adversarial=_render(text, spans, current),
                           adversarial_prediction=int(q[best].argmax()))
                break
    rec["words_changed_share"] = len(rec["changed_words"]) / max(1, n_words)
    rec["queries"] = scorer.queries
    return rec


def _as_triple(ex: Any) -> tuple[str, str | None, int]:
    if isinstance(ex, Example):
        ex = (ex.text_a, ex.text_b, ex.label)
    text_a, text_b, label = (ex[0], None, ex[1]) if len(ex) == 2 else tuple(ex)
    if label is None or isinstance(label, float) and not float(label).is_integer():
        raise UserError(f"the attack needs class labels, got {label!r} for {text_a[:40]!r}")
    return text_a, text_b, int(label)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def attack(model: nn.Module, tokenizer: Any, examples: Sequence[Any], *,
           config: AttackConfig | None = None, candidates: Candidates | None = None) -> dict[str, Any]:
    """Attack examples, each a (text, label), (text_a, text_b, label) or `Example`; for pairs
    only text_a is perturbed. `candidates`: the sources shared by every model of a comparison
    (`build_candidates`); None builds them from `config.candidates_from`, else from this model.
    Returns aggregates (`candidates_from` names the reference) plus per-example `records`:

    clean_accuracy: correct before the attack / examples; attack_accuracy: still correct after
    it / examples; attack_success_rate: flipped / attacked (attacked = originally correct);
    mean_words_changed_share: over successful attacks (as TextAttack reports it); mean_queries:
    over attacked examples. Rates with nothing to average over are None.
    """
    cfg = config or AttackConfig()
    if getattr(model.config, "num_labels", 2) < 2:
        raise UserError("the word-substitution attack needs a classifier; this model is a regressor")
    triples = [_as_triple(ex) for ex in examples]
    if not triples:
        raise UserError("no examples to attack")
    outside = sorted({y for _, _, y in triples if not 0 <= y < model.config.num_labels})
    if outside:
        raise UserError(f"labels {outside} are outside the model's {model.config.num_labels} classes")
    if cfg.max_examples is not None and len(triples) > cfg.max_examples:
        keep = sorted(random.Random(cfg.seed).sample(range(len(triples)), cfg.max_examples))
        triples = [triples[i] for i in keep]
    was_training = model.training
    model.eval()
    if candidates is None:
        candidates = build_candidates(cfg, model=model, tokenizer=tokenizer)
    sources = candidates.to(next(model.parameters()).device).sources
    records, n_attacked, n_won = [], 0, 0
    bar = progress_bar(triples, desc=f"attack ({'+'.join(sources)})", unit="ex",
               disable=not cfg.progress, dynamic_ncols=True)
    for text_a, text_b, label in bar:
        rec = attack_example(model, tokenizer, sources, text_a, label, text_b=text_b, config=cfg)
        records.append(rec)
        n_attacked, n_won = n_attacked + (rec["status"] != "skipped"), n_won + rec["success"]
        bar.set_postfix(success=f"{n_won}/{n_attacked}")
    model.train(was_training)

    n = len(records)
    attacked = [r for r in records if r["status"] != "skipped"]
    won = [r for r in attacked if r["success"]]
    return {"examples": n, "attacked": len(attacked), "succeeded": len(won), "sources": list(sources),
            "candidates_from": candidates.reference,
            "clean_accuracy": len(attacked) / n, "attack_accuracy": (len(attacked) - len(won)) / n,
            "attack_success_rate": len(won) / len(attacked) if attacked else None,
            "mean_words_changed_share": _mean([r["words_changed_share"] for r in won]),
            "mean_queries": _mean([r["queries"] for r in attacked]),
            "total_queries": sum(r["queries"] for r in records), "records": records}
