"""Seeded samples of a data set that keep every class in its share (stratified), for the
validation slice carved from a training split and the eval share held out of a single file."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Sequence


def stratified_sample(labels: Sequence[Any], k: int, seed: int) -> list[int]:
    """Indices of k of the examples, in order: each class gets its share of k (largest
    remainders round), drawn at random with `seed`. Labels that are not class indices (floats of
    a regression task, None for a tagged sentence) form one stratum: a plain random sample."""
    strata: dict[Any, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        strata[y if isinstance(y, int) and not isinstance(y, bool) else None].append(i)
    n = len(labels)
    quota = {c: len(ix) * k / n for c, ix in strata.items()}
    take = {c: int(q) for c, q in quota.items()}
    order = sorted(strata, key=lambda c: (take[c] - quota[c], str(c)))  # largest remainder first
    for c in order[:k - sum(take.values())]:
        take[c] += 1
    rng = random.Random(seed)
    return sorted(i for c in sorted(strata, key=str) for i in rng.sample(strata[c], take[c]))
