"""Performance approximation and selection under a budget (NAS-BERT).

An architecture is an embedding size and one alive candidate per block. Its approximate score is the sum
of its parts' held-out losses from the supernet (lower is better), so no architecture is trained to be
ranked. `select` returns the best `top_k` whose predicted latency or parameter count fits a budget and that hold at
least `min_attention` attention slots.

Exact without enumerating every combination. The cost (`cost_of`, e.g. the latency lookup table) is taken
to be additive given the widths: cost = C(embedding size, block widths) + sum over blocks of a term of the
block's own candidate. Projections between blocks of different widths are what couples neighbours, and
they sit in C. So the architectures are grouped by their width sequence; within a group
  1. each block's term comes from one `cost_of` call per alive candidate, made once (the difference to a
     reference candidate of the same width, every other block held fixed), and C from one call per group;
  2. a dynamic programme adds one block at a time and keeps, of the partial architectures, only the first
     `top_k` Pareto layers of (cost, loss): one dominated by `top_k` others cannot reach the top `top_k`,
     whatever blocks follow (partials are compared only with others holding as many attention slots, counted
     up to `min_attention`, since they have the same futures). Partials that cannot fit the budget even with
     the cheapest remaining blocks, cannot beat the `top_k`-th best score found so far with the best remaining
     ones, or cannot reach `min_attention` with the remaining blocks, are dropped.
Groups are visited best lower bound first. Every returned architecture's cost is checked against
`cost_of` itself; a mismatch means the cost is not additive as assumed and raises. Results come best
first, equal scores by the architecture's string; which of several equal scores makes the top_k is arbitrary.
`cost_of` calls: alive candidates of all blocks + one per group (embedding sizes x product of the widths
per block). Per group: O(blocks x top_k x m log m), m = the partial front times a block's candidates.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from bertcompress.core.errors import UserError
from bertcompress.evaluation.budget import Budget
from bertcompress.evaluation.budget import parse_budget as parse_any_budget
from bertcompress.models.nasbert.arch import BlockArch, NasArch

CostOf = Callable[[NasArch], tuple[float, int]]  # (latency in ms, parameters)
BlockSpace = tuple[Sequence[BlockArch], np.ndarray, np.ndarray]  # candidates, held-out losses, alive mask

NAS_BUDGETS = ("speedup", "latency", "params")


def parse_budget(text: str) -> Budget:
    """A speed-up over the teacher ("4x"), a latency ("12ms") or a parameter count ("10M", "500K"):
    evaluation/budget.py's budgets less a size on disk, which depends on a saved format NAS does not
    choose."""
    try:
        budget = parse_any_budget(text)
    except UserError:
        budget = None
    if budget is None or budget.kind not in NAS_BUDGETS:
        raise UserError(f"bad NAS budget {text!r}: write a speed-up over the teacher ('4x'), a latency "
                        "('12ms') or a parameter count ('10M', '500K')")
    return budget


def select(per_block: Sequence[BlockSpace], embeddings: tuple[Sequence[int], np.ndarray], cost_of: CostOf,
           budget: Budget, top_k: int, teacher_latency_ms: float | None = None,
           min_attention: int = 0) -> list[tuple[NasArch, float]]:
    """The best `top_k` architectures (score = summed held-out losses, lower first) whose cost fits `budget`
    and that hold at least `min_attention` attention (`mha`) slots; fewer, or none, when fewer fit.
    Candidates that are dead or have a non-finite loss are never chosen."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if min_attention < 0:
        raise ValueError(f"min_attention must be >= 0, got {min_attention}")
    limit = budget.limit(teacher_latency_ms)
    slack = 1e-9 * max(1.0, abs(limit))  # sums of floats in a different order differ in the last bits
    index = 1 if budget.kind == "params" else 0

    def cost(arch: NasArch) -> float:
        return float(cost_of(arch)[index])

    blocks = [_alive_by_width(i, *space) for i, space in enumerate(per_block)]
    sizes, emb_losses = list(embeddings[0]), np.asarray(embeddings[1], dtype=float)
    if len(sizes) != len(emb_losses):
        raise ValueError(f"{len(sizes)} embedding sizes but {len(emb_losses)} losses")
    emb = [(e, float(loss)) for e, loss in zip(sizes, emb_losses) if np.isfinite(loss)]
    if not emb or not blocks or any(not b for b in blocks):
        return []

    # Each block's own cost term, relative to the reference (first) candidate of its width.
    base = [next(iter(b.values())).candidates[0] for b in blocks]
    for i, block in enumerate(blocks):
        for width in block.values():
            parts = base[:i] + [width.candidates[0]] + base[i + 1:]
            reference = cost(_arch(emb[0][0], parts))
            width.terms = np.array([cost(_arch(emb[0][0], parts[:i] + [c] + parts[i + 1:])) - reference
                                    for c in width.candidates])

    groups = []
    for (e, e_loss), widths in itertools.product(emb, itertools.product(*[b.values() for b in blocks])):
        groups.append((e_loss + sum(w.losses.min() for w in widths), e, e_loss, widths))
    groups.sort(key=lambda g: g[0])

    best: list[tuple[float, int, NasArch, float]] = []  # the top_k so far: a heap of (-score, arrival, ...)
    arrival = itertools.count()
    for bound, e, e_loss, widths in groups:
        threshold = -best[0][0] if len(best) == top_k else np.inf
        if bound > threshold:
            break  # groups are sorted by this bound: no later one can do better
        group_cost = cost(_arch(e, [w.candidates[0] for w in widths]))
        for score, predicted, choice in _best_in_group(widths, group_cost, e_loss, limit + slack, threshold, top_k,
                                                       min_attention):
            parts = [w.candidates[c] for w, c in zip(widths, choice)]
            arch = _arch(e, [BlockArch(p.hidden, list(p.ops)) for p in parts])  # copies: callers may edit them
            item = (-score, next(arrival), arch, predicted)
            if len(best) < top_k:
                heapq.heappush(best, item)
            elif score < -best[0][0]:
                heapq.heapreplace(best, item)
    chosen = sorted(((-neg, arch, predicted) for neg, _, arch, predicted in best), key=lambda t: (t[0], str(t[1])))
    for score, arch, predicted in chosen:
        exact = cost(arch)
        if abs(exact - predicted) > slack + 1e-9 * abs(exact):
            raise ValueError(f"cost_of is not additive over blocks given the widths: {arch} predicted "
                             f"{predicted}, measured {exact}")
    return [(arch, score) for score, arch, _ in chosen]


