"""Settings of `run`, the main job (verb.py)."""

from __future__ import annotations

from bertcompress.core.config import (
    config,
    derive_seeds,
    setting,
    top_seed_setting,
)
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.methods.distill.config import AugmentConfig, LossConfig, TeacherCacheConfig
from bertcompress.models.config import DEFAULT_TEACHER, StudentConfig
from bertcompress.train.config import TrainConfig


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
                  "task_intermediate.epochs=1", "task_prediction.epochs=1", "finetune.min_steps=0",
                  "task_intermediate.min_steps=0", "task_prediction.min_steps=0")
