"""Loyalty and robustness of the distilled students against their teacher on real GLUE SST-2 dev.

Models: the teacher and students trained by `glue_sst2.py` (its --work folder: teacher/, 4x312/,
3x384/). For each: dev accuracy, label and probability loyalty to the teacher, the word-substitution
attack on the same 200 dev sentences (candidates: teacher-embedding neighbours, and WordNet when
Debian's wordnet-base is installed; MiniLM has no masked-LM head), AdvGLUE SST-2 accuracy (148
sentences), size and CPU latency ratios (PyTorch eager, and ONNX Runtime), all in one run. Writes
benchmarks/results/loyalty_sst2.json (contract: models.<name>.accuracy, label_loyalty,
probability_loyalty, attack_accuracy, attack_success_rate, advglue_accuracy, size_ratio,
latency_ratio) and the HTML report in benchmarks/results/loyalty_sst2/.

    python benchmarks/glue_sst2.py --scale cpu --work runs/glue_sst2_cpu   # trains the models
    python benchmarks/loyalty_sst2.py --models runs/glue_sst2_cpu
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bertcompress.data.config import DataConfig
from bertcompress.evaluation.attack import AttackConfig
from bertcompress.evaluation.evaluator import evaluate
from bertcompress.evaluation.report import report
from common import RESULTS, SHARED_DATA, environment, print_table, write_result

KEYS = ("accuracy", "label_loyalty", "probability_loyalty", "attack_accuracy", "attack_success_rate",
        "advglue_accuracy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="runs/glue_sst2_cpu", help="glue_sst2.py's --work folder")
    ap.add_argument("--attack-examples", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the latency measurement")
    args = ap.parse_args()
    root = Path(args.models)
    names = [n for n in ("teacher", "4x312", "3x384") if (root / n / "config.json").is_file()]
    if "teacher" not in names:
        raise SystemExit(f"no teacher in {root}: run benchmarks/glue_sst2.py --work {root} first")
    data = DataConfig(task="sst2", path=str(SHARED_DATA / "glue" / "SST-2"), max_seq_len=64)
    t0 = time.perf_counter()
    records = evaluate([str(root / n) for n in names], data, loyalty_to=str(root / "teacher"),
                       attack=AttackConfig(max_examples=args.attack_examples),
                       advglue=str(SHARED_DATA / "advglue" / "dev_ann.json"), threads=args.threads)
    report(records, RESULTS / "loyalty_sst2")
    models = {}
    for name, r in zip(names, records):
        ratios = r["ratios"]
        models[name] = {**{k: r.get(k) for k in KEYS}, "size_ratio": ratios["size_ratio"],
                        "latency_ratio": ratios.get("latency_ratio_batch32"),
                        "latency_ratio_batch1": ratios.get("latency_ratio_batch1"),
                        "latency_ratio_onnx": ratios.get("latency_ratio_onnx_batch32"),
                        "attack": r["attack"], "parameters": r["parameters"]}
    result = {"models": models, "attack_examples": args.attack_examples, "models_from": str(root),
              "wall_seconds": round(time.perf_counter() - t0, 1), "environment": environment()}
    print_table([{"model": n, **m} for n, m in models.items()],
                ["model", *KEYS, "size_ratio", "latency_ratio", "latency_ratio_onnx"])
    print(f"wrote {write_result('loyalty_sst2', result)} and {RESULTS / 'loyalty_sst2' / 'report.html'}")


if __name__ == "__main__":
    main()
