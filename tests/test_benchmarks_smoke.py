"""Smoke test of benchmarks/distill_step.py on tiny models: the `naive` and `ours` steps run, give
finite losses, and `ours` computes exactly what a direct DistillationObjective call computes."""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from bertcompress.config import LossConfig, StudentConfig
from bertcompress.distillation.objective import DistillationObjective

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "distill_step.py"
TINY_TEACHER = dict(num_hidden_layers=4, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                    vocab_size=120)
TINY_STUDENT = StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=32)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("distill_step_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_naive_and_ours_steps_on_tiny_models(bench):
    batch = bench.make_batch(3, 12, TINY_TEACHER["vocab_size"], "cpu")

    teacher, student = bench.build_models("eager", "cpu", TINY_TEACHER, TINY_STUDENT)
    naive_loss, naive_terms = bench.make_naive(teacher, student, "cpu", "fp32")(batch)
    assert math.isfinite(float(naive_loss)) and set(naive_terms) == {"embedding", "hidden", "attention", "prediction"}
    assert all(math.isfinite(float(v)) for v in naive_terms.values())

    teacher, student = bench.build_models("sdpa", "cpu", TINY_TEACHER, TINY_STUDENT)
    student.eval()  # no dropout: the step and the direct call must see the same network
    step, objective = bench.make_ours(teacher, student, "cpu", "fp32")
    direct = DistillationObjective(copy.deepcopy(student), teacher, LossConfig(),
                                   {"embedding": 1, "hidden": 1, "attention": 1, "prediction": 1})
    direct.projections.load_state_dict(objective.projections.state_dict())
    with torch.no_grad():
        want_loss, want_terms = direct(batch)

    loss, terms = step(batch)  # computes the loss, then updates the weights
    assert math.isfinite(float(loss))
    assert terms.keys() == want_terms.keys() == {"embedding", "hidden", "attention", "prediction"}
    for k in terms:
        assert float(terms[k]) == pytest.approx(float(want_terms[k]), rel=1e-5, abs=1e-7), k
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-5)
    # the step really trained: the student's weights moved
    assert not torch.equal(next(student.parameters()), next(direct.student.parameters()))


def test_profile_writes_each_implementation(bench, tmp_path):
    teacher, student = bench.build_models("sdpa", "cpu", TINY_TEACHER, TINY_STUDENT)
    step = bench.make_ours(teacher, student, "cpu", "fp32")[0]
    out = tmp_path / "profile.txt"
    bench.profile_steps({"ours": step}, bench.make_batch(2, 8, TINY_TEACHER["vocab_size"], "cpu"), "cpu", out, rows=5)
    text = out.read_text()
    assert text.startswith("== ours: 3 steps") and "Self CPU" in text
