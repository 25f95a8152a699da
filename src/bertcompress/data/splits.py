"""A labelled task's train and eval splits, read once and encoded for one tokenizer: what every
command that trains (or scores) a classifier on `data` starts from."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..config import DataConfig
from ..train.distributed import is_main_process
from .encoding import encode_examples
from .examples import Example, TaskSpec
from .loaders import load_examples, split_description


@dataclass
class TaskSplits:
    """Features are encoded on first use, so a caller may swap the training examples first
    (`dataclasses.replace(splits, train_examples=augmented)`) and one that scores only never
    encodes the training split."""

    task: TaskSpec
    train_examples: list[Example]
    eval_examples: list[Example]
    eval_split: str  # what eval scores are computed on, for records: "dev", "dev (held out: ...)"
    tokenizer: Any = field(repr=False)
    max_seq_len: int = 128

    @cached_property
    def train_features(self) -> list[dict]:
        return encode_examples(self.tokenizer, self.train_examples, self.max_seq_len)

    @cached_property
    def eval_features(self) -> list[dict]:
        return encode_examples(self.tokenizer, self.eval_examples, self.max_seq_len)


def load_task_splits(data: DataConfig, tokenizer) -> TaskSplits:
    """`data.train_split` and `data.eval_split`; says on stderr when the eval split is held out
    of a single file, so no one takes its score for an official dev score."""
    task, train = load_examples(data, data.train_split)
    _, evaluation = load_examples(data, data.eval_split)
    described = split_description(data, data.eval_split)
    if described != data.eval_split and is_main_process():  # rank 0 speaks for all
        print(f"[bertcompress] eval split {described}: {len(evaluation)} examples, none of them among the "
              f"{len(train)} training examples", file=sys.stderr)
    return TaskSplits(task, train, evaluation, described, tokenizer, data.max_seq_len)

