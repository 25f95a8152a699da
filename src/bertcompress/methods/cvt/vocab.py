"""Vocabularies of the CVT tagger (words, characters, tags), encoding of sentences, and batches.

Words are looked up by a key: lowercased when `lowercase` (the default: with no pretrained
vectors and a small labelled budget, "The" and "the" should share what they learn; the character
CNN still sees the case, which is what tells proper nouns apart) and with every digit as 0 (all
four-digit years share one embedding). Characters are kept as written; each word is read
between begin- and end-of-word marks so the CNN sees prefixes and suffixes as such.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_write_json
from bertcompress.data.tagging import IGNORE

PAD, UNK = "<pad>", "<unk>"  # ids 0 and 1 of the word and character vocabularies
BOW, EOW = "<w>", "</w>"  # ids 2 and 3 of the character vocabulary
_DIGIT = re.compile(r"\d")
VOCAB_FILES = {"words": "words.json", "chars": "chars.json", "tags": "tags.json"}
ENCODING = (  # how to feed the saved tagger (or its ONNX graph) with no bertcompress code
    "input_ids: per word, its index in words.json of the word's key (every digit replaced by 0, then lowercased if "
    "'lowercase'), else 1 (<unk>); 0 pads. chars: per word, 2 (<w>), the index in chars.json of each of its first "
    "max_word_length characters (1 if unknown), 3 (</w>); padded with 0 to the batch's longest word and to at "
    "least the widest of model.char_widths. attention_mask: 1 for words, 0 for padding. Tag of a word: "
    "tags.json[argmax(logits)].")


def word_key(word: str, lowercase: bool) -> str:
    """The form a word is looked up by: digits as 0, lowercased when `lowercase`."""
    word = _DIGIT.sub("0", word)
    return word.lower() if lowercase else word


@dataclass
class CvtVocab:
    words: list[str]
    chars: list[str]
    tags: list[str]
    lowercase: bool = True
    max_word_length: int = 20
    _word_ids: dict[str, int] = field(init=False, repr=False)
    _char_ids: dict[str, int] = field(init=False, repr=False)
    _tag_ids: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.words[:2] != [PAD, UNK] or self.chars[:4] != [PAD, UNK, BOW, EOW]:
            raise UserError("a CVT vocabulary must start with its special entries (<pad>, <unk>, and <w>, </w> "
                            "for characters)")
        if not self.tags:
            raise UserError("a CVT vocabulary needs at least one tag")
        self._word_ids = {w: i for i, w in enumerate(self.words)}
        self._char_ids = {c: i for i, c in enumerate(self.chars)}
        self._tag_ids = {t: i for i, t in enumerate(self.tags)}

    @classmethod
    def build(cls, labelled: Iterable[list[str]], unlabelled: Iterable[list[str]], tags: list[str], *,
              lowercase: bool, min_count: int, max_vocab: int, max_word_length: int) -> CvtVocab:
        """Every labelled word, and the unlabelled words seen `min_count` times, most frequent first
        (ties alphabetical: the same data always gives the same ids), at most `max_vocab`; the
        characters of all of them."""
        labelled_counts, unlabelled_counts, chars = Counter(), Counter(), Counter()
        for sentence in labelled:
            labelled_counts.update(word_key(w, lowercase) for w in sentence)
            chars.update(c for w in sentence for c in w[:max_word_length])
        for sentence in unlabelled:
            unlabelled_counts.update(word_key(w, lowercase) for w in sentence)
            chars.update(c for w in sentence for c in w[:max_word_length])
        total = labelled_counts + unlabelled_counts
        kept = [w for w in total if w in labelled_counts or unlabelled_counts[w] >= min_count]
        kept.sort(key=lambda w: (-total[w], w))
        return cls([PAD, UNK, *kept[:max_vocab]], [PAD, UNK, BOW, EOW, *sorted(chars)], list(tags),
                   lowercase, max_word_length)

    def word_ids(self, words: list[str]) -> list[int]:
        return [self._word_ids.get(word_key(w, self.lowercase), 1) for w in words]

    def char_ids(self, words: list[str]) -> list[list[int]]:
        return [[2, *(self._char_ids.get(c, 1) for c in w[:self.max_word_length]), 3] for w in words]

    def tag_ids(self, tags: list[str]) -> list[int]:
        missing = next((t for t in tags if t not in self._tag_ids), None)
        if missing is not None:
            raise UserError(f"tag {missing!r} is not in the tagger's {len(self.tags)} tags")
        return [self._tag_ids[t] for t in tags]

    def encode(self, words: list[str], tags: list[str] | None = None) -> dict[str, Any]:
        """One sentence as a feature for `CvtCollator`: word ids, character ids, and tag ids if tagged."""
        if not words:
            raise UserError("cannot tag an empty sentence")
        feature = {"input_ids": self.word_ids(words), "chars": self.char_ids(words)}
        if tags is not None:
            feature["labels"] = self.tag_ids(tags)
        return feature

    def save(self, folder: Path) -> None:
        for name, file in VOCAB_FILES.items():
            atomic_write_json(folder / file, getattr(self, name))

    @classmethod
    def load(cls, folder: Path, lowercase: bool, max_word_length: int) -> CvtVocab:
        lists = {}
        for name, file in VOCAB_FILES.items():
            path = folder / file
            if not path.is_file():
                raise UserError(f"{folder} is not a CVT tagger folder: {file} is missing")
            lists[name] = json.loads(path.read_text(encoding="utf-8"))
        return cls(lists["words"], lists["chars"], lists["tags"], lowercase, max_word_length)


@dataclass
class CvtCollator:
    """Pad a batch of features: input_ids and attention_mask (batch, words), chars (batch, words,
    characters; at least `min_chars` wide, so every CNN filter fits), labels padded with IGNORE."""

    min_chars: int = 1

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        words = max(len(f["input_ids"]) for f in features)
        width = max(self.min_chars, max(len(c) for f in features for c in f["chars"]))

        def pad(row: list, fill: Any) -> list:
            return row + [fill] * (words - len(row))

        batch = {"input_ids": torch.tensor([pad(f["input_ids"], 0) for f in features]),
                 "attention_mask": torch.tensor([pad([1] * len(f["input_ids"]), 0) for f in features]),
                 "chars": torch.tensor([pad([c + [0] * (width - len(c)) for c in f["chars"]], [0] * width)
                                        for f in features])}
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([pad(f["labels"], IGNORE) for f in features])
        return batch
