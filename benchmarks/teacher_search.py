"""Is `finetune.search` worth its cost? The main job's teacher recipe against the same recipe with
an Optuna search over lr and epochs, on small GLUE samples, scored on data neither picked on.

GLUE's dev split is the only labelled one here, so this script splits it in two with a fixed seed:
`dev` (the half both recipes evaluate on while training: keep_best's checkpoints and the search's
trials are chosen on it) and `test` (the other half, never seen before the final scoring). The
training sample is the one `benchmarks/any_task.py` uses (the loader's seeded sample of train).
Per task and recipe: the dev-half score (what the run itself reports, chosen on it), the
test-half score (the honest one), the trivial baseline on the test half, and the wall time.

    python benchmarks/teacher_search.py                                    # sst2-1k, mrpc-1k; 4 trials
    python benchmarks/teacher_search.py --tasks sst2-1k --trials 6 --minutes 30
Writes benchmarks/results/teacher_search.json.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import RESULTS, SHARED_DATA, environment, load_json, print_table, write_result

SAMPLES = {"sst2-1k": ("sst2", "SST-2", 1000), "mrpc-1k": ("mrpc", "MRPC", 1000),
           "sst2-2.5k": ("sst2", "SST-2", 2500), "mrpc-2.5k": ("mrpc", "MRPC", 2500)}


def split_dev(glue: Path, sub: str, into: Path, seed: int = 0) -> tuple[int, int]:
    """A GLUE-style folder in `into`: train.tsv linked, dev.tsv / test.tsv the two halves of dev."""
    folder = into / sub
    folder.mkdir(parents=True)
    (folder / "train.tsv").symlink_to((glue / sub / "train.tsv").resolve())
    header, *rows = (glue / sub / "dev.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    random.Random(seed).shuffle(rows)
    half = len(rows) // 2
    (folder / "dev.tsv").write_text(header + "".join(rows[:half]), encoding="utf-8")
    (folder / "test.tsv").write_text(header + "".join(rows[half:]), encoding="utf-8")
    return half, len(rows) - half


def run_recipe(task: str, data, train, output: Path) -> dict[str, Any]:
    from bertcompress.evaluation.evaluator import evaluate
    from bertcompress.methods.finetune.config import FinetuneConfig
    from bertcompress.methods.finetune.verb import finetune

    t0 = time.perf_counter()
    finetune(FinetuneConfig(data=data, train=train, output=str(output)))
    seconds = round(time.perf_counter() - t0, 1)
    result = load_json(output / "bertcompress_result.json")
    (test,) = evaluate([str(output)], data, split="test", latency=False, onnx=False)
    entry = {"dev_half": result["dev"]["score"], "test_half": test["score"],
             "baseline_test_half": test["trivial_score"], "learned_on_test_half": test["learned"],
             "metric": test["metric"], "seconds": seconds,
             "best_step": result.get("best_step")}
    if "search" in result:
        entry["search"] = result["search"]
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", choices=SAMPLES, default=["sst2-1k", "mrpc-1k"])
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=30.0, help="the search's time budget per task")
    ap.add_argument("--glue", type=Path, default=SHARED_DATA / "glue")
    ap.add_argument("--work", type=Path, default=Path("/tmp/teacher_search"))
    args = ap.parse_args()
    from bertcompress.pipeline.config import PipelineConfig
    from bertcompress.train.config import SearchConfig

    defaults = PipelineConfig()
    result = load_json(RESULTS / "teacher_search.json")
    result.setdefault("tasks", {})
    result["settings"] = {"recipe": "PipelineConfig().finetune (the main job's teacher recipe)",
                          "search": f"the same with finetune.search.trials={args.trials}, minutes={args.minutes}",
                          "dev": "seeded halves of GLUE dev: dev (selection) and test (final scoring only)"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="teacher_search-") as scratch:
        for name in args.tasks:
            task, sub, n = SAMPLES[name]
            halves = split_dev(args.glue, sub, Path(scratch) / name)
            data = replace(defaults.data, task=task, path=str(Path(scratch) / name), max_train_examples=n)
            print(f"\n=== {name}: {n} train, dev halves {halves}", flush=True)
            entry = {"examples": {"train": n, "dev_half": halves[0], "test_half": halves[1]}}
            entry["default"] = run_recipe(task, data, defaults.finetune, args.work / name / "default")
            searched = replace(defaults.finetune, search=SearchConfig(trials=args.trials, minutes=args.minutes))
            entry["search"] = run_recipe(task, data, searched, args.work / name / "search")
            entry["test_gain"] = entry["search"]["test_half"] - entry["default"]["test_half"]
            entry["time_ratio"] = entry["search"]["seconds"] / entry["default"]["seconds"]
            result["tasks"][name] = entry
            result["environment"] = environment()
            path = write_result("teacher_search", result)
            for recipe in ("default", "search"):
                r = entry[recipe]
                rows.append({"task": name, "recipe": recipe, "metric": r["metric"], "dev_half": r["dev_half"],
                             "test_half": r["test_half"], "baseline": r["baseline_test_half"],
                             "seconds": r["seconds"]})
    print()
    print_table(rows, ["task", "recipe", "metric", "dev_half", "test_half", "baseline", "seconds"])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
