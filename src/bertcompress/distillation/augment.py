"""TinyBERT data augmentation: more task sentences by swapping words for likely substitutes.

Every word is replaced with probability p by a random choice among its top-K candidates, N_a
times per example. Candidates follow TinyBERT: a single-piece word asks the teacher's masked-LM
(the word masked in its sentence), a multi-piece word takes its nearest neighbours in a word
embedding space. The paper uses GloVe there; we use the teacher's own input embeddings instead
(a word's vector is the mean of its pieces' rows), which needs no extra download. A teacher
without a trained MLM head (e.g. a fine-tuned classifier) uses the neighbours for every word.

Differences from the reference code, chosen for speed and simplicity:
- words are the whitespace-split text; only purely alphabetic words are replaced, so
  punctuation, numbers and words glued to punctuation ("film,") stay as they are;
- the MLM sees the masked sentence alone (the reference appends the unmasked sentence as a
  second segment);
- candidates are whole alphabetic vocabulary words only and never the word itself (the
  reference keeps the word as one of the choices); no stop-word list.
As in the reference, candidates are computed once per sentence, from the original sentence.

Speed: all masked copies of a sentence go through the MLM in one batch, and only the masked
rows are projected onto the vocabulary; neighbour look-ups are cached per word and scored in
batches. The result is still worth keeping, so `augment_examples` caches it in a JSONL file
keyed by everything that determines it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..config import AugmentConfig
from ..data.examples import Example
from ..errors import UserError
from ..io import atomic_write_text
from ..models.loading import has_mlm_head, load_model, load_tokenizer, resolve_model_path

log = logging.getLogger(__name__)

CACHE_FORMAT = "bertcompress-augment/1"
_MLM_BATCH = 64  # masked copies per forward pass
_SPARE = 3  # extra top-k rows fetched, so that dropping the word itself (any case) leaves top_k


def is_replaceable(word: str) -> bool:
    """Only plain alphabetic words are swapped; punctuation and numbers carry no synonyms."""
    return word.isalpha()


# ------------------------------------------------------------------ vocabulary helper

def _word_start_marker(vocab: dict[str, int]) -> str:
    """How the tokenizer marks word boundaries: "##" continues a word (WordPiece), "Ġ"/"▁" start
    one (byte-level BPE / SentencePiece). The most frequent prefix wins."""
    counts = {m: sum(t.startswith(m) for t in vocab) for m in ("##", "Ġ", "▁")}
    best = max(counts, key=counts.get)
    return best if counts[best] else "##"


class WordVocab:
    """What both sources need from a tokenizer: how a word splits into pieces, and which
    vocabulary ids are whole alphabetic words (the only allowed replacements)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        vocab = tokenizer.get_vocab()
        marker = _word_start_marker(vocab)
        specials = set(tokenizer.all_special_ids)
        self.size = max(vocab.values()) + 1
        self.surface: list[str | None] = [None] * self.size  # id -> the word it spells, if whole
        for tok, i in vocab.items():
            if i in specials:
                continue
            if marker == "##":
                word = None if tok.startswith("##") else tok
            else:
                word = tok[len(marker):] if tok.startswith(marker) else None
            if word and word.isalpha():
                self.surface[i] = word
        self.unk_id = tokenizer.unk_token_id
        self._pieces: dict[str, tuple[int, ...]] = {}

    def pieces(self, word: str) -> tuple[int, ...]:
        """The word's piece ids as it appears mid-sentence (leading space for BPE); cached."""
        if word not in self._pieces:
            ids = self.tokenizer(" " + word, add_special_tokens=False)["input_ids"]
            self._pieces[word] = tuple(ids)
        return self._pieces[word]

    def known(self, word: str) -> bool:
        """False for words the tokenizer cannot spell (any [UNK] piece): nothing to look up."""
        p = self.pieces(word)
        return bool(p) and (self.unk_id is None or self.unk_id not in p)

    def normalised(self, word: str) -> str:
        """The word as the tokenizer sees it (lowercased if it lowercases), for self-exclusion."""
        return self.tokenizer.decode(list(self.pieces(word))).strip().lower()

    def allowed(self, n: int) -> torch.Tensor:
        """Bool mask over the first n ids: True for whole alphabetic words."""
        mask = torch.zeros(n, dtype=torch.bool)
        ids = [i for i, w in enumerate(self.surface[:n]) if w is not None]
        mask[ids] = True
        return mask


