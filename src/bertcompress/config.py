"""Typed configs. Each loads from YAML/JSON, validates itself, and is saved beside every output.

A config is a plain dataclass: `load_config(DistillConfig, "x.yaml", overrides=["train.lr=1e-4"])`
builds one, `save_config(cfg, folder)` writes it as `bertcompress_config.yaml` so a run can be
reproduced from its output folder alone.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import UserError
from .io import atomic_write_text

CONFIG_FILENAME = "bertcompress_config.yaml"
DEFAULT_TEACHER = "all-MiniLM-L6-v2"
DEFAULT_TASK = "rt-sentiment"


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise UserError(f"bad config: {msg}")


@dataclass
class StudentConfig:
    """Shape of a new student. The architecture family (BERT, RoBERTa, ...) follows the teacher;
    a size left as None (null in YAML) is the teacher's."""

    num_layers: int = 4
    hidden_size: int | None = 312
    num_heads: int | None = 12
    ffn_size: int | None = 1200
    # random: fresh weights; teacher_layers: copy whole teacher layers (DistilBERT-style,
    # needs hidden_size equal to the teacher's).
    init: str = "random"
    # 1-based teacher layers to copy for init=teacher_layers; default: the layer mapping.
    init_layers: list[int] | None = None

    def __post_init__(self) -> None:
        _check(self.num_layers >= 1, f"student.num_layers must be >= 1, got {self.num_layers}")
        sizes = (self.hidden_size, self.num_heads, self.ffn_size)
        _check(all(v is None or v >= 1 for v in sizes), "student sizes must be positive")
        _check(self.hidden_size is None or self.num_heads is None or self.hidden_size % self.num_heads == 0,
               f"student.hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        _check(self.init in ("random", "teacher_layers"),
               f"student.init must be 'random' or 'teacher_layers', got {self.init!r}")


@dataclass
class LossConfig:
    """TinyBERT loss weights and their options (see distillation/losses.py)."""

    embedding: float = 1.0
    hidden: float = 1.0
    attention: float = 1.0
    prediction: float = 1.0
    temperature: float = 1.0
    # uniform | last | an explicit list of 1-based teacher layers, one per student layer
    layer_mapping: str | list[int] = "uniform"
    # W_h: one projection shared by every mapped layer (as the reference code) or one per layer
    hidden_projection: str = "shared"
    # strict: head counts must match; mean: compare the head-averaged score maps
    head_rule: str = "strict"

    def __post_init__(self) -> None:
        for name in ("embedding", "hidden", "attention", "prediction"):
            v = getattr(self, name)
            _check(v >= 0, f"losses.{name} weight must be >= 0, got {v}")
        _check(self.temperature > 0, f"losses.temperature must be > 0, got {self.temperature}")
        _check(self.hidden_projection in ("shared", "per_layer"),
               f"losses.hidden_projection must be 'shared' or 'per_layer', got {self.hidden_projection!r}")
        _check(self.head_rule in ("strict", "mean"),
               f"losses.head_rule must be 'strict' or 'mean', got {self.head_rule!r}")
        if isinstance(self.layer_mapping, str):
            _check(self.layer_mapping in ("uniform", "last"),
                   f"losses.layer_mapping must be 'uniform', 'last' or a list of layers, got {self.layer_mapping!r}")


