"""`run --budget`: does the main job meet the user's budget, and is its pick as good as a hand-picked shape?

On two tasks (a seeded SST-2 sample, MRPC) and two teachers (the default all-MiniLM-L6-v2 and the
base all-mpnet-base-v2, when `bertcompress install-teacher` has installed it), three latency
budgets (speed-ups over the teacher, so they mean the same on any machine) and one size budget
each. Per budget:
  - the pick: `run --budget B` unchanged (the whole grid, every format), its decision time, the
    final model's re-measured latency and size against the budget, its score and retention;
  - the hand-picked shapes: of a fixed list of shapes an engineer would try (`HAND_PICKED`), the
    three with the most parameters outside the embeddings (the pick's measure) whose untrained
    cost meets the budget (each timed once, beside the teacher, by a one-candidate dry run), each
    built by `run` the same way (a grid of that one candidate), kept when its final re-measure
    meets the budget; the best of them by score.
Every run starts from the same fine-tuned teacher (fine-tuned once per teacher and task with run's
own settings, then hard-linked into each run's folder, which `run --resume` reuses), and a model
needed at several budgets is trained once.

Targets (benchmarks/results/budget.json, `targets`): every budget met on the final re-measure; the
pick within 1 point of the best hand-picked shape at the same budget; every decision (measure and
pick) under 2 minutes on the CPU.

    python benchmarks/budget.py                         # everything: many hours on 2 CPU cores
    python benchmarks/budget.py --teachers default --tasks sst2
    python benchmarks/budget.py --smoke                 # the script end to end on tiny slices (minutes)
    python benchmarks/budget.py --teachers default --tasks sst2 --budgets 4x 25MB --hand-picked 2 \
        --set data.max_train_examples=2000 ...          # a CPU session's share (benchmarks/README.md)
Resumable: finished runs in --work (default ~/.cache/bertcompress-bench/budget) are reused, an
interrupted one continues; the JSON is written after every budget. --smoke writes
benchmarks/results/budget_smoke.json in --work/smoke, so it never overwrites the real results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from common import RESULTS, SHARED_DATA, environment, load_json, print_table, write_result

TEACHERS = {"default": "all-MiniLM-L6-v2", "base": "all-mpnet-base-v2"}
# three latency budgets and one size budget per teacher (about a quarter of its fp32 file)
BUDGETS = {"default": ["2x", "4x", "8x", "25MB"], "base": ["3x", "6x", "12x", "100MB"]}
# shapes an engineer would try by hand, as (layers, hidden, format): half and a third of the depth,
# narrower TinyBERT-like shapes, and the quantized teacher-width students
HAND_PICKED = {
    "default": [(3, 384, "fp32"), (2, 384, "fp32"), (4, 256, "fp32"), (4, 192, "fp32"), (2, 192, "fp32"),
                (1, 384, "fp32"), (3, 384, "onnx-int8"), (6, 384, "w4a8"), (3, 384, "w4a8"), (2, 192, "w4a8")],
    "base": [(6, 768, "fp32"), (4, 768, "fp32"), (4, 512, "fp32"), (4, 384, "fp32"), (2, 384, "fp32"),
             (2, 768, "fp32"), (6, 768, "onnx-int8"), (6, 768, "w4a8"), (4, 384, "w4a8"), (2, 384, "w4a8")]}
TEACHER_LR = {"default": 1e-4, "base": 2e-5}  # run's default (MiniLM) and glue_base's for the base teacher
LOOSE = "100000ms"  # a budget every candidate meets: a hand-picked shape is built whatever its cost
SMOKE_OVERRIDES = ["data.max_train_examples=64", "data.max_eval_examples=48", "corpus.max_sequences=64",
                   "augment.enabled=false", "latency=false", "finetune.max_steps=4", "general.max_steps=4",
                   "task_intermediate.max_steps=4", "task_prediction.max_steps=4", "quantize.max_steps=4",
                   "finetune.min_steps=0", "task_intermediate.min_steps=0", "task_prediction.min_steps=0",
                   "finetune.keep_best=false", "task_prediction.keep_best=false", "budget.depths=[1,2]",
                   "budget.widths=[128,384]", "budget.rounds=2", "budget.repeats=3"]


def task_data(task: str, sst2_train: int) -> list[str]:
    if task == "sst2":
        return ["data.task=sst2", f"data.path={SHARED_DATA / 'glue' / 'SST-2'}",
                f"data.max_train_examples={sst2_train}"]
    return ["data.task=mrpc", f"data.path={SHARED_DATA / 'glue' / 'MRPC'}"]


def pipeline_config(overrides: list[str]):
    from bertcompress.core.config import load_config
    from bertcompress.pipeline.config import PipelineConfig

    return load_config(PipelineConfig, None, overrides)


def shared_teacher(base: list[str], folder: Path) -> Path:
    """The teacher fine-tuned once, as `run`'s teacher stage would (same config, same seed)."""
    from bertcompress.core.io import is_output
    from bertcompress.methods.finetune.config import FinetuneConfig
    from bertcompress.methods.finetune.verb import finetune

    cfg = pipeline_config(base + [f"output={folder.parent / 'unused'}"])
    if not is_output(folder):
        print(f"[budget] fine-tuning the teacher into {folder}", flush=True)
        finetune(FinetuneConfig(model=cfg.teacher, data=cfg.data, train=cfg.finetune, output=str(folder),
                                seed=cfg.seed), resume=(folder.parent / f".{folder.name}.checkpoints").is_dir())
    return folder


