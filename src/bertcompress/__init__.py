"""bertcompress: turn a large BERT-family encoder into small, fast students that keep its accuracy.

The Python verbs mirror the CLI's subcommands (the table in commands.py):
    run(PipelineConfig)        finetune(FinetuneConfig)     distill(DistillConfig)
    evaluate_models(EvaluateConfig)  write_report(ReportConfig)
    quantize(QuantizeTrainConfig)   extract(ExtractConfig)  prune(PruneConfig)   theseus(TheseusConfig)
    search_mapping(MappingSearchConfig)   (CLI: search-mapping)   nas(NasConfig)   cvt(CvtConfig)
and evaluate([...], DataConfig, ...) / report(records, folder) are the functions under the
`evaluate` and `report` commands, for records in memory.

    from bertcompress import DistillConfig, distill, load_config
    cfg = load_config(DistillConfig, "configs/demo.yaml", overrides=["train.lr=1e-4"])
    distill(cfg)

Everything here is imported on first use (core/lazy.py), so `import bertcompress` stays fast.
"""

__version__ = "0.1.0"

from bertcompress import commands as _commands  # noqa: E402, F401 - names each output kind by its command
from bertcompress.core.lazy import lazy_getattr  # noqa: E402

_API = {
    # the config machinery and the one error type
    "UserError": "core.errors:UserError",
    "load_config": "core.config:load_config",
    "save_config": "core.config:save_config",
    # configs of the shared layers
    "DataConfig": "data.config:DataConfig",
    "CorpusConfig": "data.config:CorpusConfig",
    "StudentConfig": "models.config:StudentConfig",
    "QuantConfig": "models.quantized.config:QuantConfig",
    "TrainConfig": "train.config:TrainConfig",
    "EvaluateConfig": "evaluation.config:EvaluateConfig",
    "ReportConfig": "evaluation.config:ReportConfig",
    "AttackConfig": "evaluation.config:AttackConfig",
    # the verbs and configs of the methods, and of run
    "finetune": "methods.finetune.verb:finetune",
    "FinetuneConfig": "methods.finetune.config:FinetuneConfig",
    "distill": "methods.distill.verb:distill",
    "DistillConfig": "methods.distill.config:DistillConfig",
    "LossConfig": "methods.distill.config:LossConfig",
    "AugmentConfig": "methods.distill.config:AugmentConfig",
    "augment_examples": "methods.distill.augment:augment_examples",
    "quantize": "methods.quantize.verb:quantize",
    "quantize_": "models.quantized.modules:quantize_",
    "QuantizeTrainConfig": "methods.quantize.config:QuantizeTrainConfig",
    "extract": "methods.prune.verb:extract",
    "prune": "methods.prune.verb:prune",
    "ExtractConfig": "methods.prune.config:ExtractConfig",
    "PruneConfig": "methods.prune.config:PruneConfig",
    "theseus": "methods.theseus.verb:theseus",
    "TheseusConfig": "methods.theseus.config:TheseusConfig",
    "search_mapping": "methods.mapping_search.verb:search_mapping",
    "MappingSearchConfig": "methods.mapping_search.config:MappingSearchConfig",
    "GeneticConfig": "methods.mapping_search.config:GeneticConfig",
    "nas": "methods.nas.verb:nas",
    "NasConfig": "methods.nas.config:NasConfig",
    "cvt": "methods.cvt.verb:cvt",
    "CvtConfig": "methods.cvt.config:CvtConfig",
    "run": "pipeline.verb:run",
    "PipelineConfig": "pipeline.config:PipelineConfig",
    "BudgetConfig": "pipeline.config:BudgetConfig",
    "parse_budget": "evaluation.budget:parse_budget",
    "evaluate": "evaluation.evaluator:evaluate",
    "report": "evaluation.report:report",
    "evaluate_models": "evaluation.verb:evaluate_models",
    "write_report": "evaluation.verb:write_report",
}

__getattr__ = lazy_getattr(__name__, _API)
__all__ = sorted(_API)
