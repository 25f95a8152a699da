"""TinyBERT data augmentation: more task sentences by swapping words for likely substitutes.

Every word is replaced with probability p by a random choice among its top-K candidates, N_a
times per example. Candidates follow TinyBERT (data/substitutes.py, `CombinedCandidates`): a
single-piece word asks the teacher's masked-LM (the word masked in its sentence), a multi-piece
word takes its nearest neighbours in a word embedding space. The paper uses GloVe there; we use
the teacher's own input embeddings instead, which needs no extra download. A teacher without a
trained MLM head (e.g. a fine-tuned classifier) uses the neighbours for every word.

Differences from the reference code, chosen for speed and simplicity:
- words are the whitespace-split text (a tagged sentence's tokens: each word is swapped for one
  word, so its tags stay in place); only purely alphabetic words are replaced, so
  punctuation, numbers and words glued to punctuation ("film,") stay as they are;
- the MLM sees the masked sentence alone (the reference appends the unmasked sentence as a
  second segment);
- candidates are whole alphabetic vocabulary words only and never the word itself (the
  reference keeps the word as one of the choices); no stop-word list.
As in the reference, candidates are computed once per sentence, from the original sentence.

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
from typing import Any

import torch
from tqdm.auto import tqdm

from ..config import AugmentConfig
from ..data.substitutes import (
    CandidateSource,
    CombinedCandidates,
    EmbeddingNeighbourCandidates,
    MaskedLMCandidates,
    WordVocab,
)
from ..io import atomic_write_text
from ..models.loading import has_mlm_head, load_model, load_tokenizer, resolve_model_path

log = logging.getLogger(__name__)

CACHE_FORMAT = "bertcompress-augment/2"  # rows: the source example's index and its new words


def build_candidate_source(teacher: str, tokenizer: Any, *, use_mlm: bool,
                           device: str | torch.device | None = None) -> CombinedCandidates:
    """Neighbours from the teacher's input embeddings always; the MLM too when `use_mlm`."""
    vocab = WordVocab(tokenizer)
    mlm_model = load_model(teacher, "masked_lm") if use_mlm else None  # its embeddings serve both
    embeddings = (mlm_model or load_model(teacher, "base")).get_input_embeddings().weight
    neighbours = EmbeddingNeighbourCandidates(embeddings, tokenizer, vocab)  # takes a CPU copy
    mlm = None
    if mlm_model is not None:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        mlm = MaskedLMCandidates(mlm_model.to(device), tokenizer, vocab)
    return CombinedCandidates(neighbours, mlm)


# ------------------------------------------------------------------ augmentation

def augment_words(words: list[str], source: CandidateSource, p: float, top_k: int, n_aug: int,
                  rng: random.Random) -> list[list[str]]:
    """Exactly n_aug word lists, each word replaced with probability p by a uniform choice among
    its top_k candidates (words without candidates are kept). An output may equal the input
    (always so at p = 0); `augment_examples` drops such duplicates. Deterministic given rng."""
    cands = source.sentence_candidates(words, top_k)
    out = []
    for _ in range(n_aug):
        new = list(words)
        for i, c in enumerate(cands):
            if c and rng.random() < p:
                new[i] = rng.choice(c)
        out.append(new)
    return out


def augment_sentence(words: list[str], source: CandidateSource, p: float, top_k: int, n_aug: int,
                     rng: random.Random) -> list[str]:
    """`augment_words`, each output joined into a sentence."""
    return [" ".join(new) for new in augment_words(words, source, p, top_k, n_aug, rng)]


def _teacher_fingerprint(teacher: str) -> list[Any]:
    """The resolved path plus size and mtime of its files, so a re-trained teacher in the same
    folder misses the cache instead of reusing stale augmentations."""
    path = resolve_model_path(teacher)
    p = Path(path)
    if not p.is_dir():
        return [path]
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".safetensors", ".bin", ".json", ".txt"))
    return [str(p.resolve())] + [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def _plain(o: Any) -> Any:
    """numpy / torch scalar labels as plain Python numbers, for JSON."""
    return o.item()


def _cache_key(teacher: str, kind: str, cfg: AugmentConfig, subset: list) -> str:
    rows = [[type(e).__name__, *dataclasses.astuple(e)] for e in subset]
    texts = hashlib.sha256(json.dumps(rows, default=_plain).encode()).hexdigest()
    parts = [CACHE_FORMAT, _teacher_fingerprint(teacher), kind, cfg.p, cfg.top_k, cfg.n_aug, cfg.seed,
             cfg.max_examples, texts]
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


def augment_examples(examples: list, teacher: str, cfg: AugmentConfig, cache_dir: str | Path,
                     *, progress: bool = True, device: str | torch.device | None = None) -> list:
    """The original examples followed by the augmented ones (N_a per example, duplicates of the
    original or of each other dropped), each with its source's label. Examples are `Example`s or
    tagged sentences: anything with `words()` and `with_words(words)`.

    Only the first cfg.max_examples examples are augmented (all if None). For sentence pairs
    only text_a changes and text_b is kept: the teacher relabels every augmented example during
    prediction-layer distillation anyway, and perturbing one side is enough to give new inputs.
    `cfg.enabled` is the caller's decision; this function always augments.
    """
    subset = list(examples if cfg.max_examples is None else examples[:cfg.max_examples])
    use_mlm = has_mlm_head(teacher)
    kind = "mlm+neighbours" if use_mlm else "neighbours"
    key = _cache_key(teacher, kind, cfg, subset)
    path = Path(cache_dir) / f"augment-{key[:24]}.jsonl"
    cached = _read_cache(path, key)
    if cached is not None:
        log.info("augmentation: %d examples from cache %s", len(cached), path)
        return list(examples) + [subset[i].with_words(words) for i, words in cached]

    tokenizer = load_tokenizer(teacher)
    source = build_candidate_source(teacher, tokenizer, use_mlm=use_mlm, device=device)
    source.prefetch((w for ex in subset for w in ex.words()), cfg.top_k)
    rng = random.Random(cfg.seed)
    augmented: list[tuple[int, list[str]]] = []
    for i, ex in enumerate(tqdm(subset, desc=f"augment ({kind})", unit="ex", disable=not progress,
                                dynamic_ncols=True)):
        words = ex.words()
        seen = {tuple(words)}
        for new in augment_words(words, source, cfg.p, cfg.top_k, cfg.n_aug, rng):
            if tuple(new) not in seen:
                seen.add(tuple(new))
                augmented.append((i, new))

    header = {"format": CACHE_FORMAT, "key": key, "teacher": str(teacher), "source": kind, "p": cfg.p,
              "top_k": cfg.top_k, "n_aug": cfg.n_aug, "seed": cfg.seed, "max_examples": cfg.max_examples,
              "count": len(augmented)}
    rows = [json.dumps({"source": i, "words": words}) for i, words in augmented]
    atomic_write_text(path, "\n".join([json.dumps(header)] + rows) + "\n")
    log.info("augmentation: %d new examples from %d (%s), cached in %s", len(augmented), len(subset), kind, path)
    return list(examples) + [subset[i].with_words(words) for i, words in augmented]
