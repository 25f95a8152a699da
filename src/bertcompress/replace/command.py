"""The `bertcompress theseus` subcommand: a thin shell over `theseus(TheseusConfig)`."""

from __future__ import annotations

import argparse

from ..cli import EPILOG, _common, _data_flags, _flag_overrides
from ..config import load_config
from .config import TheseusConfig


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "theseus", help="BERT-of-Theseus: compress a fine-tuned teacher by progressive module replacing",
        description="Split the fine-tuned teacher's N layers into M groups; while training, each group is "
                    "replaced at random (probability p, constant or rising on a linear curriculum) by one "
                    "successor layer; then the M-layer successor is fine-tuned alone and saved as a plain "
                    "model of the teacher's family.", epilog=EPILOG)
    _common(p)
    _data_flags(p)
    p.add_argument("--teacher", help="fine-tuned teacher folder (a sequence classifier for the task)")
    p.add_argument("--layers", type=int, metavar="M", help="successor layers (must divide the teacher's)")
    p.add_argument("--curriculum", choices=["constant", "linear"], help="replacing-rate schedule")
    p.add_argument("--replace-prob", type=float, metavar="P",
                   help="constant replacing rate (implies --curriculum constant unless that flag says otherwise)")
    return p


def run(args: argparse.Namespace) -> int:
    from .theseus import theseus

    # a rate given on the command line is meant to be used: the default curriculum would ignore it
    implied = ["curriculum=constant"] if args.replace_prob is not None else []
    cfg = load_config(TheseusConfig, args.config, implied + _flag_overrides(args, {
        "task": "data.task", "data": "data.path", "teacher": "teacher", "layers": "successor_layers",
        "curriculum": "curriculum", "replace_prob": "replace_prob", "output": "output"}))
    print(f"[bertcompress] wrote {theseus(cfg, resume=args.resume)}")
    return 0
