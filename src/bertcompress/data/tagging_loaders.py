"""Tagging tasks read through `DataConfig`: `tagging` (your files or a `datasets` set) and
`brown-pos` (NLTK's Brown corpus). Settings in `data.tagging` (config.TaggingConfig).

Sources of `tagging`, chosen by `data.path`:
- a CoNLL-style file (.conll, .conllu, .txt, .tsv, .iob, .bio: a token per line, a blank line between
  sentences, `-DOCSTART-` skipped; columns `token_column` and `tag_column`) or a JSON-lines file
  (.jsonl, .json: lists under `tokens_key` and `tags_key`). A single file is split like a sentence
  task's: a seeded `data.holdout_fraction` of its sentences is the eval split;
- a folder of `<split>.<suffix>` files (dev and validation name the same split);
- a folder written by `datasets.save_to_disk`, or a hub name: tag names come from the tag
  feature's ClassLabel when it has one.
`brown-pos` reads NLTK's brown.zip (`data.path`, default ../shared/data/corpus/nltk/brown.zip beside
this repository or the working folder), from the genres `brown_categories`, tagged in
`brown_tagset`, and cuts a seeded train/dev/test split (`split`, `split_seed`) of its sentences.

Tag sets. Files: the sorted tags of the training split ("O" first; a single file: all of it, as
the classification task does with labels). An eval split's tag that the training data lacks is an
error (the model could never predict it, so its words would be silently wrong): add such
sentences to the training data. `datasets` ClassLabel tags: the feature's names, in its order.
Brown: the tag set's fixed list (12 universal tags, or the 181 simplified Brown tags), whatever
the genres and split, so models trained on one genre are scored on another with the same ids.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from bertcompress.core.errors import UserError
from bertcompress.data.brown import BROWN_TO_UNIVERSAL, UNIVERSAL_TAGS, load_brown
from bertcompress.data.config import DataConfig
from bertcompress.data.examples import TaskSpec
from bertcompress.data.sentence_loaders import (
    _check_single_file_split,
    _dataset_split,
    _held_out_rows,
    _looks_like_hub_name,
    _single_file,
    _subset,
    decode_text,
    load_hf_dataset,
)
from bertcompress.data.tagging import (
    TaggedSentence,
    is_span_tagset,
    read_conll,
    read_tagged_dataset,
    read_tagged_jsonl,
    seeded_split,
    tag_vocabulary,
)
from bertcompress.data.tasks import BROWN_POS, get_task, with_metric

CONLL_SUFFIXES = (".conll", ".conllu", ".txt", ".tsv", ".iob", ".bio")
JSONL_SUFFIXES = (".jsonl", ".json")
TAG_KEYS = ("tags", "ner_tags", "pos_tags", "chunk_tags")
SPLIT_ALIASES = {"dev": ("dev", "validation", "valid"), "validation": ("validation", "dev", "valid")}
BROWN_DEFAULT = Path("shared") / "data" / "corpus" / "nltk" / "brown.zip"
BROWN_SPLITS = ("train", "dev", "test")
_REPO = Path(__file__).resolve().parents[3]


def load_tagged_examples(cfg: DataConfig, task: TaskSpec, split: str) -> tuple[TaskSpec, list[TaggedSentence]]:
    """The tagged sentences of `split` and the task with its tag set and metrics filled in."""
    stray = next((n for n in ("text_a", "text_b", "label") if getattr(cfg, n) is not None), None)
    if stray is not None:
        raise UserError(f"task {task.name} reads tokens and tags (data.tagging.tokens_key, tags_key, token_column, "
                        f"tag_column), not data.{stray}: unset it")
    limit = cfg.max_train_examples if split == cfg.train_split else cfg.max_eval_examples
    if task.name == BROWN_POS.name:
        sentences = _brown_split(cfg, split)
        source, tags = f"{brown_path(cfg)} [{split}]", brown_tags(cfg.tagging.brown_tagset)
    else:
        source, sentences, tags = _user_split(cfg, task, split)
    _check_known_tags(source, sentences, tags)
    metrics = ("span_f1", "accuracy") if is_span_tagset(tags) else ("accuracy",)
    task = replace(task, labels=tuple(tags), metrics=metrics)
    return with_metric(task, cfg.metric), _subset(sentences, limit)


def describe_tagged_split(cfg: DataConfig, split: str) -> str | None:
    """brown-pos: how the split was cut, for records; None for other sources (the caller says)."""
    if get_task(cfg.task).name != BROWN_POS.name:
        return None
    share = cfg.tagging.split[BROWN_SPLITS.index(_brown_split_name(split))]
    genres = ", ".join(cfg.tagging.brown_categories) if cfg.tagging.brown_categories else "all genres"
    return f"{split} ({share * 100:g}% of Brown, {genres}, seed {cfg.tagging.split_seed})"


def _check_known_tags(source: str, sentences: list[TaggedSentence], tags: list[str]) -> None:
    known = set(tags)
    for k, sentence in enumerate(sentences, 1):
        for tag in sentence.tags:
            if tag not in known:
                raise UserError(f"{source}, sentence {k}: tag {tag!r} is not among the {len(tags)} tags of the "
                                "training data; the tag set is inferred from it, so add sentences with this tag there")


# ---------------------------------------------------------------- your files

def _user_split(cfg: DataConfig, task: TaskSpec, split: str) -> tuple[str, list[TaggedSentence], list[str]]:
    """(source, sentences, tag set) of `split`."""
    if cfg.path is None:
        raise UserError("task tagging needs data.path (a CoNLL or JSONL file or folder, or a `datasets` name)")
    path = Path(str(cfg.path))
    single = _single_file(cfg)
    if single is not None:
        _check_single_file_split(cfg, single, split)
        everything = _read_file(single, cfg)
        tags = tag_vocabulary(everything)  # a single file: its tags, held-out sentences included
        if cfg.holdout_fraction > 0:
            held = _held_out_rows(cfg, single, [None] * len(everything))  # sentences: no label to stratify by
            everything = [s for i, s in enumerate(everything) if (i in held) == (split != cfg.train_split)]
        return str(single), everything, tags
    if path.is_dir() and not _is_saved_dataset(path):
        file = _split_file(path, split)
        sentences = _read_file(file, cfg)
        train = sentences if split == cfg.train_split else _read_file(_split_file(path, cfg.train_split), cfg)
        return str(file), sentences, tag_vocabulary(train)
    if path.is_dir() or _looks_like_hub_name(str(cfg.path)):
        return _dataset_split_sentences(cfg, task, split)
    raise UserError(f"tagged data file or folder not found: {path}")


def _is_saved_dataset(path: Path) -> bool:
    return any((path / f).is_file() for f in ("dataset_dict.json", "dataset_info.json", "state.json"))


def _split_file(folder: Path, split: str) -> Path:
    names = SPLIT_ALIASES.get(split, (split,))
    for name in names:
        for suffix in (*CONLL_SUFFIXES, *JSONL_SUFFIXES):
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    raise UserError(f"no {split!r} split in {folder}: expected {names[0]}.conll (or .txt, .tsv, .iob, .bio, "
                    ".jsonl, .json)")


def _read_file(path: Path, cfg: DataConfig) -> list[TaggedSentence]:
    t = cfg.tagging
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return read_tagged_jsonl(path, t.tokens_key, t.tags_key or _first_tags_key(path))
    if suffix in CONLL_SUFFIXES:
        return read_conll(path, t.token_column, t.tag_column, t.separator)
    raise UserError(f"unsupported tagged data file {path}: use CoNLL columns ({', '.join(CONLL_SUFFIXES)}) or "
                    "JSON lines (.jsonl, .json)")


def _first_tags_key(path: Path) -> str:
    """The first of TAG_KEYS in the file's first record (read_tagged_jsonl then checks every line)."""
    for n, line in enumerate(decode_text(path).split("\n"), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}, line {n}: not valid JSON ({e.msg})") from None
            keys = list(record) if isinstance(record, dict) else []
            return _pick_tags_key(keys, str(path))
    raise UserError(f"{path} has no tagged sentences")


