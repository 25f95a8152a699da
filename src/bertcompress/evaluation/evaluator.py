"""`evaluate`: score saved models on a task's split, side by side, with size, latency (PyTorch
eager and ONNX Runtime on the CPU, eager CUDA when present) and ratios against a baseline model
(the teacher) that is measured in the same run with the same settings. Sentence and tagging tasks
alike (data/kinds.py): a tagger's metrics, predictions and loyalty are per labelled word."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertcompress.core.errors import UserError
from bertcompress.core.log import log
from bertcompress.data.advglue import advglue_sets
from bertcompress.data.config import DataConfig
from bertcompress.data.encoding import encode_examples
from bertcompress.data.examples import Example, TaskSpec
from bertcompress.data.kinds import kind_of, load_examples, split_description
from bertcompress.evaluation.attack import Candidates, build_candidates
from bertcompress.evaluation.attack import attack as run_attack
from bertcompress.evaluation.config import AttackConfig
from bertcompress.evaluation.loyalty import loyalty
from bertcompress.evaluation.metrics import learned, predictions_from_logits
from bertcompress.evaluation.predict import batches, predict_logits, scored_outputs
from bertcompress.evaluation.profile import (
    bytes_on_disk,
    onnx_latency,
    parameter_counts,
    profile_latency,
    ratios_against,
)
from bertcompress.evaluation.task_scores import task_scores, trivial_baseline
from bertcompress.models.loading import check_task_model, load_model, load_tokenizer, resolve_model_path


def evaluate(models: list[str], data: DataConfig, *, split: str | None = None, latency: bool = True,
             onnx: bool = True, seq_len: int = 128, batch_sizes: tuple[int, ...] = (1, 32),
             threads: int | None = None, repeats: int = 10, warmup: int = 3, cuda: bool | None = None,
             baseline: str | None = None, onnx_dir: str | None = None, loyalty_to: str | None = None,
             attack: bool | AttackConfig = False, advglue: str | None = None) -> list[dict[str, Any]]:
    """One record per model: task metrics, parameter counts, bytes on disk, latency and
    `ratios` against `baseline` (default: the first model; added to the run if not listed).

    latency: time PyTorch eager on the CPU (and CUDA when present, or as `cuda` says).
    onnx: also export each model to ONNX, check ONNX Runtime's predictions against PyTorch's on
    the split, and time it; exports go to `onnx_dir` if given, else to a temporary folder.
    threads: CPU threads for both runtimes (default: torch's current count), stated in each record.
    loyalty_to: a model (the teacher) whose predictions every record's label and probability
    loyalty are measured against (added to the run if not listed).
    attack: the word-substitution attack on every model, on the same examples with the same
    candidate words (True: 200 of the split's examples, or an AttackConfig): candidates come from
    `attack.candidates_from`, else from the reference model (loyalty_to, else baseline, else the
    first model), built once. advglue: AdvGLUE's dev_ann.json, for the accuracy on each of the
    task's sets (MNLI: matched and mismatched, in `advglue`); `advglue_accuracy` is the set that
    matches the split (MNLI's mismatched one for a `*mismatched` split).
    """
    if not models:
        raise UserError("evaluate needs at least one model")
    models = list(models)
    for extra in (loyalty_to, baseline):
        if extra is not None and extra not in models:
            models.insert(0, extra)
    threads = threads or torch.get_num_threads()
    split = split or data.eval_split
    task, examples = load_examples(data, split, allow_tagging=True)  # encoded per model: each has its own tokenizer
    described = split_description(data, split)  # records say when a split is held out of one file
    kind = kind_of(task)
    if not kind.robustness and (attack or advglue is not None):
        raise UserError(f"the word-substitution attack and AdvGLUE score sentence tasks; task {task.name} is a "
                        f"{kind.name} task")
    attack_cfg = (attack if isinstance(attack, AttackConfig) else AttackConfig(max_examples=200, progress=True)) \
        if attack else None
    adv_examples = advglue_sets(advglue, task) if advglue is not None else None
    candidates = build_candidates(attack_cfg, loyalty_to or baseline or models[0]) if attack_cfg else None
    settings = dict(latency=latency, onnx=onnx, seq_len=seq_len, batch_sizes=tuple(batch_sizes), threads=threads,
                    repeats=repeats, warmup=warmup, cuda=cuda, keep_onnx=onnx_dir is not None,
                    attack_cfg=attack_cfg, candidates=candidates, adv_examples=adv_examples)
    with tempfile.TemporaryDirectory(prefix="bertcompress-onnx-") as scratch:
        scored = [_evaluate_one(name, i, task, examples, described, data, Path(onnx_dir or scratch), **settings)
                  for i, name in enumerate(models)]
    records = [record for record, _ in scored]
    trivial = trivial_baseline(task, examples)  # the same split for every model
    for r in records:
        r.update(trivial, learned=learned(r["score"], trivial["trivial_score"]))
    ref = records[models.index(baseline) if baseline is not None else 0]
    for r in records:
        r["baseline"] = ref["model"]
        r["ratios"] = ratios_against(ref, r)
    if loyalty_to is not None:
        teacher_logits = scored[models.index(loyalty_to)][1]
        for record, logits in scored:
            record["loyalty_to"] = loyalty_to
            record.update(loyalty(teacher_logits, logits, regression=task.is_regression))
    return records


def _evaluate_one(name: str, index: int, task: TaskSpec, examples: list[Example], split: str, data: DataConfig,
                  onnx_folder: Path, *, latency: bool, onnx: bool, seq_len: int, batch_sizes: tuple[int, ...],
                  threads: int, repeats: int, warmup: int, cuda: bool | None, keep_onnx: bool,
                  attack_cfg: AttackConfig | None, candidates: Candidates | None,
                  adv_examples: dict[str, list[Example]] | None) -> tuple[dict[str, Any], np.ndarray]:
    kind = kind_of(task)
    tokenizer = load_tokenizer(name)
    model = load_model(name, kind.model_kind, num_labels=task.num_labels).eval()
    check_task_model(model, name, "model", kind.architecture, task.num_labels, task.name,
                     "evaluate a model fine-tuned or distilled on the task")
    features = kind.encode(tokenizer, examples, task, data.max_seq_len)
    collate = kind.collator(tokenizer.pad_token_id or 0)
    logits = predict_logits(model, features, collate).numpy()  # one row per example, or per tagged word
    record: dict[str, Any] = {"model": name, "task": task.name, "split": split, "examples": len(examples),
                              "unit": kind.unit, "metric": task.metrics[0], **task_scores(task, logits, features),
                              **parameter_counts(model), "bytes_on_disk": bytes_on_disk(resolve_model_path(name)),
                              "versions": _versions()}
    timing = dict(batch_sizes=batch_sizes, seq_len=seq_len, repeats=repeats, warmup=warmup)
    if latency:  # PyTorch first, before an ONNX Runtime session's worker threads compete for the cores
        record.update(profile_latency(model, threads=threads, cuda=cuda, **timing))
    if onnx:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).name or "model")
        session, record["onnx"] = _onnx_check(model, onnx_folder / f"{index:02d}-{stem}.onnx", task, logits,
                                              features, collate, threads, keep_onnx)
        if latency and session is not None:
            record["latency_onnx"] = onnx_latency(session, model, **timing)
        del session  # frees ORT's thread pool before the next model is timed
    if adv_examples is not None:
        record["advglue"] = {}
        for set_name, adv in adv_examples.items():
            adv_logits = predict_logits(model, encode_examples(tokenizer, adv, data.max_seq_len), collate).numpy()
            correct = predictions_from_logits(task, adv_logits) == np.array([e.label for e in adv])
            record["advglue"][set_name] = {"examples": len(adv), "accuracy": float(np.mean(correct))}
        own = "mnli-mm" if "mismatched" in split and "mnli-mm" in adv_examples else next(iter(adv_examples))
        record["advglue_set"] = own
        record["advglue_examples"] = record["advglue"][own]["examples"]
        record["advglue_accuracy"] = record["advglue"][own]["accuracy"]
    if attack_cfg is not None:
        result = run_attack(model, tokenizer, examples, config=attack_cfg, candidates=candidates)
        record["attack"] = {k: v for k, v in result.items() if k != "records"}
        record.update({k: result[k] for k in ("attack_accuracy", "attack_success_rate")})
    return record, logits


def _onnx_check(model, path: Path, task: TaskSpec, torch_logits: np.ndarray, features, collate, threads: int,
                keep: bool) -> tuple[Any, dict[str, Any]]:
    """Export, load, and compare ONNX Runtime with PyTorch on the split. A failed export is
    recorded (and the ONNX parts skipped), not raised: the other numbers still stand."""
    from bertcompress.export.onnx import EXPORTER, export_onnx, onnx_logits, onnx_session

    try:
        export_onnx(model, path)
        session = onnx_session(path, threads)
        ort_logits = np.concatenate([scored_outputs(onnx_logits(session, b), b) for b in batches(features, collate)])
    except Exception as e:  # noqa: BLE001 - any exporter or runtime failure
        message = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        log.info(f"ONNX export of {path.stem} failed: {message}")
        return None, {"exporter": EXPORTER, "error": message}
    info: dict[str, Any] = {"exporter": EXPORTER, "path": str(path) if keep else None, "bytes": path.stat().st_size,
                            "max_abs_logit_diff": float(np.abs(ort_logits - torch_logits).max(initial=0.0))}
    if not task.is_regression:
        same = predictions_from_logits(task, ort_logits) == predictions_from_logits(task, torch_logits)
        info["prediction_agreement"] = float(same.mean()) if len(same) else 1.0
    return session, info


def _versions() -> dict[str, str]:
    import onnxruntime
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__}


def compare(teacher: dict[str, Any], student: dict[str, Any]) -> dict[str, float]:
    """Student-against-teacher ratios (> 1 means the student is smaller or faster); CPU eager
    latency only, as the pipeline's report states it (records' `ratios` have every runtime)."""
    return {k: v for k, v in ratios_against(teacher, student).items()
            if not k.startswith(("latency_ratio_onnx", "latency_ratio_cuda"))}


def records_markdown(records: list[dict[str, Any]]) -> str:
    """A table of records, one row per model: split, score, size, median latency per runtime and batch."""
    columns = [(key, batch) for key, label in _RUNTIMES for batch in
               sorted({b for r in records for b in r.get(key, {})}, key=lambda b: int(b[5:]))]
    head = ["model", "split", "score", "trivial", "parameters", "MB on disk"]
    head += [f"{b} {dict(_RUNTIMES)[k]} ms" for k, b in columns]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        trivial = f"{r['trivial_score']:.4f}" if "trivial_score" in r else "-"
        cells = [Path(r["model"]).name or r["model"], r.get("split", "-"), f"{r['score']:.4f}", trivial,
                 f"{r['parameters']:,}", f"{r['bytes_on_disk'] / 1e6:.1f}"]
        cells += [f"{r[k][b]['median_ms']:.1f}" if b in r.get(k, {}) else "-" for k, b in columns]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


_RUNTIMES = (("latency", "CPU"), ("latency_onnx", "ORT"), ("latency_cuda", "CUDA"))
