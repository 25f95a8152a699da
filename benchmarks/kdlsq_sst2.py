"""KDLSQ on real GLUE SST-2: a distilled student quantized to w8a8, w4a8 and w2a8 with
distillation, against dynamic int8 PTQ and LSQ without distillation.

Models come from `glue_sst2.py --work` (teacher/ and the fp32 student, 4x312 by default). For each
variant: SST-2 dev accuracy, label and probability loyalty to the fp32 teacher, bytes on disk of
the packed low-bit folder (PTQ: its int8 state dict) and the ratio to the fp32 teacher's
safetensors, and the CPU latency ratio against the fp32 teacher in PyTorch, measured in the same run
on the deployable form: the int8 ONNX model run by ONNX Runtime for a8 variants (weights of <= 8
bits are stored as int8 there), PyTorch dynamic int8 for PTQ. Writes
benchmarks/results/kdlsq_sst2.json (contract: fp32_student.accuracy; variants.<name>.accuracy,
label_loyalty, probability_loyalty, bytes, compression_ratio, latency_ratio).

    python benchmarks/kdlsq_sst2.py --models runs/glue_sst2_cpu [--train 8000 --epochs 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bertcompress.data.config import DataConfig
from bertcompress.data.encoding import Collator
from bertcompress.data.splits import load_task_splits
from bertcompress.evaluation.loyalty import loyalty
from bertcompress.evaluation.metrics import compute_metrics, predictions_from_logits
from bertcompress.evaluation.predict import predict_logits
from bertcompress.evaluation.profile import bytes_on_disk, time_call
from bertcompress.export.onnx import OnnxClassifier
from bertcompress.methods.quantize.config import QuantizeTrainConfig
from bertcompress.methods.quantize.verb import load_ptq, ptq_baseline, quantize
from bertcompress.models.inputs import synthetic_batch
from bertcompress.models.loading import load_model, load_tokenizer
from bertcompress.models.quantized.config import QuantConfig
from bertcompress.models.quantized.packed import load_packed
from bertcompress.train.config import TrainConfig
from common import SHARED_DATA, environment, print_table, write_result

VARIANTS = {  # name -> (bits, kd); None bits = dynamic int8 PTQ
    "kdlsq_w8a8": ("w8a8", True), "kdlsq_w4a8": ("w4a8", True), "kdlsq_w2a8": ("w2a8", True),
    "kdlsq_w4a8e2": ("w4a8e2", True),  # 2-bit word embeddings: they are most of a small student's bytes
    "lsq_w4a8": ("w4a8", False), "lsq_w2a8": ("w2a8", False), "ptq_dynamic_int8": (None, False),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="runs/glue_sst2_cpu", help="glue_sst2.py's --work folder")
    ap.add_argument("--student", default="4x312")
    ap.add_argument("--train", type=int, default=8000, help="SST-2 training sentences for quantization training")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--work", default="runs/kdlsq_sst2")
    args = ap.parse_args()
    root, work = Path(args.models), Path(args.work)
    teacher_dir, student_dir = root / "teacher", root / args.student
    data = DataConfig(task="sst2", path=str(SHARED_DATA / "glue" / "SST-2"), max_seq_len=64,
                      max_train_examples=args.train)
    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)

    tokenizer = load_tokenizer(str(student_dir))
    splits = load_task_splits(data, tokenizer)
    task, features, collate = splits.task, splits.eval_features, Collator(tokenizer.pad_token_id or 0)
    labels = [f["labels"] for f in features]

    def accuracy(logits) -> float:
        return compute_metrics(task, predictions_from_logits(task, logits), labels)["accuracy"]

    teacher = load_model(str(teacher_dir), "classifier", num_labels=2).eval()
    fp_student = load_model(str(student_dir), "classifier", num_labels=2).eval()
    teacher_logits = predict_logits(teacher, features, collate)
    student_logits = predict_logits(fp_student, features, collate)
    big, small = synthetic_batch(teacher, 32, 128), synthetic_batch(teacher, 1, 128)

    def latency(fn) -> dict[str, float]:
        with torch.inference_mode():
            return {"batch32": time_call(lambda: fn(big), repeats=10)["median_ms"],
                    "batch1": time_call(lambda: fn(small), repeats=20)["median_ms"]}

    teacher_ms = latency(lambda b: teacher(**b))
    teacher_bytes = bytes_on_disk(teacher_dir)
    result = {"teacher": {"accuracy": accuracy(teacher_logits), "bytes": teacher_bytes, "latency_ms": teacher_ms},
              "fp32_student": {"accuracy": accuracy(student_logits), "bytes": bytes_on_disk(student_dir),
                               "compression_ratio": teacher_bytes / bytes_on_disk(student_dir),
                               "latency_ratio": teacher_ms["batch32"] / latency(lambda b: fp_student(**b))["batch32"],
                               **loyalty(teacher_logits, student_logits, regression=False)},
              "variants": {}}
    train = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=32)
    for name, (bits, kd) in VARIANTS.items():
        out = work / f"{args.student}-{name}-{args.train}x{args.epochs:g}-lr{args.lr:g}"  # reused only if equal
        cfg = QuantizeTrainConfig(student=str(student_dir), teacher=str(teacher_dir) if kd else None, kd=kd,
                                  quant=QuantConfig.parse(bits or "w8a8"), train=train, data=data,
                                  onnx=bits is not None, output=str(out))
        t0 = time.perf_counter()
        if not (out / "bertcompress_config.yaml").is_file():  # finished earlier: reuse
            (ptq_baseline if bits is None else quantize)(cfg)
        if bits is None:
            model = load_ptq(out)
            fast = lambda b, m=model: m(**b).logits  # noqa: E731
        else:
            model = load_packed(out)
            fast = OnnxClassifier(out / "onnx" / "model.onnx", threads=args.threads)
        logits = predict_logits(model, features, collate)
        size = bytes_on_disk(out)
        result["variants"][name] = {
            "bits": bits or "w8 dynamic", "kd": kd, "accuracy": accuracy(logits),
            **loyalty(teacher_logits, logits, regression=False), "bytes": size,
            "compression_ratio": teacher_bytes / size,
            "latency_ratio": teacher_ms["batch32"] / latency(fast)["batch32"],
            "runtime": "pytorch dynamic int8" if bits is None else "onnxruntime int8 (QDQ)",
            "seconds": round(time.perf_counter() - t0, 1)}
    result.update(settings={"student": args.student, "eval_split": splits.eval_split, "train_examples": args.train,
                            "epochs": args.epochs, "lr": args.lr, "threads": args.threads,
                            "kd_teacher": str(teacher_dir)},
                  wall_seconds=round(time.perf_counter() - t_start, 1), environment=environment())
    rows = [{"model": "fp32 student", **result["fp32_student"]}]
    rows += [{"model": n, **v} for n, v in result["variants"].items()]
    print_table(rows, ["model", "accuracy", "label_loyalty", "probability_loyalty", "bytes", "compression_ratio",
                       "latency_ratio"])
    print(f"wrote {write_result('kdlsq_sst2', result)}")


if __name__ == "__main__":
    main()
