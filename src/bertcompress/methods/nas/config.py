"""Settings of `bertcompress nas`: NAS-BERT's block-wise supernet, search-space pruning and selection of
one compressed model per budget (docs/methods.md, "NAS-BERT")."""

from __future__ import annotations

from bertcompress.core.config import check, config, derive_seeds, setting, top_seed_setting
from bertcompress.core.errors import UserError
from bertcompress.data.config import CorpusConfig
from bertcompress.methods.nas.selection import parse_budget
from bertcompress.methods.nas.space import check_ops
from bertcompress.models.config import DEFAULT_TEACHER
from bertcompress.models.nasbert.arch import OPS
from bertcompress.train.config import TrainConfig


@config
class SpacePruningConfig:
    """Progressive search-space pruning (space_pruning.py): at each point, every bin of every block drops its
    worst candidates by held-out loss, down to keep_per_bin."""

    warmup_steps: int = setting(40, "supernet steps before the first pruning point")
    every: int = setting(10, "supernet steps between pruning points")
    finish_at: float | None = setting(0.8, "fraction of the supernet's steps by which pruning ends: each point drops "
                                      "the same share of every bin so that the last point leaves keep_per_bin, and "
                                      "the rest of training serves the survivors; null: each point drops the worse "
                                      "half of what it scored (the paper's pace; may not finish)")
    param_bins: int = setting(5, "quantile bins by parameters of a block's candidates")
    latency_bins: int = setting(4, "quantile bins by latency within each parameter bin")
    keep_per_bin: int = setting(2, "pruning stops at this many candidates per bin")
    keep_cheapest: bool = setting(True, "never prune each block's fastest candidate holding each op, nor its "
                                  "fastest and smallest overall (space_pruning.py), so the smallest budgets stay "
                                  "reachable")
    heldout_batches: int = setting(4, "held-out corpus batches that score each candidate at a pruning point (the "
                                   "pruning set; the survivors are ranked again on rerank_sequences)")
    scored_per_bin: int | None = setting(16, "candidates of a bin scored at a pruning point (a random sample "
                                         "when it holds more; with finish_at, at least twice what the point "
                                         "drops); null: all")

    def __post_init__(self) -> None:
        check(self.warmup_steps >= 0, f"nas prune.warmup_steps must be >= 0, got {self.warmup_steps}")
        for name in ("every", "param_bins", "latency_bins", "keep_per_bin", "heldout_batches"):
            v = getattr(self, name)
            check(v >= 1, f"nas prune.{name} must be >= 1, got {v}")
        check(self.finish_at is None or 0 < self.finish_at <= 1,
               f"nas prune.finish_at must be in (0, 1] or null, got {self.finish_at}")
        check(self.scored_per_bin is None or self.scored_per_bin >= 2,
               f"nas prune.scored_per_bin must be >= 2 or null, got {self.scored_per_bin}")


@config
class LatencyConfig:
    """How the latency lookup table (latency.py) and the teacher's latency are measured."""

    device: str = setting("cpu", "where latency is measured: cpu or cuda", choices=("cpu", "cuda"))
    # One thread: the steadiest CPU timings, and the usual setting of a served small model.
    threads: int = setting(1, "CPU threads while measuring (1: steadiest timings)")
    batch_size: int = setting(1, "sequences per measured forward pass")
    seq_len: int = setting(128, "tokens per measured sequence")
    repeats: int = setting(20, "timed runs per measurement (the median counts)")
    warmup: int = setting(5, "untimed runs before each measurement")
    calibration_models: int = setting(8, "whole models, spanning the space's latency range, measured to calibrate "
                                      "the table's sums (methods/nas/latency.py); 0: use the raw sums")

    def __post_init__(self) -> None:
        check(self.calibration_models >= 0, f"nas latency.calibration_models must be >= 0, got "
                                             f"{self.calibration_models}")
        for name in ("threads", "batch_size", "seq_len", "repeats"):
            v = getattr(self, name)
            check(v >= 1, f"nas latency.{name} must be >= 1, got {v}")
        check(self.warmup >= 0, f"nas latency.warmup must be >= 0, got {self.warmup}")


