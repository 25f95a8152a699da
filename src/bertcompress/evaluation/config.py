"""Settings of the `evaluate` and `report` commands, and of the word-substitution attack (attack.py)."""

from __future__ import annotations

from bertcompress.core.config import check, config, setting
from bertcompress.core.errors import UserError
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


SOURCES = ("mlm", "embedding", "wordnet")


@config
class AttackConfig:
    """The word-substitution attack (attack.py). Python: `evaluate(..., attack=AttackConfig(...))`;
    the `evaluate` command sets `max_examples` (--attack N) and `candidates_from`."""

    max_change_share: float = 0.3  # more words than this share changed = the attack failed
    max_queries: int = 500  # model calls per example, the clean prediction included
    candidates_k: int = 30  # candidates per word, all sources together
    sources: tuple[str, ...] = SOURCES  # unavailable ones (no MLM head, no WordNet) are skipped
    seed: int = 0  # picks the subset when max_examples is set
    batch_size: int = 64
    max_seq_len: int = 128
    max_examples: int | None = None  # attack a random subset of this size (all if None)
    # Where the candidate words come from, the same for every model of a comparison: a model folder
    # (its input-embedding neighbours, and its masked-LM head if it has one) or a word-list file
    # (`word cand1 cand2 ...` a line). None: the reference the caller names (evaluate: the teacher).
    candidates_from: str | None = None
    mlm_model: str | None = None  # a masked-LM checkpoint with the reference's vocabulary (e.g. the
    # pre-trained teacher); None: the reference's own checkpoint, if it carries a trained MLM head
    wordnet_dir: str | None = None  # None: $WNSEARCHDIR, then the usual install folders
    progress: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.max_change_share <= 1 or self.max_queries < 1 or self.candidates_k < 1:
            raise UserError("attack: max_change_share must be in (0, 1], max_queries and candidates_k >= 1")
