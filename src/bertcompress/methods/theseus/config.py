"""`TheseusConfig`: settings of BERT-of-Theseus progressive module replacing (methods/theseus/verb.py).

Defaults follow the paper's reference code (github.com/JetRunner/BERT-of-Theseus, run_glue.py and
its README commands): learning rate 2e-5, batch 32, no warm-up, linear curriculum
p_t = min(1, k·t + b) with k = 0.0006 and b = 0.3, or a constant rate p = 0.5. (One README version
shows b = 0.1, and p = 0.7 for MRPC; k = 0.0006 is the same in all of them.) At these values p_t
reaches 1 after (1 - b)/k ≈ 1170 optimizer steps; on shorter runs raise k.
"""

from __future__ import annotations

from dataclasses import field

from bertcompress.core.config import check, config, derive_seeds, setting, top_seed_setting
from bertcompress.data.config import DataConfig
from bertcompress.train.config import TrainConfig

CURRICULA = ("constant", "linear")
# Which teacher layer each successor layer starts from. first: successor layer i <- teacher layer
# i, as the reference code does (`deepcopy(layer[ix]) for ix in range(scc_n_layer)`); group_first
# / group_last: the first / last layer of the group the successor layer stands in for.
SUCCESSOR_INITS = ("first", "group_first", "group_last")


@config
class TheseusConfig:
    """Compress a fine-tuned teacher (the predecessor) by progressive module replacing.

        bertcompress theseus --teacher teacher --layers 3 --task sst2 --data DIR -o theseus

    The teacher's N layers form M = `successor_layers` groups of N/M consecutive layers; each
    group gets one successor layer. `replacing` trains the successor layers while they randomly
    stand in for their groups; `finetune` then trains the M-layer successor alone.
    """

    # A fine-tuned sequence classifier (`bertcompress finetune` writes outputs/teacher by default).
    teacher: str = setting("outputs/teacher", "fine-tuned teacher folder (a sequence classifier for the task)")
    data: DataConfig = field(default_factory=DataConfig)
    successor_layers: int = setting(3, "M, the successor's layers; must divide the teacher's")
    successor_init: str = "first"
    curriculum: str = setting("linear", "constant: p_t = replace_prob; linear: p_t = min(1, k·t + b)",
                              choices=CURRICULA)
    replace_prob: float = setting(0.5, "constant replacing rate")
    curriculum_k: float = 0.0006
    curriculum_b: float = 0.3
    # The reference code optimises only the successor layers, in both phases; true also trains
    # the (shared) embeddings and classifier head while the successor is fine-tuned alone.
    finetune_shared: bool = False
    replacing: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, lr=2e-5, warmup_ratio=0.0))
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2, lr=2e-5, warmup_ratio=0.0))
    output: str = setting("outputs/theseus", "output folder")
    seed: int = top_seed_setting()

    def __post_init__(self) -> None:
        derive_seeds(self)
        check(self.successor_layers >= 1, f"successor_layers must be >= 1, got {self.successor_layers}")
        check(self.successor_init in SUCCESSOR_INITS,
               f"successor_init must be one of {', '.join(SUCCESSOR_INITS)}, got {self.successor_init!r}")
        # p = 0 would never train a successor layer in the replacing phase (the reference code
        # refuses it too); a rate above 1 is no probability.
        check(0 < self.replace_prob <= 1, f"replace_prob must be in (0, 1], got {self.replace_prob}")
        check(0 < self.curriculum_b <= 1, f"curriculum_b must be in (0, 1], got {self.curriculum_b}")
        check(self.curriculum_k >= 0, f"curriculum_k must be >= 0, got {self.curriculum_k}")
