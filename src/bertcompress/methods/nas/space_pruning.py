"""Progressive search-space pruning (NAS-BERT): as the supernet trains, drop the candidates of each block
that do worst on held-out data, bin by bin, so that every size and speed keeps some candidates.

Bins: a 2-D grid, `param_bins` quantile bins by parameters, each split into `latency_bins` quantile bins
by latency among its own candidates (parameters and latency go together, so a grid over both marginals
would leave its off-diagonal bins empty). A candidate's bin id is `param_bin * latency_bins + latency_bin`.
Bins follow the values, not the ranks: equal values share a bin, so with many ties (or fewer candidates
than bins) some ids hold no candidate. Empty bins are simply never pruned.

At each pruning point every bin with more than `keep_per_bin` alive candidates drops some of them by
held-out loss (lower is better; NaN counts as worst; equal losses keep the earlier candidate), never
going below `keep_per_bin`. How many: either the worse half of the candidates scored at that point (the
paper's pace; with a sample per bin it may not finish), or a paced share (`paced_drops`): each point
drops the same fraction of what is left, so that the last point of the schedule leaves `keep_per_bin`.
Pruning is finished when no bin holds more than `keep_per_bin`.

Bins keep each block's best, so the fastest bin keeps its strongest, slowest members: every block's
cheapest survivor can be far from its cheapest candidate, and small budgets, which need every block
cheap at once, become unreachable. `cheapest_per_op` names candidates that pruning never drops (the
fastest holding each op, the fastest and the smallest overall): whatever the space could reach before
pruning it can still reach, with every kind of op.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bertcompress.core.errors import UserError


def quantile_bins(values: np.ndarray, count: int) -> np.ndarray:
    """Bin 0..count-1 of each value by the quantiles of `values`; equal values share a bin."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.zeros(0, dtype=int)
    edges = np.quantile(values, np.arange(1, count) / count)
    return np.searchsorted(edges, values, side="right")


def bin_candidates(params: np.ndarray, latency: np.ndarray, param_bins: int, latency_bins: int) -> np.ndarray:
    """The bin id of each candidate (see the module docstring), in [0, param_bins * latency_bins)."""
    params, latency = np.asarray(params, dtype=float), np.asarray(latency, dtype=float)
    if params.shape != latency.shape or params.ndim != 1:
        raise ValueError(f"params and latency must be 1-D and of one length, got {params.shape}, {latency.shape}")
    if param_bins < 1 or latency_bins < 1:
        raise UserError(f"nas prune bins must be >= 1, got {param_bins} x {latency_bins}")
    by_params = quantile_bins(params, param_bins)
    bins = np.zeros(len(params), dtype=int)
    for p in range(param_bins):
        members = by_params == p
        bins[members] = p * latency_bins + quantile_bins(latency[members], latency_bins)
    return bins


def prune_step(alive: np.ndarray, bins: np.ndarray, losses: np.ndarray, keep_per_bin: int,
               scored: np.ndarray | None = None, drops: Mapping[int, int] | None = None) -> np.ndarray:
    """A new alive mask: each bin loses the worse `drops[bin]` of its scored candidates (default: the
    worse floor(m / 2) of its m scored ones; scored defaults to all alive ones), never going below
    keep_per_bin alive and never dropping an unscored candidate. Only the scored candidates' losses are read."""
    alive, bins, losses = np.asarray(alive, dtype=bool), np.asarray(bins), np.asarray(losses, dtype=float)
    scored = alive if scored is None else np.asarray(scored, dtype=bool) & alive
    if not alive.shape == bins.shape == losses.shape:
        raise ValueError(f"alive, bins and losses differ in shape: {alive.shape}, {bins.shape}, {losses.shape}")
    if keep_per_bin < 1:
        raise UserError(f"nas prune.keep_per_bin must be >= 1, got {keep_per_bin}")
    ranking_loss = np.where(np.isnan(losses), np.inf, losses)
    kept = alive.copy()
    for b in np.unique(bins[alive]):
        members = np.flatnonzero(scored & (bins == b))
        n_alive = int((alive & (bins == b)).sum())
        wanted = len(members) // 2 if drops is None else drops.get(int(b), 0)
        drop = min(wanted, len(members), n_alive - keep_per_bin)
        if drop <= 0:
            continue
        worst_first = members[np.argsort(ranking_loss[members], kind="stable")][::-1]
        kept[worst_first[:drop]] = False
    return kept


