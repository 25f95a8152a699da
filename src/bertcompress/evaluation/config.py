"""Settings of the `evaluate` and `report` commands."""

from __future__ import annotations

from bertcompress.core.config import check, config, setting
from bertcompress.data.config import DataConfig


@config
class EvaluateConfig:
    """Score models on a task's split; size and latency measured the same way for all of them."""

    models: list[str] = setting(factory=list, help="model folders (list the teacher first)")
    data: DataConfig = setting(factory=DataConfig)
    split: str | None = setting(None, "split to score (null: data.eval_split)")
    baseline: str | None = setting(None, "model the ratios are against (null: the first model)")
    latency: bool = setting(True, "measure latency (PyTorch eager; CUDA when present)")
    onnx: bool = setting(True, "export to ONNX, check ONNX Runtime's predictions against PyTorch's, time it")
    onnx_dir: str | None = setting(None, "keep the ONNX exports in this folder")
    threads: int | None = setting(None, "CPU threads for both runtimes (null: all torch uses)")
    batch_sizes: list[int] = setting(factory=lambda: [1, 32], help="batch sizes to time")
    seq_len: int = setting(128, "tokens per timed sequence")
    repeats: int = setting(10, "timed runs per measurement")
    loyalty_to: str | None = setting(None, "teacher to measure label/probability loyalty against")
    attack: int = setting(0, "word-substitution attack (TextFooler style) on N examples of the split (0: off)")
    attack_candidates: str | None = setting(None, "where every model's attack takes its candidate words: a model "
                                            "folder (embedding neighbours, its MLM head if any) or a word-list "
                                            "file (null: the loyalty teacher, else the baseline, else the first "
                                            "model)")
    advglue: str | None = setting(None, "also score on AdvGLUE data at this path")
    json: str | None = setting(None, "also write the records to this JSON file")
    report: str | None = setting(None, "also write the HTML and Markdown report to this folder")

    def __post_init__(self) -> None:
        check(all(b >= 1 for b in self.batch_sizes) and self.batch_sizes, "batch_sizes must be >= 1")
        check(self.seq_len >= 1 and self.repeats >= 1, "seq_len and repeats must be >= 1")
        check(self.attack >= 0, f"attack must be >= 0, got {self.attack}")
        check(self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}")


@config
class ReportConfig:
    """An HTML and Markdown report from records written by `evaluate --json` or `run`."""

    records: list[str] = setting(factory=list, help="JSON files of evaluation records")
    output: str = setting("outputs/report", "output folder")
