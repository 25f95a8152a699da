"""Turn whatever the user points `data.path` at into `Example`s with class indices.

Sources, chosen by `DataConfig.path`:

- None: the embedded default (task rt-sentiment only; see builtin.py).
- A single CSV / TSV / JSONL (.jsonl or .json, one object a line) file with named columns. It
  has no held-out split of its own, so a seeded `data.holdout_fraction` of its rows (seed
  `data.holdout_seed`) is the eval split (any split but the train split) and the train split is
  the rest: disjoint, and the same rows whichever is read first. With holdout_fraction 0 the file
  is the train split only. It has no test split; use a folder to have separate splits.
- A folder: the GLUE root (CoLA/, SST-2/, ...) or one task's folder, or any folder holding
  `<split>.tsv|.csv|.jsonl|.json`. TSVs are read in the official GLUE column layouts (CoLA has no
  header); headers name the columns, so a user TSV with the same names reads the same way.
- A folder written by `datasets.save_to_disk`, or a hub name such as "glue" (needs `datasets`).

Columns are `data.text_a/text_b/label` when set, else the task's GLUE column names, else the
first present of the generic names below. TSVs are split on tabs with no quote handling: GLUE
text holds stray quotes. A split named test* may lack labels (label None); others may not.
Every bad input is a UserError naming the file (and the line for a bad row).
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bertcompress.core.errors import UserError
from bertcompress.data.builtin import rt_sentiment_examples
from bertcompress.data.config import DEFAULT_TASK, DataConfig
from bertcompress.data.examples import Example, TaskSpec
from bertcompress.data.sampling import stratified_sample
from bertcompress.data.tasks import CLASSIFICATION, GLUE_TASKS, REGRESSION, needs_inferred_labels, with_metric

GLUE_DIRS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP",
             "mnli": "MNLI", "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}
# (text_a, text_b, label) in each task's official TSV header.
GLUE_COLUMNS = {
    "cola": ("sentence", None, "label"),
    "sst2": ("sentence", None, "label"),
    "mrpc": ("#1 String", "#2 String", "Quality"),
    "stsb": ("sentence1", "sentence2", "score"),
    "qqp": ("question1", "question2", "is_duplicate"),
    "mnli": ("sentence1", "sentence2", "gold_label"),
    "qnli": ("question", "sentence", "label"),
    "rte": ("sentence1", "sentence2", "label"),
    "wnli": ("sentence1", "sentence2", "label"),
}
COLA_HEADERLESS = ("source", "label", "original_label", "sentence")
TEXT_A_DEFAULTS = ("sentence", "text", "sentence1", "question", "question1", "premise")
TEXT_B_DEFAULTS = ("sentence2", "question2", "hypothesis")
LABEL_DEFAULTS = ("label",)
FILE_SUFFIXES = (".tsv", ".csv", ".jsonl", ".json")
SUBSET_SEED = 0
_INT = re.compile(r"-?\d+")


@dataclass
class _Table:
    """Rows of one source with raw labels; `rows` are (text_a, text_b, raw label, line/row no)."""

    source: str
    unit: str  # "line" (files) or "row" (datasets), for error messages
    has_text_b: bool
    rows: list[tuple[str, str | None, Any, int]]
    label_names: tuple[str, ...] | None = None  # a `datasets` ClassLabel's names

    def where(self, n: int) -> str:
        return f"{self.source}, {self.unit} {n}"


def load_sentence_examples(cfg: DataConfig, task: TaskSpec, split: str) -> tuple[TaskSpec, list[Example]]:
    """The examples of `split` ("train", "dev", "test", "dev_matched", ...) of a sentence task and
    the task they belong to (for `classification`, with the label set found in the training split).
    `data.load_examples` (kinds.py) is the entry for every kind of task."""
    limit = cfg.max_train_examples if split == cfg.train_split else cfg.max_eval_examples
    if cfg.path is None:
        if task.name != DEFAULT_TASK:
            raise UserError(f"task {task.name} needs data.path (a GLUE folder, a CSV/TSV/JSONL file or a "
                            f"`datasets` name); only {DEFAULT_TASK} has embedded data")
        return with_metric(task, cfg.metric), _subset(rt_sentiment_examples(split), limit)

    single = _single_file(cfg)
    if single is not None:
        _check_single_file_split(cfg, single, split)
    table = _read(cfg, task, split)
    if task.name in (CLASSIFICATION.name, REGRESSION.name):
        task = replace(task, is_pair=table.has_text_b)
    if needs_inferred_labels(task):  # a single file: its labels, held-out rows included
        train = table if split == cfg.train_split or single else _read(cfg, task, cfg.train_split)
        task = replace(task, labels=_infer_labels(train))
    index = {name: i for i, name in enumerate(task.labels or ())}
    examples = [Example(a, b, _to_label(task, index, table, raw, n)) for a, b, raw, n in table.rows]
    if single is not None and cfg.holdout_fraction > 0:
        held = _held_out_rows(cfg, single, [e.label for e in examples])
        examples = [e for i, e in enumerate(examples) if (i in held) == (split != cfg.train_split)]
    return with_metric(task, cfg.metric), _subset(examples, limit)


def file_split_description(cfg: DataConfig, split: str) -> str:
    """What `load_examples(cfg, split)` reads, for records: the split's name, and for a single
    file how it was cut, e.g. "dev (held out: 10% of train.tsv, seed 0)"."""
    single = _single_file(cfg)
    if single is None:
        return split
    share = f"{cfg.holdout_fraction * 100:g}%"
    if split != cfg.train_split:
        return f"{split} (held out: {share} of {single.name}, seed {cfg.holdout_seed})"
    if cfg.holdout_fraction == 0:
        return f"{split} (all of {single.name})"
    return f"{split} ({single.name} less the {share} held out, seed {cfg.holdout_seed})"


def _single_file(cfg: DataConfig) -> Path | None:
    """`data.path` when it is one data file (not a folder, not a `datasets` source)."""
    path = Path(str(cfg.path)) if cfg.path is not None else None
    return path if path is not None and path.is_file() else None


def _check_single_file_split(cfg: DataConfig, path: Path, split: str) -> None:
    if split.startswith("test"):
        raise UserError(f"no {split!r} split in the single file {path}: it serves train and a held-out "
                        "dev split only; give a folder with a test file")
    if split != cfg.train_split and cfg.holdout_fraction == 0:
        raise UserError(f"data.path {path} is a single file, with no held-out {split!r} split: give a folder with "
                        "separate splits, or set data.holdout_fraction (e.g. 0.1) to hold out part of the file")


def _held_out_rows(cfg: DataConfig, path: Path, labels: list) -> set[int]:
    """Indices of the held-out rows, stratified by label: a pure function of (labels, fraction,
    seed), so the train and eval splits are disjoint and agree whichever is read first."""
    n = len(labels)
    if n < 2:
        raise UserError(f"{path} has {n} row: too few to hold out an eval split from; give a folder with "
                        "separate splits, or set data.holdout_fraction: 0 to train on all of it")
    k = min(max(1, round(n * cfg.holdout_fraction)), n - 1)  # both parts keep at least one row
    return set(stratified_sample(labels, k, cfg.holdout_seed))


def subset_indices(n: int, limit: int | None) -> list[int]:
    """Which of n examples a `limit` keeps (`max_train_examples`): a seeded sample, in source
    order; all of them when limit is None or >= n. Every reader of a budget uses it, so one budget
    means the same examples everywhere (e.g. cvt's labelled sentences and finetune's)."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(SUBSET_SEED).sample(range(n), limit))


