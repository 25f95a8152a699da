"""Budgets a model must meet, and the check of a model's measured costs against them.

A budget is a latency ("10ms"), a speed-up over the teacher measured in the same run ("8x"), a
size on disk ("20MB", "500KB", "1.5GB"; "MiB" and friends are binary) or a parameter count ("10M",
"500K"). Several budgets must all hold. Free of torch: configs parse budgets when they load.

`check(costs, budgets, teacher_ms, margin)` says, per budget, the limit, the value and whether it
is met. The safety margin applies to latency alone (a candidate timed before training must come in
under (1 - margin) x the limit, since a re-measure of the same model can land a few percent
higher); bytes and parameters of a shape do not change with training, so they are met exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from bertcompress.core.errors import UserError

_BUDGET = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(x|X|×|ms|s|[kKMG]i?B|[kK]b|[mM]b|[gG]b|M|K|k)")
_BYTES = {"KB": 1e3, "kB": 1e3, "kb": 1e3, "Kb": 1e3, "MB": 1e6, "mb": 1e6, "Mb": 1e6, "GB": 1e9, "gb": 1e9,
          "Gb": 1e9, "KiB": 2 ** 10, "kiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30}
_PARAMS = {"M": 1e6, "K": 1e3, "k": 1e3}
HOW = ("write a latency ('10ms'), a speed-up over the teacher ('8x'), a size on disk ('20MB', '500KB', "
       "'1.5GB') or a parameter count ('10M', '500K')")
# the cost each kind of budget limits, as named in a candidate's or a model's costs
COST_KEYS = {"latency": "latency_ms", "speedup": "latency_ms", "bytes": "bytes", "params": "parameters"}


@dataclass(frozen=True)
class Budget:
    kind: str  # latency (ms), speedup (x over the teacher), bytes (on disk) or params
    value: float  # the milliseconds, the speed-up, the bytes or the parameters
    text: str  # as written (spaces removed)

    @property
    def cost_key(self) -> str:
        return COST_KEYS[self.kind]

    @property
    def timed(self) -> bool:
        """Whether the budget limits latency (and so needs a measurement, and gets the margin)."""
        return self.kind in ("latency", "speedup")

    def limit(self, teacher_ms: float | None = None) -> float:
        """The most milliseconds, bytes or parameters allowed; a speed-up needs the teacher's latency."""
        if self.kind != "speedup":
            return self.value
        if teacher_ms is None or not teacher_ms > 0:
            raise UserError(f"budget {self.text} needs the teacher's measured latency, got {teacher_ms}")
        return teacher_ms / self.value

    def __str__(self) -> str:
        return self.text


def parse_budget(text: Any) -> Budget:
    written = "".join(str(text).split())
    match = _BUDGET.fullmatch(written)
    if not match or float(match[1]) <= 0:
        raise UserError(f"bad budget {str(text)!r}: {HOW}")
    number, unit = float(match[1]), match[2]
    if unit in ("x", "X", "×"):
        return Budget("speedup", number, written)
    if unit in ("ms", "s"):
        return Budget("latency", number * (1000.0 if unit == "s" else 1.0), written)
    if unit in _PARAMS:
        return Budget("params", round(number * _PARAMS[unit]), written)
    return Budget("bytes", round(number * _BYTES[unit]), written)


def parse_budgets(texts: Iterable[Any]) -> list[Budget]:
    """Each text (a comma-separated list is split), parsed; the same budget twice is refused."""
    items = [part for text in texts for part in str(text).split(",") if part.strip()]
    budgets = [parse_budget(item) for item in items]
    seen = [(b.kind, b.value) for b in budgets]
    if len(set(seen)) != len(seen):
        raise UserError(f"budgets must not repeat, got {', '.join(b.text for b in budgets)}")
    return budgets


def check(costs: dict[str, Any], budgets: Iterable[Budget], teacher_ms: float | None, margin: float = 0.0
          ) -> list[dict[str, Any]]:
    """Per budget: {"budget", "kind", "limit", "value", "met"} for `costs` ({"latency_ms",
    "bytes", "parameters"}); a latency must be under (1 - margin) x its limit. A cost that was not
    measured (None or absent) is not met."""
    out = []
    for b in budgets:
        limit = b.limit(teacher_ms)
        value = costs.get(b.cost_key)
        allowed = limit * (1.0 - margin) if b.timed else limit
        out.append({"budget": b.text, "kind": b.kind, "limit": limit, "value": value,
                    "met": value is not None and value <= allowed})
    return out


def overshoot(results: list[dict[str, Any]]) -> float:
    """How far the worst budget is missed, as value / limit (<= 1: every budget met without margin)."""
    worst = 0.0
    for r in results:
        if r["value"] is None:
            return float("inf")
        worst = max(worst, r["value"] / r["limit"])
    return worst


def show_cost(kind: str, value: float | None) -> str:
    """A cost in the unit of its kind of budget: '8.1 ms', '25.3 MB', '11.2M params'."""
    if value is None:
        return "not measured"
    if kind in ("latency", "speedup"):
        return f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"
    if kind == "bytes":
        return f"{value / 1e6:.1f} MB" if value >= 1e5 else f"{value / 1e3:.1f} KB"
    return f"{value / 1e6:.1f}M params" if value >= 1e5 else f"{value / 1e3:.1f}K params"


def show_count(n: int) -> str:
    """A parameter count: '11.2M', '350.0K'."""
    return show_cost("params", n).removesuffix(" params")


def cost_line(r: dict[str, Any]) -> str:
    """'10ms: 8.1 ms against 10.0 ms' (a result of `check`)."""
    return f"{r['budget']}: {show_cost(r['kind'], r['value'])} against {show_cost(r['kind'], r['limit'])}"


def result_line(r: dict[str, Any]) -> str:
    """'10ms: 8.1 ms against 10.0 ms, met'."""
    return f"{cost_line(r)}, {'met' if r['met'] else 'MISSED'}"