# ------------------------------------------------------------------ candidate sources

class CandidateSource:
    """Proposes replacement words for one word of a sentence."""

    kind = "base"

    def candidates(self, words: list[str], position: int, top_k: int) -> list[str]:
        raise NotImplementedError

    def sentence_candidates(self, words: list[str], top_k: int) -> list[list[str]]:
        """Candidates for every word (empty for words that are not replaceable). Sources that
        can batch override this."""
        return [self.candidates(words, i, top_k) if is_replaceable(w) else [] for i, w in enumerate(words)]


def _top_words(scores: torch.Tensor, vocab: WordVocab, exclude: str, top_k: int) -> list[str]:
    """The top_k allowed words by score, skipping `exclude` (case-insensitively). `scores` must
    already be -inf on disallowed ids."""
    k = min(top_k + _SPARE, int(torch.isfinite(scores).sum()))
    if k <= 0:
        return []
    out = []
    for i in torch.topk(scores, k).indices.tolist():
        w = vocab.surface[i]
        if w is not None and w.lower() != exclude:
            out.append(w)
    return out[:top_k]


class MaskedLMCandidates(CandidateSource):
    """The teacher's masked-LM predictions for a single-piece word masked in its sentence.
    Multi-piece words get no candidates here (see CombinedCandidates)."""

    kind = "mlm"

    def __init__(self, model: nn.Module, tokenizer: Any, vocab: WordVocab | None = None) -> None:
        if tokenizer.mask_token_id is None:
            raise UserError("the teacher's tokenizer has no mask token: cannot ask its masked-LM for candidates")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.vocab = vocab or WordVocab(tokenizer)
        n_out = model.get_output_embeddings().weight.shape[0]
        self._allowed = self.vocab.allowed(n_out)  # ids past the vocabulary stay disallowed
        limits = [getattr(model.config, "max_position_embeddings", 512), tokenizer.model_max_length, 512]
        self.max_length = int(min(limits)) - 2  # 2 spare: RoBERTa-style position offsets

    def is_single_piece(self, word: str) -> bool:
        return self.vocab.known(word) and len(self.vocab.pieces(word)) == 1

    def candidates(self, words: list[str], position: int, top_k: int) -> list[str]:
        return self.batch_candidates(words, [position], top_k)[0]

    def sentence_candidates(self, words: list[str], top_k: int) -> list[list[str]]:
        positions = [i for i, w in enumerate(words) if is_replaceable(w) and self.is_single_piece(w)]
        found = dict(zip(positions, self.batch_candidates(words, positions, top_k)))
        return [found.get(i, []) for i in range(len(words))]

    @torch.no_grad()
    def batch_candidates(self, words: list[str], positions: Sequence[int], top_k: int) -> list[list[str]]:
        """One masked copy of the sentence per position, run through the MLM in batches."""
        out: list[list[str]] = [[] for _ in positions]
        todo = [(j, p) for j, p in enumerate(positions) if self.is_single_piece(words[p])]
        mask_id = self.tokenizer.mask_token_id
        device = next(self.model.parameters()).device
        for start in range(0, len(todo), _MLM_BATCH):
            chunk = todo[start:start + _MLM_BATCH]
            texts = [" ".join(words[:p] + [self.tokenizer.mask_token] + words[p + 1:]) for _, p in chunk]
            enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
            enc.pop("token_type_ids", None)  # single segment; some families do not take it
            found = enc["input_ids"] == mask_id
            ok = found.sum(1) == 1  # False where the mask was truncated away
            positions = found.int().argmax(1)
            logits = self.logits_at(enc.to(device), positions.to(device)).float().cpu()
            for row, (j, p) in enumerate(chunk):
                if ok[row]:
                    scores = logits[row].masked_fill(~self._allowed, float("-inf"))
                    out[j] = _top_words(scores, self.vocab, self.vocab.normalised(words[p]), top_k)
        return out

    def logits_at(self, enc: Any, positions: torch.Tensor) -> torch.Tensor:
        """(B, V) MLM logits at one position per row. Projecting every token onto the vocabulary
        is most of the cost, so a pre-hook hands the output layer only the masked rows."""
        rows = torch.arange(len(positions), device=positions.device)

        def gather(module: nn.Module, args: tuple) -> tuple | None:
            h = args[0]
            return (h[rows, positions],) + tuple(args[1:]) if h.dim() == 3 else None

        handle = self.model.get_output_embeddings().register_forward_pre_hook(gather)
        try:
            logits = self.model(**enc).logits
        finally:
            handle.remove()
        return logits if logits.dim() == 2 else logits[rows, positions]


