"""bertcompress: turn a large BERT-family encoder into small, fast students that keep its accuracy.

The Python verbs mirror the CLI's subcommands (the table in commands.py):
    run(PipelineConfig)        finetune(FinetuneConfig)     distill(DistillConfig)
    evaluate_models(EvaluateConfig)  write_report(ReportConfig)
    quantize(QuantizeTrainConfig)   extract(ExtractConfig)  prune(PruneConfig)   theseus(TheseusConfig)
    search_mapping(MappingSearchConfig)   (CLI: search-mapping)   nas(NasConfig)   cvt(CvtConfig)
and evaluate([...], DataConfig, ...) / report(records, folder) are the functions under the
`evaluate` and `report` commands, for records in memory.
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

# Verbs and the configs of the method subpackages: imported on first use, so `import bertcompress`
# and `bertcompress --help` stay fast (the verbs import torch and transformers). No subpackage
# shares a verb's name, so the import system never rebinds one of these names to a module.
_LAZY = {
    "finetune": ("finetuning", "finetune"),
    "distill": ("distillation.stages", "distill"),
    "augment_examples": ("distillation.augment", "augment_examples"),
    "evaluate": ("evaluation.evaluator", "evaluate"),
    "report": ("evaluation.report", "report"),
    "evaluate_models": ("evaluation.verbs", "evaluate_models"),
    "write_report": ("evaluation.verbs", "write_report"),
    "EvaluateConfig": ("evaluation.config", "EvaluateConfig"),
    "ReportConfig": ("evaluation.config", "ReportConfig"),
    "AttackConfig": ("evaluation.attack", "AttackConfig"),
    "run": ("pipeline", "run"),
    "quantize": ("quant.train", "quantize"),
    "quantize_": ("quant.modules", "quantize_"),
    "QuantConfig": ("quant.config", "QuantConfig"),
    "QuantizeTrainConfig": ("quant.config", "QuantizeTrainConfig"),
    "extract": ("pruning.verbs", "extract"),
    "prune": ("pruning.verbs", "prune"),
    "ExtractConfig": ("pruning.config", "ExtractConfig"),
    "PruneConfig": ("pruning.config", "PruneConfig"),
    "theseus": ("replace.theseus", "theseus"),
    "TheseusConfig": ("replace.config", "TheseusConfig"),
    "search_mapping": ("search.layer_mapping", "search_mapping"),
    "MappingSearchConfig": ("search.config", "MappingSearchConfig"),
    "GeneticConfig": ("search.config", "GeneticConfig"),
    "nas": ("nasbert.verbs", "nas"),
    "NasConfig": ("nasbert.config", "NasConfig"),
    "cvt": ("cvt.verbs", "cvt"),
    "CvtConfig": ("cvt.config", "CvtConfig"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'bertcompress' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    return getattr(importlib.import_module(f".{module}", __name__), attr)


__all__ = ["AugmentConfig", "CorpusConfig", "DataConfig", "DistillConfig", "FinetuneConfig", "LossConfig",
           "PipelineConfig", "StudentConfig", "TrainConfig", "UserError", "load_config", "save_config", *_LAZY]
