"""TinyBERT data augmentation: more task sentences by swapping words for likely substitutes.

Every word is replaced with probability p by a random choice among its top-K candidates, N_a
times per example. Candidates follow TinyBERT (data/substitutes.py, `CombinedCandidates`): a
single-piece word asks a pre-trained masked LM (the word masked in its sentence), a multi-piece
word takes its nearest neighbours in a word embedding space. The masked LM is `augment.mlm_model`
(e.g. bert-base-uncased, as in the paper), else the teacher's own MLM head when it has a trained
one; a fine-tuned classifier has none, so without `mlm_model` every word uses the neighbours.
"Single piece" is judged by the MLM's tokenizer, the neighbours use the teacher's (candidates are
words, so two vocabularies combine). The paper's neighbours come from GloVe; we use the teacher's
own input embeddings instead, which needs no extra download. Stop words, negations and contrast
words ("not", "no", "never", "but", ...: `never_replaced`) are never replaced (`skip_stop_words`).

Differences from the reference code, chosen for speed and simplicity:
- words are the whitespace-split text (a tagged sentence's tokens: each word is swapped for one
  word, so its tags stay in place); only purely alphabetic words are replaced, so
  punctuation, numbers and words glued to punctuation ("film,") stay as they are;
- the MLM sees the masked sentence alone (the reference appends the unmasked sentence as a
  second segment);
- candidates are whole alphabetic vocabulary words only and never the word itself (the
  reference keeps the word as one of the choices);
- the stop words are scikit-learn's list plus `NEGATIONS` (the reference uses NLTK's list,
  which lacks e.g. "never");
- for a sentence pair, each new example changes both sentences, each word of either side
  replaced independently (the reference writes one side's augmentations at a time, the other
  side unchanged).
As in the reference, candidates are computed once per sentence, from the original sentence (for
a pair: each side from its own sentence).

Speed: see data/substitutes.py (batched MLM passes, cached neighbour look-ups). The result is
still worth keeping, so `augment_examples` caches it in a JSONL file keyed by everything that
determines it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any, Sequence

import torch

from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_write_text
from bertcompress.core.log import progress_bar
from bertcompress.data.substitutes import (
    CandidateSource,
    CombinedCandidates,
    EmbeddingNeighbourCandidates,
    MaskedLMCandidates,
    WordVocab,
    is_replaceable,
    never_replaced,
)
from bertcompress.methods.distill.config import AugmentConfig
from bertcompress.models.loading import has_mlm_head, hub_kwargs, load_model, load_tokenizer, resolve_model_path

log = logging.getLogger(__name__)

# rows: the source example's index and its new words (a pair's: both sides' words, text_a's first)
CACHE_FORMAT = "bertcompress-augment/3"


def _same_model(a: str, b: str) -> bool:
    return Path(resolve_model_path(a)).resolve() == Path(resolve_model_path(b)).resolve()


def build_candidate_source(teacher: str, tokenizer: Any, *, mlm: str | None = None,
                           device: str | torch.device | None = None) -> CombinedCandidates:
    """Neighbours from the teacher's input embeddings (with the teacher's `tokenizer`) always;
    the masked LM of model `mlm` too when given, with that model's own tokenizer."""
    vocab = WordVocab(tokenizer)
    own = mlm is not None and _same_model(mlm, teacher)
    mlm_model = load_model(mlm, "masked_lm") if mlm is not None else None
    embeddings = (mlm_model if own else load_model(teacher, "base")).get_input_embeddings().weight
    neighbours = EmbeddingNeighbourCandidates(embeddings, tokenizer, vocab)  # takes a CPU copy
    masked = None
    if mlm_model is not None:
        mlm_tokenizer = tokenizer if own else load_tokenizer(mlm)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        masked = MaskedLMCandidates(mlm_model.to(device), mlm_tokenizer, vocab if own else WordVocab(mlm_tokenizer))
    return CombinedCandidates(neighbours, masked)


