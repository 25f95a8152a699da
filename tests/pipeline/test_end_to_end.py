"""General then task distillation on tiny models; the student loads with plain transformers."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bertcompress.cli import main
from bertcompress.core.config import CONFIG_FILENAME, from_dict, read_saved_config, to_dict
from bertcompress.methods.distill.config import DistillConfig
from bertcompress.models.config import StudentConfig
from bertcompress.pipeline.config import PipelineConfig
from bertcompress.train.config import TrainConfig

TINY = ["--set", "student.num_layers=2", "--set", "student.hidden_size=16", "--set", "student.num_heads=4",
        "--set", "student.ffn_size=32"]


def test_general_then_task_distillation_student_loads_without_us(tmp_path, tiny_bert_dir, sentiment_tsv,
                                                                  corpus_file):
    teacher, general, student = tmp_path / "teacher", tmp_path / "general", tmp_path / "student"
    small = ["--set", "train.batch_size=8", "--set", "train.max_steps=6", "--set", "data.task=sst2"]
    assert main(["finetune", "--model", str(tiny_bert_dir), "--data", str(sentiment_tsv), "-o", str(teacher)]
                + small) == 0
    assert main(["distill", "--stage", "general", "--teacher", str(tiny_bert_dir), "--corpus", str(corpus_file),
                 "-o", str(general), "--set", "corpus.max_seq_len=16", "--set", "train.max_steps=4",
                 "--set", "train.batch_size=4"] + TINY) == 0
    assert main(["distill", "--stage", "task", "--teacher", str(teacher), "--student", str(general),
                 "--data", str(sentiment_tsv), "--task", "sst2", "-o", str(student),
                 "--set", "train.max_steps=3", "--set", "prediction_train.max_steps=3",
                 "--set", "train.batch_size=8", "--set", "prediction_train.batch_size=8"]) == 0

    for folder in (teacher, general, student):
        assert (folder / CONFIG_FILENAME).is_file() and (folder / "model.safetensors").is_file()
    result = json.loads((student / "bertcompress_result.json").read_text())
    assert result["mapping"] == [2, 4]  # uniform, 2 student layers over 4 teacher layers
    assert set(result["intermediate"]["history"][-1]) >= {"embedding", "hidden", "attention", "loss"}
    assert any("prediction" in h for h in result["prediction"]["history"])
    assert 0.0 <= result["dev"]["accuracy"] <= 1.0
    saved = read_saved_config(DistillConfig, student)  # the student that ran, not the default 4x312
    assert (saved.student.num_layers, saved.student.hidden_size, saved.student.ffn_size) == (2, 16, 32)

    # plain transformers, none of our code: same logits as the in-memory model gave at save time
    model = AutoModelForSequenceClassification.from_pretrained(student).eval()
    tok = AutoTokenizer.from_pretrained(student)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 16
    assert model.config.id2label == {0: "0", 1: "1"}
    enc = tok(["a great movie", "an awful film"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    from bertcompress.models.loading import load_model

    ours = load_model(str(student), "classifier").eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(**enc).logits, logits, rtol=0, atol=0)


def test_pipeline_writes_report(tmp_path, tiny_bert_dir, sentiment_tsv, corpus_file):
    from bertcompress.pipeline.verb import run

    steps = to_dict(TrainConfig(max_steps=2, batch_size=8))
    cfg = from_dict(PipelineConfig, {
        "teacher": str(tiny_bert_dir), "output": str(tmp_path / "run"),
        "data": {"task": "sst2", "path": str(sentiment_tsv), "max_seq_len": 16},
        "corpus": {"path": str(corpus_file), "max_seq_len": 16},
        "student": to_dict(StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=32)),
        "augment": {"enabled": False}, "latency": False,
        "finetune": steps, "general": steps, "task_intermediate": steps, "task_prediction": steps})
    report = run(cfg)
    out = tmp_path / "run"
    saved = json.loads((out / "report.json").read_text())
    assert saved["teacher"]["examples"] == 10 and saved["student"]["parameters"] < saved["teacher"]["parameters"]
    assert saved["ratios"]["size_ratio"] == pytest.approx(
        saved["teacher"]["parameters"] / saved["student"]["parameters"])
    assert 0.0 <= saved["student"]["accuracy"] <= 1.0
    summary = (out / "report.md").read_text()
    assert "retention" in summary and "loyalty to the teacher" in summary
    assert saved["teacher"]["label_loyalty"] == 1.0 and 0.0 <= saved["student"]["probability_loyalty"] <= 1.0
    assert "<img" in (out / "report" / "report.html").read_text()
    assert report["task"] == "sst2"
    # the trivial baseline on the 10 dev rows (5 of each class): majority class 0, accuracy 0.5
    assert (saved["teacher"]["trivial_score"], saved["teacher"]["trivial_predictor"]) == (0.5, "majority class 0")
    assert saved["teacher_learned"] == saved["teacher"]["learned"]
    if not saved["teacher_learned"]:  # a 2-step tiny teacher: expected; the report must say so
        assert "WARNING: the teacher did not learn the task" in summary and "not meaningful" in summary
        assert saved["ratios"]["retention"] is None
    # the student's card says how it compares with the teacher, as measured here
    card = (out / "student" / "README.md").read_text()
    assert f"label {saved['student']['label_loyalty']:.3f}" in card
    assert f"{saved['ratios']['size_ratio']:.2f}x fewer parameters" in card
    # resume reuses finished stages: nothing is retrained, the card's comparison is written once
    before = (out / "student" / "model.safetensors").stat().st_mtime_ns
    run(cfg, resume=True)
    assert (out / "student" / "model.safetensors").stat().st_mtime_ns == before
    assert (out / "student" / "README.md").read_text().count("## Against the teacher") == 1


def test_report_says_loudly_when_the_teacher_learned_nothing():
    from bertcompress.pipeline.verb import report_markdown

    base = {"split": "dev", "examples": 100, "metric": "mcc", "trivial_score": 0.0, "parameters": 10,
            "bytes_on_disk": 40, "trivial_predictor": "majority class 0", "label_loyalty": 1.0,
            "probability_loyalty": 1.0}
    teacher, student = {**base, "model": "teacher", "score": 0.0}, {**base, "model": "student", "score": 0.0}
    report = {"task": "cola", "split": "dev", "teacher_learned": False, "teacher": teacher, "student": student,
              "ratios": {"retention": None, "size_ratio": 1.0, "disk_ratio": 1.0}, "stage_seconds": {}}
    text = report_markdown(report)
    assert text.splitlines()[2].startswith("> **WARNING: the teacher did not learn the task: mcc 0.000")
    assert "retention (student score / teacher score): not meaningful" in text
    assert "trivial baseline (majority class 0): 0.000" in text
    assert "WARNING" not in report_markdown({**report, "teacher_learned": True,
                                             "ratios": {**report["ratios"], "retention": 1.0}})


def test_run_refuses_unequal_head_counts_before_training(tmp_path, tiny_bert_dir, sentiment_tsv):
    """A hand-set student with other heads than the teacher's under head_rule strict: refused before
    the teacher's fine-tuning, not by the distillation after it."""
    from bertcompress.core.errors import UserError
    from bertcompress.pipeline.verb import run

    cfg = from_dict(PipelineConfig, {
        "teacher": str(tiny_bert_dir), "output": str(tmp_path / "run"),
        "data": {"task": "sst2", "path": str(sentiment_tsv)},
        "student": to_dict(StudentConfig(num_layers=2, hidden_size=16, num_heads=2, ffn_size=32)),
        "losses": {"head_rule": "strict"}})
    with pytest.raises(UserError, match=r"attention loss needs equal head counts \(student 2, teacher 4\)"):
        run(cfg)
    assert not (tmp_path / "run").exists()
    cfg.losses.head_rule = "mean"  # 2 divides 4: accepted (nothing else is wrong with this config)
    from bertcompress.pipeline.verb import _check_student

    _check_student(cfg)
