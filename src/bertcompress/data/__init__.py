"""Labelled tasks, unlabelled corpora, and their encoding for the models."""

from .builtin import default_corpus_documents, rt_sentiment_examples
from .corpus import chunk_corpus, load_corpus
from .encoding import Collator, collate, encode_examples
from .examples import Example, TaskSpec
from .kinds import TaskKind, kind_of, load_examples, split_description
from .splits import TaskSplits, load_task_splits
from .tasks import GLUE_TASKS, TASKS, get_task

__all__ = [
    "Collator",
    "Example",
    "GLUE_TASKS",
    "TASKS",
    "TaskKind",
    "TaskSpec",
    "TaskSplits",
    "chunk_corpus",
    "collate",
    "default_corpus_documents",
    "encode_examples",
    "get_task",
    "kind_of",
    "load_corpus",
    "load_examples",
    "load_task_splits",
    "rt_sentiment_examples",
    "split_description",
]
