"""Experiment tracking (`train.report_to`): the loop's history read back through TensorBoard's and
MLflow's own readers, value for value; a missing package is one line; where a run reports never
blocks its resume."""

from __future__ import annotations

import pytest
import torch
from test_train_loop import Regressor, collate, features

from bertcompress.cli import main
from bertcompress.core.errors import UserError
from bertcompress.core.io import checkpoints_folder
from bertcompress.models.saving import checkpoint_dir
from bertcompress.train import tracking
from bertcompress.train.config import TrainConfig
from bertcompress.train.loop import train_loop

pytest.importorskip("tensorboard", reason="pip install 'bertcompress[track]'")
pytest.importorskip("mlflow", reason="pip install 'bertcompress[track]'")

CFG = dict(epochs=2, batch_size=6, lr=0.05, log_every=1, eval_every=4, warmup_ratio=0.0)


def score(module) -> dict[str, float]:
    with torch.no_grad():
        batch = collate(features())
        return {"score": -float(module(batch)[0])}


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_the_history_reaches_tensorboard_and_mlflow(tmp_path):
    from mlflow.tracking import MlflowClient

    output = tmp_path / "runs" / "student"
    cfg = TrainConfig(**CFG, report_to=["tensorboard", "mlflow"])
    result = train_loop(Regressor(), features(), collate, cfg, work_dir=checkpoint_dir(output, "intermediate"),
                        evaluate=score, settings={"weights": {"hidden": 1.0}})
    logged = [h for h in result.history if "loss" in h]
    evaluated = [h for h in result.history if "eval_score" in h]
    assert len(logged) == 8 and len(evaluated) == 2  # 4 steps an epoch, 2 epochs; evaluations at 4 and 8

    board = scalars(tmp_path / "runs" / "tensorboard" / "student" / "intermediate")
    assert [s for s, _ in board["train/loss"]] == [h["step"] for h in logged]
    assert [v for _, v in board["train/loss"]] == pytest.approx([h["loss"] for h in logged], rel=1e-6)
    assert [v for _, v in board["train/lr"]] == pytest.approx([h["lr"] for h in logged], rel=1e-6)
    assert [v for _, v in board["eval/score"]] == pytest.approx([h["eval_score"] for h in evaluated], rel=1e-6)
    assert len(board["train/tok_s"]) == 8 and all(v > 0 for _, v in board["train/tok_s"])

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("bertcompress").experiment_id])
    assert run.info.run_name == "student/intermediate" and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "train.loss")
    assert [m.step for m in history] == [h["step"] for h in logged]
    assert [m.value for m in history] == pytest.approx([h["loss"] for h in logged])
    assert run.data.metrics["final.score"] == pytest.approx(result.final_eval["score"])
    assert run.data.params["config.train.lr"] == "0.05" and run.data.params["method.weights.hidden"] == "1.0"
    assert run.data.tags["bertcompress.steps"] == "8" and run.data.tags["bertcompress.stopped"] == "planned steps"


def test_a_missing_package_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(tracking.PACKAGES, "tensorboard", "no_such_tracking_package")
    with pytest.raises(UserError, match=r"^train.report_to tensorboard needs the no_such_tracking_package package: "
                                        r"pip install 'bertcompress\[track\]'$"):
        train_loop(Regressor(), features(), collate, TrainConfig(**CFG, report_to=["tensorboard"]),
                   work_dir=tmp_path / "w")


def test_where_a_run_reports_may_change_on_resume(tmp_path):
    work = checkpoint_dir(tmp_path / "out", "finetune")
    with pytest.raises(KeyboardInterrupt):
        train_loop(Regressor(crash_at=6), features(), collate, TrainConfig(**CFG, save_every=2), work_dir=work)
    resumed = train_loop(Regressor(), features(), collate, TrainConfig(**CFG, save_every=2, report_to=["tensorboard"]),
                         work_dir=work, resume=True)
    assert resumed.steps == 4  # from the checkpoint at step 4, not from scratch
    board = scalars(tmp_path / "tensorboard" / "out" / "finetune")
    assert [s for s, _ in board["train/loss"]] == [5, 6, 7, 8]


def test_the_run_is_named_by_its_output_and_phase(tmp_path):
    assert tracking.run_identity(checkpoint_dir(tmp_path / "o", "finetune") / "trial3") == (tmp_path / "o",
                                                                                            "finetune/trial3")
    assert tracking.run_identity(tmp_path / "elsewhere") == (tmp_path, "elsewhere")
    assert checkpoints_folder(tmp_path / "o").name == ".o.checkpoints"


def test_report_to_from_the_command_line(tmp_path, tiny_bert_dir, sentiment_tsv, capsys):
    out = tmp_path / "teacher"
    assert main(["finetune", "--model", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
                 "--set", "train.max_steps=2", "--set", "train.log_every=1", "--report-to", "tensorboard",
                 "-o", str(out)]) == 0
    board = scalars(tmp_path / "tensorboard" / "teacher" / "finetune")
    assert [s for s, _ in board["train/loss"]] == [1, 2] and "eval/score" in board
    assert main(["finetune", "--report-to", "wandb", "--print-config"]) == 2
    assert "train.report_to must be one of tensorboard, mlflow, got 'wandb'" in capsys.readouterr().err
