"""Extract Then Distill: general distillation of the same 4×312 student from random init, from
ETD-Rand and from ETD-Impt (same corpus, steps, batches and learning rate), then task distillation
on real GLUE SST-2 and MRPC.

Reports, per init: the general-distillation loss curve, the share of steps it needs to reach the
random-init run's final loss (ETD's claim: about 30%, i.e. 70% of the compute saved), and the
dev score after task distillation (SST-2 accuracy, MRPC F1). Teachers: all-MiniLM-L6-v2 for
general distillation; for task distillation the SST-2 teacher from `glue_sst2.py --work` and an
MRPC teacher fine-tuned here. Writes benchmarks/results/etd.json (contract: one entry per init,
`random`, `etd_rand`, `etd_impt`, with steps_fraction_to_random_final_loss, sst2_accuracy, mrpc_f1).

    python benchmarks/etd.py --sst2-teacher runs/glue_sst2_cpu/teacher [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.methods.distill.config import DistillConfig
from bertcompress.methods.distill.verb import distill
from bertcompress.methods.finetune.config import FinetuneConfig
from bertcompress.methods.finetune.verb import finetune
from bertcompress.methods.prune.config import ExtractConfig
from bertcompress.methods.prune.verb import extract
from bertcompress.models.config import StudentConfig
from bertcompress.train.config import TrainConfig
from common import RESULTS, SHARED_DATA, environment, load_json, print_table, write_result

TEACHER = "all-MiniLM-L6-v2"
SHAPE = dict(num_layers=4, hidden_size=312, num_heads=12, ffn_size=1200)


def steps_to_reach(history: list[dict], target: float) -> int | None:
    """First logged step whose loss (mean of it and its neighbours, to damp batch noise) ≤ target."""
    losses = [h["loss"] for h in history]
    for i, h in enumerate(history):
        window = losses[max(0, i - 1):i + 2]
        if sum(window) / len(window) <= target:
            return h["step"]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sst2-teacher", default="runs/glue_sst2_cpu/teacher", help="teacher fine-tuned on SST-2")
    ap.add_argument("--work", default="runs/etd")
    ap.add_argument("--steps", type=int, default=300, help="general-distillation steps (same for every init)")
    ap.add_argument("--sst2-train", type=int, default=8000, help="SST-2 training sentences for task distillation")
    ap.add_argument("--task-epochs", type=float, default=1.0, help="epochs of each task-distillation phase")
    args = ap.parse_args()
    work = Path(args.work)
    t_start = time.perf_counter()
    corpus = CorpusConfig(path=str(SHARED_DATA / "corpus" / "wikitext-2"), max_seq_len=128)
    general_train = TrainConfig(max_steps=args.steps, lr=3e-4, batch_size=32, log_every=10)
    tasks = {"sst2": DataConfig(task="sst2", path=str(SHARED_DATA / "glue" / "SST-2"), max_seq_len=64,
                                max_train_examples=args.sst2_train),
             "mrpc": DataConfig(task="mrpc", path=str(SHARED_DATA / "glue" / "MRPC"), max_seq_len=128)}
    seconds: dict[str, float] = {}
    earlier = load_json(RESULTS / "etd.json").get("stage_seconds", {})

    def timed(name, fn, cfg):
        if (Path(cfg.output) / "bertcompress_config.yaml").is_file():  # finished earlier: reuse
            seconds[name] = earlier.get(name)
            return Path(cfg.output)
        t0 = time.perf_counter()
        out = fn(cfg)
        seconds[name] = round(time.perf_counter() - t0, 1)
        return out

    teachers = {"sst2": Path(args.sst2_teacher),
                "mrpc": timed("mrpc teacher", finetune, FinetuneConfig(
                    model=TEACHER, data=tasks["mrpc"], output=str(work / "mrpc-teacher"),
                    train=TrainConfig(epochs=3, lr=1e-4, batch_size=32)))}
    starts = {"random": None}
    for init, strategy in (("etd_rand", "rand"), ("etd_impt", "impt")):
        starts[init] = timed(f"{init} extract", extract, ExtractConfig(
            teacher=TEACHER, output=str(work / f"{init}-extracted"), strategy=strategy, corpus=corpus, **SHAPE))

    results: dict[str, dict] = {}
    for init, start in starts.items():
        general = timed(f"{init} general", distill, DistillConfig(
            stage="general", teacher=TEACHER, student=StudentConfig(**SHAPE),
            student_path=str(start) if start else None, corpus=corpus, train=general_train,
            output=str(work / f"{init}-general-{args.steps}")))
        history = json.loads((general / "bertcompress_result.json").read_text())["history"]
        results[init] = {"general_loss_curve": [(h["step"], h["loss"]) for h in history],
                         "general_final_loss": history[-1]["loss"]}
        for task, data in tasks.items():
            student = timed(f"{init} {task}", distill, DistillConfig(
                stage="task", teacher=str(teachers[task]), student_path=str(general), data=data,
                train=TrainConfig(epochs=args.task_epochs, lr=3e-4, batch_size=32),
                prediction_train=TrainConfig(epochs=args.task_epochs, lr=1e-4, batch_size=32),
                output=str(work / f"{init}-{task}-{args.steps}-{args.sst2_train}-{args.task_epochs}")))
            dev = json.loads((student / "bertcompress_result.json").read_text())["dev"]
            results[init]["sst2_accuracy" if task == "sst2" else "mrpc_f1"] = \
                dev["accuracy"] if task == "sst2" else dev["f1"]

    # the random run's final loss, damped like every point of the curves (mean of the last two logs)
    target = sum(loss for _, loss in results["random"]["general_loss_curve"][-2:]) / 2
    for init, r in results.items():
        reached = steps_to_reach([{"step": s, "loss": v} for s, v in r["general_loss_curve"]], target)
        r["steps_to_random_final_loss"] = reached
        r["steps_fraction_to_random_final_loss"] = reached / args.steps if reached else None
    result = {**results, "settings": {"student": SHAPE, "general_steps": args.steps, "general_batch": 32,
                                      "general_seq_len": 128, "sst2_train": args.sst2_train,
                                      "task_epochs": args.task_epochs,
                                      "sst2_teacher": str(args.sst2_teacher)},
              "stage_seconds": seconds,  # a stage reused from an earlier run keeps that run's time
              "stage_seconds_total": round(sum(v for v in seconds.values() if v), 1),
              "wall_seconds_this_run": round(time.perf_counter() - t_start, 1),
              "environment": environment()}
    print_table([{"init": k, **v} for k, v in results.items()],
                ["init", "general_final_loss", "steps_fraction_to_random_final_loss", "sst2_accuracy", "mrpc_f1"])
    print(f"wrote {write_result('etd', result)}")


if __name__ == "__main__":
    main()
