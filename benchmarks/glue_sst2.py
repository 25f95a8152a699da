"""The main pipeline on real GLUE SST-2 with the MiniLM teacher and two students.

teacher: all-MiniLM-L6-v2 fine-tuned on SST-2 train; students 4×312 and 3×384 (and the ETD-cut 4×312-etd): general
distillation on WikiText-2 (valid + test), then task distillation on SST-2 train (intermediate
phase, then prediction phase). Reports SST-2 dev accuracy, retention (student / teacher), size and
CPU latency ratios measured in the same run, the settings and the wall time.

    python benchmarks/glue_sst2.py --scale gpu      # the run recorded in the README (one H100, ~5 min)
    python benchmarks/glue_sst2.py --scale cpu      # 20,000 training sentences on 2 CPU cores
    python benchmarks/glue_sst2.py --scale cpu-full --students 4x312-etd   # all of SST-2, ~1 h per model on CPU
    python benchmarks/glue_sst2.py --scale smoke    # minutes, to check it runs
    ... --reuse    # keep the teacher and students already trained in --work; evaluate them all again
Each run writes benchmarks/results/glue_sst2_<scale>.json (teacher.accuracy; students.<name>.accuracy,
retention, size_ratio, latency_ratio).
The trained models stay in --work, where the loyalty and quantization benchmarks can reuse them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.evaluation.evaluator import compare, evaluate
from bertcompress.methods.distill.config import AugmentConfig, DistillConfig
from bertcompress.methods.distill.verb import distill
from bertcompress.methods.finetune.config import FinetuneConfig
from bertcompress.methods.finetune.verb import finetune
from bertcompress.methods.prune.config import ExtractConfig
from bertcompress.methods.prune.verb import extract
from bertcompress.models.config import StudentConfig
from bertcompress.train.config import TrainConfig
from common import SHARED_DATA, environment, print_table, write_result

# 4x312 starts from random weights (TinyBERT); 3x384 has the teacher's width, so it starts from the
# teacher's layers 2, 4, 6 (DistilBERT style); 4x312-etd is the 4x312 cut from the pre-trained
# teacher by Extract Then Distill (ETD-Impt: its most important layers' units by Taylor importance on
# the corpus). All then go through the same two distillation stages.
TINY = StudentConfig(num_layers=4, hidden_size=312, num_heads=12, ffn_size=1200)
STUDENTS = {"4x312": TINY,
            "3x384": StudentConfig(num_layers=3, hidden_size=384, num_heads=12, ffn_size=1536,
                                   init="teacher_layers"),
            "4x312-etd": TINY}
EXTRACTED = {"4x312-etd"}

SCALES = {
    # train examples, general-distillation sequences, epochs (finetune, general, intermediate,
    # prediction), batch size, augmentation (n_aug, max_examples) or None
    "smoke": dict(train=2000, sequences=300, epochs=(1, 1, 1, 1), batch=32, augment=(1, 200)),
    "cpu": dict(train=20000, sequences=2000, epochs=(1, 1, 1, 1), batch=32, augment=None),
    # all 67k SST-2 sentences, more task-distillation updates: about an hour per student on 2 cores
    "cpu-full": dict(train=None, sequences=2000, epochs=(1, 1, 2, 1), batch=32, augment=None),
    # sized to fit one ~5-minute run on one H100 (bf16; the small models are launch-bound there,
    # so a bigger batch costs little per step)
    "gpu": dict(train=None, sequences=None, epochs=(2, 5, 3, 2), batch=128, augment=(2, 10000)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=SCALES, default="cpu")
    ap.add_argument("--work", default="runs/glue_sst2", help="folder for the trained models")
    ap.add_argument("--teacher", default="all-MiniLM-L6-v2", help="pre-trained teacher (name or folder)")
    ap.add_argument("--students", nargs="+", default=["4x312", "3x384"], choices=list(STUDENTS))
    ap.add_argument("--reuse", action="store_true",
                    help="keep the teacher and any student already trained in --work (same scale) instead of "
                         "training them again; every model is still evaluated in this run")
    args = ap.parse_args()
    s = SCALES[args.scale]
    work = Path(args.work)
    data = DataConfig(task="sst2", path=str(SHARED_DATA / "glue" / "SST-2"), max_seq_len=64,
                      max_train_examples=s["train"])
    corpus = CorpusConfig(path=str(SHARED_DATA / "corpus" / "wikitext-2"), max_seq_len=128,
                          max_sequences=s["sequences"])
    ep_ft, ep_gen, ep_int, ep_pred = s["epochs"]
    bs = s["batch"]
    augment = (AugmentConfig(enabled=True, n_aug=s["augment"][0], max_examples=s["augment"][1])
               if s["augment"] else AugmentConfig(enabled=False))
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}

    def timed(name, fn, cfg):
        t0 = time.perf_counter()
        out = fn(cfg)
        seconds[name] = round(time.perf_counter() - t0, 1)
        return out

    teacher = work / "teacher"
    def done(folder: Path) -> bool:
        return args.reuse and (folder / "bertcompress_config.yaml").is_file()

    reused = ["teacher"] if done(teacher) else []
    if not reused:
        teacher = timed("teacher", finetune, FinetuneConfig(
            model=args.teacher, data=data, output=str(teacher),
            train=TrainConfig(epochs=ep_ft, lr=1e-4, batch_size=bs)))
    students = {}
    for name in args.students:
        if done(work / name):
            students[name] = work / name
            reused.append(name)
            continue
        start = None
        if name in EXTRACTED:
            shape = STUDENTS[name]
            start = timed(f"{name}/extract", extract, ExtractConfig(
                teacher=args.teacher, output=str(work / f"{name}-extracted"), strategy="impt", corpus=corpus,
                num_layers=shape.num_layers, hidden_size=shape.hidden_size, ffn_size=shape.ffn_size))
        general = timed(f"{name}/general", distill, DistillConfig(
            stage="general", teacher=args.teacher, student=STUDENTS[name],
            student_path=str(start) if start else None, corpus=corpus,
            train=TrainConfig(epochs=ep_gen, lr=3e-4, batch_size=bs), output=str(work / f"{name}-general")))
        students[name] = timed(f"{name}/task", distill, DistillConfig(
            stage="task", teacher=str(teacher), student_path=str(general), data=data,
            augment=augment, train=TrainConfig(epochs=ep_int, lr=3e-4, batch_size=bs),
            prediction_train=TrainConfig(epochs=ep_pred, lr=1e-4, batch_size=bs), output=str(work / name)))

    t0 = time.perf_counter()
    records = evaluate([str(teacher)] + [str(p) for p in students.values()], data, seq_len=128,
                       batch_sizes=(1, 32), repeats=10)
    seconds["evaluate"] = round(time.perf_counter() - t0, 1)
    t_rec = records[0]
    result = {"teacher": {"accuracy": t_rec["accuracy"], "parameters": t_rec["parameters"],
                          "bytes_on_disk": t_rec["bytes_on_disk"], "latency": t_rec["latency"]},
              "students": {}, "scale": args.scale, "settings": s | {"teacher": args.teacher},
              "stage_seconds": seconds, "reused_from_earlier_run": reused,
              "wall_seconds": round(time.perf_counter() - t_start, 1),
              "environment": environment()}
    for name, rec in zip(students, records[1:]):
        ratios = compare(t_rec, rec)
        result["students"][name] = {
            "accuracy": rec["accuracy"], "retention": ratios["retention"], "size_ratio": ratios["size_ratio"],
            "disk_ratio": ratios["disk_ratio"], "latency_ratio": ratios["latency_ratio_batch32"],
            "latency_ratio_batch1": ratios["latency_ratio_batch1"], "parameters": rec["parameters"]}
    rows = [{"model": "teacher", "accuracy": t_rec["accuracy"], "parameters": t_rec["parameters"]}]
    rows += [{"model": n, **r} for n, r in result["students"].items()]
    print_table(rows, ["model", "accuracy", "retention", "parameters", "size_ratio", "latency_ratio",
                       "latency_ratio_batch1"])
    print(f"wrote {write_result(f'glue_sst2_{args.scale}', result)}")


if __name__ == "__main__":
    main()