class EmbeddingNeighbourCandidates(CandidateSource):
    """Nearest whole words by cosine similarity in an embedding matrix (the teacher's input
    embeddings: a stand-in for GloVe). A word's vector is the mean of its pieces' rows."""

    kind = "neighbours"

    def __init__(self, embedding_matrix: torch.Tensor, tokenizer: Any, vocab: WordVocab | None = None) -> None:
        self.vocab = vocab or WordVocab(tokenizer)
        self.embeddings = embedding_matrix.detach().float().cpu()
        allowed = self.vocab.allowed(self.embeddings.shape[0])
        self._ids = allowed.nonzero().squeeze(1)  # candidate rows, normalised once
        self._matrix = F.normalize(self.embeddings[self._ids], dim=1)
        self._cache: dict[tuple[tuple[int, ...], int], list[str]] = {}  # words repeat a lot

    def candidates(self, words: list[str], position: int, top_k: int) -> list[str]:
        return self.lookup([words[position]], top_k)[0]

    def sentence_candidates(self, words: list[str], top_k: int) -> list[list[str]]:
        found = iter(self.lookup([w for w in words if is_replaceable(w)], top_k))
        return [next(found) if is_replaceable(w) else [] for w in words]

    @torch.no_grad()
    def lookup(self, words: Sequence[str], top_k: int, batch_size: int = 512) -> list[list[str]]:
        """Neighbours of each word; the uncached ones are scored together in batches, since one
        query at a time is bound by reading the whole matrix (use it to warm the cache)."""
        keys = [(self.vocab.pieces(w) if self.vocab.known(w) else (), top_k) for w in words]
        todo: dict[tuple[tuple[int, ...], int], str] = {}  # unique misses
        for k, w in zip(keys, words):
            if k in self._cache or k in todo:
                continue
            if not k[0] or max(k[0]) >= len(self.embeddings) or len(self._ids) == 0:
                self._cache[k] = []  # unknown word (or no candidates at all): nothing to propose
            else:
                todo[k] = w
        misses = list(todo.items())
        for start in range(0, len(misses), batch_size):
            chunk = misses[start:start + batch_size]
            queries = torch.stack([self.embeddings[list(k[0])].mean(0) for k, _ in chunk])
            sims = F.normalize(queries, dim=1) @ self._matrix.T
            top = torch.topk(sims, min(top_k + _SPARE, sims.shape[1]), dim=1).indices
            for (k, w), row in zip(chunk, self._ids[top].tolist()):
                exclude = self.vocab.normalised(w)
                self._cache[k] = [c for c in (self.vocab.surface[i] for i in row) if c and c.lower() != exclude][:top_k]
        return [list(self._cache[k]) for k in keys]


class CombinedCandidates(CandidateSource):
    """TinyBERT's dispatch: single-piece words ask the MLM (when there is one), multi-piece
    words (and every word without an MLM) take embedding neighbours."""

    def __init__(self, neighbours: EmbeddingNeighbourCandidates, mlm: MaskedLMCandidates | None = None) -> None:
        self.neighbours = neighbours
        self.mlm = mlm
        self.kind = "mlm+neighbours" if mlm is not None else "neighbours"

    def _uses_mlm(self, word: str) -> bool:
        return self.mlm is not None and self.mlm.is_single_piece(word)

    def candidates(self, words: list[str], position: int, top_k: int) -> list[str]:
        src = self.mlm if self._uses_mlm(words[position]) else self.neighbours
        return src.candidates(words, position, top_k)

    def sentence_candidates(self, words: list[str], top_k: int) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in words]
        by_mlm = [i for i, w in enumerate(words) if is_replaceable(w) and self._uses_mlm(w)]
        if by_mlm:  # one batched MLM pass for all single-piece words
            for i, c in zip(by_mlm, self.mlm.batch_candidates(words, by_mlm, top_k)):
                out[i] = c
        done = set(by_mlm)
        rest = [i for i, w in enumerate(words) if is_replaceable(w) and i not in done]
        for i, c in zip(rest, self.neighbours.lookup([words[i] for i in rest], top_k)):
            out[i] = c
        return out

    def prefetch(self, words: Iterable[str], top_k: int) -> None:
        """Fill the neighbour cache for all these words at once (much faster than one by one)."""
        todo = [w for w in dict.fromkeys(words) if is_replaceable(w) and not self._uses_mlm(w)]
        self.neighbours.lookup(todo, top_k)


