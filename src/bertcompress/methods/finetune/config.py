"""Settings of `finetune`."""

from __future__ import annotations

from bertcompress.core.config import (
    config,
    derive_seeds,
    setting,
    top_seed_setting,
)
from bertcompress.data.config import DataConfig
from bertcompress.models.config import DEFAULT_TEACHER
from bertcompress.train.config import TrainConfig


@config
class FinetuneConfig:
    """Fine-tune a model (usually the teacher) on a labelled task.

        bertcompress finetune --model all-MiniLM-L6-v2 --task sst2 --data ../shared/data/glue/SST-2 -o teacher
    """

    model: str = setting(DEFAULT_TEACHER, "model folder or hub id")
    data: DataConfig = setting(factory=DataConfig)
    train: TrainConfig = setting(factory=lambda: TrainConfig(epochs=2, lr=5e-5))
    output: str = setting("outputs/teacher", "output folder")
    seed: int = top_seed_setting()

    def __post_init__(self) -> None:
        derive_seeds(self)
