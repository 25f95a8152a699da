"""Compression methods side by side on real GLUE SST-2: models of about the same size made by
TinyBERT distillation, Extract Then Distill, structured pruning + distillation, BERT-of-Theseus,
and an 8-bit KDLSQ version of the best of them, all evaluated in one run against the same teacher.

Inputs are the models the other benchmarks trained (`glue_sst2.py --scale cpu --work W`, and
`etd.py`); this script adds the pruned and the Theseus model, then evaluates everything with the
same settings: dev accuracy, label/probability loyalty to the teacher, the word-substitution attack
on the same 200 dev sentences, AdvGLUE SST-2, size and CPU latency (PyTorch and ONNX Runtime, same
thread count). The quantized model is scored as the packed low-bit folder and timed as its int8
ONNX model. Writes benchmarks/results/compression_matrix.json and an HTML report in
benchmarks/results/compression_matrix/.

    python benchmarks/compression_matrix.py --models runs/glue_sst2_cpu --etd runs/etd              # SST-2
    python benchmarks/compression_matrix.py --task mrpc --teacher runs/etd/mrpc-teacher ...        # MRPC
On MRPC the TinyBERT and 3×384 students are task-distilled here from glue_sst2.py's general students,
and there is no AdvGLUE. Results go under the task's key of compression_matrix.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bertcompress.data.config import DataConfig
from bertcompress.evaluation.attack import AttackConfig
from bertcompress.evaluation.evaluator import evaluate
from bertcompress.evaluation.profile import time_call
from bertcompress.evaluation.report import report
from bertcompress.export.onnx import OnnxClassifier
from bertcompress.methods.distill.config import DistillConfig
from bertcompress.methods.distill.verb import distill
from bertcompress.methods.prune.config import PruneConfig
from bertcompress.methods.prune.verb import prune
from bertcompress.methods.quantize.config import QuantizeTrainConfig
from bertcompress.methods.quantize.verb import quantize
from bertcompress.methods.theseus.config import TheseusConfig
from bertcompress.methods.theseus.verb import theseus
from bertcompress.models.inputs import synthetic_batch
from bertcompress.models.loading import load_model
from bertcompress.models.quantized.config import QuantConfig
from bertcompress.train.config import TrainConfig
from common import RESULTS, SHARED_DATA, environment, load_json, print_table, write_result

KEYS = ("accuracy", "label_loyalty", "probability_loyalty", "attack_accuracy", "attack_success_rate",
        "advglue_accuracy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=["sst2", "mrpc"], default="sst2")
    ap.add_argument("--teacher", help="fine-tuned teacher (default: glue_sst2.py's for SST-2, etd.py's for MRPC)")
    ap.add_argument("--models", default="runs/glue_sst2_cpu", help="glue_sst2.py's --work folder")
    ap.add_argument("--etd", default="runs/etd", help="etd.py's --work folder (its SST-2 students)")
    ap.add_argument("--work", default="runs/compression_matrix")
    ap.add_argument("--train", type=int, default=4000, help="SST-2 sentences for the added trainings")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    root = Path(args.models)
    work = Path(args.work) / (f"train{args.train}" if args.task == "sst2" else f"{args.task}-train{args.train}")
    sst2 = args.task == "sst2"
    teacher = Path(args.teacher or (root / "teacher" if sst2 else Path(args.etd) / "mrpc-teacher"))
    data = DataConfig(task=args.task, path=str(SHARED_DATA / "glue" / ("SST-2" if sst2 else "MRPC")),
                      max_seq_len=64 if sst2 else 128, max_train_examples=args.train)
    one_epoch = TrainConfig(epochs=1, lr=1e-4, batch_size=32)
    t_start = time.perf_counter()

    def once(fn, cfg) -> Path:
        done = Path(cfg.output) / "bertcompress_config.yaml"
        return Path(cfg.output) if done.is_file() else fn(cfg)

    # FFN-only, same count per layer: a plain transformers folder (see methods/prune/structured.py)
    pruned = once(prune, PruneConfig(model=str(teacher), output=str(work / "pruned-raw"), heads_keep=1.0,
                                     ffn_keep=0.35, data=data))
    pruned = once(distill, DistillConfig(stage="task", teacher=str(teacher), student_path=str(pruned), data=data,
                                         train=TrainConfig(epochs=1, lr=1e-4, batch_size=32),
                                         prediction_train=one_epoch, output=str(work / "pruned+distilled")))
    successor = once(theseus, TheseusConfig(teacher=str(teacher), data=data, successor_layers=3,
                                            replacing=one_epoch, finetune=one_epoch, output=str(work / "theseus")))
    students = {name: root / name for name in ("4x312", "3x384")}
    if not sst2:  # task distillation of glue_sst2.py's general students on this task
        students = {name: once(distill, DistillConfig(
            stage="task", teacher=str(teacher), student_path=str(root / f"{name}-general"), data=data,
            train=one_epoch, prediction_train=one_epoch, output=str(work / name))) for name in students}
    quantized = once(quantize, QuantizeTrainConfig(student=str(students["3x384"]), teacher=str(teacher),
                                                   quant=QuantConfig.parse("w8a8"), data=data, onnx=True,
                                                   train=TrainConfig(epochs=1, lr=5e-5, batch_size=32),
                                                   output=str(work / "3x384-kdlsq-w8a8")))
    etd = sorted(Path(args.etd).glob(f"etd_impt-{args.task}-*"))
    models = {"teacher": teacher, "tinybert 4x312": students["4x312"],
              **({"etd-impt 4x312": etd[-1]} if etd else {}),
              "layers 2,4,6 + distill 3x384": students["3x384"], "ffn pruned 35% + distill": pruned,
              "theseus 3 layers": successor}
    common = dict(loyalty_to=str(teacher), attack=AttackConfig(max_examples=200),
                  advglue=str(SHARED_DATA / "advglue" / "dev_ann.json") if sst2 else None, threads=args.threads)
    records = evaluate([str(p) for p in models.values()], data, **common)
    # the quantized model: scored from its packed folder, timed as its int8 ONNX model (its
    # deployable form; the fake-quantized PyTorch model is for training, not speed)
    q_record = evaluate([str(quantized)], data, latency=False, onnx=False, **common)[-1]  # [teacher, it]
    session = OnnxClassifier(quantized / "onnx" / "model.onnx", threads=args.threads)
    shape_model = load_model(str(students["3x384"]), "classifier", num_labels=2)
    q_record["latency_onnx"] = {f"batch{b}": {"median_ms": time_call(
        lambda b=b: session(synthetic_batch(shape_model, b, 128)), repeats=10)["median_ms"]} for b in (1, 32)}
    names = [*models, "3x384 KDLSQ w8a8 (int8 ONNX)"]
    records.append(q_record)
    t_rec = records[0]
    for name, r in zip(names, records):
        r["model"] = name
    report(records, RESULTS / ("compression_matrix" if sst2 else f"compression_matrix_{args.task}"))
    rows = {}
    for name, r in zip(names, records):
        lat = r.get("latency", {}).get("batch32", {}).get("median_ms")
        ort = r.get("latency_onnx", {}).get("batch32", {}).get("median_ms")
        rows[name] = {**{k: r.get(k) for k in KEYS}, "score": r["score"], "metric": r["metric"],
                      "parameters": r["parameters"], "bytes": r["bytes_on_disk"],
                      "disk_ratio": t_rec["bytes_on_disk"] / r["bytes_on_disk"],
                      "latency_ratio": t_rec["latency"]["batch32"]["median_ms"] / lat if lat else None,
                      "latency_ratio_onnx": t_rec["latency_onnx"]["batch32"]["median_ms"] / ort if ort else None}
    result = {"models": rows, "settings": {"train_examples": args.train, "threads": args.threads,
                                           "attack_examples": 200, "sources": {n: str(p) for n, p in models.items()}},
              "wall_seconds": round(time.perf_counter() - t_start, 1), "environment": environment()}
    print_table([{"model": n, **r} for n, r in rows.items()],
                ["model", "score", *KEYS, "parameters", "disk_ratio", "latency_ratio", "latency_ratio_onnx"])
    everything = load_json(RESULTS / "compression_matrix.json")
    if "models" in everything:  # the file's first layout held SST-2 alone
        everything = {"sst2": everything}
    everything[args.task] = result
    print(f"wrote {write_result('compression_matrix', everything)}")


if __name__ == "__main__":
    main()