def mlm_source(teacher: str, cfg: AugmentConfig) -> str | None:
    """The model whose masked LM proposes candidates for single-piece words: `cfg.mlm_model`,
    which must have a trained MLM head; else the teacher if it has one; else None (neighbours)."""
    name = cfg.mlm_model
    if name is None:
        return teacher if has_mlm_head(teacher) else None
    try:
        ok = has_mlm_head(name)
    except UserError as e:
        raise UserError(f"augment.mlm_model: {e}") from None
    if ok:
        return name
    if Path(resolve_model_path(name)).is_dir():
        raise UserError(f"augment.mlm_model {name} has no trained masked-LM head (a fine-tuned classifier or a "
                        "bare encoder has none): name a pre-trained masked LM such as bert-base-uncased")
    raise UserError(f"augment.mlm_model {name}: cannot load it as a masked LM with a trained head (not downloaded "
                    "while offline, no network, or no such head); a local folder of a pre-trained masked LM works")


def source_label(mlm: str | None) -> str:
    """What proposes the candidates, as the cache header and the record say it."""
    return f"mlm({mlm})+neighbours" if mlm is not None else "neighbours"


# ------------------------------------------------------------------ augmentation

def word_candidates(words: list[str], source: CandidateSource, top_k: int,
                    protected: frozenset[str] = frozenset()) -> list[list[str]]:
    """Candidates for every word of one sentence; none for words that are not replaceable or
    whose lowercase form is in `protected` (those are not even looked up)."""
    positions = [i for i, w in enumerate(words) if is_replaceable(w) and w.lower() not in protected]
    found = dict(zip(positions, source.candidates_at(words, positions, top_k))) if positions else {}
    return [found.get(i, []) for i in range(len(words))]


def sample_words(words: list[str], cands: Sequence[list[str]], p: float, n_aug: int,
                 rng: random.Random) -> list[list[str]]:
    """Exactly n_aug word lists, each word replaced with probability p by a uniform choice among
    its candidates `cands[i]` (words without candidates are kept). Deterministic given rng."""
    out = []
    for _ in range(n_aug):
        new = list(words)
        for i, c in enumerate(cands):
            if c and rng.random() < p:
                new[i] = rng.choice(c)
        out.append(new)
    return out


def augment_words(words: list[str], source: CandidateSource, p: float, top_k: int, n_aug: int,
                  rng: random.Random, *, protected: frozenset[str] = frozenset()) -> list[list[str]]:
    """Exactly n_aug word lists, each word replaced with probability p by a uniform choice among
    its top_k candidates (words without candidates, and `protected` words, are kept). An output
    may equal the input (always so at p = 0); `augment_examples` drops such duplicates.
    Deterministic given rng."""
    return sample_words(words, word_candidates(words, source, top_k, protected), p, n_aug, rng)


def augment_sentence(words: list[str], source: CandidateSource, p: float, top_k: int, n_aug: int,
                     rng: random.Random, *, protected: frozenset[str] = frozenset()) -> list[str]:
    """`augment_words`, each output joined into a sentence."""
    return [" ".join(new) for new in augment_words(words, source, p, top_k, n_aug, rng, protected=protected)]


def _sentences(example: Any) -> list[list[str]]:
    """The example's sentences as word lists (an `Example` pair has two); their concatenation is
    `example.words()`. Anything without `sentences()` is one sentence."""
    return example.sentences() if hasattr(example, "sentences") else [example.words()]


