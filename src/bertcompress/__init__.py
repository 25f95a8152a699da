"""bertcompress: turn a large BERT-family encoder into small, fast students that keep its accuracy.

The Python verbs mirror the CLI's subcommands:
    finetune(FinetuneConfig)   distill(DistillConfig)   evaluate([...], DataConfig)   run(PipelineConfig)
"""

__version__ = "0.1.0"

from .config import (  # noqa: E402
    AugmentConfig,
    CorpusConfig,
    DataConfig,
    DistillConfig,
    FinetuneConfig,
    LossConfig,
    PipelineConfig,
    StudentConfig,
    TrainConfig,
    load_config,
    save_config,
)
from .errors import UserError  # noqa: E402


def __getattr__(name: str):
    # The verbs import torch and transformers; load them on first use so `import bertcompress`
    # and `bertcompress --help` stay fast.
    if name == "finetune":
        from .finetune import finetune
        return finetune
    if name == "distill":
        from .distill.stages import distill
        return distill
    if name == "evaluate":
        from .evaluate.evaluator import evaluate
        return evaluate
    if name == "run":
        from .pipeline import run
        return run
    if name == "augment_examples":
        from .distill.augment import augment_examples
        return augment_examples
    raise AttributeError(name)


__all__ = ["AugmentConfig", "CorpusConfig", "DataConfig", "DistillConfig", "FinetuneConfig", "LossConfig",
           "PipelineConfig", "StudentConfig", "TrainConfig", "UserError", "load_config", "save_config",
           "finetune", "distill", "evaluate", "run", "augment_examples"]
