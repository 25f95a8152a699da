"""Typed configs. Each loads from YAML/JSON, validates itself, and is saved beside every output.

A config is a plain dataclass whose fields carry their help text (`setting(default, "help")`):
the CLI builds its flags and `--help` from them. `load_config(DistillConfig, "x.yaml",
overrides=["train.lr=1e-4"])` builds one (config_io.py), `save_config(cfg, folder)` writes it as
`bertcompress_config.yaml` so a run can be reproduced from its output folder alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from .config_io import (  # noqa: F401 - the public home of the (de)serialisation verbs
    CONFIG_FILENAME,
    DerivedSeed,
    apply_overrides,
    config_to_yaml,
    from_dict,
    load_config,
    read_saved_config,
    save_config,
    to_dict,
)
from .errors import UserError

DEFAULT_TEACHER = "all-MiniLM-L6-v2"
DEFAULT_TASK = "rt-sentiment"
DEFAULT_SEED = 42



def seed_setting(what: str) -> Any:
    return setting(None, f"seed of {what} (null: the command's `seed`)")


def fill_own_seeds(cfg: Any) -> None:
    """A nested config's unset seeds, until a top-level config derives them (`derive_seeds`)."""
    for f in dataclasses.fields(cfg):
        if f.name.endswith("seed") and getattr(cfg, f.name) is None:
            setattr(cfg, f.name, DerivedSeed(DEFAULT_SEED))


def derive_seeds(cfg: Any) -> None:
    """Every unset seed inside the top-level config `cfg` (at any depth) takes `cfg.seed`: one
    number reproduces a whole run, and each seed stays overridable on its own."""
    def walk(node: Any) -> None:
        for f in dataclasses.fields(node):
            v = getattr(node, f.name)
            if node is not cfg and f.name.endswith("seed") and (v is None or isinstance(v, DerivedSeed)):
                setattr(node, f.name, DerivedSeed(cfg.seed))
            for item in v if isinstance(v, list) else [v]:
                if dataclasses.is_dataclass(item) and not isinstance(item, type):
                    walk(item)
    walk(cfg)


def top_seed_setting() -> Any:
    return setting(DEFAULT_SEED, "the command's seed: every seed below left null (data split, validation slice, "
                   "data order, dropout, new weights, augmentation, search) derives from it")


