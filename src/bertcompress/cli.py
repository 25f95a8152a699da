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

    p = sub.add_parser("evaluate", help="score models on a task: metrics, size, CPU latency", epilog=EPILOG)
    p.add_argument("models", nargs="+", metavar="MODEL", help="model folders")
    p.add_argument("--config", metavar="FILE", help="YAML file with a DataConfig (task, path, ...)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    _data_flags(p)
    p.add_argument("--split", help="split to score (default: dev)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    p.add_argument("--json", metavar="FILE", help="also write the records to this JSON file")
    return parser


def _flag_overrides(args: argparse.Namespace, mapping: dict[str, str]) -> list[str]:
    """Turn convenience flags into config overrides (flags win over --config, --set wins over flags)."""
    out = []
    for flag, key in mapping.items():
        value = getattr(args, flag, None)
        if value not in (None, False):
            out.append(f"{key}={json.dumps(value) if isinstance(value, str) else value}")
    return out + list(args.overrides)


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
        from .finetune import finetune

        cfg = load_config(FinetuneConfig, args.config, _flag_overrides(
            args, {**data_flags, "model": "model", "output": "output"}))
        print(f"[bertcompress] wrote {finetune(cfg, resume=args.resume)}")
    elif args.command == "distill":
        from .distill.stages import distill

        cfg = load_config(DistillConfig, args.config, _flag_overrides(
            args, {**data_flags, "stage": "stage", "teacher": "teacher", "student": "student_path",
                   "corpus": "corpus.path", "augment": "augment.enabled", "output": "output"}))
        print(f"[bertcompress] wrote {distill(cfg, resume=args.resume)}")
    elif args.command == "evaluate":
        from .evaluate.evaluator import evaluate, records_markdown
        from .io import atomic_write_json

        data = load_config(DataConfig, args.config, _flag_overrides(args, {"task": "task", "data": "path"}))
        records = evaluate(args.models, data, split=args.split, latency=not args.no_latency)
        print(records_markdown(records))
        if args.json:
            atomic_write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