def _subset(examples: list, limit: int | None) -> list:
    return [examples[i] for i in subset_indices(len(examples), limit)]


# ---------------------------------------------------------------- labels

def _label_key(raw: Any) -> str:
    return str(int(raw) if isinstance(raw, bool) else raw).strip()


def _to_label(task: TaskSpec, index: dict[str, int], table: _Table, raw: Any, n: int) -> int | float | None:
    if raw is None:
        return None
    if task.labels is None:
        try:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        except (TypeError, ValueError):
            raise UserError(f"{table.where(n)}: label {raw!r} is not a number (task {task.name} "
                            "is a regression)") from None
    if table.label_names is not None and isinstance(raw, int):
        if raw < 0:  # `datasets` marks unlabelled (test) rows with -1
            return None
        if raw < len(table.label_names) and table.label_names[raw] in index:
            return index[table.label_names[raw]]
    key = _label_key(raw)
    if key in index:
        return index[key]
    # A class index instead of a label name (e.g. 0/1 for qnli); exact ints only.
    number = raw if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
    if isinstance(raw, str) and _INT.fullmatch(key):
        number = int(key)
    if number is not None and float(number).is_integer() and 0 <= number < len(index):
        return int(number)
    raise UserError(f"{table.where(n)}: label {raw!r} is not in the label set of task {task.name} "
                    f"({', '.join(task.labels)})")


def _infer_labels(table: _Table) -> tuple[str, ...]:
    """Class names for the generic classification task: the sorted distinct training labels
    (numerically when all are integers, so "2" < "10")."""
    if table.label_names is not None:
        return table.label_names
    keys = {_label_key(raw) for _, _, raw, _ in table.rows if raw is not None}
    if len(keys) < 2:
        raise UserError(f"{table.source}: task classification needs at least 2 distinct labels in the "
                        f"training data, found {sorted(keys)}")
    numeric = all(_INT.fullmatch(k) for k in keys)
    return tuple(sorted(keys, key=int) if numeric else sorted(keys))


