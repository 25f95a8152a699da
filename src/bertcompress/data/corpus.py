"""Unlabelled text for general distillation, and its cutting into fixed-length sequences.

General distillation only needs the teacher's internals on realistic text, so documents are
concatenated into one token stream and cut into full-length chunks: no padding is wasted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from bertcompress.core.errors import UserError
from bertcompress.data.builtin import default_corpus_documents
from bertcompress.data.config import CorpusConfig

MIN_LAST_CHUNK = 8  # a shorter tail is dropped: too little context to be worth a step
TOKENIZE_BATCH = 256


def load_corpus(cfg: CorpusConfig) -> list[str]:
    """Documents: the embedded default (path None), a text file (documents separated by blank
    lines), or a folder (every *.txt under it, recursively, in sorted order)."""
    if cfg.path is None:
        return default_corpus_documents()
    path = Path(cfg.path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise UserError(f"corpus folder {path} has no .txt files")
    else:
        raise UserError(f"corpus file or folder not found: {path}")
    docs = [doc for f in files for doc in _documents(f)]
    if not docs:
        raise UserError(f"corpus {path} holds no text")
    return docs


def _documents(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: not valid UTF-8 text") from None
    docs, current = [], []
    for line in text.splitlines():
        if line.strip():
            current.append(line.strip())
        elif current:
            docs.append(" ".join(current))
            current = []
    if current:
        docs.append(" ".join(current))
    return docs


def special_tokens_around(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a single sequence ([CLS] / [SEP] for BERT).

    Found by encoding a probe with and without specials, since transformers 5 dropped
    `build_inputs_with_special_tokens` from its fast tokenizers.
    """
    plain = tokenizer("hello world", add_special_tokens=False)["input_ids"]
    full = tokenizer("hello world", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i:i + len(plain)] == plain:
            return list(full[:i]), list(full[i + len(plain):])
    raise UserError(f"cannot tell where {type(tokenizer).__name__} puts its special tokens")


def _token_stream(tokenizer: Any, documents: list[str]) -> Iterator[list[int]]:
    """Token ids of each document, tokenized lazily in batches."""
    for start in range(0, len(documents), TOKENIZE_BATCH):
        batch = documents[start:start + TOKENIZE_BATCH]
        # verbose=False: documents longer than the model limit are fine, they get cut below.
        yield from tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]


def chunk_corpus(tokenizer: Any, documents: list[str], max_seq_len: int,
                 max_sequences: int | None = None) -> list[dict[str, list[int]]]:
    """Cut the documents' tokens, as one stream, into sequences of `max_seq_len` tokens including
    the tokenizer's specials. Stops after `max_sequences`; a last partial chunk is kept if it has
    at least MIN_LAST_CHUNK tokens."""
    prefix, suffix = special_tokens_around(tokenizer)
    size = max_seq_len - len(prefix) - len(suffix)
    if size < 1:
        raise UserError(f"max_seq_len {max_seq_len} leaves no room between the special tokens")
    with_types = "token_type_ids" in tokenizer.model_input_names
    chunks: list[dict[str, list[int]]] = []

    def emit(ids: list[int]) -> None:
        chunk = {"input_ids": prefix + ids + suffix}
        if with_types:
            chunk["token_type_ids"] = [0] * len(chunk["input_ids"])
        chunks.append(chunk)

    def full() -> bool:
        return max_sequences is not None and len(chunks) >= max_sequences

    buffer: list[int] = []
    for ids in _token_stream(tokenizer, documents):
        buffer.extend(ids)
        start = 0
        while len(buffer) - start >= size and not full():
            emit(buffer[start:start + size])
            start += size
        del buffer[:start]  # one cut per document keeps long documents linear
        if full():
            return chunks
    if len(buffer) >= MIN_LAST_CHUNK:
        emit(buffer)
    return chunks