def _pick_tags_key(keys: list[str], source: str) -> str:
    found = next((k for k in TAG_KEYS if k in keys), None)
    if found is None:
        raise UserError(f"{source} has no tag list: set data.tagging.tags_key (keys: {', '.join(keys) or 'none'}; "
                        f"looked for {', '.join(TAG_KEYS)})")
    return found


def _dataset_split_sentences(cfg: DataConfig, task: TaskSpec,
                             split: str) -> tuple[str, list[TaggedSentence], list[str]]:
    """A `datasets.save_to_disk` folder or a hub name: (source, sentences, tag set)."""
    name = str(cfg.path)
    obj = load_hf_dataset(name, cfg.config_name, what="tagged file", revision=cfg.revision)
    import datasets  # present: load_hf_dataset said so

    def read(wanted: str) -> tuple[str, list[TaggedSentence], object]:
        ds, source = obj, name
        if isinstance(obj, datasets.DatasetDict):
            key = _dataset_split(task, wanted, list(obj))  # dev: validation
            if key is None:
                raise UserError(f"dataset {name} has no split {wanted!r} (splits: {', '.join(obj)})")
            ds, source = obj[key], f"{name} [{key}]"
        tags_key = cfg.tagging.tags_key or _pick_tags_key(list(ds.column_names), source)
        return source, read_tagged_dataset(ds, cfg.tagging.tokens_key, tags_key), ds.features[tags_key]

    source, sentences, feature = read(split)
    names = getattr(getattr(feature, "feature", None), "names", None)
    if names:
        return source, sentences, list(names)
    train = sentences if split == cfg.train_split else read(cfg.train_split)[1]
    return source, sentences, tag_vocabulary(train)