def build_candidate_source(teacher: str, tokenizer: Any, *, use_mlm: bool,
                           device: str | torch.device | None = None) -> CombinedCandidates:
    """Neighbours from the teacher's input embeddings always; the MLM too when `use_mlm`."""
    vocab = WordVocab(tokenizer)
    base = load_model(teacher, "base")
    neighbours = EmbeddingNeighbourCandidates(base.get_input_embeddings().weight, tokenizer, vocab)
    del base
    mlm = None
    if use_mlm:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        mlm = MaskedLMCandidates(load_model(teacher, "masked_lm").to(device), tokenizer, vocab)
    return CombinedCandidates(neighbours, mlm)


# ------------------------------------------------------------------ augmentation

def augment_sentence(words: list[str], source: CandidateSource, p: float, top_k: int, n_aug: int,
                     rng: random.Random) -> list[str]:
    """Exactly n_aug sentences, each word replaced with probability p by a uniform choice among
    its top_k candidates (words without candidates are kept). An output may equal the input
    (always so at p = 0); `augment_examples` drops such duplicates. Deterministic given rng."""
    cands = source.sentence_candidates(words, top_k)
    out = []
    for _ in range(n_aug):
        new = list(words)
        for i, c in enumerate(cands):
            if c and rng.random() < p:
                new[i] = rng.choice(c)
        out.append(" ".join(new))
    return out


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


def _cache_key(teacher: str, kind: str, cfg: AugmentConfig, subset: list[Example]) -> str:
    rows = [[e.text_a, e.text_b, e.label] for e in subset]
    texts = hashlib.sha256(json.dumps(rows, default=_plain).encode()).hexdigest()
    parts = [CACHE_FORMAT, _teacher_fingerprint(teacher), kind, cfg.p, cfg.top_k, cfg.n_aug, cfg.seed,
             cfg.max_examples, texts]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _read_cache(path: Path, key: str) -> list[Example] | None:
    """The cached augmented examples, or None if absent, for another key, or incomplete."""
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
    return [Example(r["text_a"], r.get("text_b"), r.get("label")) for r in rows]


def augment_examples(examples: list[Example], teacher: str, cfg: AugmentConfig, cache_dir: str | Path,
                     *, progress: bool = True, device: str | torch.device | None = None) -> list[Example]:
    """The original examples followed by the augmented ones (N_a per example, duplicates of the
    original or of each other dropped), each with its source's label.

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
        return list(examples) + cached

    tokenizer = load_tokenizer(teacher)
    source = build_candidate_source(teacher, tokenizer, use_mlm=use_mlm, device=device)
    source.prefetch((w for ex in subset for w in ex.text_a.split()), cfg.top_k)
    rng = random.Random(cfg.seed)
    augmented: list[Example] = []
    for ex in tqdm(subset, desc=f"augment ({kind})", unit="ex", disable=not progress, dynamic_ncols=True):
        words = ex.text_a.split()
        seen = {" ".join(words)}
        for sent in augment_sentence(words, source, cfg.p, cfg.top_k, cfg.n_aug, rng):
            if sent not in seen:
                seen.add(sent)
                augmented.append(Example(sent, ex.text_b, ex.label))

    header = {"format": CACHE_FORMAT, "key": key, "teacher": str(teacher), "source": kind, "p": cfg.p,
              "top_k": cfg.top_k, "n_aug": cfg.n_aug, "seed": cfg.seed, "max_examples": cfg.max_examples,
              "count": len(augmented)}
    rows = [json.dumps({"text_a": e.text_a, "text_b": e.text_b, "label": e.label}, default=_plain) for e in augmented]
    atomic_write_text(path, "\n".join([json.dumps(header)] + rows) + "\n")
    log.info("augmentation: %d new examples from %d (%s), cached in %s", len(augmented), len(subset), kind, path)
    return list(examples) + augmented