def cheapest_per_op(ops: Sequence[Sequence[str]], latency: np.ndarray, params: np.ndarray) -> np.ndarray:
    """A mask of the candidates pruning keeps whatever their loss: for each op, the fastest candidate
    holding it, and the fastest and the smallest candidate overall (ties: fewer parameters, then the first)."""
    latency, params = np.asarray(latency, dtype=float), np.asarray(params, dtype=float)
    if not len(ops) == len(latency) == len(params):
        raise ValueError(f"{len(ops)} candidates, {len(latency)} latencies, {len(params)} parameter counts")
    kept = np.zeros(len(ops), dtype=bool)
    if not len(ops):
        return kept
    by_speed = np.lexsort((np.arange(len(ops)), params, latency))
    kept[by_speed[0]] = True
    kept[np.lexsort((np.arange(len(ops)), latency, params))[0]] = True
    for op in {op for candidate in ops for op in candidate}:
        kept[next(i for i in by_speed if op in ops[i])] = True
    return kept


def paced_drops(alive: np.ndarray, bins: np.ndarray, keep_per_bin: int, points_left: int) -> dict[int, int]:
    """How many candidates each bin drops at this point so that dropping the same fraction of what is
    left at each of the `points_left` points (this one included) leaves keep_per_bin after the last:
    n alive become ceil(keep * (n / keep) ** ((points_left - 1) / points_left))."""
    if points_left < 1:
        raise ValueError(f"points_left must be >= 1, got {points_left}")
    counts = np.bincount(np.asarray(bins)[np.asarray(alive, dtype=bool)])
    drops = {}
    for b, n in enumerate(counts.tolist()):
        if n > keep_per_bin:
            after = math.ceil(keep_per_bin * (n / keep_per_bin) ** ((points_left - 1) / points_left) - 1e-9)
            drops[b] = n - max(keep_per_bin, after)
    return drops


def sample_per_bin(alive: np.ndarray, bins: np.ndarray, count: int | None | Mapping[int, int],
                   rng: np.random.Generator) -> np.ndarray:
    """Which alive candidates to score at a pruning point: all of a bin's when it holds at most
    `count` (or `count` is None), else a random `count` of them; `count` may differ per bin (a mapping
    from bin id; a bin it does not name is not scored). Scoring thousands of candidates per point is
    what makes the full method slow on a CPU; a sample per bin bounds it."""
    alive, bins = np.asarray(alive, dtype=bool), np.asarray(bins)
    if count is None:
        return alive.copy()
    scored = np.zeros_like(alive)
    for b in np.unique(bins[alive]):
        n = count.get(int(b), 0) if isinstance(count, Mapping) else count
        members = np.flatnonzero(alive & (bins == b))
        scored[members if len(members) <= n else rng.choice(members, n, replace=False)] = True
    return scored


def alive_per_bin(alive: np.ndarray, bins: np.ndarray, num_bins: int) -> list[int]:
    """Alive candidates in each bin id 0..num_bins-1."""
    return np.bincount(np.asarray(bins)[np.asarray(alive, dtype=bool)], minlength=num_bins).tolist()


def is_finished(alive: np.ndarray, bins: np.ndarray, keep_per_bin: int) -> bool:
    """Whether no bin holds more than keep_per_bin alive candidates (a further step would change nothing)."""
    counts = np.bincount(np.asarray(bins)[np.asarray(alive, dtype=bool)])
    return bool((counts <= keep_per_bin).all())


@dataclass
class PruningSchedule:
    """Pruning points, in optimizer steps done: the multiples of `every` from `warmup_steps` on (the
    training loop's evaluation hook runs every `every` steps), up to `total_steps`, or with `finish_at`
    up to that fraction of it (at least one point), so the last steps train only the survivors. A
    warm-up of 0 has its first point at `every` (an untrained supernet ranks nothing)."""

    warmup_steps: int
    every: int
    total_steps: int
    finish_at: float | None = None

    def __post_init__(self) -> None:
        if self.warmup_steps < 0 or self.every < 1:
            raise UserError(f"nas prune needs warmup_steps >= 0 and every >= 1, got {self.warmup_steps}, {self.every}")

    def points(self) -> list[int]:
        first = max(self.every, math.ceil(self.warmup_steps / self.every) * self.every)
        every_point = list(range(first, self.total_steps + 1, self.every))
        if self.finish_at is None:
            return every_point
        last = self.finish_at * self.total_steps
        return [p for p in every_point if p <= last] or every_point[:1]

    def is_point(self, step: int) -> bool:
        return step in self.points()

    def points_left(self, step: int) -> int:
        """Points at or after `step`."""
        return sum(p >= step for p in self.points())
