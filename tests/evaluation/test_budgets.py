"""Budgets: parsing (and the one-line refusal of bad ones), and a model's costs checked against them."""

import pytest

from bertcompress.core.errors import UserError
from bertcompress.evaluation.budget import check, overshoot, parse_budget, parse_budgets


@pytest.mark.parametrize("text, kind, value", [
    ("10ms", "latency", 10.0), (" 12.5 ms ", "latency", 12.5), ("0.5s", "latency", 500.0),
    ("8x", "speedup", 8.0), ("8×", "speedup", 8.0), ("2.5X", "speedup", 2.5),
    ("20MB", "bytes", 20_000_000), ("500KB", "bytes", 500_000), ("1.5GB", "bytes", 1_500_000_000),
    ("20mb", "bytes", 20_000_000), ("2MiB", "bytes", 2 * 1024 * 1024),
    ("10M", "params", 10_000_000), ("500K", "params", 500_000), ("500k", "params", 500_000)])
def test_budgets_parse(text, kind, value):
    b = parse_budget(text)
    assert (b.kind, b.value) == (kind, value)
    assert b.text == "".join(text.split())


@pytest.mark.parametrize("text", ["10", "ms", "fast", "-3ms", "0x", "0MB", "10 parsecs", "10ms20MB", "", "1e3ms",
                                  "10m"])
def test_bad_budgets_are_one_line_errors(text):
    with pytest.raises(UserError) as e:
        parse_budget(text)
    message = str(e.value)
    assert "\n" not in message and "bad budget" in message and "'10ms'" in message and "'8x'" in message


def test_several_budgets_split_on_commas_and_must_not_repeat():
    assert [b.text for b in parse_budgets(["10ms,20MB", "4x"])] == ["10ms", "20MB", "4x"]
    with pytest.raises(UserError, match="must not repeat"):
        parse_budgets(["10ms", "10.0ms"])


def test_check_applies_the_margin_to_latency_only():
    budgets = parse_budgets(["10ms", "4x", "20MB", "5M"])
    costs = {"latency_ms": 9.5, "bytes": 20_000_000, "parameters": 5_000_000}
    exact = check(costs, budgets, teacher_ms=40.0, margin=0.0)
    assert [r["met"] for r in exact] == [True, True, True, True]
    assert [r["limit"] for r in exact] == [10.0, 10.0, 20_000_000, 5_000_000]  # 4x of a 40 ms teacher: 10 ms
    with_margin = check(costs, budgets, teacher_ms=40.0, margin=0.1)  # latency under 9 ms now
    assert [r["met"] for r in with_margin] == [False, False, True, True]
    assert overshoot(exact) == pytest.approx(1.0)


def test_an_unmeasured_cost_is_not_met_and_a_speedup_needs_the_teacher():
    (r,) = check({"latency_ms": None}, parse_budgets(["10ms"]), None)
    assert not r["met"] and overshoot([r]) == float("inf")
    with pytest.raises(UserError, match="teacher's measured latency"):
        check({"latency_ms": 1.0}, parse_budgets(["4x"]), None)


def test_least_of_rounds_interleaves_and_keeps_every_value():
    from bertcompress.evaluation.profile import least_of_rounds

    order, noise = [], {"a": iter([5.0, 3.0, 4.0]), "b": iter([2.0, 9.0, 1.0]), "c": iter([7.0, 7.0, 6.0])}

    def measure(name):
        def fn():
            order.append(name)
            return next(noise[name])
        return fn

    values = least_of_rounds({n: measure(n) for n in "abc"}, rounds=3)
    assert order == list("abc") + list("bca") + list("cab")  # each once per round, the order rotated
    assert {n: min(v) for n, v in values.items()} == {"a": 3.0, "b": 1.0, "c": 6.0}
    with pytest.raises(UserError, match="at least one round"):
        least_of_rounds({"a": lambda: 1.0}, rounds=0)
