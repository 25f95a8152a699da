"""`finetune`: train a model (usually the teacher) on a labelled task with the shared loop."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .config import FinetuneConfig
from .data import Collator, encode_examples, load_examples
from .data.examples import TaskSpec
from .evaluation.predict import score
from .models.intermediates import model_inputs
from .models.loading import load_model, load_tokenizer
from .models.saving import checkpoint_dir, publish_model_folder
from .train.loop import seed_run, train_loop


class SupervisedObjective(nn.Module):
    """Cross-entropy (classification) or MSE (regression) on the labels."""

    def __init__(self, model: nn.Module, regression: bool):
        super().__init__()
        self.model = model
        self.regression = regression

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.model(**model_inputs(batch, self.model)).logits.float()
        if self.regression:
            return F.mse_loss(logits.squeeze(-1), batch["labels"].float()), {}
        return F.cross_entropy(logits, batch["labels"]), {}


def label_task_head(model: nn.Module, task: TaskSpec) -> None:
    """Record the task's label names in the model config, so pipelines outside us read them."""
    if task.labels is not None:
        model.config.id2label = dict(enumerate(task.labels))
        model.config.label2id = {name: i for i, name in enumerate(task.labels)}
        model.config.problem_type = "single_label_classification"
    else:
        model.config.problem_type = "regression"


def finetune(cfg: FinetuneConfig, *, resume: bool = False) -> Path:
    """Fine-tune `cfg.model` on `cfg.data`; write a `save_pretrained` folder to `cfg.output`."""
    seed_run(cfg.train.seed)
    task, train_examples = load_examples(cfg.data, cfg.data.train_split)
    _, dev_examples = load_examples(cfg.data, cfg.data.eval_split)
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model, "classifier", num_labels=task.num_labels)
    label_task_head(model, task)
    collate = Collator(tokenizer.pad_token_id or 0)
    train_features = encode_examples(tokenizer, train_examples, cfg.data.max_seq_len)
    dev_features = encode_examples(tokenizer, dev_examples, cfg.data.max_seq_len)
    result = train_loop(SupervisedObjective(model, task.is_regression), train_features, collate, cfg.train,
                        work_dir=checkpoint_dir(cfg.output, "finetune"), resume=resume,
                        evaluate=lambda m: score(m.model, task, dev_features, collate), desc="finetune")
    return publish_model_folder(cfg.output, model, tokenizer, cfg,
                                {"task": task.name, "dev": result.final_eval, "history": result.history,
                                 "train_seconds": result.seconds})