# ---------------------------------------------------------------- sources

def _read(cfg: DataConfig, task: TaskSpec, split: str) -> _Table:
    path = Path(str(cfg.path))
    if path.is_file():
        return _read_file(path, cfg, task, split)
    if path.is_dir():
        if any((path / f).is_file() for f in ("dataset_dict.json", "dataset_info.json", "state.json")):
            return _read_dataset(cfg, task, split)
        return _read_file(_find_split_file(path, task, split), cfg, task, split)
    if _looks_like_hub_name(str(cfg.path)):
        return _read_dataset(cfg, task, split)
    raise UserError(f"data file or folder not found: {path}")


def _looks_like_hub_name(name: str) -> bool:
    return (re.fullmatch(r"\w[\w.-]*(/\w[\w.-]*)?", name) is not None
            and Path(name).suffix.lower() not in (*FILE_SUFFIXES, ".txt"))


def _file_split_names(task: TaskSpec, split: str) -> list[str]:
    if task.name == "mnli":
        split = {"dev": "dev_matched", "validation": "dev_matched", "validation_matched": "dev_matched",
                 "validation_mismatched": "dev_mismatched", "test": "test_matched"}.get(split, split)
    return [split, "dev"] if split == "validation" else [split]


def _child_dir(folder: Path, name: str) -> Path | None:
    """`folder/name` matched case-insensitively (GLUE copies differ: SST-2 vs sst-2)."""
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def _find_split_file(folder: Path, task: TaskSpec, split: str) -> Path:
    if task.name in GLUE_DIRS:
        sub = _child_dir(folder, GLUE_DIRS[task.name])
        if sub is not None:
            folder = sub
        elif any(_child_dir(folder, d) for d in GLUE_DIRS.values()):
            raise UserError(f"GLUE folder {folder} has no {GLUE_DIRS[task.name]}/ folder for task {task.name}")
    names = _file_split_names(task, split)
    for name in names:
        for suffix in FILE_SUFFIXES:
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    raise UserError(f"no {split!r} split in {folder}: expected {names[0]}.tsv, .csv, .jsonl or .json")


