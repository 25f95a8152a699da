"""A labelled task's train and eval splits, read once and encoded for one tokenizer: what every
command that trains (or scores) a task model on `data` starts from, whatever the task's kind."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from ..config import DataConfig
from ..train.distributed import is_main_process
from .examples import TaskSpec
from .kinds import kind_of, load_examples, split_description


@dataclass
class TaskSplits:
    """Features are encoded on first use, so a caller may swap the training examples first
    (`dataclasses.replace(splits, train_examples=augmented)`) and one that scores only never
    encodes the training split. Examples are `Example`s, or `TaggedSentence`s for a tagging task."""

    task: TaskSpec
    train_examples: list
    eval_examples: list
    eval_split: str  # what eval scores are computed on, for records: "dev", "dev (held out: ...)"
    tokenizer: Any = field(repr=False)
    max_seq_len: int = 128

    @cached_property
    def train_features(self) -> list[dict]:
        return kind_of(self.task).encode(self.tokenizer, self.train_examples, self.task, self.max_seq_len)

    @cached_property
    def eval_features(self) -> list[dict]:
        return kind_of(self.task).encode(self.tokenizer, self.eval_examples, self.task, self.max_seq_len)

    @property
    def collate(self) -> Callable[[list[dict]], dict]:
        """Pads a batch of these features (labels too: IGNORE for a tagging task's padding)."""
        return kind_of(self.task).collator(self.tokenizer.pad_token_id or 0)


def load_task_splits(data: DataConfig, tokenizer, *, allow_tagging: bool = False) -> TaskSplits:
    """`data.train_split` and `data.eval_split`; says on stderr when the eval split is held out
    of a single file, so no one takes its score for an official dev score. `allow_tagging`: the
    caller handles tagging tasks (see `load_examples`)."""
    task, train = load_examples(data, data.train_split, allow_tagging=allow_tagging)
    _, evaluation = load_examples(data, data.eval_split, allow_tagging=allow_tagging)
    described = split_description(data, data.eval_split)
    if described != data.eval_split and is_main_process():  # rank 0 speaks for all
        print(f"[bertcompress] eval split {described}: {len(evaluation)} {kind_of(task).unit}, none of them among "
              f"the {len(train)} training {kind_of(task).unit}", file=sys.stderr)
    return TaskSplits(task, train, evaluation, described, tokenizer, data.max_seq_len)
