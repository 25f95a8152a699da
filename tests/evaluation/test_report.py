"""Report: Pareto fronts, HTML/Markdown from hand-made records, and the report/evaluate commands."""

import json

import pytest

from bertcompress.cli import main
from bertcompress.core.errors import UserError
from bertcompress.evaluation.report import load_records, pareto_front, report


def test_pareto_front_on_hand_made_points():
    # (cost, score): lower cost and higher score win
    points = [(10.0, 0.90), (5.0, 0.85), (6.0, 0.80), (2.0, 0.70), (2.0, 0.60), (12.0, 0.90), (1.0, 0.50)]
    assert pareto_front(points) == [6, 3, 1, 0]  # sorted by cost; ties and dominated points left out
    assert pareto_front([(1.0, 0.5)]) == [0]
    assert pareto_front([(1.0, 0.5), (1.0, 0.5)]) == [0, 1]  # equal points do not beat each other


def _record(name, score, params, ms, **extra):
    lat = {f"batch{b}": {"median_ms": ms * b / 4, "p90_ms": ms, "repeats": 10, "warmup": 3, "seq_len": 128,
                         "threads": 2} for b in (1, 32)}
    return {"model": f"/runs/{name}", "task": "sst2", "split": "dev", "examples": 872, "metric": "accuracy",
            "accuracy": score, "score": score, "parameters": params, "non_embedding_parameters": params // 2,
            "bytes_on_disk": params * 4, "latency": lat, "latency_onnx": {"batch1": {"median_ms": ms / 8}},
            "baseline": "/runs/teacher", "ratios": {"disk_ratio": 22_700_000 / params}, **extra}


RECORDS = [_record("teacher", 0.91, 22_700_000, 40.0),
           _record("student4x312", 0.88, 4_400_000, 8.0),
           _record("student-slow", 0.85, 6_000_000, 30.0)]


def test_report_from_hand_made_records(tmp_path):
    paths = report(RECORDS, tmp_path / "rep")
    page = paths["html"].read_text()
    assert page.count("<tr>") == 2 * (1 + len(RECORDS)) and "student4x312" in page and "teacher (baseline)" in page
    assert page.count("data:image/png;base64,") == 2  # latency and size; no loyalty or robustness keys
    assert "Pareto front" in page and "loyalty" not in page.lower()
    md = paths["markdown"].read_text()
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert len(rows) == 2 * (1 + len(RECORDS)) and "| student-slow |" in md
    assert "Pareto front, score against CPU eager, batch 1: student4x312, teacher" in md
    assert sorted(p.name for p in (tmp_path / "rep" / "report_files").iterdir()) == \
        ["accuracy_latency.png", "accuracy_size.png"]


def test_busy_machine_is_flagged(tmp_path):
    records = [json.loads(json.dumps(r)) for r in RECORDS]
    assert "busy" not in report(records, tmp_path / "quiet")["markdown"].read_text()
    records[1]["latency"]["batch32"].update(load_1min=9.2, cpus=2)
    md = report(records, tmp_path / "busy")["markdown"].read_text()
    assert "busy during 1 of 9 measurements (load 9.2 on 2 CPUs)" in md


def test_loyalty_and_robustness_charts_when_present(tmp_path):
    records = [dict(r) for r in RECORDS]
    records[1].update(label_loyalty=0.95, probability_loyalty=0.9, attack_accuracy=0.3, attack_success_rate=0.65)
    records[2]["loyalty"] = {"label_loyalty": 0.9}  # one level down is found too
    page = report(records, tmp_path)["html"].read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "label loyalty" in page and "attack success rate" in page and "0.9500" in page


def test_load_records_accepts_lists_and_run_reports(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(RECORDS[:2]))
    (tmp_path / "b.json").write_text(json.dumps({"task": "sst2", "teacher": RECORDS[0], "student": RECORDS[2]}))
    assert [r["model"] for r in load_records([tmp_path / "a.json", tmp_path / "b.json"])] == \
        ["/runs/teacher", "/runs/student4x312", "/runs/teacher", "/runs/student-slow"]
    (tmp_path / "c.json").write_text(json.dumps({"students": {}}))
    with pytest.raises(UserError, match="no evaluation records"):
        load_records([tmp_path / "c.json"])


def test_report_command(tmp_path, capsys):
    (tmp_path / "r.json").write_text(json.dumps(RECORDS))
    assert main(["report", str(tmp_path / "r.json"), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "report.md").is_file()
    assert main(["report", str(tmp_path / "missing.json"), "-o", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err
    assert "records file not found" in err and "Traceback" not in err and not (tmp_path / "out2").exists()


def test_evaluate_command_writes_records_and_report(tiny_bert_dir, sentiment_tsv, tmp_path, capsys):
    args = ["evaluate", str(tiny_bert_dir), str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
            "--seq-len", "16", "--batch-sizes", "1,2", "--repeats", "2", "--threads", "1",
            "--json", str(tmp_path / "r.json"), "--report", str(tmp_path / "rep")]
    assert main(args) == 0
    records = json.loads((tmp_path / "r.json").read_text())
    assert len(records) == 2 and all(r["onnx"]["prediction_agreement"] == 1.0 for r in records)
    assert "batch2 ORT ms" in capsys.readouterr().out
    assert (tmp_path / "rep" / "report.html").is_file()
    assert main(args[:7] + ["--no-latency", "--no-onnx", "--advglue", str(tmp_path / "none.json")]) == 2
    assert "AdvGLUE file" in capsys.readouterr().err
    assert main(args[:7] + ["--batch-sizes", "1,x"]) == 2  # a bad flag value: our one line, not argparse's usage
    err = capsys.readouterr().err
    assert err.startswith("bertcompress: error: argument --batch-sizes") and len(err.splitlines()) == 1
