"""A labelled task's train and eval splits, read once and encoded for one tokenizer: what every
command that trains (or scores) a task model on `data` starts from, whatever the task's kind.

A command that chooses (a best checkpoint, when to stop, settings) chooses on a validation slice
carved from the training split (`data.validation_fraction`, seeded, stratified by label), so the
eval split it reports was never looked at to choose: scores on it are not optimistic."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from bertcompress.core.errors import UserError
from bertcompress.core.log import log
from bertcompress.core.ranks import is_main_process
from bertcompress.data.config import DataConfig
from bertcompress.data.examples import TaskSpec
from bertcompress.data.kinds import kind_of, load_examples, split_description
from bertcompress.data.sampling import stratified_sample


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
    validation_examples: list = field(default_factory=list)  # carved from train; empty: none asked
    validation_split: str | None = None  # for records: "validation (10% of train, ...)"

    @property
    def chosen_on(self) -> str:
        """The split that checkpoints and settings are chosen on: validation when carved."""
        return self.validation_split or self.eval_split

    @cached_property
    def selection_features(self) -> list[dict]:
        """What a stage that chooses scores: the validation slice, else (validation_fraction 0) eval."""
        if not self.validation_examples:
            return self.eval_features
        return kind_of(self.task).encode(self.tokenizer, self.validation_examples, self.task, self.max_seq_len)

    @cached_property
    def train_features(self) -> list[dict]:
        return kind_of(self.task).encode(self.tokenizer, self.train_examples, self.task, self.max_seq_len)

    @cached_property
    def eval_features(self) -> list[dict]:
        return kind_of(self.task).encode(self.tokenizer, self.eval_examples, self.task, self.max_seq_len)

    def selection_evaluator(self, score: Callable[[Any, list[dict]], dict[str, float]], *,
                            track_eval_split: bool = False) -> Callable[[Any], dict[str, float]]:
        """The evaluation a training run chooses by: `score(module, features)` on the selection
        features; `track_eval_split` adds the eval split's score as `reported_score`, for the
        history only (what choosing on it would have reported)."""
        def evaluate(module: Any) -> dict[str, float]:
            scores = score(module, self.selection_features)
            if track_eval_split and self.validation_examples:
                scores["reported_score"] = score(module, self.eval_features)["score"]
            return scores
        return evaluate

    @property
    def collate(self) -> Callable[[list[dict]], dict]:
        """Pads a batch of these features (labels too: IGNORE for a tagging task's padding)."""
        return kind_of(self.task).collator(self.tokenizer.pad_token_id or 0)


def load_task_splits(data: DataConfig, tokenizer, *, allow_tagging: bool = False,
                     validation: bool = False) -> TaskSplits:
    """`data.train_split` and `data.eval_split`; says (log.info) when the eval split is held out
    of a single file, so no one takes its score for an official dev score. `allow_tagging`: the
    caller handles tagging tasks (see `load_examples`). `validation`: the caller chooses
    something, so carve the validation slice out of training (unless validation_fraction is 0)."""
    task, train = load_examples(data, data.train_split, allow_tagging=allow_tagging)
    _, evaluation = load_examples(data, data.eval_split, allow_tagging=allow_tagging)
    described = split_description(data, data.eval_split)
    unit = kind_of(task).unit
    if described != data.eval_split and is_main_process():  # rank 0 speaks for all
        log.info(f"eval split {described}: {len(evaluation)} {unit}, none of them among "
                 f"the {len(train)} training {unit}")
    splits = TaskSplits(task, train, evaluation, described, tokenizer, data.max_seq_len)
    if validation and data.validation_fraction > 0:
        splits.train_examples, splits.validation_examples, splits.validation_split = carve_validation(train, data)
    return splits


def carve_validation(train: list, data: DataConfig) -> tuple[list, list, str]:
    """(train less the slice, the slice, its description): a seeded share of the training
    examples, stratified by label, at most `data.max_validation_examples`."""
    n = len(train)
    k = min(round(n * data.validation_fraction), data.max_validation_examples or n, n - 1)
    if k < 1:
        raise UserError(f"{n} training examples are too few to carve a validation slice from; set "
                        "data.validation_fraction: 0 to choose on the eval split instead")
    labels = [getattr(e, "label", None) for e in train]
    chosen = set(stratified_sample(labels, k, data.validation_seed))
    rest = [e for i, e in enumerate(train) if i not in chosen]
    described = f"validation ({k} of the {n} {data.train_split} examples, stratified, seed {data.validation_seed})"
    return rest, [train[i] for i in sorted(chosen)], described
