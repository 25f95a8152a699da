"""The `extract` and `prune` verbs and their CLI subcommands.

`extract(ExtractConfig)` / `prune(PruneConfig)` load a model folder, score it on a data sample
when Taylor importance asks for one, and write a `save_pretrained` folder atomically with the
tokenizer, the config and a result record — like every other verb.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from ..config import CorpusConfig, DataConfig, load_config
from ..errors import UserError
from ..models.loading import count_parameters, has_mlm_head, load_model, load_tokenizer, resolve_model_path
from ..models.saving import save_model_folder
from ..train.distributed import pick_device
from .config import ExtractConfig, PruneConfig
from .extract import apply_plan, plan_extraction
from .importance import compute_importance
from .structured import is_pruned, load_pruned, prune_model


def model_kind(name: str) -> str:
    """classifier for a fine-tuned task model, masked_lm when a trained MLM head is saved, else base."""
    from transformers import AutoConfig

    path = resolve_model_path(name)
    try:
        archs = AutoConfig.from_pretrained(path).architectures or []
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read the config of {name}: {str(e).strip().splitlines()[0]}") from None
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "classifier"
    if any(a.endswith("ForMaskedLM") for a in archs) and has_mlm_head(name):
        return "masked_lm"
    return "base"


def load_any(name: str, kind: str):
    """A plain model folder through `load_model`, a pruned one through `load_pruned`."""
    path = resolve_model_path(name)
    return load_pruned(path, kind) if is_pruned(path) else load_model(name, kind)


def sample_batches(model, tokenizer, data: DataConfig, corpus: CorpusConfig, samples: int, batch_size: int,
                   seed: int) -> list[dict]:
    """A classifier is scored on its task's training data (a seeded random sample), any other
    model on the first `samples` full-length sequences of the unlabelled corpus."""
    from ..data import Collator, chunk_corpus, encode_examples, load_corpus, load_examples

    if type(model).__name__.endswith("ForSequenceClassification"):
        task, examples = load_examples(data, data.train_split)
        if model.config.num_labels != task.num_labels:
            raise UserError(f"the model predicts {model.config.num_labels} labels but task {task.name} has "
                            f"{task.num_labels}")
        examples = random.Random(seed).sample(examples, min(samples, len(examples)))
        features = encode_examples(tokenizer, examples, data.max_seq_len)
    else:
        features = chunk_corpus(tokenizer, load_corpus(corpus), corpus.max_seq_len, samples)
    if not features:
        raise UserError("no data to score importance on")
    collate = Collator(tokenizer.pad_token_id or 0)
    return [collate(features[i:i + batch_size]) for i in range(0, len(features), batch_size)]


def extract(cfg: ExtractConfig) -> Path:
    """ETD: write the student `cfg` describes, cut from the teacher's weights, to `cfg.output`."""
    start = time.perf_counter()
    tokenizer = load_tokenizer(cfg.teacher)
    teacher = load_any(cfg.teacher, model_kind(cfg.teacher)).to(pick_device())  # a GPU scores faster
    importance = None
    if cfg.strategy == "impt" or cfg.layers == "importance":
        batches = None
        if cfg.importance == "taylor":
            batches = sample_batches(teacher, tokenizer, cfg.data, cfg.corpus, cfg.samples, cfg.batch_size, cfg.seed)
        importance = compute_importance(teacher, cfg.importance, batches, mask_token_id=tokenizer.mask_token_id,
                                        seed=cfg.seed)
    plan = plan_extraction(teacher, cfg, importance)
    student = apply_plan(teacher, plan)
    summary = plan.summary()
    result = {"teacher": cfg.teacher, "strategy": cfg.strategy,
              "importance": importance.method if importance else None,
              "importance_loss": importance.loss if importance else None,
              "layers": summary["layers"], "heads": summary["heads"], "hidden_size": len(plan.hidden),
              "ffn_size": len(plan.ffn[0]), "teacher_parameters": count_parameters(teacher),
              "student_parameters": count_parameters(student), "seconds": time.perf_counter() - start}
    return save_model_folder(cfg.output, student.cpu(), tokenizer, cfg, result)