@dataclass
class TrainConfig:
    """One run of the shared training loop (train/loop.py)."""

    epochs: float = 1.0
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    group_by_length: bool = True  # batch texts of similar length together: less padding, same data
    eval_every: int = 0  # optimizer steps; 0 = only at the end
    save_every: int = 0  # optimizer steps; 0 = only at the end
    log_every: int = 10
    seed: int = 42
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # replay each step from a CUDA graph (train/cuda_graph.py): for small students, whose GPU
    # steps are bound by Python's kernel launches; one CUDA device, one process, grad_accum 1
    cuda_graphs: bool = False
    # torch.compile the module from the second step on (the first, eager, lets `transformers`
    # install its output hooks, which would break the graph): fuses the elementwise work
    torch_compile: bool = False

    def __post_init__(self) -> None:
        _check(self.epochs > 0 or (self.max_steps or 0) > 0, "train.epochs or train.max_steps must be > 0")
        _check(self.max_steps is None or self.max_steps > 0, f"train.max_steps must be > 0, got {self.max_steps}")
        _check(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        _check(self.grad_accum >= 1, f"train.grad_accum must be >= 1, got {self.grad_accum}")
        _check(self.lr > 0, f"train.lr must be > 0, got {self.lr}")
        _check(0 <= self.warmup_ratio < 1, f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        _check(self.weight_decay >= 0, "train.weight_decay must be >= 0")
        _check(self.eval_every >= 0 and self.save_every >= 0 and self.log_every >= 1,
               "train.eval_every/save_every must be >= 0 and log_every >= 1")
        _check(self.precision in ("auto", "fp32", "bf16"),
               f"train.precision must be auto, fp32 or bf16, got {self.precision!r}")
        _check(not (self.cuda_graphs and self.grad_accum > 1), "train.cuda_graphs needs train.grad_accum 1")
        _check(not (self.cuda_graphs and self.torch_compile),
               "train.cuda_graphs and train.torch_compile together are not supported yet; choose one")

    def uses_bf16(self, device_type: str) -> bool:
        """Whether this run trains under bf16 autocast on a device of this type."""
        return self.precision == "bf16" or (self.precision == "auto" and device_type == "cuda")


@dataclass
class DataConfig:
    """A labelled task. `path`: a GLUE-layout folder, a CSV/TSV/JSONL file, a folder written by
    `datasets.save_to_disk`, or a `datasets` hub name; None means the embedded default."""

    task: str = DEFAULT_TASK
    path: str | None = None
    text_a: str | None = None  # column names, for CSV/TSV/JSONL and `datasets` sources
    text_b: str | None = None
    label: str | None = None
    train_split: str = "train"
    eval_split: str = "dev"
    max_seq_len: int = 128
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    # a single data file serves no held-out split: this seeded fraction of it becomes the eval
    # split (and is removed from training); 0 refuses a single file for evaluation
    holdout_fraction: float = 0.1
    holdout_seed: int = 0

    def __post_init__(self) -> None:
        _check(0 <= self.holdout_fraction < 1,
               f"data.holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        _check(8 <= self.max_seq_len <= 4096, f"data.max_seq_len must be in [8, 4096], got {self.max_seq_len}")
        for n in ("max_train_examples", "max_eval_examples"):
            v = getattr(self, n)
            _check(v is None or v >= 1, f"data.{n} must be >= 1, got {v}")


@dataclass
class CorpusConfig:
    """Unlabelled text for general distillation: a text file or a folder of them; None means the
    embedded default corpus."""

    path: str | None = None
    max_seq_len: int = 128
    max_sequences: int | None = None

    def __post_init__(self) -> None:
        _check(8 <= self.max_seq_len <= 4096, f"corpus.max_seq_len must be in [8, 4096], got {self.max_seq_len}")
        _check(self.max_sequences is None or self.max_sequences >= 1, "corpus.max_sequences must be >= 1")


@dataclass
class AugmentConfig:
    """TinyBERT data augmentation (distillation/augment.py)."""

    enabled: bool = False
    p: float = 0.4  # probability of replacing each word
    top_k: int = 15  # candidates per word
    n_aug: int = 20  # augmented sentences per example
    max_examples: int | None = None  # augment only the first N training examples
    seed: int = 42
    cache_dir: str | None = None  # default: <output>/augment_cache

    def __post_init__(self) -> None:
        _check(0 <= self.p <= 1, f"augment.p must be in [0, 1], got {self.p}")
        _check(self.top_k >= 1 and self.n_aug >= 1, "augment.top_k and augment.n_aug must be >= 1")


@dataclass
class FinetuneConfig:
    """Fine-tune a model (usually the teacher) on a labelled task."""

    model: str = DEFAULT_TEACHER
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2, lr=5e-5))
    output: str = "outputs/teacher"


@dataclass
class DistillConfig:
    """One distillation stage. general: pre-trained teacher, unlabelled corpus, intermediate
    losses. task: fine-tuned teacher, task data, intermediate phase (`train`) then prediction
    phase (`prediction_train`)."""

    stage: str = "task"
    teacher: str = DEFAULT_TEACHER
    # an existing student folder (e.g. the general-distillation output); None: build from `student`
    student_path: str | None = None
    student: StudentConfig = field(default_factory=StudentConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, lr=1e-4))
    prediction_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2, lr=5e-5))
    data: DataConfig = field(default_factory=DataConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    output: str = "outputs/student"
    # the frozen teacher needs no fp32 master weights. auto: stored and run in bf16 wherever
    # `train` runs in bf16 (its LayerNorms and residual sums then skip autocast's fp32 round
    # trips: 1.1x a step on an H100 and on a CPU); fp32: under autocast like the student; bf16: always
    teacher_precision: str = "auto"

    def __post_init__(self) -> None:
        _check(self.stage in ("general", "task"), f"stage must be 'general' or 'task', got {self.stage!r}")
        _check(self.teacher_precision in ("auto", "fp32", "bf16"),
               f"teacher_precision must be auto, fp32 or bf16, got {self.teacher_precision!r}")

    def teacher_in_bf16(self, device_type: str) -> bool:
        if self.teacher_precision == "auto":
            return self.train.uses_bf16(device_type)
        return self.teacher_precision == "bf16"


@dataclass
class PipelineConfig:
    """The main job: fine-tune the teacher, general distillation, task distillation, evaluate."""

    teacher: str = DEFAULT_TEACHER
    data: DataConfig = field(default_factory=lambda: DataConfig(max_seq_len=64))
    corpus: CorpusConfig = field(default_factory=lambda: CorpusConfig(max_seq_len=64, max_sequences=3000))
    # Default: half the teacher's layers at its width, started from its layers (2, 4, 6 of 6) then
    # distilled. A random-init 4x312 TinyBERT needs far more general distillation than 15 CPU
    # minutes allow (it stays near chance here); set student.hidden_size etc. for other shapes.
    student: StudentConfig = field(default_factory=lambda: StudentConfig(
        num_layers=3, hidden_size=None, num_heads=None, ffn_size=None, init="teacher_layers"))
    losses: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(enabled=True, n_aug=2, max_examples=2000))
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, lr=1e-4, batch_size=32))
    general: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, lr=3e-4, batch_size=32))
    task_intermediate: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, lr=3e-4, batch_size=32))
    task_prediction: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2, lr=1e-4, batch_size=32))
    output: str = "outputs/run"