def run_once(overrides: list[str], out: Path, teacher: Path) -> dict[str, Any]:
    """`run` into `out` (the finished report reused), starting from the shared fine-tuned teacher."""
    from bertcompress.core.config import save_config
    from bertcompress.core.io import is_output
    from bertcompress.pipeline.verb import run

    if (out / "report.json").is_file():
        return json.loads((out / "report.json").read_text())
    cfg = pipeline_config(overrides + [f"output={out}"])
    if not is_output(out):  # a run folder holding the finished teacher stage, for run --resume to reuse
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out)
        shutil.copytree(teacher, out / "teacher", copy_function=os.link, dirs_exist_ok=True)
    return run(cfg, resume=True)


def dry_run(overrides: list[str], out: Path) -> dict[str, Any]:
    """The decision alone (nothing written to `out`): the budget section `run --dry-run` returns, or
    the refusal."""
    from bertcompress.core.errors import UserError
    from bertcompress.pipeline.verb import run

    cfg = pipeline_config(overrides + ["budget.dry_run=true", f"output={out}"])
    try:
        return run(cfg)["budget"]
    except UserError as e:
        return {"refused": str(e)}


def only(layers: int, hidden: int, fmt: str) -> list[str]:
    """A grid of that one candidate: `run` builds it as it would build a pick of that shape."""
    return [f"budget.depths=[{layers}]", f"budget.widths=[{hidden}]", f"budget.formats=[{fmt}]"]


