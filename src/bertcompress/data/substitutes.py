"""Substitute words: candidates to replace a word in its sentence, for TinyBERT data augmentation
(methods/distill/augment.py) and the word-substitution attack (evaluation/attack.py).

Sources, all behind one interface (`CandidateSource.candidates_at`):
- MaskedLMCandidates: a masked LM's predictions for a single-piece word masked in its sentence;
- EmbeddingNeighbourCandidates: nearest whole words by cosine in an embedding matrix (a word's
  vector is the mean of its pieces' rows); a stand-in for GloVe / counter-fitted vectors;
- WordNetSynonyms: WordNet 3.0 synonyms, read straight from the database files;
- WordListCandidates: a list of your own, e.g. counter-fitted vectors' neighbours;
- CombinedCandidates: TinyBERT's dispatch, the MLM for single-piece words, neighbours otherwise.
Candidates are whole alphabetic vocabulary words (WordNet: alphabetic lemmas), best first, and
never the word itself in any case. Stop-word filtering is the caller's choice (`stop_words`;
`never_replaced` adds negation and contrast words, for augmentation).
"""

from __future__ import annotations

import bisect
import functools
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bertcompress.core.errors import UserError

_MLM_BATCH = 64  # masked copies per forward pass
_SPARE = 3  # extra top-k rows fetched, so that dropping the word itself (any case) leaves top_k


def is_replaceable(word: str) -> bool:
    """Only plain alphabetic words are swapped; punctuation and numbers carry no synonyms."""
    return word.isalpha()


@functools.cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop-word list."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # imported late: slow

    return frozenset(ENGLISH_STOP_WORDS)


# Swapping one of these can flip a sentence's meaning ("not good" -> "very good"): never replaced,
# whatever a stop-word list holds (scikit-learn's has most of them, but not "despite" or "unless").
NEGATIONS = frozenset({
    "no", "not", "nor", "never", "none", "nothing", "nobody", "nowhere", "neither", "cannot", "without",
    "hardly", "barely", "but", "however", "although", "though", "yet", "despite", "unless", "instead",
})


@functools.cache
def never_replaced() -> frozenset[str]:
    """Lowercase words augmentation leaves alone: the stop words and the negation and contrast
    words (`NEGATIONS`), as TinyBERT's reference code skips its stop-word list."""
    return stop_words() | NEGATIONS


# ------------------------------------------------------------------ vocabulary helper

def _word_start_marker(vocab: dict[str, int]) -> str:
    """How the tokenizer marks word boundaries: "##" continues a word (WordPiece), "Ġ"/"▁" start
    one (byte-level BPE / SentencePiece). The most frequent prefix wins."""
    counts = {m: sum(t.startswith(m) for t in vocab) for m in ("##", "Ġ", "▁")}
    best = max(counts, key=counts.get)
    return best if counts[best] else "##"


class WordVocab:
    """What the model-based sources need from a tokenizer: how a word splits into pieces, and
    which vocabulary ids are whole alphabetic words (the only allowed replacements)."""

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

class CandidateSource(ABC):
    """Proposes replacement words for words of a sentence, best first."""

    kind = "base"

    @abstractmethod
    def candidates_at(self, words: list[str], positions: Sequence[int], top_k: int) -> list[list[str]]:
        """Up to top_k candidates for each of `positions` in `words` (sources batch over them)."""

    def candidates(self, words: list[str], position: int, top_k: int) -> list[str]:
        return self.candidates_at(words, [position], top_k)[0]

    def sentence_candidates(self, words: list[str], top_k: int) -> list[list[str]]:
        """Candidates for every word (empty for words that are not replaceable)."""
        positions = [i for i, w in enumerate(words) if is_replaceable(w)]
        found = dict(zip(positions, self.candidates_at(words, positions, top_k)))
        return [found.get(i, []) for i in range(len(words))]


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
    """The masked-LM predictions for a single-piece word masked in its sentence. Multi-piece
    words get no candidates here (see CombinedCandidates). The MLM sees the masked sentence alone."""

    kind = "mlm"

    def __init__(self, model: nn.Module, tokenizer: Any, vocab: WordVocab | None = None) -> None:
        if tokenizer.mask_token_id is None:
            raise UserError("the tokenizer has no mask token: cannot ask its masked-LM for candidates")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.vocab = vocab or WordVocab(tokenizer)
        n_out = model.get_output_embeddings().weight.shape[0]
        self._allowed = self.vocab.allowed(n_out)  # ids past the vocabulary stay disallowed
        limits = [getattr(model.config, "max_position_embeddings", 512), tokenizer.model_max_length, 512]
        self.max_length = int(min(limits)) - 2  # 2 spare: RoBERTa-style position offsets

    def is_single_piece(self, word: str) -> bool:
        return self.vocab.known(word) and len(self.vocab.pieces(word)) == 1

    @torch.no_grad()
    def candidates_at(self, words: list[str], positions: Sequence[int], top_k: int) -> list[list[str]]:
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
            at = found.int().argmax(1)
            logits = self.logits_at(enc.to(device), at.to(device)).float().cpu()
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
    """Nearest whole words by cosine similarity in an embedding matrix (e.g. a model's input
    embeddings). A word's vector is the mean of its pieces' rows; the sentence is not used."""

    kind = "neighbours"

    def __init__(self, embedding_matrix: torch.Tensor, tokenizer: Any, vocab: WordVocab | None = None) -> None:
        self.vocab = vocab or WordVocab(tokenizer)
        self.embeddings = embedding_matrix.detach().float().cpu()
        allowed = self.vocab.allowed(self.embeddings.shape[0])
        self._ids = allowed.nonzero().squeeze(1)  # candidate rows, normalised once
        self._matrix = F.normalize(self.embeddings[self._ids], dim=1)
        self._cache: dict[tuple[tuple[int, ...], int], list[str]] = {}  # words repeat a lot

    def candidates_at(self, words: list[str], positions: Sequence[int], top_k: int) -> list[list[str]]:
        return self.lookup([words[p] for p in positions], top_k)

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

    def candidates_at(self, words: list[str], positions: Sequence[int], top_k: int) -> list[list[str]]:
        by_mlm, rest = [], []
        for p in positions:
            (by_mlm if self._uses_mlm(words[p]) else rest).append(p)
        found = dict(zip(rest, self.neighbours.candidates_at(words, rest, top_k)))
        if by_mlm:  # one batched MLM pass for all single-piece words
            found.update(zip(by_mlm, self.mlm.candidates_at(words, by_mlm, top_k)))
        return [found[p] for p in positions]

    def prefetch(self, words: Iterable[str], top_k: int) -> None:
        """Fill the neighbour cache for all these words at once (much faster than one by one)."""
        todo = [w for w in dict.fromkeys(words) if is_replaceable(w) and not self._uses_mlm(w)]
        self.neighbours.lookup(todo, top_k)