def prune(cfg: PruneConfig) -> Path:
    """Prune heads and FFN neurons of `cfg.model` and write the smaller model to `cfg.output`."""
    start = time.perf_counter()
    tokenizer = load_tokenizer(cfg.model)
    model = load_any(cfg.model, model_kind(cfg.model)).to(pick_device())
    before = count_parameters(model)
    batches = None
    if cfg.importance == "taylor":
        batches = sample_batches(model, tokenizer, cfg.data, cfg.corpus, cfg.samples, cfg.batch_size, cfg.seed)
    kept = prune_model(model, cfg, batches=batches, mask_token_id=tokenizer.mask_token_id)
    result = {"model": cfg.model, **kept, "ffn": [len(f) for f in kept["ffn"]],
              "parameters_before": before, "parameters_after": count_parameters(model),
              "plain_transformers_loads": not hasattr(model.config, "bertcompress_pruned"),
              "seconds": time.perf_counter() - start}
    return save_model_folder(cfg.output, model.cpu(), tokenizer, cfg, result)


# ---------------------------------------------------------------- CLI

_SHARED_FLAGS = {"task": "data.task", "data": "data.path", "corpus": "corpus.path", "output": "output",
                 "importance": "importance", "samples": "samples"}
_EXTRACT_FLAGS = {**_SHARED_FLAGS, "teacher": "teacher", "num_layers": "num_layers", "hidden": "hidden_size",
                  "heads": "num_heads", "ffn": "ffn_size", "strategy": "strategy"}
_PRUNE_FLAGS = {**_SHARED_FLAGS, "model": "model", "heads_keep": "heads_keep", "ffn_keep": "ffn_keep",
                "layout": "layout", "steps": "steps"}


def add_parser(subparsers) -> None:
    """Register `extract` and `prune` (cli.py's helpers are imported here, when cli.py is loaded)."""
    from ..cli import EPILOG, _common, _data_flags

    def shared(p: argparse.ArgumentParser) -> None:
        _common(p, resumable=False)
        _data_flags(p)
        p.add_argument("--corpus", metavar="PATH", help="unlabelled text to score a non-classifier on")
        p.add_argument("--importance", choices=["taylor", "magnitude"],
                       help="taylor: |activation × gradient| on a data sample (default); magnitude: weight norms")
        p.add_argument("--samples", type=int, help="sequences to score importance on (default 256)")

    p = subparsers.add_parser(
        "extract", help="Extract Then Distill: a smaller student cut from the teacher's own weights",
        description="Build a student of any smaller depth and width from slices of the teacher's weights "
                    "(ETD-Impt: the most important layers/heads/neurons/dimensions; ETD-Rand: random ones). "
                    "Distill it next with `distill --student DIR`.", epilog=EPILOG)
    shared(p)
    p.add_argument("--teacher", help="teacher folder or hub id")
    p.add_argument("--num-layers", type=int, dest="num_layers", help="student layers")
    p.add_argument("--hidden", type=int, help="student hidden size (default: the teacher's)")
    p.add_argument("--heads", type=int, help="student attention heads (default: the teacher's)")
    p.add_argument("--ffn", type=int, help="student FFN size (default: the teacher's)")
    p.add_argument("--strategy", choices=["impt", "rand"], help="ETD-Impt (default) or ETD-Rand")

    p = subparsers.add_parser(
        "prune", help="structured pruning: remove attention heads and FFN neurons",
        description="Remove the least important heads and FFN neurons for real (smaller and faster). "
                    "FFN-only pruning with the uniform layout writes a plain transformers model.", epilog=EPILOG)
    shared(p)
    p.add_argument("--model", help="model folder or hub id")
    p.add_argument("--heads-keep", type=float, dest="heads_keep", help="fraction of heads kept (default 1.0)")
    p.add_argument("--ffn-keep", type=float, dest="ffn_keep", help="fraction of FFN neurons kept (default 0.5)")
    p.add_argument("--layout", choices=["uniform", "global"],
                   help="same size in every layer (default) or ranked across layers")
    p.add_argument("--steps", type=int, help="prune in this many steps, re-scoring between them (default 1)")


def run(args: argparse.Namespace) -> int:
    from ..cli import _flag_overrides

    if args.command == "extract":
        cfg = load_config(ExtractConfig, args.config, _flag_overrides(args, _EXTRACT_FLAGS))
        print(f"[bertcompress] wrote {extract(cfg)}")
    elif args.command == "prune":
        cfg = load_config(PruneConfig, args.config, _flag_overrides(args, _PRUNE_FLAGS))
        print(f"[bertcompress] wrote {prune(cfg)}")
    else:  # pragma: no cover - cli.py only routes these two here
        raise ValueError(args.command)
    return 0
