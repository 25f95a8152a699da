"""Settings of `run`, the main job (verb.py)."""

from __future__ import annotations

from bertcompress.core.config import (
    check,
    config,
    derive_seeds,
    setting,
    top_seed_setting,
)
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.evaluation.budget import parse_budgets
from bertcompress.methods.distill.config import AugmentConfig, LossConfig, TeacherCacheConfig
from bertcompress.models.config import DEFAULT_TEACHER, StudentConfig
from bertcompress.train.config import TrainConfig

# the forms a candidate ships in (pipeline/budget/grid.py says what each runs and counts)
BUDGET_FORMATS = ("fp32", "onnx", "onnx-int8", "w8a8", "w4a8")


@config
class BudgetConfig:
    """What the model `run` builds must cost, and how that is measured (docs/methods.md, "Budgets").

        bertcompress run --task sst2 --data DIR --budget 10ms --budget 20MB [--dry-run]
    """

    targets: list[str] = setting(factory=list, help="budgets that must all hold: a latency (10ms), a speed-up over "
                                 "the teacher (8x), a size on disk (20MB) or parameters (10M); empty: the student "
                                 "section's shape, no budget")
    device: str = setting("cpu", "where latency is measured", choices=("cpu", "cuda"))
    threads: int | None = setting(None, "CPU threads for both runtimes (null: torch's current count)")
    batch_size: int = setting(1, "sequences per call when timing")
    seq_len: int = setting(128, "tokens per sequence when timing (every token real)")
    margin: float = setting(0.1, "safety margin on latency: a candidate timed before training must come in under "
                            "(1 - margin) x each latency limit; sizes and parameters are exact")
    pick: str = setting("params", "among the candidates that fit: params (the most parameters outside the "
                        "embeddings, deeper first) or nas (a NAS supernet's ranking: not available in run, use "
                        "`bertcompress nas`)",
                        choices=("params", "nas"))
    formats: list[str] | None = setting(None, "the forms a candidate may ship in: fp32 (PyTorch), onnx (ONNX Runtime "
                                        "fp32), onnx-int8 (KDLSQ w8a8 as int8 ONNX Runtime), w8a8 and w4a8 (KDLSQ "
                                        "packed, PyTorch); null: all on cpu, fp32 on cuda", choices=BUDGET_FORMATS)
    depths: list[int] | None = setting(None, "candidate depths (null: 1, 2, 3, 4, 6, 8, 12 up to the source's, and "
                                       "its own)")
    widths: list[int] | None = setting(None, "candidate hidden sizes, multiples of the source's head size (null: "
                                       "1, 3/4, 1/2 and 1/3 of its width); heads follow at its head size")
    ffn_ratios: list[float] | None = setting(None, "FFN size over hidden size (null: the source's ratio)")
    rounds: int = setting(3, "interleaved timing rounds; every latency is the least of its rounds")
    repeats: int = setting(5, "timed calls per round (their median is the round's value)")
    soft: bool = setting(False, "a budget missed on the final re-measure is a warning only (the CLI exits 0)")
    dry_run: bool = setting(False, "measure and pick, print the table, write nothing and stop before training")

    def __post_init__(self) -> None:
        parse_budgets(self.targets)  # a bad budget is refused when the config loads, before anything runs
        check(self.pick != "nas", "budget.pick nas: run builds plain students of the teacher's family, which a "
              "NAS-BERT supernet does not rank; for a searched model under a budget use `bertcompress nas "
              "--budgets ...`, or budget.pick params here")
        check(not self.dry_run or bool(self.targets), "budget.dry_run needs a budget (--budget 10ms)")
        check(self.threads is None or self.threads >= 1, f"budget.threads must be >= 1, got {self.threads}")
        check(self.batch_size >= 1 and self.seq_len >= 2,
              f"budget.batch_size must be >= 1 and seq_len >= 2, got {self.batch_size} and {self.seq_len}")
        check(0.0 <= self.margin < 1.0, f"budget.margin must be in [0, 1), got {self.margin}")
        check(self.rounds >= 1 and self.repeats >= 1,
              f"budget.rounds and budget.repeats must be >= 1, got {self.rounds} and {self.repeats}")
        for name in ("depths", "widths"):
            values = getattr(self, name)
            check(values is None or (bool(values) and all(v >= 1 for v in values)),
                  f"budget.{name} must list positive sizes, got {values}")
        check(self.ffn_ratios is None or (bool(self.ffn_ratios) and all(r > 0 for r in self.ffn_ratios)),
              f"budget.ffn_ratios must list positive ratios, got {self.ffn_ratios}")
        check(self.formats is None or bool(self.formats), "budget.formats must name at least one format")

    @property
    def run_formats(self) -> list[str]:
        """The formats the candidates are measured in on this device."""
        if self.formats is not None:
            return list(dict.fromkeys(self.formats))
        return list(BUDGET_FORMATS) if self.device == "cpu" else ["fp32"]


@config
class PipelineConfig:
    """The main job: fine-tune the teacher, general distillation, task distillation, evaluate.

        bertcompress run --config configs/demo.yaml        (recipes in configs/)
    """

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
    # KDLSQ when a budget's pick ships quantized (budget.formats onnx-int8, w8a8, w4a8)
    quantize: TrainConfig = setting(factory=lambda: TrainConfig(epochs=2, lr=5e-5, batch_size=32, max_minutes=8))
    budget: BudgetConfig = setting(factory=BudgetConfig)
    latency: bool = setting(True, "measure size and latency (PyTorch and ONNX Runtime) in the report")
    output: str = setting("outputs/run", "output folder")
    seed: int = top_seed_setting()

    def __post_init__(self) -> None:
        derive_seeds(self)

    @property
    def runs_general(self) -> bool:
        if self.general_distillation == "auto":
            return self.student.pretrained is None
        return self.general_distillation == "run"


# `run --quick`: the same job on small slices (about 3 minutes on 2 CPU cores). Overrides, so the
# saved config shows what actually ran.
QUICK_PIPELINE = ("data.max_train_examples=1200", "data.max_eval_examples=400", "corpus.max_sequences=400",
                  "augment.n_aug=1", "augment.max_examples=300", "finetune.epochs=1", "general.epochs=1",
                  "task_intermediate.epochs=1", "task_prediction.epochs=1", "quantize.epochs=1", "finetune.min_steps=0",
                  "task_intermediate.min_steps=0", "task_prediction.min_steps=0")