# ---------------------------------------------------------------- (de)serialisation

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass `cls` from plain data, with a clear error for unknown keys or bad types."""
    if not isinstance(data, dict):
        raise UserError(f"bad config: {where or 'top level'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"bad config: unknown key {where + '.' if where else ''}{unknown[0]} "
                        f"(known: {', '.join(sorted(names))})")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # pragma: no cover - dataclass signature problems
        raise UserError(f"bad config: {where or cls.__name__}: {e}") from None


def _convert(tp: Any, v: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if v is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, v, where)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0] if errors else f"bad config: {where} has a bad value {v!r}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, v, where)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(v, list):
            raise UserError(f"bad config: {where} must be a list, got {v!r}")
        return [_convert(item, x, f"{where}[{i}]") for i, x in enumerate(v)]
    if tp is bool:
        if isinstance(v, bool):
            return v
    elif tp is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    elif tp is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(v)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(v, str):
            return v
    else:  # pragma: no cover
        return v
    raise UserError(f"bad config: {where} must be {getattr(tp, '__name__', tp)}, got {v!r}")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to nested plain data."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"bad override {item!r}: expected key.path=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UserError(f"bad override {item!r}: {p} is not a section")
        node[parts[-1]] = value
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                base: T | None = None) -> T:
    """Defaults (or `base`) < YAML/JSON file < overrides."""
    data: dict[str, Any] = to_dict(base) if base is not None else {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise UserError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise UserError(f"config file {p} must hold a mapping at the top level")
        kind = loaded.pop("kind", None)  # written by save_config: which config the file holds
        if kind is not None and kind != cls.__name__:
            raise UserError(f"config file {p} holds a {kind}, not a {cls.__name__}")
        _deep_merge(data, loaded)
    apply_overrides(data, overrides or [])
    return from_dict(cls, data)


def _deep_merge(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_merge(dst[k], v)
        else:
            dst[k] = v


def config_to_yaml(cfg: Any) -> str:
    return yaml.safe_dump({"kind": type(cfg).__name__, **to_dict(cfg)}, sort_keys=False)


def save_config(cfg: Any, folder: str | Path) -> Path:
    path = Path(folder) / CONFIG_FILENAME
    atomic_write_text(path, config_to_yaml(cfg))
    return path


def read_saved_config(cls: type[T], folder: str | Path) -> T:
    data = yaml.safe_load((Path(folder) / CONFIG_FILENAME).read_text(encoding="utf-8"))
    data.pop("kind", None)
    return from_dict(cls, data)
