"""Token-classification data: tagged sentences, their readers, splits, and word-piece alignment.

Sources: CoNLL-style column files, JSON lines with token and tag lists, and a `datasets` split
whose tags are a sequence of class labels (Brown is in brown.py). Every reader returns
`TaggedSentence`s and names the file and line (or row) of any bad input.

Alignment: the first word piece of each word carries the word's tag id; continuation pieces and
special tokens carry IGNORE (-100), so losses and metrics see one label per word.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bertcompress.core.errors import UserError
from bertcompress.data.sentence_loaders import decode_text, json_records

IGNORE = -100  # the label cross-entropy and the metrics skip (transformers' convention)
OUTSIDE = "O"
ENCODE_BATCH = 2048
SPLIT_NAMES = ("train", "dev", "test")


@dataclass
class TaggedSentence:
    """A sentence as words, one tag per word."""

    tokens: list[str]
    tags: list[str]

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise UserError(f"a tagged sentence has {len(self.tokens)} tokens but {len(self.tags)} tags")
        if not self.tokens:
            raise UserError("a tagged sentence has no tokens")

    def words(self) -> list[str]:
        """The words augmentation may replace: the tokens."""
        return list(self.tokens)

    def with_words(self, words: list[str]) -> TaggedSentence:
        """This sentence with other words in the same places and the same tags (augmentation swaps
        a word for a word; the teacher, not the tags, says what a distilled student learns)."""
        return TaggedSentence(list(words), list(self.tags))


# ---------------------------------------------------------------- readers

def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"tagged data file not found: {path}")
    return decode_text(path)


def read_conll(path: str | Path, token_column: int = 0, tag_column: int = -1, separator: str | None = None,
               comment_prefix: str | None = "#") -> list[TaggedSentence]:
    """CoNLL-style columns: a token per line, a blank line between sentences, columns split on
    `separator` (None: any whitespace). Column indices may be negative (-1: the last column).
    `-DOCSTART-` lines are skipped, and so are comment lines (starting with `comment_prefix`) before
    a sentence's first token, where CoNLL-U puts them; inside a sentence such a line is a token
    (CoNLL-2000 tags the pound sign "#"). Every token line must have as many columns as the first."""
    path = Path(path)
    sentences: list[TaggedSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    width: int | None = None  # the column count, fixed by the first token line
    for n, line in enumerate(_read_text(path).split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            if tokens:
                sentences.append(TaggedSentence(tokens, tags))
                tokens, tags = [], []
            continue
        if comment_prefix and not tokens and line.startswith(comment_prefix):
            continue
        fields = line.split(separator) if separator else line.split()
        if fields[0] == "-DOCSTART-":
            continue
        if width is None:
            width = len(fields)
            token_at = _column(path, n, token_column, width, "token")
            tag_at = _column(path, n, tag_column, width, "tag")
            if token_at == tag_at:
                raise UserError(f"{path}, line {n}: token column {token_column} and tag column {tag_column} are "
                                f"the same column of {width}; set the tag column")
        if len(fields) != width:
            raise UserError(f"{path}, line {n}: expected {width} columns like the first token line, got {len(fields)}")
        token, tag = fields[token_at].strip(), fields[tag_at].strip()
        if not token or not tag:
            raise UserError(f"{path}, line {n}: empty {'token' if not token else 'tag'}")
        tokens.append(token)
        tags.append(tag)
    if tokens:
        sentences.append(TaggedSentence(tokens, tags))
    if not sentences:
        raise UserError(f"{path} has no tagged sentences")
    return sentences


def _column(path: Path, n: int, column: int, width: int, what: str) -> int:
    if not -width <= column < width:
        raise UserError(f"{path}, line {n}: no {what} column {column} (the line has {width} columns)")
    return column % width


def read_tagged_jsonl(path: str | Path, tokens_key: str = "tokens", tags_key: str = "tags",
                      tag_names: list[str] | None = None) -> list[TaggedSentence]:
    """One JSON object a line with a list of tokens and a list of tags: tag strings, or class
    indices into `tag_names`."""
    path = Path(path)
    sentences = []
    for n, record in json_records(_read_text(path), path):
        where = f"{path}, line {n}"
        for key in (tokens_key, tags_key):
            if key not in record:
                raise UserError(f"{where}: no {key!r} key (keys: {', '.join(record) or 'none'})")
        sentences.append(_sentence(record[tokens_key], record[tags_key], tag_names, where))
    if not sentences:
        raise UserError(f"{path} has no tagged sentences")
    return sentences


def _sentence(tokens: Any, tags: Any, tag_names: list[str] | None, where: str) -> TaggedSentence:
    """A checked TaggedSentence from raw token and tag lists (tags as strings or indices)."""
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise UserError(f"{where}: tokens must be a list of non-empty strings")
    if not isinstance(tags, list):
        raise UserError(f"{where}: tags must be a list, got {type(tags).__name__}")
    if len(tokens) != len(tags):
        raise UserError(f"{where}: {len(tokens)} tokens but {len(tags)} tags")
    if not tokens:
        raise UserError(f"{where}: no tokens")
    names = []
    for tag in tags:
        if isinstance(tag, str) and tag:
            names.append(tag)
        elif isinstance(tag, int) and not isinstance(tag, bool):
            if tag_names is None:
                raise UserError(f"{where}: tag {tag} is a class index; give the tag names to read it")
            if not 0 <= tag < len(tag_names):
                raise UserError(f"{where}: tag index {tag} is outside the {len(tag_names)} tag names")
            names.append(tag_names[tag])
        else:
            raise UserError(f"{where}: tag {tag!r} is neither a tag name nor a class index")
    return TaggedSentence(list(tokens), names)


def read_tagged_dataset(dataset: Any, tokens_key: str = "tokens", tags_key: str = "tags") -> list[TaggedSentence]:
    """One split of a `datasets` token-classification set: tags are a sequence of ClassLabel
    (names from the feature, e.g. conll2003's ner_tags) or of strings."""
    if not hasattr(dataset, "features") or not hasattr(dataset, "column_names"):
        raise UserError(f"expected one split of a `datasets` dataset (a Dataset), got {type(dataset).__name__}")
    source = getattr(dataset.info, "dataset_name", None) or "dataset"
    for key in (tokens_key, tags_key):
        if key not in dataset.column_names:
            raise UserError(f"{source}: no column {key!r} (columns: {', '.join(dataset.column_names)})")
    inner = getattr(dataset.features[tags_key], "feature", None)  # Sequence/List(ClassLabel) -> ClassLabel
    tag_names = list(inner.names) if hasattr(inner, "names") else None
    tokens, tags = list(dataset[tokens_key]), list(dataset[tags_key])
    return [_sentence(tokens[i], tags[i], tag_names, f"{source}, row {i}") for i in range(len(dataset))]


# ---------------------------------------------------------------- tag sets and splits

def tag_vocabulary(sentences: list[TaggedSentence]) -> list[str]:
    """The tags in use: "O" first when present (so id 0 is "outside" in BIO sets), then the rest
    sorted. Depends only on the set of tags, so it is stable across runs and corpus orders."""
    tags = {tag for s in sentences for tag in s.tags}
    return ([OUTSIDE] if OUTSIDE in tags else []) + sorted(tags - {OUTSIDE})


def seeded_split(sentences: list, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                 seed: int = 0) -> dict[str, list]:
    """Train/dev/test parts: the indices are shuffled with random.Random(seed), cut at the
    cumulative fractions (rounded), and each part keeps source order. A pure function of
    (len(sentences), fractions, seed), so the same corpus always splits the same way."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise UserError(f"split fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    n = len(order)
    cuts = [0, round(n * fractions[0]), round(n * (fractions[0] + fractions[1])), n]
    parts = {}
    for i, name in enumerate(SPLIT_NAMES):
        chosen = sorted(order[cuts[i]:cuts[i + 1]])
        if fractions[i] > 0 and not chosen:
            raise UserError(f"{n} sentences are too few to split {fractions[0]:g}/{fractions[1]:g}/{fractions[2]:g}: "
                            f"the {name} split would be empty")
        parts[name] = [sentences[j] for j in chosen]
    return parts


# ---------------------------------------------------------------- word-piece alignment

def encode_tagged(tokenizer: Any, sentences: list[TaggedSentence], tag_to_id: dict[str, int],
                  max_seq_len: int) -> list[dict[str, Any]]:
    """One feature per sentence: input_ids, attention_mask, token_type_ids (when the tokenizer
    uses them), labels (the word's tag id at its first piece, IGNORE elsewhere), word_positions
    (the first piece of each kept word) and word_count (words kept: a word is kept when its first
    piece fits in max_seq_len; later words are not labelled, so `len(sentence.tokens) - word_count`
    were truncated)."""
    if not getattr(tokenizer, "is_fast", False):
        raise UserError("tagging needs a fast tokenizer (word_ids() maps pieces to words); load one with "
                        "use_fast=True")
    with_types = "token_type_ids" in tokenizer.model_input_names
    pieceless = _pieceless_words(tokenizer, sentences)
    features = []
    for start in range(0, len(sentences), ENCODE_BATCH):
        batch = sentences[start:start + ENCODE_BATCH]
        # A word the tokenizer turns into no pieces (a zero-width space) is fed as the unknown
        # token, so every word keeps a position and the labels stay in word order.
        words = [[tokenizer.unk_token if w in pieceless else w for w in s.tokens] for s in batch]
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_seq_len,
                        return_token_type_ids=with_types, return_attention_mask=True)
        for row, sentence in enumerate(batch):
            labels, positions = _first_piece_labels(enc.word_ids(row), sentence, tag_to_id, start + row)
            feature = {"input_ids": list(enc["input_ids"][row]), "attention_mask": list(enc["attention_mask"][row])}
            if with_types:
                feature["token_type_ids"] = list(enc["token_type_ids"][row])
            feature.update(labels=labels, word_positions=positions, word_count=len(positions))
            features.append(feature)
    return features


def _pieceless_words(tokenizer: Any, sentences: list[TaggedSentence]) -> set[str]:
    vocabulary = sorted({w for s in sentences for w in s.tokens})
    pieces = tokenizer(vocabulary, add_special_tokens=False)["input_ids"] if vocabulary else []
    return {w for w, ids in zip(vocabulary, pieces) if not ids}


def _first_piece_labels(word_ids: list[int | None], sentence: TaggedSentence, tag_to_id: dict[str, int],
                        index: int) -> tuple[list[int], list[int]]:
    labels, positions, previous = [IGNORE] * len(word_ids), [], None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            tag = sentence.tags[word]
            if tag not in tag_to_id:
                raise UserError(f"sentence {index}: tag {tag!r} is not in the task's tag set ({len(tag_to_id)} tags)")
            labels[position] = tag_to_id[tag]
            positions.append(position)
        previous = word
    return labels, positions


def truncated_words(sentences: list[TaggedSentence], features: list[dict[str, Any]]) -> int:
    """How many words truncation left unlabelled (and so unscored) across these sentences."""
    return sum(len(s.tokens) - f["word_count"] for s, f in zip(sentences, features))


def collate_tagged(features: list[dict[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sequence; labels pad with IGNORE so padding is never scored."""
    width = max(len(f["input_ids"]) for f in features)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids", "labels") if k in features[0]]
    fill = {"input_ids": pad_token_id, "attention_mask": 0, "token_type_ids": 0, "labels": IGNORE}
    batch = {k: torch.full((len(features), width), fill[k], dtype=torch.long) for k in keys}
    for row, f in enumerate(features):
        for k in keys:
            batch[k][row, :len(f[k])] = torch.tensor(f[k], dtype=torch.long)
    return batch


@dataclass
class TaggedCollator:
    """`collate_tagged` with its pad id bound; a plain class so DataLoader workers can pickle it."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return collate_tagged(features, self.pad_token_id)


def word_predictions(logits: Any, labels: Any) -> list[list[int]]:
    """Per sequence, the predicted tag ids at labelled positions (first pieces of words), in word
    order. `logits` is (batch, seq, tags), or already-argmaxed ids (batch, seq)."""
    predicted = torch.as_tensor(logits)
    if predicted.dim() == 3:
        predicted = predicted.argmax(dim=-1)
    gold = torch.as_tensor(labels)
    if predicted.shape != gold.shape:
        raise UserError(f"predictions of shape {tuple(predicted.shape)} do not match labels of shape "
                        f"{tuple(gold.shape)}")
    return [p[g != IGNORE].tolist() for p, g in zip(predicted, gold)]


def word_labels(labels: Any) -> list[list[int]]:
    """Per sequence, the gold tag ids of its words (the positions whose label is not IGNORE)."""
    return [row[row != IGNORE].tolist() for row in torch.as_tensor(labels)]


def ids_to_tags(rows: list[list[int]], tag_names: list[str]) -> list[list[str]]:
    """Tag-id rows as tag-name rows, for the span metrics."""
    return [[tag_names[i] for i in row] for row in rows]


SPAN_PREFIXES = ("B-", "I-", "E-", "S-")


def is_span_tagset(tags) -> bool:
    """Whether tags name spans: all "O" or B-/I-/E-/S- prefixed, and at least one prefixed."""
    tags = set(tags)
    return all(t == "O" or t.startswith(SPAN_PREFIXES) for t in tags) and any(t != "O" for t in tags)
