"""The record types every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Example:
    """One labelled (or unlabelled) example. `label` is a class index for classification tasks,
    a float for regression tasks, None when the split has no labels."""

    text_a: str
    text_b: str | None = None
    label: int | float | None = None

    def sentences(self) -> list[list[str]]:
        """Each text's words, split on whitespace: one list, or two for a pair."""
        return [self.text_a.split()] + ([] if self.text_b is None else [self.text_b.split()])

    def words(self) -> list[str]:
        """The words augmentation may replace: text_a's, then text_b's for a pair."""
        return [w for s in self.sentences() for w in s]

    def with_words(self, words: list[str]) -> Example:
        """This example with its texts made of `words`, split where text_a's words end (augmentation
        swaps a word for a word, so the count is unchanged); the label is kept."""
        n = len(self.text_a.split())
        if self.text_b is None:
            return replace(self, text_a=" ".join(words))
        if len(words) != n + len(self.text_b.split()):
            raise ValueError(f"a pair of {n} + {len(self.text_b.split())} words cannot take {len(words)} words")
        return replace(self, text_a=" ".join(words[:n]), text_b=" ".join(words[n:]))


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: its labels (None for regression; the tags of a tagging task), whether it
    takes sentence pairs, its metrics (the first is the one reported as the task's score), and its
    kind: "sentence" (one label per text or pair) or "tagging" (one tag per word); everything
    that differs between the two is in data/kinds.py."""

    name: str
    labels: tuple[str, ...] | None
    is_pair: bool
    metrics: tuple[str, ...]
    kind: str = "sentence"

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)