def final_entry(report: dict[str, Any], budget: str) -> dict[str, Any]:
    """A built model against `budget`, from its final re-measure (the run's own budget may be another)."""
    from bertcompress.evaluation.budget import check, parse_budgets

    final = report["budget"]["final"]
    (result,) = check(final, parse_budgets([budget]), final["teacher_ms"])
    return {"name": report["budget"]["pick"]["name"], "score": report["budget"]["final"]["score"],
            "retention": final.get("retention"), "latency_ms": final["latency_ms"], "teacher_ms": final["teacher_ms"],
            "speedup": final["speedup"], "bytes": final["bytes"], "parameters": final["parameters"],
            "value": result["value"], "limit": result["limit"], "met": result["met"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teachers", nargs="+", choices=tuple(TEACHERS), default=list(TEACHERS))
    ap.add_argument("--tasks", nargs="+", choices=("sst2", "mrpc"), default=["sst2", "mrpc"])
    ap.add_argument("--sst2-train", type=int, default=10000, help="seeded SST-2 training sample")
    ap.add_argument("--hand-picked", type=int, default=3, help="hand-picked shapes trained per budget")
    ap.add_argument("--threads", type=int, default=None, help="budget.threads (default: torch's count)")
    ap.add_argument("--budgets", nargs="+", help="these budgets for every teacher (default: BUDGETS, four each)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a `run` override for every run, the shared teacher included (a smaller training budget "
                    "for a CPU session; recorded in the JSON's settings)")
    ap.add_argument("--work", default=str(Path.home() / ".cache" / "bertcompress-bench" / "budget"))
    ap.add_argument("--smoke", action="store_true", help="tiny slices, one budget of each kind, the default "
                    "teacher on SST-2: the script end to end (numbers mean nothing)")
    args = ap.parse_args()
    from bertcompress.models.loading import resolve_model_path

    work = Path(args.work) / ("smoke" if args.smoke else "")
    teachers, tasks = (["default"], ["sst2"]) if args.smoke else (args.teachers, args.tasks)
    budgets = {"default": ["4x", "40MB"]} if args.smoke else BUDGETS
    if args.budgets:
        budgets = {t: args.budgets for t in budgets}
    hand = {"default": [(1, 128, "fp32"), (2, 128, "w4a8"), (1, 384, "fp32")]} if args.smoke else HAND_PICKED
    common = (SMOKE_OVERRIDES if args.smoke else []) + ([f"budget.threads={args.threads}"] if args.threads else []) \
        + args.overrides
    name = "budget_smoke" if args.smoke else "budget"
    result: dict[str, Any] = load_json(RESULTS / f"{name}.json") or {}
    result.update({"settings": {"budgets": budgets, "hand_picked": hand, "sst2_train": args.sst2_train,
                                "smoke": args.smoke, "overrides": common},
                   "environment": environment()})
    runs: dict[str, Any] = result.setdefault("runs", {})
    t_start = time.perf_counter()
    for t in teachers:
        try:
            resolve_model_path(TEACHERS[t])
        except Exception as e:  # noqa: BLE001 - the base teacher is opt-in
            runs[t] = {"skipped": f"{TEACHERS[t]} not installed ({e}); run `bertcompress install-teacher`"}
            continue
        for task in tasks:
            base = [f"teacher={TEACHERS[t]}", f"finetune.lr={TEACHER_LR[t]}", *task_data(task, args.sst2_train),
                    *common]
            folder = work / t / task
            teacher = shared_teacher(base, folder / "teacher")
            # each hand-picked shape's untrained cost, timed once beside the teacher
            costs_file = folder / "hand_costs.json"
            costs = load_json(costs_file)
            for layers, hidden, fmt in hand[t]:
                key = f"{layers}x{hidden} {fmt}"
                if key not in costs:
                    costs[key] = dry_run(base + [f"budget.targets=[{LOOSE}]", *only(layers, hidden, fmt)],
                                         folder / "dry-run")
                    costs_file.write_text(json.dumps(costs, indent=1))
            for b in budgets[t]:
                entry = measure_budget(base, b, folder, teacher, hand[t], costs, args.hand_picked)
                runs[f"{t}/{task}/{b}"] = entry
                result["targets"] = targets(runs)
                result["seconds"] = round(time.perf_counter() - t_start, 1)
                write_result(name, result)
    rows = [{"run": k, "pick": v.get("pick", {}).get("name"), "met": v.get("pick", {}).get("met"),
             "score": v.get("pick", {}).get("score"), "best hand": (v.get("best_hand_picked") or {}).get("name"),
             "hand score": (v.get("best_hand_picked") or {}).get("score"), "gap": v.get("pick_minus_best_hand"),
             "decision s": v.get("decision_seconds")} for k, v in runs.items() if "pick" in v]
    if rows:
        print_table(rows, list(rows[0]))
    print(json.dumps(result.get("targets"), indent=1))
    print(f"[budget] wrote {write_result(name, result)}")


def measure_budget(base: list[str], budget: str, folder: Path, teacher: Path, hand: list[tuple[int, int, str]],
                   costs: dict[str, Any], n_hand: int) -> dict[str, Any]:
    from bertcompress.core.errors import UserError
    from bertcompress.evaluation.budget import check, parse_budgets

    entry: dict[str, Any] = {"budget": budget}
    slug = budget.replace(".", "_")
    try:
        report = run_once(base + [f"budget.targets=[{budget}]"], folder / f"pick-{slug}", teacher)
    except UserError as e:
        return {**entry, "refused": str(e)}
    entry["decision_seconds"] = report["budget"]["decision_seconds"]
    entry["teacher_score"] = report["teacher"]["score"]
    entry["pick"] = {**final_entry(report, budget), "why": report["budget"]["pick"]["why"],
                     "init": report["budget"]["pick"]["init"], "format": report["budget"]["pick"]["format"]}
    entry["candidates_measured"] = sum(c["latency_ms"] is not None for c in report["budget"]["candidates"])
    # the hand-picked shapes whose untrained cost meets the budget, the largest first
    eligible = []
    for layers, hidden, fmt in hand:
        cost = costs[f"{layers}x{hidden} {fmt}"]
        if "refused" in cost:
            continue
        (c,) = [c for c in cost["candidates"] if c["latency_ms"] is not None]
        (r,) = check(c, parse_budgets([budget]), cost["teacher_ms"])
        if r["met"]:
            eligible.append((c["non_embedding_parameters"], layers, hidden, fmt))
    built = []
    for _, layers, hidden, fmt in sorted(eligible, reverse=True)[:n_hand]:
        key = f"{layers}x{hidden} {fmt}"
        if key == entry["pick"]["name"]:
            built.append({**entry["pick"], "same_as_pick": True})
            continue
        out = folder / f"hand-{layers}x{hidden}-{fmt}"
        try:
            built.append(final_entry(run_once(base + [f"budget.targets=[{LOOSE}]", *only(layers, hidden, fmt)], out,
                                              teacher), budget))
        except UserError as e:
            built.append({"name": key, "error": str(e)})
    entry["hand_picked"] = built
    met = [h for h in built if h.get("met")]
    best = max(met, key=lambda h: h["score"], default=None)
    entry["best_hand_picked"] = best
    entry["pick_minus_best_hand"] = round(entry["pick"]["score"] - best["score"], 4) if best else None
    return entry


def targets(runs: dict[str, Any]) -> dict[str, Any]:
    done = [v for v in runs.values() if "pick" in v]
    refused = [k for k, v in runs.items() if "refused" in v]
    gaps = [v["pick_minus_best_hand"] for v in done if v.get("pick_minus_best_hand") is not None]
    decisions = [v["decision_seconds"] for v in done]
    return {"budgets_met": sum(v["pick"]["met"] for v in done), "budgets_run": len(done), "refused": refused,
            "every_budget_met": bool(done) and not refused and all(v["pick"]["met"] for v in done),
            "worst_pick_minus_best_hand": min(gaps) if gaps else None,
            "pick_within_1_point": bool(gaps) and min(gaps) >= -0.01,
            "max_decision_seconds": max(decisions) if decisions else None,
            "decision_under_2_minutes": bool(decisions) and max(decisions) < 120}


if __name__ == "__main__":
    main()
