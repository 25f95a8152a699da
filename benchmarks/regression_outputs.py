"""Where does a regression student lose Pearson correlation that it keeps in Spearman?

Pearson is unchanged by a scale or an offset of the outputs, so those cannot be the cause; what
separates the two correlations is a non-linear (but order-keeping) bend of the outputs, or a few
large errors. For each `run` output folder given, this reads the teacher's and the student's
outputs on the run's eval split and reports: both correlations of each model with the gold scores;
the student's linear fit to the teacher (slope, offset, correlation); the student's mean error
against the teacher in each fifth of the teacher's outputs (a bend shows as errors of opposite
sign at the two ends); and the share of the student's squared error against the teacher that
comes from its worst 5% of examples (outliers).

    python benchmarks/regression_outputs.py /tmp/any_task/sentiment-regression /tmp/any_task/amazon-regression
Writes benchmarks/results/regression_outputs.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr

from common import environment, print_table, write_result


def outputs(model_dir: Path, data) -> tuple[np.ndarray, np.ndarray]:
    from bertcompress.data.encoding import Collator, encode_examples
    from bertcompress.data.kinds import load_examples
    from bertcompress.evaluation.predict import predict_logits
    from bertcompress.models.loading import load_model, load_tokenizer

    _, examples = load_examples(data, data.eval_split)
    tokenizer = load_tokenizer(str(model_dir))
    model = load_model(str(model_dir), "classifier", num_labels=1).eval()
    features = encode_examples(tokenizer, examples, data.max_seq_len)
    logits = predict_logits(model, features, Collator(tokenizer.pad_token_id or 0)).numpy().reshape(-1)
    return logits, np.array([e.label for e in examples], dtype=float)


def diagnose(run_dir: Path, data_path: Path | None = None) -> dict[str, Any]:
    from dataclasses import replace

    from bertcompress.core.config import read_saved_config
    from bertcompress.pipeline.config import PipelineConfig

    cfg = read_saved_config(PipelineConfig, run_dir)
    if data_path is not None:  # the run's data file has moved (any_task's are rewritten on demand)
        cfg.data = replace(cfg.data, path=str(data_path))
    teacher, gold = outputs(run_dir / "teacher", cfg.data)
    student, _ = outputs(run_dir / "student", cfg.data)
    slope, offset = np.polyfit(teacher, student, 1)
    fifths = np.array_split(np.argsort(teacher), 5)
    error = student - teacher
    squared = np.sort(error ** 2)[::-1]
    worst = max(1, len(squared) // 20)
    return {
        "examples": len(gold),
        "teacher": {"pearson": pearsonr(teacher, gold)[0], "spearman": spearmanr(teacher, gold)[0],
                    "std": float(teacher.std())},
        "student": {"pearson": pearsonr(student, gold)[0], "spearman": spearmanr(student, gold)[0],
                    "std": float(student.std())},
        "student_vs_teacher": {"slope": float(slope), "offset": float(offset),
                               "pearson": pearsonr(student, teacher)[0], "spearman": spearmanr(student, teacher)[0]},
        "mean_error_by_teacher_fifth": [float(error[i].mean()) for i in fifths],
        "worst_5pct_share_of_squared_error": float(squared[:worst].sum() / max(squared.sum(), 1e-12)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="`run` output folders of regression tasks")
    ap.add_argument("--data", nargs="+", type=Path, help="each run's data file, where it is no longer at the "
                    "path its saved config names")
    args = ap.parse_args()
    data = args.data or [None] * len(args.runs)
    if len(data) != len(args.runs):
        raise SystemExit("give one --data file per run")
    result = {"runs": {str(r): diagnose(r, d) for r, d in zip(args.runs, data)}, "environment": environment()}
    rows = []
    for name, d in result["runs"].items():
        rows.append({"run": Path(name).name,
                     "pearson kept": d["student"]["pearson"] / d["teacher"]["pearson"],
                     "spearman kept": d["student"]["spearman"] / d["teacher"]["spearman"],
                     "slope": d["student_vs_teacher"]["slope"], "offset": d["student_vs_teacher"]["offset"],
                     "err low fifth": d["mean_error_by_teacher_fifth"][0],
                     "err high fifth": d["mean_error_by_teacher_fifth"][-1],
                     "worst 5% share": d["worst_5pct_share_of_squared_error"]})
    print_table(rows, list(rows[0]))
    print(f"wrote {write_result('regression_outputs', result)}")


if __name__ == "__main__":
    main()
