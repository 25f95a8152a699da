"""The `bertcompress search-mapping` subcommand: a thin shell over `search_mapping(MappingSearchConfig)`."""

from __future__ import annotations

import argparse

from ..cli import EPILOG, _common, _flag_overrides
from ..config import load_config
from .config import MappingSearchConfig


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "search-mapping", help="genetic search of the layer mapping for general distillation (proxy runs)",
        description="Search which teacher layer each student layer learns from. Each candidate mapping is "
                    "scored by a cheap proxy: general distillation on a corpus sample, then fine-tuning on "
                    "the proxy tasks (config key `tasks`), averaging their dev scores. Generation 0 holds "
                    "the uniform and last-layer mappings, so the result is compared with them in the same "
                    "run. Writes search.json; --set final_general.epochs=1 also distils the best mapping on "
                    "the whole corpus.", epilog=EPILOG)
    _common(p)
    p.add_argument("--teacher", help="pre-trained teacher folder or hub id")
    p.add_argument("--corpus", metavar="PATH", help="unlabelled text file or folder (the proxy uses a sample)")
    p.add_argument("--population", type=int, metavar="N", help="mappings per generation (default 8)")
    p.add_argument("--generations", type=int, metavar="N", help="generations (default 4)")
    return p


def run(args: argparse.Namespace) -> int:
    from .layer_mapping import search_mapping

    cfg = load_config(MappingSearchConfig, args.config, _flag_overrides(args, {
        "teacher": "teacher", "corpus": "corpus.path", "population": "search.population",
        "generations": "search.generations", "output": "output"}))
    print(f"[bertcompress] wrote {search_mapping(cfg, resume=args.resume)}")
    return 0
