"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.data.tasks import get_task
from bertcompress.evaluation.metrics import compute_metrics, predictions_from_logits


def test_accuracy():
    assert compute_metrics(get_task("sst2"), [1, 0, 1, 1], [1, 0, 0, 1]) == {"accuracy": 0.75, "score": 0.75}


def test_mrpc_f1_and_accuracy():
    # TP=2 FP=1 FN=1 TN=1: precision = recall = 2/3, so F1 = 2/3; accuracy 3/5.
    out = compute_metrics(get_task("mrpc"), [1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert list(out) == ["f1", "accuracy", "score"]
    assert out["f1"] == pytest.approx(2 / 3) and out["accuracy"] == pytest.approx(0.6)
    assert out["score"] == out["f1"]


def test_cola_mcc():
    # same confusion matrix: (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2-1)/sqrt(3*3*2*2)
    out = compute_metrics(get_task("cola"), np.array([1, 1, 0, 0, 1]), torch.tensor([1, 0, 0, 1, 1]))
    assert out["mcc"] == pytest.approx(1 / 6) and out["score"] == out["mcc"]


def test_stsb_correlations():
    labels = [0.0, 1.0, 2.0, 3.0, 4.0]
    out = compute_metrics(get_task("stsb"), [2 * x + 1 for x in labels], labels)
    assert out["pearson"] == pytest.approx(1.0) and out["spearman"] == pytest.approx(1.0)
    cubic = compute_metrics(get_task("stsb"), [x ** 3 for x in labels], labels)
    assert cubic["spearman"] == pytest.approx(1.0) and cubic["pearson"] < 0.99
    assert compute_metrics(get_task("stsb"), [-x for x in labels], labels)["pearson"] == pytest.approx(-1.0)


def test_constant_regression_prediction_scores_zero():
    out = compute_metrics(get_task("stsb"), [2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert out == {"pearson": 0.0, "spearman": 0.0, "score": 0.0}
    assert not any(math.isnan(v) for v in out.values())


def test_qqp_and_mnli():
    qqp = compute_metrics(get_task("qqp"), [0, 1, 1, 0], [0, 1, 0, 0])
    assert qqp["accuracy"] == 0.75 and qqp["f1"] == pytest.approx(2 / 3)
    assert compute_metrics(get_task("mnli"), [0, 1, 2, 2], [0, 1, 2, 1])["accuracy"] == 0.75


def test_bad_inputs():
    with pytest.raises(UserError, match="no examples to score"):
        compute_metrics(get_task("sst2"), [], [])
    with pytest.raises(UserError, match="2 predictions for 3 labels"):
        compute_metrics(get_task("sst2"), [0, 1], [0, 1, 1])


def test_predictions_from_logits():
    logits = torch.tensor([[0.1, 2.0], [3.0, -1.0], [0.0, 0.5]])
    assert predictions_from_logits(get_task("sst2"), logits).tolist() == [1, 0, 1]
    mnli = predictions_from_logits(get_task("mnli"), np.array([[0.0, 0.0, 9.0]]))
    assert mnli.tolist() == [2] and mnli.dtype == np.int64
    reg = predictions_from_logits(get_task("stsb"), torch.tensor([[1.5], [0.25]], dtype=torch.bfloat16))
    assert reg.tolist() == [1.5, 0.25] and reg.dtype == np.float64


def test_trivial_baseline_is_the_best_constant_predictor():
    from bertcompress.evaluation.metrics import learned, trivial_baseline

    sst2 = trivial_baseline(get_task("sst2"), [0, 1, 1, 1, 0])  # majority class 1 ("positive"): 3/5 right
    assert sst2 == {"trivial_score": 0.6, "trivial_predictor": "majority class 1"}
    mrpc = trivial_baseline(get_task("mrpc"), [0, 0, 0, 1])  # predicts 0 everywhere: F1 of class 1 is 0
    assert mrpc["trivial_score"] == 0.0 and mrpc["trivial_predictor"] == "majority class 0"
    assert trivial_baseline(get_task("cola"), [1, 1, 0])["trivial_score"] == 0.0  # MCC of a constant
    assert trivial_baseline(get_task("stsb"), [0.5, 4.0, 2.0]) == {"trivial_score": 0.0,
                                                                     "trivial_predictor": "the mean"}
    # learned: at least a tenth of the way from the trivial score to 1.0 (0.527 -> 0.5743)
    assert learned(0.575, 0.527) and not learned(0.574, 0.527) and not learned(0.498, 0.527)
    assert learned(0.1, 0.0) and not learned(0.09, 0.0) and not learned(None, 0.0)


def test_retention_is_not_reported_against_a_teacher_that_learned_nothing():
    from bertcompress.evaluation.profile import ratios_against

    teacher = {"score": 0.52, "learned": False, "parameters": 10, "non_embedding_parameters": 5, "bytes_on_disk": 40}
    student = {**teacher, "score": 0.55, "parameters": 5}
    assert ratios_against(teacher, student)["retention"] is None
    assert ratios_against({**teacher, "learned": True}, student)["retention"] == pytest.approx(0.55 / 0.52)
    assert ratios_against({**teacher, "score": 0.0, "learned": True}, student)["retention"] is None  # no nan


def test_data_metric_chooses_the_score(tmp_path):
    from bertcompress.data.config import DataConfig
    from bertcompress.data.kinds import load_examples
    from bertcompress.data.tasks import with_metric
    from bertcompress.evaluation.metrics import trivial_baseline

    assert with_metric(get_task("sst2"), "f1").metrics == ("f1", "accuracy")
    assert with_metric(get_task("mrpc"), "accuracy").metrics == ("accuracy", "f1")
    assert with_metric(get_task("stsb"), None).metrics == ("pearson", "spearman")
    with pytest.raises(UserError, match="data.metric 'f1' does not fit task stsb"):
        with_metric(get_task("stsb"), "f1")
    spam = tmp_path / "sms.csv"
    spam.write_text("text,label\n" + "".join(f"hello {i},ham\n" for i in range(18)) + "win cash,spam\nwin,spam\n")
    task, dev = load_examples(DataConfig(task="classification", path=str(spam), metric="f1", holdout_fraction=0.5),
                              "dev")
    assert task.labels == ("ham", "spam") and task.metrics == ("f1", "accuracy")
    labels = [e.label for e in dev]
    out = compute_metrics(task, labels, labels)
    assert out["score"] == out["f1"] == 1.0
    # the majority (ham) predictor finds no spam: F1 of the spam class 0, though its accuracy is high
    assert trivial_baseline(task, [0] * 9 + [1])["trivial_score"] == 0.0
    with pytest.raises(UserError, match="data.metric"):
        DataConfig(metric="bleu")