def _model_fingerprint(name: str) -> list[Any]:
    """The resolved path plus size and mtime of its files, so a re-trained model in the same
    folder misses the cache instead of reusing stale augmentations."""
    path = resolve_model_path(name)
    p = Path(path)
    if not p.is_dir():  # a hub id: its name and the revision it pins
        return [path, *hub_kwargs(name).values()]
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".safetensors", ".bin", ".json", ".txt"))
    return [str(p.resolve())] + [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def _plain(o: Any) -> Any:
    """numpy / torch scalar labels as plain Python numbers, for JSON."""
    return o.item()


def _cache_key(teacher: str, mlm: str | None, cfg: AugmentConfig, subset: list) -> str:
    rows = [[type(e).__name__, *dataclasses.astuple(e)] for e in subset]
    texts = hashlib.sha256(json.dumps(rows, default=_plain).encode()).hexdigest()
    stop = sorted(never_replaced()) if cfg.skip_stop_words else None  # the list may change with scikit-learn
    parts = [CACHE_FORMAT, _model_fingerprint(teacher), source_label(mlm),
             _model_fingerprint(mlm) if mlm is not None else None, stop,
             cfg.p, cfg.top_k, cfg.n_aug, cfg.seed, cfg.max_examples, texts]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _read_cache(path: Path, key: str) -> list[tuple[int, list[str]]] | None:
    """The cached augmentations (source index, new words), or None if absent, for another key, or
    incomplete."""
    if not path.is_file():
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
        rows = [json.loads(line) for line in lines[1:]]
    except (OSError, ValueError, IndexError) as e:
        log.warning("ignoring unreadable augmentation cache %s (%s)", path, e)
        return None
    if header.get("format") != CACHE_FORMAT or header.get("key") != key or header.get("count") != len(rows):
        log.warning("ignoring stale or incomplete augmentation cache %s", path)
        return None
    return [(r["source"], r["words"]) for r in rows]


class AugmentedExamples(list):
    """What `augment_examples` returns: the examples (a plain list in every way) and `record`, a
    JSON-ready dict of how they were made: `source` ("mlm(<model>)+neighbours" or
    "neighbours"), `mlm_model`, `skip_stop_words`, `examples` (how many were augmented),
    `new_examples`, `from_cache` and `cache` (the file)."""

    def __init__(self, examples: list, record: dict[str, Any]) -> None:
        super().__init__(examples)
        self.record = record


def augment_examples(examples: list, teacher: str, cfg: AugmentConfig, cache_dir: str | Path,
                     *, progress: bool = True, device: str | torch.device | None = None) -> AugmentedExamples:
    """The original examples followed by the augmented ones (N_a per example, duplicates of the
    original or of each other dropped), each with its source's label; `.record` of the result
    says how they were made (see `AugmentedExamples`). Examples are `Example`s or tagged
    sentences: anything with `words()` and `with_words(words)` (and `sentences()` when the words
    form several sentences, as a pair's do).

    Only the first cfg.max_examples examples are augmented (all if None). For sentence pairs both
    texts change, each side's words independently with the same p and top_k. `cfg.enabled` is
    the caller's decision; this function always augments.
    """
    subset = list(examples if cfg.max_examples is None else examples[:cfg.max_examples])
    mlm = mlm_source(teacher, cfg)
    kind = source_label(mlm)
    protected = never_replaced() if cfg.skip_stop_words else frozenset()
    key = _cache_key(teacher, mlm, cfg, subset)
    path = Path(cache_dir) / f"augment-{key[:24]}.jsonl"
    record = {"source": kind, "mlm_model": mlm, "skip_stop_words": cfg.skip_stop_words, "examples": len(subset),
              "cache": str(path)}
    cached = _read_cache(path, key)
    if cached is not None:
        log.info("augmentation: %d examples from cache %s", len(cached), path)
        record.update(new_examples=len(cached), from_cache=True)
        return AugmentedExamples(list(examples) + [subset[i].with_words(words) for i, words in cached], record)

    tokenizer = load_tokenizer(teacher)
    source = build_candidate_source(teacher, tokenizer, mlm=mlm, device=device)
    source.prefetch((w for ex in subset for w in ex.words() if w.lower() not in protected), cfg.top_k)
    rng = random.Random(cfg.seed)
    augmented: list[tuple[int, list[str]]] = []
    for i, ex in enumerate(progress_bar(subset, desc=f"augment ({kind})", unit="ex", disable=not progress,
                                dynamic_ncols=True)):
        sentences = _sentences(ex)
        words = [w for s in sentences for w in s]
        cands = [c for s in sentences for c in word_candidates(s, source, cfg.top_k, protected)]
        seen = {tuple(words)}
        for new in sample_words(words, cands, cfg.p, cfg.n_aug, rng):
            if tuple(new) not in seen:
                seen.add(tuple(new))
                augmented.append((i, new))

    header = {"format": CACHE_FORMAT, "key": key, "teacher": str(teacher), "source": kind, "mlm_model": mlm,
              "skip_stop_words": cfg.skip_stop_words, "p": cfg.p, "top_k": cfg.top_k, "n_aug": cfg.n_aug,
              "seed": cfg.seed, "max_examples": cfg.max_examples, "count": len(augmented)}
    rows = [json.dumps({"source": i, "words": words}) for i, words in augmented]
    atomic_write_text(path, "\n".join([json.dumps(header)] + rows) + "\n")
    log.info("augmentation: %d new examples from %d (%s), cached in %s", len(augmented), len(subset), kind, path)
    record.update(new_examples=len(augmented), from_cache=False)
    return AugmentedExamples(list(examples) + [subset[i].with_words(words) for i, words in augmented], record)
