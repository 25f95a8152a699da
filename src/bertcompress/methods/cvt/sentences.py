"""CVT's data: the labelled splits (with the labelled budget taken from train) and the unlabelled
sentences, read from text files, folders, NLTK corpus zips and the rest of the train split."""

from __future__ import annotations

import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bertcompress.core.errors import UserError
from bertcompress.data.brown import brown_plain_sentences, load_brown
from bertcompress.data.sentence_loaders import decode_text, subset_indices
from bertcompress.data.tagging import TaggedSentence, read_conll, read_tagged_jsonl, seeded_split, tag_vocabulary
from bertcompress.methods.cvt.config import CvtDataConfig, CvtUnlabelledConfig
from bertcompress.methods.cvt.text import text_sentences


@dataclass
class LabelledData:
    train: list[TaggedSentence]  # the labelled budget
    rest: list[TaggedSentence]  # the train split's other sentences (their tags are never used)
    dev: list[TaggedSentence]
    test: list[TaggedSentence]
    tags: list[str]  # every tag of the file, so a dev or test tag is never unknown


def _is_brown(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


def read_tagged(cfg: CvtDataConfig) -> list[TaggedSentence]:
    """The tagged sentences of `cfg.path`: NLTK's brown.zip, a JSON-lines file, or CoNLL columns."""
    if cfg.path is None:
        raise UserError("cvt needs labelled data: set data.path (brown.zip, a CoNLL file or a .jsonl file)")
    path = Path(cfg.path)
    if not path.is_file():
        raise UserError(f"cvt data.path not found (or not a file): {path}")
    if _is_brown(path):
        return load_brown(path, cfg.tagset, cfg.categories)
    if cfg.categories is not None:
        raise UserError(f"cvt data.categories selects Brown genres; {path} is not a Brown zip")
    if path.suffix.lower() in (".jsonl", ".json"):
        return read_tagged_jsonl(path)
    return read_conll(path, tag_column=cfg.tag_column)


def labelled_data(cfg: CvtDataConfig) -> LabelledData:
    """Train/dev/test by `seeded_split`; then a seeded sample of `labelled_limit` train sentences
    keeps its tags (the budget) and the others form `rest`. Both keep corpus order."""
    sentences = read_tagged(cfg)
    parts = seeded_split(sentences, tuple(cfg.split), cfg.split_seed)
    train, rest = parts["train"], []
    if cfg.labelled_limit is not None and cfg.labelled_limit < len(train):
        chosen = set(subset_indices(len(train), cfg.labelled_limit))  # the toolkit's max_train_examples sample
        train = [s for i, s in enumerate(parts["train"]) if i in chosen]
        rest = [s for i, s in enumerate(parts["train"]) if i not in chosen]
    return LabelledData(train, rest, parts["dev"], parts["test"], tag_vocabulary(sentences))


def unlabelled_sentences(cfg: CvtUnlabelledConfig, rest: list[TaggedSentence],
                         labelled: CvtDataConfig) -> list[list[str]]:
    """The unlabelled sentences as words: the rest of the train split (if `rest_of_train`), then each
    of `paths`; cut to `max_words`; a seeded sample of `limit` of them (seed data.split_seed), in
    their order."""
    sentences = [s.tokens for s in rest] if cfg.rest_of_train else []
    for p in cfg.paths:
        sentences.extend(read_unlabelled(p, cfg.text_format, brown_categories=cfg.brown_categories, labelled=labelled))
    sentences = [s[:cfg.max_words] for s in sentences]
    if cfg.limit is not None and cfg.limit < len(sentences):
        keep = sorted(random.Random(labelled.split_seed).sample(range(len(sentences)), cfg.limit))
        sentences = [sentences[i] for i in keep]
    return sentences


def read_unlabelled(path: str | Path, text_format: str, *, brown_categories: list[str] | None = None,
                    labelled: CvtDataConfig | None = None) -> list[list[str]]:
    """Sentences of one source: a text file, a folder (every .txt under it), or an NLTK corpus zip
    (brown.zip: its sentences from `brown_categories`, tags dropped; any other: every .txt inside).
    Text is split into sentences and words by `text.text_sentences`, as `text_format` says. The
    `labelled` data file itself is refused (its dev and test sentences would be trained on) unless
    both select disjoint Brown genres."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"cvt unlabelled path not found: {path}")
    if labelled is not None:
        _check_disjoint(path, brown_categories, labelled)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise UserError(f"cvt unlabelled folder {path} has no .txt files")
        sentences = [s for f in files for s in text_sentences(decode_text(f), text_format)]
    elif path.suffix.lower() == ".zip":
        sentences = _zip_sentences(path, text_format, brown_categories)
    else:
        sentences = text_sentences(decode_text(path), text_format)
    if not sentences:
        raise UserError(f"cvt unlabelled source {path} holds no sentences")
    return sentences


def _check_disjoint(path: Path, brown_categories: list[str] | None, labelled: CvtDataConfig) -> None:
    if labelled.path is None or not Path(labelled.path).exists() or path.resolve() != Path(labelled.path).resolve():
        return
    if brown_categories is None or labelled.categories is None:
        raise UserError(f"cvt unlabelled path {path} is the labelled data file: its dev and test sentences would be "
                        "trained on; use unlabelled.rest_of_train for its other train sentences, or give both "
                        "data.categories and unlabelled.brown_categories (disjoint)")
    shared = sorted(set(brown_categories) & set(labelled.categories))
    if shared:
        raise UserError(f"cvt unlabelled.brown_categories and data.categories share {', '.join(shared)}: those "
                        "genres' dev and test sentences would be trained on")


def _zip_sentences(path: Path, text_format: str, brown_categories: list[str] | None) -> list[list[str]]:
    if not zipfile.is_zipfile(path):
        empty = " (it is empty)" if path.stat().st_size == 0 else ""
        raise UserError(f"{path} is not a zip file{empty} (expected an NLTK corpus zip)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "brown/cats.txt" in names:
                return brown_plain_sentences(path, brown_categories)
            members = sorted(n for n in names if n.lower().endswith(".txt") and not n.endswith("/"))
            if not members:
                raise UserError(f"{path} holds no .txt files")
            # NLTK's corpora are mostly ASCII with some Latin-1 bytes: read what is not UTF-8 as Latin-1
            return [s for n in members for s in text_sentences(_decode(_member(archive, path, n)), text_format)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
        raise UserError(f"cannot read {path} as a zip: {e}") from None


def _member(archive: zipfile.ZipFile, path: Path, name: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as e:  # bad CRC, truncated, odd method
        raise UserError(f"{path}: cannot read {name} ({e}); the zip is damaged") from None


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")