def setting(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
            template: Callable[[], Any] | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its help text. `factory`: a default built per instance; `template`: what
    a section that defaults to None starts from when a file or override sets one of its keys."""
    metadata: dict[str, Any] = {"help": help}
    if choices:
        metadata["choices"] = choices
    if template is not None:
        metadata["template"] = template
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise UserError(f"bad config: {msg}")


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> None:
    _check(value in choices, f"{name} must be one of {', '.join(choices)}, got {value!r}")


INIT_FROM_TEACHER = ("random", "teacher_layers")


@dataclass
class StudentConfig:
    """Shape and start of a student. A new one (init random or teacher_layers) is of the teacher's
    family, and a size left as None (null in YAML) is the teacher's; one started from a pre-trained
    model (init names it) is of that model's family and vocabulary, and a size left as None is that
    model's."""

    num_layers: int | None = setting(4, "transformer layers (null: the teacher's, or the init model's)")
    hidden_size: int | None = setting(312, "hidden size (null: the teacher's, or the init model's)")
    num_heads: int | None = setting(12, "attention heads (null: the teacher's, or the init model's)")
    ffn_size: int | None = setting(1200, "feed-forward size (null: the teacher's, or the init model's)")
    init: str = setting("random", "random: fresh weights; teacher_layers: copy whole teacher layers "
                        "(DistilBERT-style, needs the teacher's hidden size); or a pre-trained model (folder or "
                        "name, e.g. all-MiniLM-L6-v2) to start from, with its own tokenizer: whole when the sizes "
                        "are its own, else cut to them by ETD (`run`; elsewhere cut it with `extract` first)")
    init_layers: list[int] | None = setting(None, "1-based teacher layers to copy for init teacher_layers "
                                            "(null: the layer mapping)")
    extract: str = setting("impt", "how a pre-trained init model is cut to a smaller shape: impt (ETD-Impt, its "
                           "most important units) or rand (ETD-Rand)", choices=("impt", "rand"))

    def __post_init__(self) -> None:
        _check(self.num_layers is None or self.num_layers >= 1,
               f"student.num_layers must be >= 1, got {self.num_layers}")
        sizes = (self.hidden_size, self.num_heads, self.ffn_size)
        _check(all(v is None or v >= 1 for v in sizes), "student sizes must be positive")
        _check(self.hidden_size is None or self.num_heads is None or self.hidden_size % self.num_heads == 0,
               f"student.hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        _check(bool(self.init.strip()), "student.init must be random, teacher_layers or a model")
        _check_choice(self.extract, ("impt", "rand"), "student.extract")

    @property
    def pretrained(self) -> str | None:
        """The pre-trained model the student starts from, if `init` names one."""
        return None if self.init in INIT_FROM_TEACHER else self.init

    def depth(self, teacher_layers: int) -> int:
        return self.num_layers if self.num_layers is not None else teacher_layers


@dataclass
class LossConfig:
    """TinyBERT loss weights and their options (see distillation/losses.py)."""

    embedding: float = setting(1.0, "weight of the embedding-layer loss")
    hidden: float = setting(1.0, "weight of the hidden-state loss")
    attention: float = setting(1.0, "weight of the attention-score loss")
    prediction: float = setting(1.0, "weight of the prediction (soft cross-entropy) loss; for tagging, over "
                                "the words (first word pieces) of each sentence")
    temperature: float = setting(1.0, "softmax temperature of the prediction loss")
    layer_mapping: str | list[int] = setting(
        "uniform", "uniform, last, or a list of 1-based teacher layers, one per student layer")
    attention_mapping: str | list[int] | None = setting(
        None, "the attention loss's own mapping (uniform, last or a list); null: layer_mapping's")
    hidden_projection: str = setting("shared", "W_h: one projection for every mapped layer (as the reference "
                                     "code) or per_layer", choices=("shared", "per_layer"))
    projection: str = setting("auto", "W_e and W_h: linear (learnable), identity (equal widths), or auto: "
                              "identity when the widths are equal, else linear",
                              choices=("auto", "linear", "identity"))
    head_rule: str = setting("strict", "strict: head counts must match; mean: compare head-averaged "
                             "attention maps", choices=("strict", "mean"))

    def __post_init__(self) -> None:
        for name in ("embedding", "hidden", "attention", "prediction"):
            v = getattr(self, name)
            _check(v >= 0, f"losses.{name} weight must be >= 0, got {v}")
        _check(self.temperature > 0, f"losses.temperature must be > 0, got {self.temperature}")
        _check_choice(self.hidden_projection, ("shared", "per_layer"), "losses.hidden_projection")
        _check_choice(self.head_rule, ("strict", "mean"), "losses.head_rule")
        _check_choice(self.projection, ("auto", "linear", "identity"), "losses.projection")
        for name in ("layer_mapping", "attention_mapping"):
            spec = getattr(self, name)
            _check(not isinstance(spec, str) or spec in ("uniform", "last"),
                   f"losses.{name} must be 'uniform', 'last' or a list of layers, got {spec!r}")


@dataclass
class SearchConfig:
    """A small search over learning rate and epochs, scored on the eval split (train/search.py)."""

    trials: int = setting(6, "trials at most; each trains from the same starting weights and seed")
    minutes: float = setting(30.0, "time budget: no new trial starts after this many minutes")
    lr_min: float = setting(1e-5, "smallest learning rate tried (sampled on a log scale)")
    lr_max: float = setting(2e-4, "largest learning rate tried")
    epochs_min: int = setting(1, "fewest epochs tried (min_steps still applies)")
    epochs_max: int = setting(5, "most epochs tried")
    prune: bool = setting(True, "stop a trial whose evaluation trails the median of earlier trials at the "
                          "same point")
    seed: int | None = seed_setting("the sampler (Optuna TPE)")

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        self.epochs_min, self.epochs_max = int(self.epochs_min), int(self.epochs_max)
        _check(self.trials >= 1, f"search.trials must be >= 1, got {self.trials}")
        _check(self.minutes > 0, f"search.minutes must be > 0, got {self.minutes}")
        _check(0 < self.lr_min <= self.lr_max, f"search needs 0 < lr_min <= lr_max, got {self.lr_min}, {self.lr_max}")
        _check(1 <= self.epochs_min <= self.epochs_max,
               f"search needs 1 <= epochs_min <= epochs_max, got {self.epochs_min}, {self.epochs_max}")


@dataclass
class TrainConfig:
    """One run of the shared training loop (train/loop.py)."""

    epochs: float = setting(1.0, "passes over the training data")
    max_steps: int | None = setting(None, "optimizer steps; overrides epochs when set")
    min_steps: int = setting(0, "at least this many optimizer steps: a small data set gets more epochs "
                             "(0: epochs alone decide)")
    batch_size: int = setting(32, "examples per step and process")
    grad_accum: int = setting(1, "micro-batches accumulated per optimizer step")
    lr: float = setting(5e-5, "peak learning rate (AdamW)")
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and LayerNorms)")
    warmup_ratio: float = setting(0.1, "share of the steps with a linear warm-up, then linear decay")
    max_grad_norm: float = setting(1.0, "gradient clipping norm (0: off)")
    group_by_length: bool = setting(True, "batch texts of similar length together: less padding, same data")
    eval_every: int = setting(0, "evaluate every N optimizer steps (0: only at the end)")
    keep_best: bool = setting(False, "evaluate on the eval_every schedule (0: about 5 times a run) and end with "
                              "the weights of the best evaluation (the metric named `score`), not the last")
    patience: int = setting(0, "stop when this many evaluations in a row have not improved on the best "
                            "(0: train the planned steps); the planned steps, max_steps and max_minutes are the caps")
    max_minutes: float | None = setting(None, "stop after this many minutes of training (null: no limit)")
    track_eval_split: bool = setting(False, "also score the eval split at every evaluation, in the history only "
                                     "(eval_reported_score); it never chooses: it shows what choosing on it "
                                     "would have reported")
    save_every: int = setting(0, "checkpoint every N optimizer steps for --resume (0: only at the end)")
    log_every: int = setting(10, "log every N optimizer steps")
    seed: int | None = seed_setting("data order, dropout and new weights")
    precision: str = setting("auto", "auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16",
                             choices=("auto", "fp32", "bf16"))
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    cuda_graphs: bool = setting(False, "replay each step from a CUDA graph (small students, whose GPU steps "
                                "are launch-bound); one CUDA device, one process, grad_accum 1")
    torch_compile: bool = setting(False, "torch.compile the step from the second step on (the first, eager, "
                                  "lets transformers install its output hooks)")
    search: SearchConfig | None = setting(None, "fine-tuning only: choose lr and epochs by a search on the eval "
                                          "split first (set any search.* key to turn it on)", template=SearchConfig)

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        self.epochs = float(self.epochs)  # a default written as 2 saves as 2.0, as a loaded one does
        _check(self.patience >= 0, f"train.patience must be >= 0, got {self.patience}")
        self.max_minutes = None if self.max_minutes is None else float(self.max_minutes)
        _check(self.max_minutes is None or self.max_minutes > 0,
               f"train.max_minutes must be > 0, got {self.max_minutes}")
        _check(self.epochs > 0 or (self.max_steps or 0) > 0, "train.epochs or train.max_steps must be > 0")
        _check(self.max_steps is None or self.max_steps > 0, f"train.max_steps must be > 0, got {self.max_steps}")
        _check(self.min_steps >= 0, f"train.min_steps must be >= 0, got {self.min_steps}")
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
class TaggingConfig:
    """How token-classification (tagging) data is read: tasks `tagging` (your files or a `datasets`
    set) and `brown-pos` (data/tagged.py)."""

    token_column: int = setting(0, "CoNLL files: column of the token (0-based; negative counts from the end)")
    tag_column: int = setting(-1, "CoNLL files: column of the tag (-1: the last)")
    separator: str | None = setting(None, "CoNLL files: column separator (null: any whitespace)")
    tokens_key: str = setting("tokens", "JSONL files and datasets: key of the token list")
    tags_key: str | None = setting(None, "JSONL files and datasets: key of the tag list (null: tags, then "
                                   "ner_tags, pos_tags, chunk_tags)")
    brown_tagset: str = setting("universal", "brown-pos: universal (the 12 tags of Petrov et al.) or brown "
                                "(Brown's own tags, simplified: data/brown.py)", choices=("universal", "brown"))
    brown_categories: list[str] | None = setting(None, "brown-pos: the Brown genres to read, e.g. [news, "
                                                 "editorial] (null: all 15)")
    split: list[float] = setting(factory=lambda: [0.8, 0.1, 0.1], help="brown-pos: train/dev/test shares of the "
                                 "sentences (a seeded shuffle, each part in corpus order)")
    split_seed: int | None = seed_setting("brown-pos: the train/dev/test split")

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        _check_choice(self.brown_tagset, ("universal", "brown"), "data.tagging.brown_tagset")
        self.split = [float(x) for x in self.split]
        _check(len(self.split) == 3 and all(x >= 0 for x in self.split) and abs(sum(self.split) - 1) < 1e-6
               and self.split[0] > 0, f"data.tagging.split must be 3 shares summing to 1 (train > 0), got {self.split}")
        _check(self.separator is None or self.separator != "", "data.tagging.separator must not be empty")


@dataclass
class DataConfig:
    """A labelled task. `path`: a GLUE-layout folder, a CSV/TSV/JSONL file, a folder written by
    `datasets.save_to_disk`, or a `datasets` hub name; None means the embedded default."""

    task: str = setting(DEFAULT_TASK, "a GLUE task (sst2, mrpc, stsb, mnli, ...), rt-sentiment (embedded "
                        "default), classification or regression (your own files); tagging (your CoNLL/JSONL "
                        "files or a datasets set) or brown-pos (NLTK's Brown corpus) for token classification")
    path: str | None = setting(None, "GLUE folder, CSV/TSV/JSONL file, saved dataset or datasets name; for "
                               "tagging a CoNLL/JSONL file or folder; for brown-pos NLTK's brown.zip "
                               "(null: the embedded default; brown-pos: ../shared/data/corpus/nltk/brown.zip)")
    text_a: str | None = setting(None, "column of the first text (CSV/TSV/JSONL, datasets)")
    text_b: str | None = setting(None, "column of the second text of a pair")
    label: str | None = setting(None, "column of the label")
    train_split: str = setting("train", "split to train on")
    eval_split: str = setting("dev", "split to evaluate on")
    max_seq_len: int = setting(128, "tokens per example; longer texts are truncated")
    max_train_examples: int | None = setting(None, "a seeded random subset of the training split")
    max_eval_examples: int | None = setting(None, "a seeded random subset of the evaluation split")
    holdout_fraction: float = setting(0.1, "a single data file has no held-out split: this seeded share of "
                                      "it becomes the eval split and leaves training (0: refuse)")
    holdout_seed: int | None = seed_setting("the held-out share of a single data file (stratified by label)")
    validation_fraction: float = setting(0.1, "a stage that chooses (keep_best, patience, search) chooses on this "
                                         "seeded, stratified share of the training split, never on the eval "
                                         "split, which only scores; that share leaves training (0: choose on "
                                         "the eval split, as before)")
    max_validation_examples: int | None = setting(1000, "at most this many validation examples")
    validation_seed: int | None = seed_setting("the validation slice")
    metric: str | None = setting(None, "the metric that is the score (retention and the trivial baseline "
                                 "compare it): accuracy, f1 (of class 1 with two classes, e.g. the minority "
                                 "class of an imbalanced set), mcc; pearson or spearman; tagging: accuracy "
                                 "(of words) or span_f1 (BIO/BIOES tags); null: the task's first")
    tagging: TaggingConfig = setting(factory=TaggingConfig)

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        _check(0 <= self.validation_fraction < 1,
               f"data.validation_fraction must be in [0, 1), got {self.validation_fraction}")
        _check(self.max_validation_examples is None or self.max_validation_examples >= 1,
               "data.max_validation_examples must be >= 1")
        _check(self.metric is None or self.metric in ("accuracy", "f1", "mcc", "pearson", "spearman", "span_f1"),
               f"data.metric must be accuracy, f1, mcc, pearson, spearman or span_f1, got {self.metric!r}")
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

    path: str | None = setting(None, "unlabelled text file or folder (null: the embedded default corpus)")
    max_seq_len: int = setting(128, "tokens per training sequence")
    max_sequences: int | None = setting(None, "use at most this many sequences")

    def __post_init__(self) -> None:
        _check(8 <= self.max_seq_len <= 4096, f"corpus.max_seq_len must be in [8, 4096], got {self.max_seq_len}")
        _check(self.max_sequences is None or self.max_sequences >= 1, "corpus.max_sequences must be >= 1")


@dataclass
class AugmentConfig:
    """TinyBERT data augmentation (distillation/augment.py)."""

    enabled: bool = setting(False, "TinyBERT data augmentation of the task data")
    p: float = setting(0.4, "probability of replacing each word")
    top_k: int = setting(15, "candidates per word")
    n_aug: int = setting(20, "augmented sentences per example")
    max_examples: int | None = setting(None, "augment only the first N training examples")
    mlm_model: str | None = setting(None, "pre-trained masked LM (folder or hub id, e.g. bert-base-uncased) whose "
                                    "MLM head proposes candidates for single-piece words, as in TinyBERT (null: "
                                    "the teacher's MLM head if it has one, else embedding neighbours only)")
    skip_stop_words: bool = setting(True, "never replace stop words, negations and contrast words "
                                    "(not, no, never, but, ...)")
    seed: int | None = seed_setting("the word choices")
    cache_dir: str | None = setting(None, "where augmented data is cached (null: <output>/augment_cache)")

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        _check(0 <= self.p <= 1, f"augment.p must be in [0, 1], got {self.p}")
        _check(self.top_k >= 1 and self.n_aug >= 1, "augment.top_k and augment.n_aug must be >= 1")


@dataclass
class TeacherCacheConfig:
    """The teacher's outputs on the task data, computed once and reused (distillation/teacher_outputs.py)."""

    enabled: bool = setting(True, "compute the teacher's outputs once (logits, and the layer outputs the losses "
                            "read) and reuse them across epochs, phases, --resume and later runs")
    dir: str | None = setting(None, "where they are kept, one folder per key (null: <BERTCOMPRESS_CACHE, else "
                              "~/.cache/bertcompress>/teacher_outputs)")
    dtype: str = setting("float16", "storage precision of the layer outputs (logits: float32)",
                         choices=("float16", "float32"))
    max_gb: float = setting(16.0, "layer outputs larger than this are not stored (logits only; the intermediate "
                            "phase then runs the teacher)")

    def __post_init__(self) -> None:
        _check_choice(self.dtype, ("float16", "float32"), "teacher_cache.dtype")
        _check(self.max_gb > 0, f"teacher_cache.max_gb must be > 0, got {self.max_gb}")


@dataclass
class FinetuneConfig:
    """Fine-tune a model (usually the teacher) on a labelled task."""

    model: str = setting(DEFAULT_TEACHER, "model folder or hub id")
    data: DataConfig = setting(factory=DataConfig)
    train: TrainConfig = setting(factory=lambda: TrainConfig(epochs=2, lr=5e-5))
    output: str = setting("outputs/teacher", "output folder")
    seed: int = top_seed_setting()

    def __post_init__(self) -> None:
        derive_seeds(self)


@dataclass
class DistillConfig:
    """One distillation stage. general: pre-trained teacher, unlabelled corpus, intermediate
    losses. task: fine-tuned teacher, task data, intermediate phase (`train`) then prediction
    phase (`prediction_train`)."""

    stage: str = setting("task", "general: pre-trained teacher + unlabelled corpus; task: fine-tuned teacher "
                         "+ task data", choices=("general", "task"))
    teacher: str = setting(DEFAULT_TEACHER, "teacher folder or hub id")
    student_path: str | None = setting(None, "start from this student folder (e.g. the general-distillation "
                                       "output) instead of a new one")
    student: StudentConfig = setting(factory=StudentConfig)
    losses: LossConfig = setting(factory=LossConfig)
    train: TrainConfig = setting(factory=lambda: TrainConfig(epochs=3, lr=1e-4))
    prediction_train: TrainConfig = setting(factory=lambda: TrainConfig(epochs=2, lr=5e-5))
    data: DataConfig = setting(factory=DataConfig)
    corpus: CorpusConfig = setting(factory=CorpusConfig)
    augment: AugmentConfig = setting(factory=AugmentConfig)
    teacher_cache: TeacherCacheConfig = setting(factory=TeacherCacheConfig)
    output: str = setting("outputs/student", "output folder")
    # The frozen teacher needs no fp32 master weights: in bf16 its LayerNorms and residual sums
    # skip autocast's fp32 round trips (1.1x a step on an H100 and on a CPU).
    teacher_precision: str = setting("auto", "auto: bf16 wherever training runs in bf16; fp32: under autocast "
                                     "like the student; bf16: always", choices=("auto", "fp32", "bf16"))
    seed: int = top_seed_setting()

    def __post_init__(self) -> None:
        derive_seeds(self)
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

    teacher: str = setting(DEFAULT_TEACHER, "teacher model: folder or hub id")
    # 128 tokens: a fifth of MRPC's pairs are longer than 64; batches are padded to their longest
    # text, so short-text tasks (the demo's sentences are 26 tokens at the median) pay nothing.
    data: DataConfig = setting(factory=DataConfig)
    corpus: CorpusConfig = setting(factory=lambda: CorpusConfig(max_seq_len=64, max_sequences=3000))
    # Half the teacher's layers at its width, started from its layers (2, 4, 6 of 6) then
    # distilled: a random-init 4x312 TinyBERT needs far more general distillation than 15 CPU
    # minutes allow (it stays near chance here).
    student: StudentConfig = setting(factory=lambda: StudentConfig(
        num_layers=3, hidden_size=None, num_heads=None, ffn_size=None, init="teacher_layers"))
    losses: LossConfig = setting(factory=LossConfig)
    augment: AugmentConfig = setting(factory=lambda: AugmentConfig(enabled=True, n_aug=2, max_examples=2000))
    teacher_cache: TeacherCacheConfig = setting(factory=TeacherCacheConfig)
    general_distillation: str = setting("auto", "auto: skipped when student.init names a pre-trained model (already "
                                        "a general student), run otherwise; run; skip", choices=("auto", "run", "skip"))
    # Trained to convergence: the teacher and the student's prediction phase evaluate on the
    # validation slice (carved from train; dev only scores) and stop after a few evaluations without
    # improvement, ending on their best checkpoint. Caps: the planned steps (epochs, at least
    # min_steps) and minutes, a safety net: at 5 and 4 minutes they cut the teacher of a 5k-pair
    # inference task at 1.3 epochs, still improving (benchmarks/any_task.py, qnli-5k); the demo sets
    # its own 15-minute budget (scripts/demo.sh). The prediction phase evaluates every 100 steps: at
    # every 50 its noisy first peak (still in warm-up) stopped the demo's student after 200 steps.
    finetune: TrainConfig = setting(factory=lambda: TrainConfig(
        epochs=4, lr=1e-4, batch_size=32, min_steps=600, keep_best=True, patience=3, eval_every=50, max_minutes=15))
    general: TrainConfig = setting(factory=lambda: TrainConfig(epochs=1, lr=3e-4, batch_size=32))
    task_intermediate: TrainConfig = setting(factory=lambda: TrainConfig(epochs=1, lr=3e-4, batch_size=32,
                                                                         min_steps=300))
    task_prediction: TrainConfig = setting(factory=lambda: TrainConfig(
        epochs=3, lr=1e-4, batch_size=32, min_steps=600, keep_best=True, patience=2, eval_every=100, max_minutes=8))
    latency: bool = setting(True, "measure size and latency (PyTorch and ONNX Runtime) in the report")
    output: str = setting("outputs/run", "output folder")
    seed: int = top_seed_setting()

    def __post_init__(self) -> None:
        derive_seeds(self)
        _check_choice(self.general_distillation, ("auto", "run", "skip"), "general_distillation")

    @property
    def runs_general(self) -> bool:
        if self.general_distillation == "auto":
            return self.student.pretrained is None
        return self.general_distillation == "run"


# `run --quick`: the same job on small slices (about 3 minutes on 2 CPU cores). Overrides, so the
# saved config shows what actually ran.
QUICK_PIPELINE = ("data.max_train_examples=1200", "data.max_eval_examples=400", "corpus.max_sequences=400",
                  "augment.n_aug=1", "augment.max_examples=300", "finetune.epochs=1", "general.epochs=1",
                  "task_intermediate.epochs=1", "task_prediction.epochs=1", "finetune.min_steps=0",
                  "task_intermediate.min_steps=0", "task_prediction.min_steps=0")