# ---------------------------------------------------------------- Brown

def brown_tags(tagset: str) -> list[str]:
    """The fixed tag list of a Brown tag set, sorted (every tag the corpus can yield in it)."""
    return sorted(UNIVERSAL_TAGS if tagset == "universal" else BROWN_TO_UNIVERSAL)


def brown_path(cfg: DataConfig) -> Path:
    if cfg.path is not None:
        return Path(str(cfg.path)).expanduser()
    candidates = [_REPO.parent / BROWN_DEFAULT, Path.cwd().parent / BROWN_DEFAULT]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise UserError("task brown-pos needs NLTK's brown.zip: set data.path (looked in "
                        f"{', '.join(str(p) for p in dict.fromkeys(candidates))})")
    return found


def _brown_split_name(split: str) -> str:
    name = "dev" if split in ("validation", "valid") else split
    if name not in BROWN_SPLITS:
        raise UserError(f"task brown-pos has splits train, dev and test, not {split!r}")
    return name


def _brown_split(cfg: DataConfig, split: str) -> list[TaggedSentence]:
    t = cfg.tagging
    path = brown_path(cfg).resolve()
    if not path.exists():  # a folder or a file that is no zip: load_brown says which
        raise UserError(f"Brown corpus zip not found: {path}")
    name = _brown_split_name(split)
    sentences = _brown_sentences(str(path), path.stat().st_mtime_ns, t.brown_tagset,
                                 tuple(t.brown_categories) if t.brown_categories is not None else None)
    part = seeded_split(sentences, tuple(t.split), t.split_seed)[name]
    if not part:
        raise UserError(f"brown-pos split {name!r} is empty: data.tagging.split gives it no share ({t.split})")
    return part


@lru_cache(maxsize=2)
def _brown_sentences(path: str, _mtime: int, tagset: str, categories: tuple[str, ...] | None) -> list[TaggedSentence]:
    """Read once per process (train and eval splits come from the same reading; 8-12 s for all of it)."""
    return load_brown(path, tagset, list(categories) if categories is not None else None)
