"""The `extract` and `prune` verbs.

`extract(ExtractConfig)` / `prune(PruneConfig)` load a model folder, score it on a data sample
when Taylor importance asks for one, and write a `save_pretrained` folder atomically with the
tokenizer, the config and a result record — like every other verb.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from bertcompress.core.errors import UserError
from bertcompress.core.io import writes_output
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.methods.prune.config import ExtractConfig, PruneConfig
from bertcompress.methods.prune.extract import apply_plan, plan_extraction
from bertcompress.methods.prune.importance import compute_importance
from bertcompress.methods.prune.structured import prune_model
from bertcompress.models.loading import (
    count_parameters,
    has_mlm_head,
    load_model,
    load_tokenizer,
    model_config,
)
from bertcompress.models.saving import save_model_folder
from bertcompress.train.distributed import pick_device


def model_kind(name: str) -> str:
    """classifier for a fine-tuned task model, masked_lm when a trained MLM head is saved, else base."""
    try:
        archs = model_config(name).architectures or []
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read the config of {name}: {str(e).strip().splitlines()[0]}") from None
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "classifier"
    if any(a.endswith("ForMaskedLM") for a in archs) and has_mlm_head(name):
        return "masked_lm"
    return "base"


def sample_batches(model, tokenizer, data: DataConfig, corpus: CorpusConfig, samples: int, batch_size: int,
                   seed: int) -> list[dict]:
    """A classifier is scored on its task's training data (a seeded random sample; of a single
    data file, the rows not held out for evaluation), any other model on the first `samples`
    full-length sequences of the unlabelled corpus."""
    from bertcompress.data.corpus import chunk_corpus, load_corpus
    from bertcompress.data.encoding import Collator, encode_examples
    from bertcompress.data.kinds import load_examples

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


@writes_output
def extract(cfg: ExtractConfig) -> Path:
    """ETD: write the student `cfg` describes, cut from the teacher's weights, to `cfg.output`."""
    start = time.perf_counter()
    tokenizer = load_tokenizer(cfg.teacher)
    teacher = load_model(cfg.teacher, model_kind(cfg.teacher)).to(pick_device())  # a GPU scores faster
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


@writes_output
def prune(cfg: PruneConfig) -> Path:
    """Prune heads and FFN neurons of `cfg.model` and write the smaller model to `cfg.output`."""
    start = time.perf_counter()
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model, model_kind(cfg.model)).to(pick_device())
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
