"""Experiment tracking: the loop's history, sent to TensorBoard and/or MLflow as it is written
(`train.report_to`), through the libraries' own writers (pip install 'bertcompress[track]').

A run is one training phase of one output, named `<output name>/<phase>` (`student/intermediate`,
`teacher/finetune`). Where it goes, beside the output:
  * TensorBoard: `<output's folder>/tensorboard/<output name>/<phase>/`, scalars `train/<name>`
    (the loss, each loss term, the learning rate, tokens/s) and `eval/<name>` (each evaluation), and
    the settings as text: `tensorboard --logdir <output's folder>/tensorboard`.
  * MLflow: `train.tracking_uri`, by default the SQLite store `<output's folder>/mlflow.db`
    (`mlflow ui --backend-store-uri sqlite:///<output's folder>/mlflow.db`), experiment
    "bertcompress": the same metrics, the command's whole config and the method's settings as
    parameters, and the loop's final record: the final evaluation as `final.<name>` metrics, steps,
    seconds, best step and why it stopped as `bertcompress.<key>` tags.
A resumed phase starts a new MLflow run and appends to the same TensorBoard folder.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bertcompress.core.config import to_dict
from bertcompress.core.errors import UserError
from bertcompress.core.io import checkpoints_owner
from bertcompress.train.config import TrainConfig

EXPERIMENT = "bertcompress"
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # report_to name -> the package it needs
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter's value


def run_identity(work_dir: str | Path) -> tuple[Path, str]:
    """(output, phase) of a loop whose checkpoints go to `work_dir` (models/saving.checkpoint_dir);
    a folder of another layout reports as its own name in its parent."""
    owner = checkpoints_owner(work_dir)
    return owner if owner is not None else (Path(work_dir).parent, Path(work_dir).name)


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """{"a": {"b": 1}} -> {"a.b": "1"}: a config as parameters (lists as JSON)."""
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    text = json.dumps(data) if isinstance(data, (list, tuple)) else str(data)
    return {prefix.rstrip("."): text[:MAX_PARAM_CHARS]}


class TensorBoardRun:
    def __init__(self, folder: Path, settings: dict[str, Any]):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))
        self.writer.add_text("settings", "```\n" + json.dumps(settings, indent=2, default=str) + "\n```", 0)

    def log(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def abort(self) -> None:
        self.writer.close()

    def finish(self, record: dict[str, Any]) -> None:
        self.writer.add_text("final record", "```\n" + json.dumps(record, indent=2, default=str) + "\n```",
                             record.get("steps", 0))
        self.writer.close()


class MlflowRun:
    def __init__(self, uri: str, name: str, settings: dict[str, Any]):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        for quiet in ("alembic", "mlflow.store.db.utils"):  # their schema messages on a new store
            logging.getLogger(quiet).setLevel(logging.WARNING)
        self.client = MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(EXPERIMENT)
        self.run_id = self.client.create_run(experiment_id, run_name=name).info.run_id
        params = [Param(k, v) for k, v in flatten(settings).items()]
        for at in range(0, len(params), 100):  # MLflow takes at most 100 parameters a call
            self.client.log_batch(self.run_id, params=params[at:at + 100])

    def log(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k.replace("/", "."), v, now, step)
                                                    for k, v in values.items()])

    def abort(self) -> None:
        self.client.set_terminated(self.run_id, status="KILLED")

    def finish(self, record: dict[str, Any]) -> None:
        final = {f"final.{k}": float(v) for k, v in (record.get("final_eval") or {}).items()
                 if isinstance(v, (int, float))}
        if final:
            self.log(record.get("steps", 0), final)
        for key in ("steps", "seconds", "step_seconds", "best_step", "stopped"):
            self.client.set_tag(self.run_id, f"bertcompress.{key}", str(record.get(key)))
        self.client.set_terminated(self.run_id)


class Tracking:
    """The trackers of one loop (none without `report_to`); `log` and `finish` go to each."""

    def __init__(self, cfg: TrainConfig, work_dir: str | Path, config: Any = None,
                 method: dict[str, Any] | None = None, *, main: bool = True):
        self.runs: list[Any] = []
        if not cfg.report_to or not main:  # one process reports for all under DDP
            return
        settings = run_settings(cfg, config, method)
        for name in cfg.report_to:
            try:
                __import__(PACKAGES[name])
            except ImportError:
                raise UserError(f"train.report_to {name} needs the {PACKAGES[name]} package: "
                                "pip install 'bertcompress[track]'") from None
        output, phase = run_identity(work_dir)
        output = output.resolve()
        if "tensorboard" in cfg.report_to:
            self.runs.append(TensorBoardRun(output.parent / "tensorboard" / output.name / phase, settings))
        if "mlflow" in cfg.report_to:
            uri = cfg.tracking_uri or f"sqlite:///{output.parent / 'mlflow.db'}"
            self.runs.append(MlflowRun(uri, f"{output.name}/{phase}", settings))

    def log(self, step: int, entry: dict[str, Any], **extra: float) -> None:
        """One history entry: `eval_x` keys as `eval/x`, the others (and `extra`) as `train/x`."""
        if not self.runs:
            return
        values = {(f"eval/{k[5:]}" if k.startswith("eval_") else f"train/{k}"): float(v)
                  for k, v in {**entry, **extra}.items()
                  if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        for run in self.runs:
            run.log(step, values)

    def abort(self) -> None:
        """An interrupted or failed run: closed, MLflow's marked KILLED."""
        for run in self.runs:
            run.abort()

    def finish(self, result: Any) -> None:
        record = asdict(result)
        record.pop("history", None)  # already sent, entry by entry
        for run in self.runs:
            run.finish(record)


def run_settings(cfg: TrainConfig, config: Any, method: dict[str, Any] | None) -> dict[str, Any]:
    """What a run records as its parameters: the command's whole config (as saved beside the
    output), else this loop's TrainConfig, and the method's own settings."""
    return {"config": to_dict(config) if config is not None else {"train": asdict(cfg)}, "method": method or {}}
