"""The `evaluate` and `report` verbs over their configs (the commands' entries in commands.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bertcompress.core.config import save_config
from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_write_json, prepare_output_folder, writes_output
from bertcompress.evaluation.config import AttackConfig, EvaluateConfig, ReportConfig


def evaluate_models(cfg: EvaluateConfig) -> list[dict[str, Any]]:
    """`evaluate` with every setting from `cfg`; also writes `cfg.json` and `cfg.report` if set."""
    from bertcompress.evaluation.evaluator import evaluate
    from bertcompress.evaluation.report import report

    _check_paths(cfg)  # before the models are scored (and ONNX exports written): not after, with one file written
    attack = AttackConfig(max_examples=cfg.attack, candidates_from=cfg.attack_candidates) if cfg.attack else False
    records = evaluate(cfg.models, cfg.data, split=cfg.split, latency=cfg.latency, onnx=cfg.onnx,
                       onnx_dir=cfg.onnx_dir, threads=cfg.threads, batch_sizes=tuple(cfg.batch_sizes),
                       seq_len=cfg.seq_len, repeats=cfg.repeats, baseline=cfg.baseline, loyalty_to=cfg.loyalty_to,
                       advglue=cfg.advglue, attack=attack)
    if cfg.json:
        atomic_write_json(cfg.json, records)
    if cfg.report:
        report(records, cfg.report)
    return records


def _check_paths(cfg: EvaluateConfig) -> None:
    """The models exist, and the files and folders to write are not something else already."""
    from bertcompress.models.loading import resolve_model_path

    if not cfg.models:
        raise UserError("evaluate needs at least one model")
    for name in dict.fromkeys([*cfg.models, *(m for m in (cfg.baseline, cfg.loyalty_to) if m is not None)]):
        resolve_model_path(name)
    if cfg.json:
        path = Path(cfg.json)
        if path.is_dir():
            raise UserError(f"json {path} is a folder; give the path of the file to write the records to")
        if any(p.exists() and not p.is_dir() for p in path.parents):
            raise UserError(f"json {path}: a file is in the way of its folder")
    for what, folder in (("report", cfg.report), ("onnx_dir", cfg.onnx_dir)):
        if folder and (Path(folder).exists() and not Path(folder).is_dir()):
            raise UserError(f"{what} {folder} exists and is not a folder; choose another path")


def show_records(cfg: EvaluateConfig, records: list[dict[str, Any]]) -> None:
    from bertcompress.evaluation.evaluator import records_markdown

    print(records_markdown(records))
    for what, path in (("records", cfg.json), ("report", cfg.report)):
        if path:
            print(f"[bertcompress] wrote the {what} to {path}")


@writes_output
def write_report(cfg: ReportConfig) -> Path:
    """report.html and report.md in `cfg.output` from the records files `cfg.records`."""
    from bertcompress.evaluation.report import load_records, report

    if not cfg.records:
        raise UserError("report needs at least one records file")
    records = load_records(cfg.records)  # read and checked before the output is touched
    prepare_output_folder(cfg.output, type(cfg).__name__)  # written in place: another kind (--overwrite) goes first
    report(records, cfg.output)
    save_config(cfg, cfg.output)
    return Path(cfg.output)