class WordNetSynonyms(CandidateSource):
    """Synonyms from the WordNet 3.0 database files (index.POS / data.POS), read directly so
    that no download is needed. Senses are taken in WordNet's frequency order across parts of
    speech (no tagger: the word's part of speech in context is unknown).

    Ours rather than nltk's reader: nltk is no dependency, loads every index at start-up, and
    orders senses part of speech by part of speech (and lemmatises), which changes the ranking."""

    kind = "wordnet"
    POS = ("adj", "verb", "noun", "adv")
    FOLDERS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/usr/local/WordNet-3.0/dict")

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._index: dict[str, list[str]] = {}  # pos -> sorted index lines (licence header dropped)
        self._data: dict[str, bytes] = {}
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def find(cls, folder: str | None = None) -> WordNetSynonyms | None:
        """The database in `folder`, $WNSEARCHDIR or a usual place; None if there is none."""
        for f in [folder] if folder else [os.environ.get("WNSEARCHDIR"), *cls.FOLDERS]:
            if f and all((Path(f) / f"index.{p}").is_file() for p in cls.POS):
                return cls(f)
        return None

    def _offsets(self, pos: str, lemma: str) -> list[str]:
        """Synset offsets of `lemma`, most frequent sense first. Index files are sorted by lemma
        and a space sorts before any lemma character, so a binary search over lines finds it."""
        if pos not in self._index:
            text = (self.folder / f"index.{pos}").read_text(encoding="utf-8")
            self._index[pos] = [line for line in text.splitlines() if line and not line.startswith(" ")]
        lines, key = self._index[pos], lemma + " "
        i = bisect.bisect_left(lines, key)
        if i == len(lines) or not lines[i].startswith(key):
            return []
        fields = lines[i].split()  # lemma pos synset_cnt p_cnt ptrs... sense_cnt tagsense_cnt offsets
        return fields[-int(fields[2]):]

    def _synset_words(self, pos: str, offset: str) -> list[str]:
        if pos not in self._data:
            self._data[pos] = (self.folder / f"data.{pos}").read_bytes()
        data, start = self._data[pos], int(offset)  # offsets are byte positions in data.POS
        fields = data[start:data.index(b"\n", start)].decode("utf-8").split(" ")
        count = int(fields[3], 16)  # offset lex_filenum ss_type w_cnt(hex) word lex_id ...
        return [re.sub(r"\(.*\)$", "", w) for w in fields[4:4 + 2 * count:2]]  # "(a)": adj. marker

    def synonyms(self, word: str, top_k: int) -> list[str]:
        key = word.lower()
        if key not in self._cache:
            senses = sorted((rank, n, off) for n, pos in enumerate(self.POS)
                            for rank, off in enumerate(self._offsets(pos, key)))
            out: list[str] = []
            for _, n, offset in senses:
                for w in self._synset_words(self.POS[n], offset):
                    w = w.lower()
                    if w.isalpha() and w != key and w not in out:  # skips "good_enough" etc.
                        out.append(w)
            self._cache[key] = out
        return self._cache[key][:top_k]

    def candidates_at(self, words: list[str], positions: Sequence[int], top_k: int) -> list[list[str]]:
        return [self.synonyms(words[p], top_k) for p in positions]


class WordListCandidates(CandidateSource):
    """Replacements from a text file, one word a line followed by its candidates, best first
    (`good nice fine great`, separated by spaces, tabs or commas); words are matched
    case-insensitively, and a word the list lacks gets none."""

    kind = "wordlist"

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read the word list {path}: {e}") from None
        self.table: dict[str, list[str]] = {}
        for line in lines:
            fields = [w for w in re.split(r"[\s,]+", line.strip()) if w]
            if not fields:
                continue
            word, *cands = fields
            self.table.setdefault(word.lower(), [c for c in cands if c.isalpha() and c.lower() != word.lower()])
        if not self.table:
            raise UserError(f"the word list {path} holds no words")

    @staticmethod
    def is_word_list(name: str) -> bool:
        """A file (a model is a folder): read as a word list."""
        return Path(name).expanduser().is_file()

    def candidates_at(self, words: list[str], positions: Sequence[int], top_k: int) -> list[list[str]]:
        return [self.table.get(words[p].lower(), [])[:top_k] for p in positions]
