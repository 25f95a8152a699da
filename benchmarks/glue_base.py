"""A base-size teacher compressed the TinyBERT way, on GLUE SST-2 and MRPC.

Teacher: all-mpnet-base-v2 (MPNet, 12 layers x 768, 109.5M parameters, installed offline by
`bertcompress install-teacher`), fine-tuned per task: a seeded sample of SST-2 train (`--sst2-train`,
4,000; 64 tokens) and all of MRPC train (3,668 pairs, 128 tokens), `--teacher-epochs` (2) at lr 2e-5,
ending on its best checkpoint on a validation slice carved from train (10%; dev only reports).

Students (default: the three minilm ones), as practitioners start from General_TinyBERT: from
all-MiniLM-L6-v2, itself a distilled general model (BERT, 6 x 384, 22.7M, its own tokenizer), with
task distillation only:
  `minilm-6x384`: MiniLM whole;
  `minilm-4x312`: MiniLM cut to TinyBERT-4's shape (4 x 312, 12 heads, FFN 1200) by ETD-Impt
  (`extract`, Taylor importance scored on WikiText-2; its layers are the uniform mapping's, 2, 3, 5, 6);
  `minilm-3x384`: MiniLM's layers 2, 4, 6 (ETD-Impt at full width).
Each student reads the text with MiniLM's tokenizer and the teacher with its own (the same WordPiece
cuts, so every piece aligns; data/alignment.py). Task distillation per task: TinyBERT's two phases,
`--task-epochs` (3) of the intermediate-layer losses, then `--prediction-epochs` (3) of the
prediction loss ending on its best validation checkpoint, on the task data plus TinyBERT
augmentation (`--augment-n` (3) new texts for each of the first `--augment-max-examples` (1,500)
training examples, both sides of a pair; candidates: the teacher's embedding neighbours, since no
pre-trained masked LM is offline; stop words and negations kept). The teacher's outputs are computed
once per task and read back by every student (teacher_cache; its build is the first student's
stage time, `teacher_cache.build_seconds`). `cache_check`: the same task distillation of the
4x312, `--cache-check-steps` (40) steps of each phase with the teacher run live and with the cache,
in this run (seconds per training step and per epoch, and their ratio). Then KDLSQ w4a8 (4-bit
weights and embeddings, 8-bit activations, `--kdlsq-epochs`, distilled from the student's own fp32
copy as in the KDLSQ paper, `--kdlsq-teacher teacher` for the fine-tuned teacher) of the best 4x312
of each task by validation score, exported packed and as an int8 ONNX model.

The earlier students (`--students 4x312-rand 4x312-impt 6x768`, 2026-12-01) start from general
distillation on WikiText-2 from the pre-trained teacher (`--general-steps`, 60 at the CPU preset):
random weights, an ETD-Impt cut of the teacher, or the teacher's layers 2, 4, ..., 12; their result
is kept whole under `earlier_runs` (its own teacher, data and timing, never mixed into this run's
table).

Measured for the teacher and every student, per task: dev score (SST-2 accuracy on 872 sentences,
MRPC F1 on 408 pairs), retention (student / teacher), label and probability loyalty to the teacher
(same dev split), parameters and bytes of weights on disk with `size_ratio` and `disk_ratio`
(teacher / student; a w4a8 model has the fp32 student's parameter count, its bytes are the packed
file), and CPU latency on a synthetic batch of 1 and of 32 sequences of 128 tokens, PyTorch eager and
ONNX Runtime, `--threads` threads (default 1), all models timed in one phase at the end, after all
training, each measure the least of `--timing-rounds` (3) interleaved medians of `--repeats` (5)
calls (one median of the same model varied by 30% on this shared machine): `latency_ratio_batch1/32`
= teacher ms / student ms in PyTorch, `latency_ratio_onnx_batch1/32` in ONNX Runtime. A w4a8 model
is timed as rebuilt in PyTorch (dequantized fp32 weights, fake-quantized activations: not a
deployable speed) and as its int8 ONNX model in ONNX Runtime (the deployable one).
Latency does not depend on the weights or the task: each architecture is timed once, on the first
task's model, and the other task's model of that architecture gets the same times
(`latency_timed_on`). `stage_seconds`: the wall time of every stage a model needed (the fine-tuned
teacher, the shared extraction and general distillation counted whole for each task), from the run
that did the stage (`WORK/seconds.json`); `recipe` sums them per task, next to TinyBERT's recipe.

Targets (`targets`, each with a plain verdict): a 4x312 student keeps >= 97% of the teacher's SST-2
accuracy and of its MRPC F1 while >= 7x smaller (parameters) and >= 8x faster at batch 1 (PyTorch);
MiniLM whole keeps >= 99%; w4a8 >= 50x smaller than the fp32 teacher on disk and within 1 point of
its fp32 student, per task.

    python benchmarks/glue_base.py --work ~/.cache/bertcompress-bench/glue_base --task-students mrpc=minilm-4x312
                                        # what ran on 2026-12-07: about 2 h 20 min on 2 CPU threads
    python benchmarks/glue_base.py ... --measure-only      # re-time the finished models (e.g. on an idle machine)
    python benchmarks/glue_base.py --smoke --work /tmp/gb --result-name glue_base_smoke   # end to end, tiny
    python benchmarks/glue_base.py --students 4x312-rand 4x312-impt --sst2-train 4000 --teacher-epochs 2 \
        --general-steps 60 --augment-max-examples 1000 --task-epochs 1 --prediction-epochs 1 ...
                                        # the 2026-12-01 students (general distillation from the teacher)

Measured (2026-12-07, 2 threads, part of it beside other jobs): teacher fine-tuning 10.8 min (SST-2,
226 steps) and 32.2 min (MRPC, 208 steps); ETD extraction of MiniLM 14 s; task distillation 9-17 min
a student on SST-2 (6,957 texts, 3 + 3 epochs, its teacher-output cache built first: 100-270 s), 37
min for the 4x312 on MRPC (7,774 pairs, cache build 735 s); the cache check 3-5 min a task; KDLSQ 1-2
min; evaluation 1 min; timing 8 min.

Stages are reused when their output folder holds `bertcompress_config.yaml`; a stage killed half-way
resumes from its checkpoints; a --work trained with other settings is refused. The result holds the
tasks of this run and keeps, whole, the other tasks of the result it replaces when that one has the
same settings (`from_earlier_run`: their latency was timed in their own run): `--tasks mrpc` after
`--tasks sst2` completes the result even in another --work. Writes benchmarks/results/<--result-name>.json
(default glue_base) after each finished task (latency then pending) and again after the timing
phase. Contract: `tasks.<task>`
{`teacher`: {score, metric, parameters, bytes_on_disk, latency_ms, stage_seconds, ...}, `students`:
{name: {score, retention, size_ratio, disk_ratio, latency_ratio_batch1, latency_ratio_batch32,
label_loyalty, stage_seconds, ...}}}; `targets`; `settings`; `environment`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

from common import RESULTS, SHARED_DATA, Stages, environment, load_json, min_over_rounds, print_table, write_result

TEACHER = "all-mpnet-base-v2"
MINILM = "all-MiniLM-L6-v2"  # a published general student (6 x 384): the start practitioners use
TINY = dict(num_layers=4, hidden_size=312, num_heads=12, ffn_size=1200)
# name -> shape, start (`source`: whose weights; general distillation from the pre-trained teacher
# or none for a published general model), ETD strategy (None: no extraction) and learning rates
# (general, intermediate, prediction). The first three are the 2026-12-01 students (general
# distillation from the teacher: TinyBERT-4's shape and rates as glue_sst2.py; the teacher-wide
# 6x768 with smaller ones, TinyBERT-6 / BERT-base practice); the minilm ones start from MiniLM
# (whole, or cut by ETD-Impt scored on the corpus) with task distillation only, as one starts
# from General_TinyBERT.
STUDENTS: dict[str, dict[str, Any]] = {
    "4x312-rand": dict(shape=TINY, source=TEACHER, init="random", extract=None, lr=(3e-4, 3e-4, 1e-4)),
    "4x312-impt": dict(shape=TINY, source=TEACHER, init="etd-impt", extract="impt", lr=(3e-4, 3e-4, 1e-4)),
    "6x768": dict(shape=dict(num_layers=6, hidden_size=None, num_heads=None, ffn_size=None), source=TEACHER,
                  init="teacher_layers", extract=None, lr=(1e-4, 5e-5, 3e-5)),
    "minilm-6x384": dict(shape=None, source=MINILM, init="pretrained", extract=None, lr=(None, 1e-4, 5e-5)),
    "minilm-4x312": dict(shape=TINY, source=MINILM, init="pretrained, etd-impt", extract="impt",
                         lr=(None, 3e-4, 1e-4)),
    "minilm-3x384": dict(shape=dict(num_layers=3, hidden_size=None, num_heads=None, ffn_size=None), source=MINILM,
                         init="pretrained, etd-impt", extract="impt", lr=(None, 1e-4, 5e-5)),
}
DEFAULT_STUDENTS = ["minilm-6x384", "minilm-4x312", "minilm-3x384"]
TASKS = ("sst2", "mrpc")
BITS = "w4a8"
TARGET_RETENTION, TARGET_SIZE, TARGET_SPEED, TARGET_DISK, TARGET_DROP = 0.97, 7.0, 8.0, 50.0, 1.0
TARGET_RETENTION_WHOLE = 0.99  # MiniLM 6x384 whole
SMOKE = dict(sst2_train=64, mrpc_train=64, eval_examples=64, teacher_steps=2, general_steps=4, task_steps=2,
             kdlsq_steps=2, augment_max_examples=16, augment_n=2, batch=8, corpus_sequences=64, samples=16,
             repeats=2, warmup=1)
ARCH_OF = {"teacher": "teacher", **{n: n for n in STUDENTS}}  # the w4a8 models: "4x312-w4a8"


def task_data(task: str, s: dict[str, Any]):
    from bertcompress.data.config import DataConfig

    folder, seq_len = {"sst2": ("SST-2", 64), "mrpc": ("MRPC", 128)}[task]
    return DataConfig(task=task, path=str(SHARED_DATA / "glue" / folder), max_seq_len=seq_len,
                      max_train_examples=s["sst2_train"] if task == "sst2" else s["mrpc_train"],
                      max_eval_examples=s["eval_examples"])


def selection_score(folder: Path) -> float:
    """The score a student was chosen by: its validation slice (carved from train), never dev."""
    record = json.loads((folder / "bertcompress_result.json").read_text())
    return record["prediction"]["chosen_on_score"]["score"]


def evaluate_task(models: list[Path], data, cache: Path) -> tuple[list[dict[str, Any]], bool]:
    """Scores, sizes and loyalty to the teacher (the first model) on the task's dev split, no
    latency; kept in `cache` while the same finished models are asked for again. Also: whether
    they were computed in this call."""
    from bertcompress.evaluation.evaluator import evaluate

    key = [[str(m), (m / "bertcompress_result.json").stat().st_mtime] for m in models]
    cached = load_json(cache)
    if cached.get("key") == key:
        return cached["records"], False
    records = evaluate([str(m) for m in models], data, latency=False, onnx=False, loyalty_to=str(models[0]))
    cache.write_text(json.dumps({"key": key, "records": records}, indent=1))
    return records, True


def timing_measures(arch: str, folder: Path, onnx_path: Path, threads: int, repeats: int,
                    warmup: int) -> dict[str, Callable[[], float]]:
    """One latency measure per "arch/runtime/batchN": a call is the median ms of `repeats` runs of
    `batch` x 128 tokens, `threads` threads, in PyTorch eager or ONNX Runtime (`onnx_path`, exported
    here from the model when absent). Model and session are loaded once, here."""
    from bertcompress.evaluation.profile import measure_latency, measure_onnx_latency
    from bertcompress.export.onnx import export_onnx, onnx_session
    from bertcompress.models.loading import load_model

    model = load_model(str(folder), "classifier").eval()
    if not onnx_path.is_file():
        export_onnx(model, onnx_path)
    session = onnx_session(onnx_path, threads=threads)
    kw = dict(seq_len=128, repeats=repeats, warmup=warmup)
    measures = {}
    for b in (1, 32):
        measures[f"{arch}/pytorch/batch{b}"] = \
            lambda b=b: measure_latency(model, batch_size=b, threads=threads, **kw)["median_ms"]
        measures[f"{arch}/onnx/batch{b}"] = \
            lambda b=b: measure_onnx_latency(session, model, batch_size=b, **kw)["median_ms"]
    return measures


def cache_check(task_stage: Callable[..., Any], teacher: Path, start: Path | str, data, augment, cache, lr,
                tdir: Path, steps: int) -> dict[str, Any]:
    """The same task distillation, `steps` steps of each phase, with the teacher's outputs read from
    the cache and with the teacher run live, in this run: seconds per training step (evaluations and
    checkpoints left out) and per epoch. The cache is the one the task stage built (the same
    examples), so the cached run's first epoch (the build) is the stage's `build_seconds`."""
    from dataclasses import replace

    from bertcompress.methods.distill.verb import distill

    out: dict[str, Any] = {"steps_per_phase": steps}
    for mode in ("live", "cached"):
        folder = tdir / f"cache_check_{mode}"
        cfg = task_stage(teacher, start, data, augment, cache, lr, folder, steps=steps)
        if mode == "live":
            cfg = replace(cfg, teacher_cache=replace(cfg.teacher_cache, enabled=False))
        distill(cfg)
        record = json.loads((folder / "bertcompress_result.json").read_text())
        out[mode] = {phase: round(record[phase]["step_seconds"] / steps, 4)
                     for phase in ("intermediate", "prediction")}
        out["examples"] = record["train_examples"]
    steps_per_epoch = -(-out["examples"] // 32)
    out["seconds_per_epoch"] = {m: {p: round(v * steps_per_epoch, 1) for p, v in out[m].items()}
                                for m in ("live", "cached")}
    out["speedup"] = {p: round(out["live"][p] / out["cached"][p], 2) for p in ("intermediate", "prediction")}
    return out


def targets(tasks: dict[str, Any]) -> dict[str, Any]:
    """The two targets, checked on what was measured, each with a plain verdict."""
    small = {}
    for name in (n for n in STUDENTS if "4x312" in n):
        rows = {t: tasks[t]["students"][name] for t in tasks if name in tasks[t]["students"]}
        if not rows:
            continue
        first = next(iter(rows.values()))
        check: dict[str, Any] = {f"{t}_retention": rows[t].get("retention") if t in rows else None for t in TASKS}
        check.update(size_ratio=first.get("size_ratio"), latency_ratio_batch1=first.get("latency_ratio_batch1"))
        if any(v is None for v in check.values()):  # a task not run, or latency not timed yet
            check["met"] = None
        else:
            check["met"] = (all(check[f"{t}_retention"] >= TARGET_RETENTION for t in TASKS)
                            and check["size_ratio"] >= TARGET_SIZE and check["latency_ratio_batch1"] >= TARGET_SPEED)
        small[name] = check
    met = [n for n, c in small.items() if c["met"]]
    checked = {n: c for n, c in small.items() if c["met"] is not None}
    unchecked = "; ".join(f"{n}: no " + ", ".join(k for k, v in c.items() if v is None and k != "met")
                          for n, c in small.items() if c["met"] is None)
    if met:
        verdict = f"met by {', '.join(met)}"
    elif not small:
        verdict = "not measured: no 4x312 student was trained"
    elif not set(TASKS) <= set(tasks):
        verdict = "not measured: needs both SST-2 and MRPC (measured: " + ", ".join(tasks) + ")"
    elif not checked:  # a retention is missing when the teacher is at its trivial score
        verdict = f"not measured ({unchecked})"
    else:
        verdict = "not met: " + "; ".join(
            f"{n} keeps " + ", ".join(f"{t} {c[f'{t}_retention']:.1%}" for t in TASKS)
            + f", {c['size_ratio']:.1f}x smaller, {c['latency_ratio_batch1']:.1f}x faster at batch 1"
            for n, c in checked.items()) + (f" (not measured: {unchecked})" if unchecked else "")
    quant = {}
    for t, entry in tasks.items():
        q = next((r for n, r in entry["students"].items() if n.endswith(f"-{BITS}")), None)
        if q is None:
            continue
        drop = round((q["fp32_score"] - q["score"]) * 100, 2)
        quant[t] = {"model": q["quantized_from"] + f"-{BITS}", "disk_ratio": q["disk_ratio"],
                    "score_drop_points": drop, "met": q["disk_ratio"] >= TARGET_DISK and drop <= TARGET_DROP}
    if not quant:
        q_verdict = f"not measured: no {BITS} model"
    elif all(c["met"] for c in quant.values()):
        q_verdict = "met on " + ", ".join(quant)
    else:
        q_verdict = "not met: " + "; ".join(f"{t} {c['disk_ratio']:.1f}x smaller on disk, {c['score_drop_points']:+.2f}"
                                            " points below its fp32 student" for t, c in quant.items() if not c["met"])
    whole = {t: e["students"]["minilm-6x384"]["retention"] for t, e in tasks.items() if "minilm-6x384" in e["students"]}
    if not whole:
        w_verdict, w_met = "not measured: minilm-6x384 was not trained", None
    elif not set(TASKS) <= set(whole):
        w_verdict, w_met = "not measured: needs both SST-2 and MRPC (measured: " + ", ".join(whole) + ")", None
    elif None in whole.values():
        w_verdict, w_met = "not measured: no retention where the teacher is at its trivial score", None
    else:
        w_met = all(v >= TARGET_RETENTION_WHOLE for v in whole.values())
        w_verdict = ("met: " if w_met else "not met: ") + ", ".join(f"{t} {v:.1%}" for t, v in whole.items())
    return {"minilm-6x384": {"requirement": f">= {TARGET_RETENTION_WHOLE:.0%} of the teacher's SST-2 accuracy and "
                                            "MRPC F1", "retention": whole, "met": w_met, "verdict": w_verdict},
            "4x312": {"requirement": f">= {TARGET_RETENTION:.0%} of the teacher's SST-2 accuracy and MRPC F1, "
                                     f">= {TARGET_SIZE:g}x fewer parameters, >= {TARGET_SPEED:g}x faster at batch 1 "
                                     "(PyTorch, CPU)",
                      "students": small, "met": bool(met) if verdict.startswith(("met", "not met")) else None,
                      "verdict": verdict},
            BITS: {"requirement": f">= {TARGET_DISK:g}x smaller on disk than the fp32 teacher, within "
                                  f"{TARGET_DROP:g} point of its fp32 student",
                   "tasks": quant, "met": all(c["met"] for c in quant.values()) if quant else None,
                   "verdict": q_verdict}}


TINYBERT_RECIPE = ("TinyBERT (Jiao et al. 2020, section 4.2): general distillation 3 epochs over English "
                   "Wikipedia (2,500M words, 128 tokens) from BERT-base; task distillation on each task's data "
                   "with 20 augmented copies of every example: 20 epochs of the intermediate-layer losses, then "
                   "3 of the prediction loss (batch 32), on GPUs. Here: no general distillation (MiniLM is a "
                   "published general model), 1,500 examples augmented 3 times, 3 + 3 epochs, on the CPU.")


def recipe(seconds: dict[str, float], students: list[str]) -> dict[str, Any]:
    """The CPU time of the whole recipe, stage by stage, per task: teacher, extraction, task
    distillation of every student (each with its teacher-output cache build), KDLSQ."""
    per_task = {}
    for task in TASKS:
        stages = {k: v for k, v in seconds.items()
                  if k == f"teacher {task}" or k.startswith((f"task {task} ", f"kdlsq {task} "))
                  or (k.startswith("extract ") and k.split(" ", 1)[1] in students)}
        if stages:
            per_task[task] = {"stages": stages, "total_seconds": round(sum(stages.values()), 1)}
    return {"per_task": per_task, "tinybert": TINYBERT_RECIPE}


def earlier_runs(path: Path, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The results of earlier runs trained with other settings (another recipe, other students),
    kept whole beside this run's, never mixed into its table: their teacher, data and timing were
    their own."""
    old = load_json(path)
    if not old:
        return []
    runs = old.pop("earlier_runs", [])
    run_keys = ("tasks_run", "students_run", "task_students", "latency_threads")
    same = {k: v for k, v in old.get("settings", {}).items() if k not in run_keys} == settings
    return runs if same else runs + [old]


