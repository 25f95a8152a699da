"""Pretrained word vectors for the CVT tagger's embeddings, as the reference code starts from GloVe.

Any word2vec or GloVe text file: one word a line followed by its numbers, separated by spaces;
word2vec's first line ("<count> <dim>") is skipped. A file word is looked up by the tagger's own
key (vocab.py's `word_key`: digits as 0, lowercased when the tagger lowercases), and the first line
of a key wins (such files list frequent words first). The vocabulary stays the one built from the
data: a word of the file that the data never shows gets no row (the reference's vocabulary is
GloVe's own, 400k words, most of which a small tagger would carry unused).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.methods.cvt.vocab import CvtVocab, word_key


def read_vectors(path: str | Path, wanted: set[str], dim: int, lowercase: bool) -> dict[str, list[float]]:
    """The vectors of the file's words whose key is in `wanted`, by key; each must have `dim` numbers."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"cvt model.word_vectors not found (or not a file): {path}")
    found: dict[str, list[float]] = {}
    checked = False
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec's header
            if len(parts) < 2:
                continue  # a blank line
            # the first vector sets the width; later a longer line is a word with spaces (GloVe 840B has some)
            if len(parts) - 1 < dim or (not checked and len(parts) - 1 != dim):
                raise UserError(f"{path}, line {number}: {len(parts) - 1} numbers, but model.word_dim is {dim} "
                                "(set word_dim to the file's width)")
            checked = True
            key = word_key(" ".join(parts[:-dim]), lowercase)
            if key in wanted and key not in found:
                try:
                    found[key] = [float(x) for x in parts[-dim:]]
                except ValueError:
                    raise UserError(f"{path}, line {number}: not a word followed by {dim} numbers") from None
    return found


@torch.no_grad()
def load_word_vectors(embedding: nn.Embedding, vocab: CvtVocab, path: str | Path) -> int:
    """Copy the file's vectors into the rows of the vocabulary words it holds; return how many
    (the other rows keep their random start; <pad> and <unk> are never read from the file)."""
    keys = vocab.words[2:]
    vectors = read_vectors(path, set(keys), embedding.embedding_dim, vocab.lowercase)
    for row, key in enumerate(keys, start=2):
        if key in vectors:
            embedding.weight[row] = torch.tensor(vectors[key], dtype=embedding.weight.dtype)
    return len(vectors)
