"""The `bertcompress` command. Each subcommand is a thin shell over the Python verb of the same
name; every setting lives in the typed configs (--config FILE, then --set key=value overrides)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .config import DataConfig, DistillConfig, FinetuneConfig, PipelineConfig, load_config
from .errors import UserError

EPILOG = "Settings: --config FILE (YAML) and --set key.path=value (repeatable) override the defaults; " \
         "every output folder holds the bertcompress_config.yaml it ran with."


def _common(p: argparse.ArgumentParser, resumable: bool = True) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config file (keys as in the saved bertcompress_config.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set train.lr=1e-4 (repeatable)")
    p.add_argument("--output", "-o", metavar="DIR", help="output folder")
    if resumable:
        p.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from its last checkpoint (finished stages are reused)")


def _data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", help="task name: a GLUE task (sst2, mrpc, stsb, mnli, ...), rt-sentiment "
                                  "(embedded default), classification or regression (your own files)")
    p.add_argument("--data", metavar="PATH", help="GLUE folder, CSV/TSV/JSONL file, saved dataset or datasets name")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertcompress", description="Compress BERT-family encoders into small, fast students.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"bertcompress {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="the main job: fine-tune teacher, general + task distillation, evaluate, report",
                       description="Fine-tune the teacher on the task, run general then task-specific TinyBERT "
                                   "distillation, evaluate teacher and student side by side, write a report. "
                                   "With no arguments: the offline default teacher (all-MiniLM-L6-v2) on "
                                   "Rotten Tomatoes sentiment.", epilog=EPILOG)
    _common(p)
    _data_flags(p)
    p.add_argument("--teacher", help="teacher model: folder or hub id (default: all-MiniLM-L6-v2)")
    p.add_argument("--corpus", metavar="PATH", help="unlabelled text file or folder for general distillation")
    p.add_argument("--quick", action="store_true", help="small slices of every stage (about 3 minutes on 2 CPU cores)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement")

    p = sub.add_parser("finetune", help="fine-tune a model (usually the teacher) on a task", epilog=EPILOG)
    _common(p)
    _data_flags(p)
    p.add_argument("--model", help="model folder or hub id")

    p = sub.add_parser("distill", help="one TinyBERT distillation stage (general or task)",
                       description="general: pre-trained teacher + unlabelled corpus, intermediate losses. "
                                   "task: fine-tuned teacher + task data, intermediate phase then prediction "
                                   "phase.", epilog=EPILOG)
    _common(p)
    _data_flags(p)
    p.add_argument("--stage", choices=["general", "task"])
    p.add_argument("--teacher", help="teacher folder or hub id")
    p.add_argument("--student", metavar="DIR", help="start from this student folder instead of a new one")
    p.add_argument("--corpus", metavar="PATH", help="unlabelled text file or folder (general stage)")
    p.add_argument("--augment", action="store_true", help="TinyBERT data augmentation (task stage)")

    p = sub.add_parser("evaluate", help="score models on a task: metrics, size, latency (PyTorch, ONNX Runtime)",
                       description="Score each model on the task's split and measure size and latency the same "
                                   "way for all of them in this run: PyTorch eager and ONNX Runtime on the CPU, "
                                   "CUDA when present. Ratios are against the baseline (default: the first "
                                   "model, usually the teacher).", epilog=EPILOG)
    p.add_argument("models", nargs="+", metavar="MODEL", help="model folders (list the teacher first)")
    p.add_argument("--config", metavar="FILE", help="YAML file with a DataConfig (task, path, ...)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    _data_flags(p)
    p.add_argument("--split", help="split to score (default: dev)")
    p.add_argument("--baseline", metavar="MODEL", help="model the ratios are against (default: the first MODEL)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export, its prediction check and timing")
    p.add_argument("--onnx-dir", metavar="DIR", help="keep the ONNX exports in this folder")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for both runtimes (default: all torch uses)")
    p.add_argument("--batch-sizes", default="1,32", metavar="B,B", help="batch sizes to time (default: 1,32)")
    p.add_argument("--seq-len", type=int, default=128, metavar="N", help="tokens per timed sequence (default: 128)")
    p.add_argument("--repeats", type=int, default=10, metavar="N", help="timed runs per measurement (default: 10)")
    p.add_argument("--loyalty-to", metavar="MODEL", help="teacher to measure label/probability loyalty against")
    p.add_argument("--attack", type=int, nargs="?", const=200, metavar="N",
                   help="word-substitution attack (TextFooler style) on N examples of the split (default 200): "
                        "accuracy under attack, success rate, words changed, queries")
    p.add_argument("--advglue", metavar="PATH", help="also score on AdvGLUE data")
    p.add_argument("--json", metavar="FILE", help="also write the records to this JSON file")
    p.add_argument("--report", metavar="DIR", help="also write the HTML and Markdown report to this folder")

    p = sub.add_parser("report", help="HTML and Markdown report (table, trade-off plots) from evaluate records",
                       description="Read records written by `evaluate --json` (or a `run` report.json) and write "
                                   "DIR/report.html (self-contained, plots embedded) and DIR/report.md.")
    p.add_argument("records", nargs="+", metavar="RECORDS.json", help="JSON files of evaluation records")
    p.add_argument("--output", "-o", metavar="DIR", required=True, help="output folder")
    # methods in their own subpackages register their subcommands (add_parser) and run them (run)
    for module in dict.fromkeys(_METHOD_COMMANDS.values()):
        _command_module(module).add_parser(sub)
    return parser


# subcommand -> the subpackage whose `command` module handles it
_METHOD_COMMANDS = {"quantize": "quant", "extract": "pruning", "prune": "pruning", "theseus": "replace",
                    "search-mapping": "search"}


def _command_module(package: str):
    import importlib

    return importlib.import_module(f".{package}.command", __package__)


def _flag_overrides(args: argparse.Namespace, mapping: dict[str, str]) -> list[str]:
    """Turn convenience flags into config overrides (flags win over --config, --set wins over flags)."""
    out = []
    for flag, key in mapping.items():
        value = getattr(args, flag, None)
        if value is not None and value is not False:  # 0 is a value (and gets its own error)
            out.append(f"{key}={json.dumps(value) if isinstance(value, str) else value}")
    return out + list(args.overrides)


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise UserError(f"--batch-sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise UserError(f"--batch-sizes must be >= 1, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except UserError as e:
        print(f"bertcompress: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bertcompress: interrupted; run the same command with --resume to continue", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    if args.command in _METHOD_COMMANDS:
        return _command_module(_METHOD_COMMANDS[args.command]).run(args)
    data_flags = {"task": "data.task", "data": "data.path"}
    if args.command == "run":
        from .pipeline import quick, report_markdown, run

        cfg = load_config(PipelineConfig, args.config, _flag_overrides(
            args, {**data_flags, "teacher": "teacher", "corpus": "corpus.path", "output": "output"}))
        if args.quick:
            cfg = quick(cfg)
        report = run(cfg, resume=args.resume, latency=not args.no_latency)
        if not report:
            return 0  # a non-zero rank under torchrun
        print(report_markdown(report))
        print(f"[bertcompress] wrote {cfg.output}/report.md, report.json and the student in {cfg.output}/student")
    elif args.command == "finetune":
        from .finetuning import finetune

        cfg = load_config(FinetuneConfig, args.config, _flag_overrides(
            args, {**data_flags, "model": "model", "output": "output"}))
        print(f"[bertcompress] wrote {finetune(cfg, resume=args.resume)}")
    elif args.command == "distill":
        from .distillation.stages import distill

        cfg = load_config(DistillConfig, args.config, _flag_overrides(
            args, {**data_flags, "stage": "stage", "teacher": "teacher", "student": "student_path",
                   "corpus": "corpus.path", "augment": "augment.enabled", "output": "output"}))
        print(f"[bertcompress] wrote {distill(cfg, resume=args.resume)}")
    elif args.command == "evaluate":
        from .evaluation.attack import AttackConfig
        from .evaluation.evaluator import evaluate, records_markdown
        from .io import atomic_write_json

        data = load_config(DataConfig, args.config, _flag_overrides(args, {"task": "task", "data": "path"}))
        records = evaluate(args.models, data, split=args.split, latency=not args.no_latency, onnx=not args.no_onnx,
                           onnx_dir=args.onnx_dir, threads=args.threads, batch_sizes=_batch_sizes(args.batch_sizes),
                           seq_len=args.seq_len, repeats=args.repeats, baseline=args.baseline,
                           loyalty_to=args.loyalty_to, advglue=args.advglue,
                           attack=AttackConfig(max_examples=args.attack) if args.attack else False)
        print(records_markdown(records))
        if args.json:
            atomic_write_json(args.json, records)
        if args.report:
            from .evaluation.report import report

            print(f"[bertcompress] wrote {report(records, args.report)['html']}")
    elif args.command == "report":
        from .evaluation.report import load_records, report

        paths = report(load_records(args.records), args.output)
        print(f"[bertcompress] wrote {paths['html']} and {paths['markdown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
