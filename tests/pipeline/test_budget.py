"""`run --budget`: the config, the candidate grid, the pick on a synthetic table, the refusal when
nothing fits, the dry run, the final check and the CLI's exit status. Timings are never asserted:
the pick is tested on injected numbers, real measurements only for their shape."""

import json

import pytest

from bertcompress.cli import main
from bertcompress.core.config import from_dict
from bertcompress.core.errors import UserError
from bertcompress.evaluation.budget import parse_budgets
from bertcompress.pipeline.budget.grid import Candidate, Shape, shapes
from bertcompress.pipeline.budget.pick import pick
from bertcompress.pipeline.config import BudgetConfig, PipelineConfig
from conftest import tiny_config


def cand(layers, hidden, fmt, params, non_embedding, ms, mb):
    return Candidate(Shape(layers, hidden, hidden // 32, 4 * hidden, f"{layers}x{hidden}"), fmt, int(params * 1e6),
                     int(non_embedding * 1e6), ms, int(mb * 1e6))


def table():
    """A synthetic grid measured against a 40 ms teacher: parameters (millions, all and outside the
    embeddings), latency (ms), MB on disk."""
    return [cand(6, 384, "fp32", 22.7, 10.6, 28.0, 91), cand(6, 384, "onnx-int8", 22.7, 10.6, 12.0, 60),
            cand(4, 384, "fp32", 19.2, 7.1, 19.0, 77), cand(4, 384, "w8a8", 19.2, 7.1, 20.0, 21),
            cand(4, 384, "w4a8", 19.2, 7.1, 20.0, 11), cand(6, 320, "w4a8", 17.2, 6.7, 16.0, 9),
            cand(1, 512, "w4a8", 18.8, 3.1, 5.0, 10), cand(3, 384, "onnx", 17.4, 5.3, 8.5, 70),
            cand(2, 192, "fp32", 6.9, 0.9, 3.6, 28), cand(2, 192, "w4a8", 6.9, 0.9, 5.1, 4)]


def test_pick_takes_the_most_parameters_that_fit_with_the_margin():
    chosen, why = pick(table(), parse_budgets(["10ms"]), teacher_ms=40.0, margin=0.1)
    # under 9 ms: 3x384 onnx, and 1x512 w4a8, which has more parameters but most in its embeddings
    assert chosen.name == "3x384 onnx"
    assert "the most parameters outside the embeddings (5.3M of 17.4M" in why and "\n" not in why
    assert "10ms: 8.5 ms against 10.0 ms" in why
    # the same numbers without the margin, and as a speed-up over the teacher
    assert pick(table(), parse_budgets(["3.5x"]), teacher_ms=40.0, margin=0.0)[0].name == "3x384 onnx"  # 11.4 ms
    assert pick(table(), parse_budgets(["3x"]), teacher_ms=40.0, margin=0.0)[0].name == "6x384 onnx-int8"


def test_pick_prefers_precision_then_depth_among_about_as_large():
    # 22.5 ms and 25 MB: 4x384 w8a8 and w4a8 (7.1M) and 6x320 w4a8 (6.7M, within 10%) fit
    chosen, why = pick(table(), parse_budgets(["25ms", "25MB"]), teacher_ms=40.0, margin=0.1)
    assert chosen.name == "4x384 w8a8" and "highest precision" in why
    # 12 MB: the 4-bit models alone; of the two about as large (7.1M, 6.7M), the deeper wins
    chosen, _ = pick(table(), parse_budgets(["12MB"]), teacher_ms=40.0, margin=0.1)
    assert chosen.name == "6x320 w4a8"
    assert pick(table(), parse_budgets(["12MB", "7M"]), teacher_ms=40.0, margin=0.1)[0].name == "2x192 w4a8"


def test_refusal_when_nothing_fits_names_the_closest_in_one_line():
    with pytest.raises(UserError) as e:
        pick(table(), parse_budgets(["2ms", "3MB"]), teacher_ms=40.0, margin=0.1)
    message = str(e.value)
    assert "\n" not in message and message.startswith("no candidate meets every budget (2ms = 2.0 ms, 3MB = 3.0 MB")
    # the closest miss their worst budget by the least: 2.55x, then 3.3x, then 8x
    assert "closest: 2x192 w4a8 (5.1 ms, 4.0 MB); 1x512 w4a8 (5.0 ms, 10.0 MB); 6x320 w4a8 (16.0 ms, 9.0 MB)." \
        in message
    assert "budget.margin" in message


def test_the_grid_follows_the_source_family():
    config = tiny_config("bert", 100, layers=4, hidden=32, heads=4, ffn=64)  # head size 8, FFN ratio 2
    grid = shapes(config)
    assert sorted({s.layers for s in grid}) == [1, 2, 3, 4]
    assert sorted({s.hidden for s in grid}) == [8, 16, 24, 32]
    assert {(s.hidden, s.heads, s.ffn) for s in grid} == {(8, 1, 16), (16, 2, 32), (24, 3, 48), (32, 4, 64)}
    assert [s.name for s in shapes(config, [2], [16], [1.0])] == ["2x16-ffn16"]
    with pytest.raises(UserError, match="multiple of the head size 8"):
        shapes(config, widths=[12])
    with pytest.raises(UserError, match="deeper than the teacher"):
        shapes(config, depths=[6])


@pytest.mark.parametrize("settings, message", [
    ({"targets": ["10 parsecs"]}, "bad budget '10 parsecs'"),
    ({"targets": ["10ms"], "pick": "nas"}, "bertcompress nas"),
    ({"dry_run": True}, "dry_run needs a budget"),
    ({"targets": ["10ms"], "margin": 1.5}, "margin must be in"),
    ({"targets": ["10ms"], "formats": ["int4"]}, "formats must be one of")])
def test_bad_budget_settings_are_one_line_errors(settings, message):
    with pytest.raises(UserError) as e:
        from_dict(PipelineConfig, {"budget": settings})
    assert message in str(e.value) and "\n" not in str(e.value)


def test_cli_budget_flags_are_repeatable_and_refused_in_one_line(capsys):
    assert main(["run", "--budget", "10ms", "--budget", "8x,20MB", "--budget-margin", "0.2", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "- 10ms\n" in printed and "- 8x\n" in printed and "- 20MB\n" in printed and "margin: 0.2" in printed
    assert main(["run", "--budget", "fast", "--print-config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bertcompress: error: bad config") or err.startswith("bertcompress: error: bad budget")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def tiny_run(tmp_path, teacher, data, **budget) -> PipelineConfig:
    steps = {"max_steps": 2, "batch_size": 8}
    return from_dict(PipelineConfig, {
        "teacher": str(teacher), "output": str(tmp_path / "run"),
        "data": {"task": "sst2", "path": str(data), "max_seq_len": 16},
        "corpus": {"max_seq_len": 16, "max_sequences": 40},
        "augment": {"enabled": False}, "latency": False,
        "finetune": steps, "general": steps, "task_intermediate": steps, "task_prediction": steps, "quantize": steps,
        "budget": {"seq_len": 16, "rounds": 1, "repeats": 2, "depths": [1, 2], "widths": [16, 32], **budget}})


def test_dry_run_measures_and_picks_but_writes_nothing(tmp_path, tiny_bert_dir, sentiment_tsv, capsys):
    from bertcompress.pipeline.verb import run, show_report

    cfg = tiny_run(tmp_path, tiny_bert_dir, sentiment_tsv, targets=["1000ms", "1GB"], formats=["fp32", "w4a8"],
                   dry_run=True)
    result = run(cfg)
    assert result["dry_run"] and not (tmp_path / "run").exists() and not list(tmp_path.glob(".run*"))
    budget = result["budget"]
    measured = [c for c in budget["candidates"] if c["latency_ms"] is not None]
    assert len(measured) == len(budget["candidates"]) == 2 * 2 * 2  # every shape and format fits 1000 ms
    assert all(c["bytes"] > 0 and c["status"] == "fits" for c in measured) and budget["teacher_ms"] > 0
    w4 = {c["name"]: c["bytes"] for c in measured}
    assert w4["2x32 w4a8"] < w4["2x32 fp32"] / 4  # the real packed file, not an estimate
    # the most parameters, at the higher precision; at the teacher's width it starts from its layers
    assert budget["pick"]["name"] == "2x32 fp32" and budget["pick"]["init"] == "teacher_layers"
    assert show_report(cfg, result) == 0
    printed = capsys.readouterr().out
    assert "| 2x32 fp32 | 2 x 32, 4, 64 | fp32 |" in printed and "Picked 2x32 fp32: of the 8 candidates" in printed
    assert "dry run: nothing trained or written" in printed


def test_nothing_fits_is_refused_before_training_by_the_cli(tmp_path, tiny_bert_dir, sentiment_tsv, capsys):
    out = tmp_path / "run"
    code = main(["run", "--teacher", str(tiny_bert_dir), "--data", str(sentiment_tsv), "--task", "sst2",
                 "--budget", "1KB", "--set", "budget.depths=[1]", "--set", "budget.widths=[16]",
                 "--set", "budget.rounds=1", "--set", "budget.seq_len=16", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and "Traceback" not in err
    (error,) = [line for line in err.splitlines() if line.startswith("bertcompress:")]  # after the progress lines
    assert error.startswith("bertcompress: error: no candidate meets every budget (1KB = 1.0 KB")
    assert "closest: 1x16" in error


def test_budget_run_builds_quantizes_and_checks_the_final_model(tmp_path, tiny_bert_dir, sentiment_tsv):
    from bertcompress.pipeline.verb import run, show_report

    # half the teacher's width: an ETD cut of the teacher, general distillation, half its heads
    cfg = tiny_run(tmp_path, tiny_bert_dir, sentiment_tsv, targets=["1000ms", "1GB"], formats=["w4a8"],
                   depths=[2], widths=[16])
    report = run(cfg)
    out = tmp_path / "run"
    saved = json.loads((out / "report.json").read_text())
    budget = saved["budget"]
    assert budget["pick"]["name"] == "2x16 w4a8" and (out / "quantized" / "quantized.safetensors").is_file()
    assert (budget["pick"]["init"], budget["pick"]["general_distillation"], budget["pick"]["head_rule"]) == (
        str(tiny_bert_dir), "run", "mean")
    assert (out / "extracted_student").is_dir() and (out / "general_student").is_dir()
    assert saved["config"]["losses"]["head_rule"] == "mean" and saved["config"]["student"]["num_heads"] == 2
    assert json.loads((out / "budget.json").read_text())["pick"]["name"] == "2x16 w4a8"
    final = budget["final"]
    assert final["met"] and budget["met"] and final["format"] == "w4a8"
    assert final["bytes"] == (out / "quantized" / "quantized.safetensors").stat().st_size
    assert [r["budget"] for r in final["results"]] == ["1000ms", "1GB"] and all(r["met"] for r in final["results"])
    assert final["latency_ms"] > 0 and final["teacher_ms"] > 0 and "score" in final
    assert saved["quantized"]["model"] == "quantized" and saved["config"]["student"]["num_layers"] == 2
    summary = (out / "report.md").read_text()
    assert "## Budget" in summary and "Picked 2x16 w4a8" in summary and "- 1GB:" in summary
    html = (out / "report" / "report.html").read_text()
    assert "Budget: the candidates" in html and "Budget pick: 2x16 w4a8" in html
    assert show_report(cfg, report) == 0
    # resumed: the saved pick is reused, nothing is measured or trained again
    before = (out / "quantized" / "quantized.safetensors").stat().st_mtime_ns
    again = run(cfg, resume=True)
    assert again["budget"]["candidates"] == budget["candidates"]
    assert (out / "quantized" / "quantized.safetensors").stat().st_mtime_ns == before


def test_each_format_is_timed_on_its_own_file(tmp_path, monkeypatch):
    from bertcompress.pipeline.budget import measure

    timed = []
    monkeypatch.setattr(measure, "onnx_timer", lambda path, model, setting: timed.append(path) or (lambda: 1.0))
    config = tiny_config("bert", 100, layers=2, hidden=32, heads=4, ffn=64)
    model = measure.untrained(config, "classifier", 2)
    written = measure.write_formats(model, ["fp32", "onnx", "onnx-int8", "w8a8", "w4a8"], tmp_path, measure.Setting())
    for fmt in ("onnx", "onnx-int8"):
        written[fmt][1]()
    assert timed == [tmp_path / "onnx" / "model.onnx", tmp_path / "w8a8" / "onnx" / "model.onnx"]
    assert written["onnx"][0] == timed[0].stat().st_size and written["onnx-int8"][0] == timed[1].stat().st_size
    assert written["fp32"][0] == (tmp_path / "fp32" / "model.safetensors").stat().st_size
    assert written["w4a8"][0] == (tmp_path / "w4a8" / "quantized.safetensors").stat().st_size < written["w8a8"][0]


def _missed_report(soft: bool) -> dict:
    result = {"budget": "10ms", "kind": "latency", "limit": 10.0, "value": 12.0, "met": False}
    return {"budget": {"met": False, "soft": soft, "final": {"results": [result]}}}


def test_a_missed_budget_sets_the_cli_exit_status_unless_soft(monkeypatch, capsys, tmp_path):
    import bertcompress.pipeline.verb as verb

    monkeypatch.setattr(verb, "report_markdown", lambda report: "report")
    monkeypatch.setattr(verb, "run", lambda cfg, **kw: _missed_report(cfg.budget.soft))
    assert main(["run", "--budget", "10ms", "-o", str(tmp_path / "run")]) == verb.BUDGET_MISSED
    err = capsys.readouterr().err
    assert "budget missed: 10ms: 12.0 ms against 10.0 ms, MISSED" in err
    assert main(["run", "--budget", "10ms", "--budget-soft", "-o", str(tmp_path / "run")]) == 0


def test_budget_config_defaults_are_off():
    b = BudgetConfig()
    assert b.targets == [] and b.run_formats == ["fp32", "onnx", "onnx-int8", "w8a8", "w4a8"]
    assert BudgetConfig(device="cuda").run_formats == ["fp32"]
