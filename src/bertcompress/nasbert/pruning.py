"""Progressive search-space pruning (NAS-BERT): as the supernet trains, drop the candidates of each block
that do worst on held-out data, bin by bin, so that every size and speed keeps some candidates.

Bins: a 2-D grid, `param_bins` quantile bins by parameters, each split into `latency_bins` quantile bins
by latency among its own candidates (parameters and latency go together, so a grid over both marginals
would leave its off-diagonal bins empty). A candidate's bin id is `param_bin * latency_bins + latency_bin`.
Bins follow the values, not the ranks: equal values share a bin, so with many ties (or fewer candidates
than bins) some ids hold no candidate. Empty bins are simply never pruned.

At each pruning point every bin with more than `keep_per_bin` alive candidates loses the worse half of
them by held-out loss (lower is better; NaN counts as worst; equal losses keep the earlier candidate),
but never goes below `keep_per_bin`. Pruning is finished when no bin holds more than `keep_per_bin`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError


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
               scored: np.ndarray | None = None) -> np.ndarray:
    """A new alive mask: each bin loses the worse floor(m / 2) of its m scored candidates (default:
    all alive ones), never going below keep_per_bin alive. Only the scored candidates' losses are read."""
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
        drop = min(len(members) // 2, n_alive - keep_per_bin)
        if drop <= 0:
            continue
        worst_first = members[np.argsort(ranking_loss[members], kind="stable")][::-1]
        kept[worst_first[:drop]] = False
    return kept


def sample_per_bin(alive: np.ndarray, bins: np.ndarray, count: int | None, rng: np.random.Generator) -> np.ndarray:
    """Which alive candidates to score at a pruning point: all of a bin's when it holds at most
    `count` (or `count` is None), else a random `count` of them. Scoring thousands of candidates per
    point is what makes the full method slow on a CPU; a sample per bin bounds it."""
    alive, bins = np.asarray(alive, dtype=bool), np.asarray(bins)
    if count is None:
        return alive.copy()
    scored = np.zeros_like(alive)
    for b in np.unique(bins[alive]):
        members = np.flatnonzero(alive & (bins == b))
        scored[members if len(members) <= count else rng.choice(members, count, replace=False)] = True
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
    """Pruning points, in optimizer steps done: the end of warm-up, then every `every` steps, up to
    `total_steps`. A warm-up of 0 has its first point at `every` (an untrained supernet ranks nothing)."""

    warmup_steps: int
    every: int
    total_steps: int

    def __post_init__(self) -> None:
        if self.warmup_steps < 0 or self.every < 1:
            raise UserError(f"nas prune needs warmup_steps >= 0 and every >= 1, got {self.warmup_steps}, {self.every}")

    def is_point(self, step: int) -> bool:
        return 0 < step <= self.total_steps and step >= self.warmup_steps and \
            (step - self.warmup_steps) % self.every == 0

    def points(self) -> list[int]:
        first = self.warmup_steps if self.warmup_steps > 0 else self.every
        return list(range(first, self.total_steps + 1, self.every))


@dataclass
class PruningState:
    """Alive masks of every block and the history of pruning points, JSON-able through to_dict for resume.
    A history record: {"step": s, "blocks": [{"before": [alive per bin id], "after": [...]}, ...]}."""

    bins: list[np.ndarray]
    alive: list[np.ndarray]
    num_bins: int
    keep_per_bin: int
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, bins: list[np.ndarray], num_bins: int, keep_per_bin: int) -> PruningState:
        """Every candidate of every block alive."""
        bins = [np.asarray(b, dtype=int) for b in bins]
        return cls(bins, [np.ones(len(b), dtype=bool) for b in bins], num_bins, keep_per_bin)

    @property
    def finished(self) -> bool:
        return all(is_finished(a, b, self.keep_per_bin) for a, b in zip(self.alive, self.bins))

    def prune(self, step: int, losses: list[np.ndarray]) -> dict[str, Any]:
        """Prune every block by its held-out losses (one array per block); returns the history record."""
        if len(losses) != len(self.bins):
            raise ValueError(f"need one loss array per block ({len(self.bins)}), got {len(losses)}")
        blocks = []
        for i, block_losses in enumerate(losses):
            before = alive_per_bin(self.alive[i], self.bins[i], self.num_bins)
            self.alive[i] = prune_step(self.alive[i], self.bins[i], block_losses, self.keep_per_bin)
            blocks.append({"before": before, "after": alive_per_bin(self.alive[i], self.bins[i], self.num_bins)})
        record = {"step": int(step), "blocks": blocks}
        self.history.append(record)
        return record

    def to_dict(self) -> dict[str, Any]:
        return {"num_bins": self.num_bins, "keep_per_bin": self.keep_per_bin,
                "bins": [b.tolist() for b in self.bins],
                "alive": [np.flatnonzero(a).tolist() for a in self.alive],  # indices: short once pruned
                "history": self.history}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PruningState:
        bins = [np.asarray(b, dtype=int) for b in data["bins"]]
        alive = []
        for b, indices in zip(bins, data["alive"]):
            mask = np.zeros(len(b), dtype=bool)
            mask[np.asarray(indices, dtype=int)] = True
            alive.append(mask)
        return cls(bins, alive, int(data["num_bins"]), int(data["keep_per_bin"]), list(data["history"]))
