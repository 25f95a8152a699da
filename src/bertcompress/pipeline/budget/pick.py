"""The pick among the candidates that meet every budget, or the refusal when none does.

Expected most accurate = the most parameters (the seeds' results: at a given cost, more capacity
distils better, and depth more than width), counted outside the embeddings: the embedding table is
a lookup that grows with the width alone (30,522 x 288 is 8.8M of a one-layer 288-wide model's
10M), so counting it would favour one wide layer over several narrow ones. Candidates within `NEAR`
of the most count as about as large; among those the higher precision wins (float, then 8-bit,
then 4-bit weights), then the deeper, then the larger, then the faster.
"""

from __future__ import annotations

import math
from typing import Any

from bertcompress.core.errors import UserError
from bertcompress.evaluation.budget import Budget, check, cost_line, overshoot, show_cost, show_count
from bertcompress.pipeline.budget.grid import FORMATS, Candidate

NEAR = 0.1


def assess(candidates: list[Candidate], budgets: list[Budget], teacher_ms: float, margin: float) -> None:
    """Set each measured candidate's results and status (fits or misses) against the budgets."""
    for c in candidates:
        if c.status == "skipped":
            continue
        if c.latency_ms is None and c.bytes is None and c.status != "misses":
            c.status = "not measured"
            continue
        c.results = check(c.costs, budgets, teacher_ms, margin)
        c.status = "fits" if all(r["met"] for r in c.results) else "misses"


def pick(candidates: list[Candidate], budgets: list[Budget], teacher_ms: float, margin: float
         ) -> tuple[Candidate, str]:
    """The candidate to build and why, in one sentence; a one-line UserError naming the closest
    candidates and what they cost when none meets every budget."""
    assess(candidates, budgets, teacher_ms, margin)
    fitting = [c for c in candidates if c.status == "fits"]
    if not fitting:
        raise UserError(refusal(candidates, budgets, teacher_ms, margin))
    most = max(c.non_embedding for c in fitting)
    near = [c for c in fitting if c.non_embedding >= (1.0 - NEAR) * most]
    chosen = min(near, key=lambda c: (FORMATS[c.format].precision, -c.shape.layers, -c.non_embedding,
                                      c.latency_ms if c.latency_ms is not None else math.inf, c.name))
    why = (f"{chosen.name}: of the {len(fitting)} candidates that meet every budget"
           + (f" (latency with the {margin:.0%} margin)" if any(b.timed for b in budgets) else "")
           + f", the most parameters outside the embeddings ({show_count(chosen.non_embedding)} of "
           f"{show_count(chosen.parameters)}")
    if len(near) > 1:
        why += (f"; of the {len(near)} within {NEAR:.0%} of the most, the highest precision, then the deepest, "
                "then the largest, then the fastest")
    why += "): " + "; ".join(cost_line(r) for r in chosen.results)
    return chosen, why


def refusal(candidates: list[Candidate], budgets: list[Budget], teacher_ms: float, margin: float,
            shown: int = 3) -> str:
    """Why nothing can be built: the budgets, the closest candidates and their costs, what to change."""
    measured = [c for c in candidates if c.results]
    closest = sorted(measured, key=lambda c: (_unmeasured(c.results), _overshoot(c.results), -c.non_embedding))
    names = "; ".join(f"{c.name} ({', '.join(show_cost(r['kind'], r['value']) for r in c.results)})"
                      for c in closest[:shown]) or "none could be measured"
    limits = ", ".join(f"{b.text} = {show_cost(b.kind, b.limit(teacher_ms))}" for b in budgets)
    margin_text = f" with the {margin:.0%} latency margin" if any(b.timed for b in budgets) and margin else ""
    return (f"no candidate meets every budget ({limits}; the teacher takes {teacher_ms:.1f} ms){margin_text}; "
            f"closest: {names}. Loosen a budget, lower budget.margin, or add smaller shapes or formats "
            "(budget.depths, budget.widths, budget.formats)")


def _unmeasured(results: list[dict[str, Any]]) -> int:
    return sum(r["value"] is None for r in results)


def _overshoot(results: list[dict[str, Any]]) -> float:
    return overshoot([r for r in results if r["value"] is not None])