def decode_text(path: Path) -> str:
    """A file's text (UTF-8, with or without BOM); bad bytes are a one-line error with their line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: not valid UTF-8 text") from None


def _read_file(path: Path, cfg: DataConfig, task: TaskSpec, split: str) -> _Table:
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise UserError(f"unsupported data file {path}: use .tsv, .csv, .jsonl or .json (JSON lines)")
    text = decode_text(path)
    if suffix in (".jsonl", ".json"):
        records = json_records(text, path)
        columns = list(records[0][1])
    else:
        lines = _tsv_lines(text) if suffix == ".tsv" else _csv_lines(text, path)
        if not lines:
            raise UserError(f"{path} has no rows")
        header = lines[0][1]
        if task.name == "cola" and suffix == ".tsv" and len(header) == 4 and header[1] in ("0", "1"):
            header, body = list(COLA_HEADERLESS), lines  # the official CoLA train/dev: no header
        else:
            body = lines[1:]
        columns = header
        records = []
        for n, fields in body:
            if len(fields) != len(header):
                raise UserError(f"{path}, line {n}: expected {len(header)} columns, got {len(fields)}")
            records.append((n, dict(zip(header, fields))))
    if not records:
        raise UserError(f"{path} has no rows")
    a, b, label = _resolve_columns(cfg, task, columns, str(path), split)
    table = _Table(str(path), "line", b is not None, [])
    for n, rec in records:
        where = table.where(n)
        table.rows.append((_text(rec, a, where), _text(rec, b, where) if b else None,
                           _field(rec, label, where) if label else None, n))
    return table


def _tsv_lines(text: str) -> list[tuple[int, list[str]]]:
    return [(n, line.rstrip("\r").split("\t")) for n, line in enumerate(text.split("\n"), 1) if line.strip()]


def _csv_lines(text: str, path: Path) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    out = []
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                out.append((reader.line_num, fields))
    except csv.Error as e:
        raise UserError(f"{path}, line {reader.line_num}: malformed CSV row: {e}") from None
    return out


def json_records(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}, line {n}: not valid JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path}, line {n}: expected a JSON object, got {type(rec).__name__}")
        out.append((n, rec))
    if not out:
        raise UserError(f"{path} has no rows")
    return out


def _field(rec: dict[str, Any], column: str, where: str) -> Any:
    if column not in rec:
        raise UserError(f"{where}: missing column {column!r}")
    return rec[column]


def _text(rec: dict[str, Any], column: str, where: str) -> str:
    value = _field(rec, column, where)
    if value is None or isinstance(value, (dict, list)):
        raise UserError(f"{where}: column {column!r} holds {value!r}, not text")
    return str(value).strip()


def _resolve_columns(cfg: DataConfig, task: TaskSpec, columns: list[str], source: str,
                     split: str) -> tuple[str, str | None, str | None]:
    """Pick the text_a, text_b and label columns of a source (see the module docstring)."""
    glue_a, glue_b, glue_label = GLUE_COLUMNS.get(task.name, (None, None, None))
    listed = ", ".join(columns)

    def pick(setting: str, explicit: str | None, defaults: tuple[str | None, ...], required: bool,
             exclude: str | None = None) -> str | None:
        if explicit is not None:
            if explicit not in columns:
                raise UserError(f"{source} has no column {explicit!r} for data.{setting} (columns: {listed})")
            return explicit
        for name in defaults:
            if name is not None and name != exclude and name in columns:
                return name
        if required:
            looked = ", ".join(n for n in defaults if n)
            raise UserError(f"{source} has no {setting} column: set data.{setting} (columns: {listed}; "
                            f"looked for {looked})")
        return None

    a = pick("text_a", cfg.text_a, (glue_a, *TEXT_A_DEFAULTS), True)
    generic = task.name in (CLASSIFICATION.name, REGRESSION.name)
    if task.is_pair or generic:
        b = pick("text_b", cfg.text_b, (glue_b, *TEXT_B_DEFAULTS), task.is_pair, exclude=a)
    elif cfg.text_b is not None:
        raise UserError(f"task {task.name} takes single sentences: unset data.text_b")
    else:
        b = None
    label = pick("label", cfg.label, (glue_label, *LABEL_DEFAULTS), not split.startswith("test"))
    return a, b, label


def load_hf_dataset(path: str, config: str | None = None, what: str = "data file", revision: str | None = None) -> Any:
    """A `datasets.save_to_disk` folder or a hub dataset (its config `config`, at `revision`), or one
    clear line saying why not."""
    try:
        import datasets
    except ImportError:
        raise UserError(f"data.path {path!r} is not a local {what} or folder; reading it as a Hugging Face "
                        "dataset needs `pip install datasets`") from None
    try:
        if Path(path).is_dir():
            return datasets.load_from_disk(path)
        return datasets.load_dataset(path, config, **({"revision": revision} if revision else {}))
    except Exception as e:  # datasets raises many types; all mean "cannot use this"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"could not load dataset {path!r}: {first}") from None


def _read_dataset(cfg: DataConfig, task: TaskSpec, split: str) -> _Table:
    """A `datasets.save_to_disk` folder or a hub dataset: its config `data.config_name` ("glue": the
    task by default), at `data.revision`."""
    name = str(cfg.path)
    config = cfg.config_name or (task.name if name.lower() in ("glue", "nyu-mll/glue") and task.name in GLUE_TASKS
                                 else None)
    obj = load_hf_dataset(name, config, revision=cfg.revision)
    import datasets  # present: load_hf_dataset said so
    ds, source = obj, name
    if isinstance(obj, datasets.DatasetDict):
        key = _dataset_split(task, split, list(obj))
        if key is None:
            raise UserError(f"dataset {name} has no split {split!r} (splits: {', '.join(obj)})")
        ds, source = obj[key], f"{name} [{key}]"
    if len(ds) == 0:
        raise UserError(f"{source} has no rows")
    a, b, label = _resolve_columns(cfg, task, list(ds.column_names), source, split)
    feature = ds.features.get(label) if label else None
    names = tuple(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    col_a, col_b = list(ds[a]), list(ds[b]) if b else None
    col_label = list(ds[label]) if label else None
    table = _Table(source, "row", b is not None, [], names)
    for i in range(len(ds)):
        where = table.where(i)
        table.rows.append((_text({a: col_a[i]}, a, where), _text({b: col_b[i]}, b, where) if b else None,
                           col_label[i] if col_label is not None else None, i))
    return table


def _dataset_split(task: TaskSpec, split: str, available: list[str]) -> str | None:
    if task.name == "mnli":
        wanted = {"dev": ["validation_matched"], "dev_matched": ["validation_matched"],
                  "dev_mismatched": ["validation_mismatched"], "test": ["test_matched"]}.get(split, [split])
    else:
        wanted = ["validation", "dev"] if split in ("dev", "validation") else [split]
    return next((w for w in wanted if w in available), None)