def earlier_tasks(path: Path, settings: dict[str, Any], tasks_now: list[str]) -> dict[str, Any]:
    """The tasks of an earlier result with the same settings that this run does not redo, kept
    whole (their latency from their own run), so a run of one task completes a result of the other;
    a result trained with other settings is replaced, not merged."""
    old = load_json(path)
    run_keys = ("tasks_run", "students_run", "task_students", "latency_threads")
    if not old or {k: v for k, v in old.get("settings", {}).items() if k not in run_keys} != settings:
        return {}
    return {t: {**e, "from_earlier_run": True} for t, e in old.get("tasks", {}).items() if t not in tasks_now}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="runs/glue_base", help="folder for the trained models")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--students", nargs="+", default=DEFAULT_STUDENTS, choices=list(STUDENTS))
    ap.add_argument("--task-students", nargs="*", default=[], metavar="TASK=NAME,NAME",
                    help="a task's own students, of --students (e.g. mrpc=minilm-4x312: a CPU session's budget)")
    ap.add_argument("--sst2-train", type=int, default=4000, help="SST-2 training sentences (seeded sample)")
    ap.add_argument("--teacher-epochs", type=float, default=2.0)
    ap.add_argument("--general-steps", type=int, default=200, help="general-distillation steps (batch 32)")
    ap.add_argument("--task-epochs", type=float, default=3.0, help="epochs of the intermediate-layer phase")
    ap.add_argument("--prediction-epochs", type=float, default=3.0,
                    help="epochs of the prediction phase (ending on its best validation checkpoint)")
    ap.add_argument("--augment-max-examples", type=int, default=1500, help="training examples augmented")
    ap.add_argument("--augment-n", type=int, default=3, help="augmented sentences per augmented example")
    ap.add_argument("--cache-check-steps", type=int, default=40,
                    help="steps of each phase timed with and without the teacher cache (0: no check)")
    ap.add_argument("--kdlsq-epochs", type=float, default=1.0)
    ap.add_argument("--kdlsq-teacher", choices=("student", "teacher"), default="student",
                    help="KDLSQ distils from the student's fp32 copy (the paper) or the fine-tuned teacher")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of the latency measurements")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per latency measurement (their median)")
    ap.add_argument("--timing-rounds", type=int, default=3,
                    help="interleaved rounds of every latency measurement; the least is kept")
    ap.add_argument("--measure-only", action="store_true", help="only re-time the finished models")
    ap.add_argument("--result-name", help="writes benchmarks/results/NAME.json (default glue_base; with --smoke "
                                          "glue_base_smoke)")
    ap.add_argument("--smoke", action="store_true",
                    help="a few steps on tiny samples, to check the script end to end (numbers mean nothing)")
    args = ap.parse_args()
    task_students: dict[str, list[str]] = {}
    for item in args.task_students:
        task, _, names = item.partition("=")
        task_students[task] = names.split(",")
        if task not in TASKS or not set(task_students[task]) <= set(args.students):
            ap.error(f"--task-students {item}: a task of {TASKS} and students of --students")

    from bertcompress.data.config import CorpusConfig
    from bertcompress.methods.distill.config import AugmentConfig, DistillConfig, TeacherCacheConfig
    from bertcompress.methods.distill.verb import distill
    from bertcompress.methods.finetune.config import FinetuneConfig
    from bertcompress.methods.finetune.verb import finetune
    from bertcompress.methods.prune.config import ExtractConfig
    from bertcompress.methods.prune.verb import extract
    from bertcompress.methods.quantize.config import QuantizeTrainConfig
    from bertcompress.methods.quantize.verb import quantize
    from bertcompress.models.config import StudentConfig
    from bertcompress.models.loading import resolve_model_path
    from bertcompress.models.quantized.config import QuantConfig
    from bertcompress.train.config import TrainConfig

    s: dict[str, Any] = dict(sst2_train=args.sst2_train, mrpc_train=None, eval_examples=None, teacher_steps=None,
                             general_steps=args.general_steps, task_steps=None, kdlsq_steps=None,
                             augment_max_examples=args.augment_max_examples, augment_n=args.augment_n, batch=32,
                             corpus_sequences=None, samples=256, repeats=args.repeats, warmup=3)
    if args.smoke:
        s.update(SMOKE)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    bs = s["batch"]

    def train(epochs: float, lr: float, steps: int | None, **kw) -> TrainConfig:
        return TrainConfig(epochs=epochs, max_steps=steps, lr=lr, batch_size=bs, **kw)

    # the stages' settings: a --work trained with other ones is not reused
    settings = {"teacher": TEACHER, "teacher_path": resolve_model_path(TEACHER), "smoke": args.smoke,
                **{k: v for k, v in s.items() if k not in ("repeats", "warmup")},
                "teacher_epochs": args.teacher_epochs, "teacher_lr": 2e-5, "task_epochs": args.task_epochs,
                "prediction_epochs": args.prediction_epochs, "teacher_cache": "float16, layer outputs",
                "kdlsq_epochs": args.kdlsq_epochs, "kdlsq_teacher": args.kdlsq_teacher, "kdlsq_lr": 5e-5,
                "corpus": "wikitext-2 valid+test, 128 tokens", "students": {n: STUDENTS[n] for n in STUDENTS}}
    settings = json.loads(json.dumps(settings))  # tuples as lists, as they read back
    saved = load_json(work / "settings.json")
    if saved and saved != settings:
        changed = sorted(k for k in settings.keys() | saved.keys() if settings.get(k) != saved.get(k))
        raise SystemExit(f"{work} was trained with other settings ({', '.join(changed)}); use another --work")
    (work / "settings.json").write_text(json.dumps(settings, indent=1))

    timed = Stages(work, args.measure_only, tag="glue_base")
    seconds = timed.seconds
    cache_seconds: dict[str, float | None] = {}
    cache_checks: dict[str, Any] = {}

    def task_stage(teacher: Path, start: Path | str, data, augment, cache, lr, output: Path, *,
                   steps: int | None = None) -> DistillConfig:
        """Task distillation (intermediate phase, then prediction phase ending on its best validation
        checkpoint); `steps`: a fixed number of steps per phase, no evaluation (the cache check)."""
        # the check keeps keep_best (so the same validation slice is carved: the same training
        # examples, the same cached outputs) and times the steps alone (step_seconds)
        prediction = train(args.prediction_epochs, lr[2], s["task_steps"], keep_best=True, eval_every=100) \
            if steps is None else train(1, lr[2], steps, keep_best=True, eval_every=10 ** 6)
        return DistillConfig(stage="task", teacher=str(teacher), student_path=str(start), data=data,
                             augment=augment, teacher_cache=cache, output=str(output),
                             train=train(args.task_epochs, lr[1], steps or s["task_steps"]),
                             prediction_train=prediction)

    corpus = CorpusConfig(path=str(SHARED_DATA / "corpus" / "wikitext-2"), max_seq_len=128,
                          max_sequences=s["corpus_sequences"])
    # the start of each student, shared by the tasks: general distillation from the pre-trained
    # teacher (after an ETD extraction from it, or none), or MiniLM (whole, or its ETD cut)
    general: dict[str, Path | str] = {}
    general_stages: dict[str, list[str]] = {}
    for name in args.students:
        spec = STUDENTS[name]
        start, stages = None, []
        if spec["extract"]:
            stages.append(f"extract {name}")
            start = timed(stages[-1], extract, ExtractConfig(
                teacher=spec["source"], output=str(work / "general" / f"{name}-extracted"), strategy=spec["extract"],
                corpus=corpus, samples=s["samples"], **spec["shape"]))
        if spec["source"] == MINILM:  # a published general model: no general distillation
            general[name], general_stages[name] = start or MINILM, stages
            continue
        stages.append(f"general {name}")
        general[name] = timed(stages[-1], distill, DistillConfig(
            stage="general", teacher=TEACHER,
            student=StudentConfig(**spec["shape"], init="teacher_layers" if spec["init"] == "teacher_layers"
                                  else "random"),
            student_path=str(start) if start else None, corpus=corpus,
            train=train(1, spec["lr"][0], s["general_steps"], log_every=10), output=str(work / "general" / name)))
        general_stages[name] = stages

    def stage_seconds(names: list[str]) -> dict[str, float | None]:
        return {n: seconds.get(n) for n in names}

    result: dict[str, Any] = {"tasks": {}, "targets": {}, "settings": settings, "environment": environment()}
    result_name = args.result_name or ("glue_base_smoke" if args.smoke else "glue_base")
    earlier = earlier_tasks(RESULTS / f"{result_name}.json", settings, args.tasks)
    result["earlier_runs"] = earlier_runs(RESULTS / f"{result_name}.json", settings)
    folders: dict[str, dict[str, Path]] = {}
    for task in args.tasks:
        data = task_data(task, s)
        tdir = work / task
        teacher_stage = f"teacher {task}"
        teacher = timed(teacher_stage, finetune, FinetuneConfig(
            model=TEACHER, data=data, output=str(tdir / "teacher"),
            train=train(args.teacher_epochs, 2e-5, s["teacher_steps"], keep_best=True, save_every=40)))
        augment = AugmentConfig(enabled=True, n_aug=s["augment_n"], max_examples=s["augment_max_examples"],
                                cache_dir=str(tdir / "augment_cache"))  # one augmentation for every student
        models: dict[str, Path] = {"teacher": teacher}
        needed: dict[str, list[str]] = {"teacher": [teacher_stage]}
        cache = TeacherCacheConfig(dir=str(work / "teacher_outputs"))
        students = task_students.get(task, args.students)
        for name in students:
            lr = STUDENTS[name]["lr"]
            stage = f"task {task} {name}"
            models[name] = timed(stage, distill, task_stage(teacher, general[name], data, augment, cache, lr,
                                                             tdir / name))
            needed[name] = [teacher_stage, *general_stages[name], stage]
            record = json.loads((models[name] / "bertcompress_result.json").read_text())
            cache_seconds[stage] = record.get("teacher_cache", {}).get("build_seconds")  # one per layer mapping
        if args.cache_check_steps and any("4x312" in n for n in students):
            name = next(n for n in students if "4x312" in n)
            check = tdir / "cache_check.json"
            if not check.is_file():
                check.write_text(json.dumps(cache_check(task_stage, teacher, general[name], data, augment, cache,
                                                        STUDENTS[name]["lr"], tdir, args.cache_check_steps), indent=1))
            cache_checks[task] = {"student": name, **json.loads(check.read_text())}
        small = [n for n in students if "4x312" in n]
        best = max(small, key=lambda n: selection_score(models[n])) if small else None
        if best:
            qname, stage = f"{best}-{BITS}", f"kdlsq {task} {best}-{BITS}"
            models[qname] = timed(stage, quantize, QuantizeTrainConfig(
                student=str(models[best]), teacher=str(teacher) if args.kdlsq_teacher == "teacher" else None,
                kd=True, quant=QuantConfig.parse(BITS), train=train(args.kdlsq_epochs, 5e-5, s["kdlsq_steps"]),
                data=data, onnx=True, output=str(tdir / qname)))
            needed[qname] = needed[best] + [stage]
        folders[task] = models

        t0 = time.perf_counter()
        records, fresh = evaluate_task(list(models.values()), data, tdir / "evaluation.json")
        if fresh:
            timed.record(f"evaluate {task}", time.perf_counter() - t0)
        t_rec = records[0]
        entry: dict[str, Any] = {"teacher": {"model": str(teacher), "metric": t_rec["metric"], "score": t_rec["score"],
                                             "trivial_score": t_rec["trivial_score"],
                                             "trivial_predictor": t_rec["trivial_predictor"],
                                             "parameters": t_rec["parameters"],
                                             "bytes_on_disk": t_rec["bytes_on_disk"], "latency_ms": None,
                                             "stage_seconds": stage_seconds(needed["teacher"])},
                                 "students": {}, "eval_split": t_rec["split"], "examples": t_rec["examples"],
                                 "best_4x312": best}
        for name, rec in zip(list(models)[1:], records[1:]):
            arch = name.removesuffix(f"-{BITS}")
            ratios = rec["ratios"]
            row = {"model": str(models[name]), "init": STUDENTS[arch]["init"], "shape": STUDENTS[arch]["shape"],
                   "score": rec["score"], "learned": rec["learned"], "retention": ratios["retention"],
                   "parameters": rec["parameters"], "bytes_on_disk": rec["bytes_on_disk"],
                   "size_ratio": ratios["size_ratio"], "disk_ratio": ratios["disk_ratio"], "latency_ms": None,
                   "latency_ratio_batch1": None, "latency_ratio_batch32": None, "label_loyalty": rec["label_loyalty"],
                   "probability_loyalty": rec["probability_loyalty"], "stage_seconds": stage_seconds(needed[name])}
            if name != arch:
                row.update(bits=BITS, quantized_from=arch, fp32_score=entry["students"][arch]["score"],
                           kdlsq_teacher=args.kdlsq_teacher, bytes_what="packed quantized.safetensors")
            row["stage_seconds_total"] = round(sum(v for v in row["stage_seconds"].values() if v), 1)
            entry["students"][name] = row
        result["tasks"][task] = entry
        result["targets"] = targets({**earlier, **result["tasks"]})
        result["latency"] = "pending: the timing phase runs after every task is trained"
        print(f"wrote {write_result(result_name, result)} ({task} trained and scored)", flush=True)

    # one timing phase for every model, after all training: each architecture once, every measure
    # in interleaved rounds, keeping its least (interference on a shared machine only adds time)
    t0 = time.perf_counter()
    timings: dict[str, dict[str, Any]] = {}
    measures: dict[str, Callable[[], float]] = {}
    for task, models in folders.items():
        for name, folder in models.items():
            arch = ARCH_OF.get(name, f"4x312-{BITS}")
            if arch not in timings:
                onnx = folder / "onnx" / "model.onnx" if name.endswith(BITS) else work / "onnx" / f"{arch}.onnx"
                timings[arch] = {"timed_on": str(folder), "runtime_onnx": "int8" if name.endswith(BITS) else "fp32",
                                 "pytorch": {}, "onnx": {}}
                measures.update(timing_measures(arch, folder, onnx, args.threads, s["repeats"], s["warmup"]))
    print(f"[glue_base] timing {len(timings)} models, {args.timing_rounds} interleaved rounds", flush=True)
    for key, ms in min_over_rounds(measures, args.timing_rounds).items():
        arch, runtime, batch = key.split("/")
        timings[arch][runtime][batch] = round(ms, 3)
    timed.record("timing", time.perf_counter() - t0)
    for task, entry in result["tasks"].items():
        t_ms = timings["teacher"]
        entry["teacher"].update(latency_ms={k: t_ms[k] for k in ("pytorch", "onnx")},
                                latency_timed_on=t_ms["timed_on"])
        for name, row in entry["students"].items():
            ms = timings[ARCH_OF.get(name, f"4x312-{BITS}")]
            row.update(latency_ms={k: ms[k] for k in ("pytorch", "onnx")}, latency_timed_on=ms["timed_on"],
                       onnx_weights=ms["runtime_onnx"])
            for b in ("batch1", "batch32"):
                row[f"latency_ratio_{b}"] = t_ms["pytorch"][b] / ms["pytorch"][b]
                row[f"latency_ratio_onnx_{b}"] = t_ms["onnx"][b] / ms["onnx"][b]
    result["latency"] = {"threads": args.threads, "seq_len": 128, "batch_sizes": [1, 32], "repeats": s["repeats"],
                         "rounds": args.timing_rounds, "warmup": s["warmup"], "input": "synthetic, every token real",
                         "w4a8": "pytorch: the packed model rebuilt (fp32 dequantized weights, fake-quantized "
                                 "activations); onnx: its int8 QDQ model"}
    result["tasks"].update(earlier)  # after timing: their latency is their own run's
    result["targets"] = targets(result["tasks"])
    result["stage_seconds"] = seconds  # a stage reused from an earlier run keeps that run's time
    result["reused_stages"] = timed.reused  # finished in an earlier run of this --work, not redone
    result["teacher_cache"] = {"build_seconds": cache_seconds, "check": cache_checks}
    result["recipe"] = recipe(seconds, args.students)
    result["wall_seconds_this_run"] = round(time.perf_counter() - t_start, 1)
    result["settings"] = {**settings, "tasks_run": args.tasks, "students_run": args.students,
                          "task_students": task_students,
                          "latency_threads": args.threads}

    rows = []
    for task, entry in result["tasks"].items():
        t = entry["teacher"]
        rows.append({"task": task, "model": "teacher", "score": t["score"], "trivial": t.get("trivial_score"),
                     "params_M": t["parameters"] / 1e6,
                     "ms_b1": t["latency_ms"]["pytorch"]["batch1"], "ms_b32": t["latency_ms"]["pytorch"]["batch32"]})
        for name, r in entry["students"].items():
            rows.append({"task": task, "model": name, "score": r["score"], "learned": r.get("learned"),
                         "retention": r["retention"],
                         "params_M": r["parameters"] / 1e6, "size_ratio": r["size_ratio"],
                         "disk_ratio": r["disk_ratio"], "ms_b1": r["latency_ms"]["pytorch"]["batch1"],
                         "ms_b32": r["latency_ms"]["pytorch"]["batch32"], "speed_b1": r["latency_ratio_batch1"],
                         "speed_b32": r["latency_ratio_batch32"], "onnx_b1": r["latency_ratio_onnx_batch1"],
                         "loyalty": r["label_loyalty"]})
    print_table(rows, ["task", "model", "score", "trivial", "learned", "retention", "params_M", "size_ratio",
                       "disk_ratio", "ms_b1", "ms_b32", "speed_b1", "speed_b32", "onnx_b1", "loyalty"])
    for name, target in result["targets"].items():
        print(f"target {name}: {target['verdict']}")
    print(f"wrote {write_result(result_name, result)}")


if __name__ == "__main__":
    main()
