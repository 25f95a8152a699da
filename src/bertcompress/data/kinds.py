"""The one seam between sentence tasks and token-classification (tagging) tasks.

A task's `kind` ("sentence" or "tagging", TaskSpec.kind) names a `TaskKind`, which holds every
difference between the two: how examples are read and encoded, how batches are collated, which
model class holds the task head and which distillation loss term distils its predictions; how its
outputs are scored is evaluation/task_scores.py's, by the same kind. The verbs (finetune, distill,
evaluate, quantize, run) ask `kind_of(task)` and never test the kind themselves.

Scoring works on "scored outputs" (evaluation/predict.py): one logit row per example for a sentence
task, one per labelled word (its first word piece) for a tagging task. Label and probability
loyalty are then the same functions for both, taken per example or per word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bertcompress.core.errors import UserError
from bertcompress.data.config import DataConfig
from bertcompress.data.encoding import Collator, encode_examples
from bertcompress.data.examples import TaskSpec
from bertcompress.data.sentence_loaders import file_split_description, load_sentence_examples
from bertcompress.data.tagging import TaggedCollator, TaggedSentence, encode_tagged
from bertcompress.data.tagging_loaders import describe_tagged_split, load_tagged_examples
from bertcompress.data.tasks import get_task


def _encode_sentences(tokenizer: Any, examples: list, task: TaskSpec, max_seq_len: int) -> list[dict[str, Any]]:
    return encode_examples(tokenizer, examples, max_seq_len)


def _encode_tagged(tokenizer: Any, sentences: list[TaggedSentence], task: TaskSpec,
                   max_seq_len: int) -> list[dict[str, Any]]:
    """encode_tagged with the task's tag ids, each feature also knowing its sentence's word count
    (`words`), so scores can say how many words truncation left unscored."""
    features = encode_tagged(tokenizer, sentences, {tag: i for i, tag in enumerate(task.labels or ())}, max_seq_len)
    for feature, sentence in zip(features, sentences):
        feature["words"] = len(sentence.tokens)
    return features


@dataclass(frozen=True)
class TaskKind:
    name: str
    unit: str  # what one example is, in reports
    model_kind: str  # models.loading kind of its task models
    architecture: str  # the ending of its transformers class names
    prediction_loss: str  # the distillation loss term (methods/distill/loss_registry.py) of its prediction layer
    load: Callable[[DataConfig, TaskSpec, str], tuple[TaskSpec, list]]
    encode: Callable[[Any, list, TaskSpec, int], list[dict[str, Any]]]  # (tokenizer, examples, task, max_len)
    collator: Callable[[int], Callable[[list[dict]], dict]]  # pad id -> collate
    robustness: bool  # the word-substitution attack and AdvGLUE apply


KINDS: dict[str, TaskKind] = {k.name: k for k in (
    TaskKind("sentence", "examples", "classifier", "ForSequenceClassification", "prediction",
             load_sentence_examples, _encode_sentences, Collator, robustness=True),
    TaskKind("tagging", "sentences", "token_classifier", "ForTokenClassification", "token_prediction",
             load_tagged_examples, _encode_tagged, TaggedCollator, robustness=False),
)}


def kind_of(task: TaskSpec) -> TaskKind:
    return KINDS[task.kind]


def load_examples(cfg: DataConfig, split: str, *, allow_tagging: bool = False) -> tuple[TaskSpec, list]:
    """The examples of `split` ("train", "dev", "test", ...) and their task (labels or tags
    inferred where the task infers them). A command that handles tagging tasks passes
    `allow_tagging`; for the others a tagging task is a one-line error."""
    task = get_task(cfg.task)
    if task.kind != "sentence" and not allow_tagging:
        raise UserError(f"task {task.name} is a token-classification (tagging) task; this command takes sentence "
                        "tasks only (finetune, distill, evaluate, quantize and run take tagging tasks)")
    return kind_of(task).load(cfg, task, split)


def split_description(cfg: DataConfig, split: str) -> str:
    """What `load_examples(cfg, split)` reads, for records: the split's name, and how it was cut
    when it is held out of a single file or cut from Brown."""
    return describe_tagged_split(cfg, split) or file_split_description(cfg, split)