@config
class NasConfig:
    """NAS-BERT: train a block-wise supernet that reproduces the teacher block by block, prune its search
    space as it trains, then pick the best architectures for each budget by their summed block losses.

        bertcompress nas --teacher all-MiniLM-L6-v2 --corpus wiki.txt --budgets '[2x, 12ms, 10M]' -o nas
    """

    teacher: str = setting(DEFAULT_TEACHER, "pre-trained teacher folder or hub id")
    corpus: CorpusConfig = setting(factory=lambda: CorpusConfig(max_seq_len=128, max_sequences=4000))
    num_blocks: int | None = setting(None, "blocks of the supernet; must divide the teacher's layers "
                                     "(null: 3 for 6 layers, 4 for 12; methods/nas/space.py)")
    hiddens: list[int] | None = setting(None, "hidden sizes a block may take (null: 4 multiples of the head "
                                        "size from a third of the teacher's width up to it)")
    embedding_sizes: list[int] | None = setting(None, "embedding sizes searched (null: the smallest hidden size "
                                                "and the teacher's width)")
    ops: list[str] = setting(factory=lambda: list(OPS), help="ops a slot may take: " + ", ".join(OPS))
    train: TrainConfig = setting(factory=lambda: TrainConfig(epochs=1, lr=5e-4, batch_size=32))
    prune: SpacePruningConfig = setting(factory=SpacePruningConfig)
    latency: LatencyConfig = setting(factory=LatencyConfig)
    budgets: list[str] = setting(factory=lambda: ["2x", "3x", "4x", "6x", "8x", "10x"],
                                 help="one model per budget: a speed-up over the teacher (4x), a latency (12ms) "
                                 "or parameters (10M)")
    rerank_top: int = setting(5, "architectures per budget ranked by summed block losses, then compared whole")
    rerank_sequences: int | None = setting(None, "held-out corpus sequences, apart from the pruning set, that score "
                                           "the survivors' blocks and the whole models of the re-rank (a pick is "
                                           "then not the winner of the pruning set's noise); null: 256, or a quarter "
                                           "of the corpus's sequences when that is fewer")
    min_attention: int = setting(1, "attention slots a chosen model must hold at least: a classifier reads one "
                                 "position, which sees past its convolutions' reach only through attention "
                                 "(0: attention-free models may be chosen)")
    final_general: TrainConfig | None = setting(
        None, "continue each chosen model with whole-model general distillation (set any key to turn it on)",
        template=lambda: TrainConfig(epochs=1, lr=3e-4, batch_size=32))
    final_layers: str = setting("blocks", "what final_general matches: blocks: the embeddings and every block's "
                                "output against the teacher layer that block learned in the supernet (through its "
                                "supernet projection; TinyBERT's embedding and hidden-state losses); last: the "
                                "last hidden state only", choices=("blocks", "last"))
    keep_supernet: bool = setting(True, "keep the trained supernet in the output (supernet/: every op at every "
                                  "width, the largest file of the output) so that `nas --resume` with new budgets "
                                  "picks from it without training again")
    output: str = setting("outputs/nas", "output folder")
    seed: int = top_seed_setting()

    def __post_init__(self) -> None:
        derive_seeds(self)
        try:
            check_ops(self.ops)
            budgets = [parse_budget(text) for text in self.budgets]
        except UserError as e:
            raise UserError(f"bad config: {e}") from None
        check(self.num_blocks is None or self.num_blocks >= 1, f"nas num_blocks must be >= 1, got {self.num_blocks}")
        for name in ("hiddens", "embedding_sizes"):
            sizes = getattr(self, name)
            if sizes is None:
                continue
            check(len(sizes) >= 1, f"nas {name} must list at least one size (or be null for the default)")
            check(all(s >= 1 for s in sizes), f"nas {name} must be positive, got {sizes}")
            check(len(set(sizes)) == len(sizes), f"nas {name} must not repeat, got {sizes}")
        check(len(self.budgets) >= 1, "nas budgets must name at least one budget")
        same = [(b.kind, b.value) for b in budgets]
        check(len(set(same)) == len(same), f"nas budgets must not repeat, got {', '.join(self.budgets)}")
        check(self.rerank_top >= 1, f"nas rerank_top must be >= 1, got {self.rerank_top}")
        check(self.rerank_sequences is None or self.rerank_sequences >= 1,
              f"nas rerank_sequences must be >= 1 or null, got {self.rerank_sequences}")
        check(self.min_attention >= 0, f"nas min_attention must be >= 0, got {self.min_attention}")
        check(self.min_attention == 0 or "mha" in self.ops,
               f"nas min_attention={self.min_attention} needs 'mha' among ops, got {self.ops} (or set it to 0)")
