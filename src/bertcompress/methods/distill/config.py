"""Settings of TinyBERT distillation (`distill`): its losses, augmentation and teacher cache."""

from __future__ import annotations

from bertcompress.core.config import (
    check,
    config,
    derive_seeds,
    fill_own_seeds,
    seed_setting,
    setting,
    top_seed_setting,
)
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.methods.distill.loss_registry import LOSSES
from bertcompress.models.config import DEFAULT_TEACHER, StudentConfig
from bertcompress.train.config import TrainConfig

DEFAULT_LOSS_WEIGHTS = {"embedding": 1.0, "hidden": 1.0, "attention": 1.0, "prediction": 1.0}


@config
class LossConfig:
    """The distillation losses by name and weight, and their options (methods/distill/losses.py).

        losses:
          weights: {embedding: 1, hidden: 1, attention: 0, prediction: 1}
          head_rule: mean
    """

    weights: dict[str, float] = setting(factory=lambda: dict(DEFAULT_LOSS_WEIGHTS), help=(
        "weight of each loss, by its name in methods/distill/loss_registry.py: embedding, hidden, attention "
        "(the layer losses) and prediction (soft cross-entropy; for tagging over the words); 0 turns one off. "
        "A file or --set changes the weights it names and keeps the others"))
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
        for name, weight in self.weights.items():
            check(name in LOSSES, f"losses.weights: unknown loss {name!r} (known: {', '.join(LOSSES)})")
            check(weight >= 0, f"losses.weights.{name} must be >= 0, got {weight}")
        check(self.temperature > 0, f"losses.temperature must be > 0, got {self.temperature}")
        for name in ("layer_mapping", "attention_mapping"):
            spec = getattr(self, name)
            check(not isinstance(spec, str) or spec in ("uniform", "last"),
                   f"losses.{name} must be 'uniform', 'last' or a list of layers, got {spec!r}")


@config
class AugmentConfig:
    """TinyBERT data augmentation (methods/distill/augment.py)."""

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
        check(0 <= self.p <= 1, f"augment.p must be in [0, 1], got {self.p}")
        check(self.top_k >= 1 and self.n_aug >= 1, "augment.top_k and augment.n_aug must be >= 1")


@config
class TeacherCacheConfig:
    """The teacher's outputs on the task data, computed once and reused (methods/distill/teacher_outputs.py)."""

    enabled: bool = setting(True, "compute the teacher's outputs once (logits, and the layer outputs the losses "
                            "read) and reuse them across epochs, phases, --resume and later runs")
    dir: str | None = setting(None, "where they are kept, one folder per key (null: <BERTCOMPRESS_CACHE, else "
                              "~/.cache/bertcompress>/teacher_outputs)")
    dtype: str = setting("float16", "storage precision of the layer outputs (logits: float32)",
                         choices=("float16", "float32"))
    max_gb: float = setting(16.0, "layer outputs larger than this are not stored (logits only; the intermediate "
                            "phase then runs the teacher)")

    def __post_init__(self) -> None:
        check(self.max_gb > 0, f"teacher_cache.max_gb must be > 0, got {self.max_gb}")


@config
class DistillConfig:
    """One distillation stage. general: pre-trained teacher, unlabelled corpus, intermediate
    losses. task: fine-tuned teacher, task data, intermediate phase (`train`) then prediction
    phase (`prediction_train`).

        bertcompress distill --stage general --teacher all-MiniLM-L6-v2 --corpus wiki.txt -o general
        bertcompress distill --stage task --teacher teacher --student general --task sst2 --data DIR --augment
    """

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

    def teacher_in_bf16(self, device_type: str) -> bool:
        if self.teacher_precision == "auto":
            return self.train.uses_bf16(device_type)
        return self.teacher_precision == "bf16"