@dataclass
class _Width:
    """The alive candidates of one block at one width, with their losses and (later) own cost terms."""

    candidates: list[BlockArch]
    losses: np.ndarray
    terms: np.ndarray | None = None
    attention: np.ndarray = field(init=False)  # attention slots of each candidate

    def __post_init__(self) -> None:
        self.attention = np.array([c.ops.count("mha") for c in self.candidates])


def _alive_by_width(i: int, candidates: Sequence[BlockArch], losses: np.ndarray,
                    alive: np.ndarray) -> dict[int, _Width]:
    """Block i's alive candidates with a finite loss, by width."""
    losses, alive = np.asarray(losses, dtype=float), np.asarray(alive, dtype=bool)
    if not len(candidates) == len(losses) == len(alive):
        raise ValueError(f"block {i + 1}: {len(candidates)} candidates, {len(losses)} losses, {len(alive)} alive flags")
    by_width: dict[int, tuple[list[BlockArch], list[float]]] = {}
    for c, loss, ok in zip(candidates, losses, alive):
        if ok and np.isfinite(loss):
            members, member_losses = by_width.setdefault(c.hidden, ([], []))
            members.append(c)
            member_losses.append(float(loss))
    return {h: _Width(members, np.array(member_losses)) for h, (members, member_losses) in by_width.items()}


def _best_in_group(widths: Sequence[_Width], group_cost: float, e_loss: float, limit: float, threshold: float,
                   top_k: int, min_attention: int = 0) -> list[tuple[float, float, tuple[int, ...]]]:
    """(score, predicted cost, candidate index per block) of the group's best top_k that fit `limit` and
    hold at least `min_attention` attention slots."""
    rest_cost = np.cumsum([w.terms.min() for w in widths][::-1])[::-1].tolist() + [0.0]
    rest_loss = np.cumsum([w.losses.min() for w in widths][::-1])[::-1].tolist() + [0.0]
    rest_attention = np.cumsum([w.attention.max() for w in widths][::-1])[::-1].tolist() + [0]
    costs, losses = np.array([group_cost]), np.array([e_loss])
    attention = np.zeros(1, dtype=int)  # attention slots so far, counted up to min_attention
    choices = np.zeros((1, 0), dtype=int)
    for b, w in enumerate(widths):
        n = len(w.candidates)
        costs = (costs[:, None] + w.terms[None, :]).ravel()
        losses = (losses[:, None] + w.losses[None, :]).ravel()
        attention = np.minimum(attention[:, None] + w.attention[None, :], min_attention).ravel()
        choices = np.hstack([np.repeat(choices, n, axis=0), np.tile(np.arange(n), len(choices))[:, None]])
        keep = ((costs + rest_cost[b + 1] <= limit) & (losses + rest_loss[b + 1] <= threshold)
                & (attention + rest_attention[b + 1] >= min_attention))
        keep = np.flatnonzero(keep)
        # partials with as many attention slots have the same futures: only they can dominate each other
        classes = [keep[attention[keep] == a] for a in np.unique(attention[keep])]
        keep = np.concatenate([c[_pareto_layers(costs[c], losses[c], top_k)] for c in classes] or [keep])
        costs, losses, attention, choices = costs[keep], losses[keep], attention[keep], choices[keep]
    order = np.argsort(losses, kind="stable")[:top_k]
    return [(float(losses[i]), float(costs[i]), tuple(int(c) for c in choices[i])) for i in order]


def _pareto_layers(costs: np.ndarray, losses: np.ndarray, layers: int) -> np.ndarray:
    """Indices of the points on the first `layers` Pareto fronts of (cost, loss), both minimised. A point
    left out is dominated (weakly) by at least `layers` others."""
    remaining = np.lexsort((losses, costs))  # by cost, then loss
    kept = []
    for _ in range(layers):
        if not len(remaining):
            break
        ls = losses[remaining]
        best_before = np.minimum.accumulate(np.concatenate([[np.inf], ls[:-1]]))
        front = ls < best_before
        kept.append(remaining[front])
        remaining = remaining[~front]
    return np.concatenate(kept) if kept else remaining


def _arch(embedding_size: int, blocks: list[BlockArch]) -> NasArch:
    """One spelling per architecture: no embedding size when it is the first block's width."""
    return NasArch(blocks=list(blocks), embedding_size=None if embedding_size == blocks[0].hidden else embedding_size)
