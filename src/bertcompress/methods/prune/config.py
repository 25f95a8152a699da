"""Configs for Extract Then Distill (`ExtractConfig`) and structured pruning (`PruneConfig`).

Both are plain dataclasses like every other config (`bertcompress.config`): they load from YAML
with `load_config`, validate themselves with one-line errors, and are saved beside the output.
Checks that need the model (a size larger than the teacher's, a layer out of range) happen when
the model is at hand, in extract.py / structured.py, with the same kind of one-line error.
"""

from __future__ import annotations

from dataclasses import field

from bertcompress.core.config import check, config, derive_seeds, setting, top_seed_setting
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.models.config import DEFAULT_TEACHER

IMPORTANCE_METHODS = ("taylor", "magnitude")
IMPORTANCE_HELP = ("taylor: |activation x gradient| on a data sample (task data for a classifier, else the "
                   "corpus); magnitude: weight norms")


@config
class ImportanceSampling:
    """How unit importance is scored, shared by extraction and pruning. Importance data: task data
    (`data`) for a fine-tuned classifier, else the unlabelled `corpus`; only `taylor` reads it."""

    importance: str = setting("taylor", IMPORTANCE_HELP, choices=IMPORTANCE_METHODS)
    samples: int = setting(256, "sequences the Taylor importance is accumulated over")
    batch_size: int = 16
    seed: int = top_seed_setting()
    data: DataConfig = field(default_factory=DataConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)

    def __post_init__(self) -> None:
        derive_seeds(self)
        check(self.samples >= 1, f"samples must be >= 1, got {self.samples}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")


@config
class ExtractConfig(ImportanceSampling):
    """ETD: build a smaller student from the teacher's own weights (extract.py).

        bertcompress extract --teacher all-MiniLM-L6-v2 --num-layers 4 --hidden 312 --ffn 1200 -o etd

    A size left as None is the teacher's. `num_heads` None keeps the teacher's head count (each
    head then gets hidden_size / heads dimensions, as in ETD); set it to keep whole heads instead
    (e.g. hidden 384 with 6 heads of a 768/12 teacher keeps 6 complete 64-dimension heads).
    """

    teacher: str = setting(DEFAULT_TEACHER, "teacher folder or hub id")
    output: str = setting("outputs/extracted", "output folder")
    num_layers: int = setting(4, "student layers")
    hidden_size: int | None = setting(None, "student hidden size (null: the teacher's)")
    num_heads: int | None = setting(None, "student attention heads (null: the teacher's)")
    ffn_size: int | None = setting(None, "student FFN size (null: the teacher's)")
    strategy: str = setting("impt", "impt: the most important units (ETD-Impt); rand: random ones (ETD-Rand)",
                            choices=("impt", "rand"))
    # uniform: teacher layers ⌈m·N/M⌉ as the uniform layer mapping; importance: the M most
    # important layers; random; or an explicit list of 1-based teacher layers
    layers: str | list[int] = "uniform"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.num_layers >= 1, f"num_layers must be >= 1, got {self.num_layers}")
        for name in ("hidden_size", "num_heads", "ffn_size"):
            v = getattr(self, name)
            check(v is None or v >= 1, f"{name} must be >= 1 (or null for the teacher's), got {v}")
        check(self.hidden_size is None or self.num_heads is None or self.hidden_size % self.num_heads == 0,
               f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        if isinstance(self.layers, str):
            check(self.layers in ("uniform", "importance", "random"),
                   f"layers must be 'uniform', 'importance', 'random' or a list of teacher layers, got {self.layers!r}")
        else:
            check(len(self.layers) == self.num_layers,
                   f"layers lists {len(self.layers)} teacher layers but num_layers is {self.num_layers}")
            check(all(v >= 1 for v in self.layers), f"layers are 1-based teacher layers, got {self.layers}")


@config
class PruneConfig(ImportanceSampling):
    """Structured pruning of attention heads and FFN neurons (structured.py).

        bertcompress prune --model teacher --heads-keep 0.5 --ffn-keep 0.5 --task sst2 --data DIR -o pruned

    `heads_keep` / `ffn_keep`: the fraction of heads / FFN neurons kept (1.0 prunes none). Both
    kinds of unit cost the same share of a layer's weights per unit of fraction, so keeping 0.5 of
    each keeps about half of the encoder layers' parameters.
    layout uniform: every layer keeps the same count, chosen inside each layer; global: units are
    ranked across layers by their raw scores, so layers end up with different sizes.
    steps > 1 prunes iteratively: equal steps towards the target, importance recomputed each time.
    """

    model: str = setting(DEFAULT_TEACHER, "model folder or hub id")
    output: str = setting("outputs/pruned", "output folder")
    heads_keep: float = setting(1.0, "fraction of attention heads kept")
    ffn_keep: float = setting(0.5, "fraction of FFN neurons kept")
    layout: str = setting("uniform", "uniform: the same size in every layer; global: ranked across layers",
                          choices=("uniform", "global"))
    steps: int = setting(1, "prune in this many steps, re-scoring between them")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("heads_keep", "ffn_keep"):
            v = getattr(self, name)
            check(0 < v <= 1, f"{name} must be in (0, 1], got {v}")
        check(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
