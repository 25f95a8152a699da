"""Settings of the layer-mapping search (methods/mapping_search/verb.py) and its genetic algorithm."""

from __future__ import annotations

from dataclasses import field
from pathlib import Path

from bertcompress.core.config import (
    check,
    config,
    derive_seeds,
    fill_own_seeds,
    seed_setting,
    setting,
    top_seed_setting,
)
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.methods.distill.config import LossConfig
from bertcompress.models.config import DEFAULT_TEACHER, StudentConfig
from bertcompress.train.config import TrainConfig


@config
class GeneticConfig:
    """The genetic algorithm (methods/mapping_search/genetic.py). Scored genomes are population + (generations - 1)
    × (population - elite) at most; repeats are free."""

    population: int = setting(8, "mappings per generation")
    generations: int = setting(4, "generations")
    elite: int | None = None  # best genomes carried over unchanged; None: a quarter of the population
    tournament: int = 3  # genomes drawn per parent pick; the fittest of them is the parent
    crossover_rate: float = 0.8  # else the child starts as a copy of its first parent
    mutation_rate: float = 0.25  # per gene: reset to a random layer
    seed: int | None = seed_setting("the genetic search")

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        check(self.population >= 2, f"search.population must be >= 2, got {self.population}")
        check(self.generations >= 1, f"search.generations must be >= 1, got {self.generations}")
        check(self.elite is None or 0 <= self.elite < self.population,
               f"search.elite must be in [0, population), got {self.elite}")
        check(self.tournament >= 1, f"search.tournament must be >= 1, got {self.tournament}")
        for name in ("crossover_rate", "mutation_rate"):
            v = getattr(self, name)
            check(0 <= v <= 1, f"search.{name} must be in [0, 1], got {v}")

    @property
    def n_elite(self) -> int:
        return self.elite if self.elite is not None else max(1, self.population // 4)


PROXY_INITS = ("random", "etd", "etd_mapped")
PROXY_METRICS = ("finetune", "heldout_loss")


def _proxy_tasks() -> list[DataConfig]:
    """Three kinds of task, as the paper's three representative tasks, each readable offline: a
    sentence (rt-sentiment, embedded), a pair (GLUE MRPC: the shared data folder beside the
    repository where there is one, as the README's examples read it, else the Hub's GLUE) and a
    tagging task (brown-pos: NLTK's Brown, found by the data layer)."""
    sizes = dict(max_seq_len=64, max_train_examples=2000, max_eval_examples=500)
    mrpc = Path("../shared/data/glue/MRPC")
    return [DataConfig(**sizes), DataConfig(task="mrpc", path=str(mrpc) if mrpc.is_dir() else None, **sizes),
            DataConfig(task="brown-pos", **sizes)]


@config
class MappingSearchConfig:
    """Search the layer mapping g of a task-agnostic student with a genetic algorithm.

        bertcompress search-mapping --teacher all-MiniLM-L6-v2 --corpus wiki.txt --proxy-metric heldout_loss

    A genome is one teacher layer (1-based) per student layer (with `separate_attention`, then one
    more per student layer for the attention loss). Its fitness is the proxy score:
    general distillation with that mapping on the first `proxy_sequences` of the corpus
    (`proxy_general`), then, by `proxy_metric`, either fine-tuning on each of `tasks`
    (`proxy_finetune`) and averaging their dev scores (finetune, the paper's choice), or minus the
    held-out loss of every mapped layer on the next `heldout_sequences` of the corpus, which the
    proxy never trained on (heldout_loss: no fine-tuning, `tasks` ignored; heldout.py). Every
    candidate starts from a student initialisation chosen by `proxy_init` and sees the same data, so
    only the mapping differs. The best mapping then gets the full general distillation on the whole
    corpus (`final_general`; null: none), and with `validate_top` the proxy's ranking is checked
    against full runs (validation.py).
    """

    teacher: str = setting(DEFAULT_TEACHER, "pre-trained teacher folder or hub id")
    student: StudentConfig = field(default_factory=StudentConfig)
    losses: LossConfig = field(default_factory=LossConfig)  # layer_mapping is what is searched
    corpus: CorpusConfig = field(default_factory=lambda: CorpusConfig(max_seq_len=64))
    # 2,000 sequences: 63 optimizer steps at proxy_general's batch of 32, what separated the mappings in
    # benchmarks/mapping_search.py (the earlier 256, 8 steps, from random weights scored every mapping alike)
    proxy_sequences: int = setting(2000, "corpus sequences of each candidate's proxy general distillation (2,000: "
                                   "63 steps of 32)")
    proxy_init: str = setting("etd_mapped", "random: every candidate's student starts from new random weights of shape "
                              "student; etd: from one student extracted from the teacher's uniform-mapping layers "
                              "(ETD-Rand, shape student, written once to <output>/init/); etd_mapped: each from "
                              "the teacher layers its own mapping names", choices=PROXY_INITS)
    proxy_metric: str = setting("finetune", "finetune (the paper's): mean dev score of fine-tuning on tasks; "
                                "favours mappings that fine-tune well after a short distillation, but at CPU scale "
                                "its seed noise is as large as the mappings' differences. heldout_loss: minus the "
                                "mean over student layers of each one's held-out MSE against its own teacher layer, "
                                "relative to that layer's scale (no fine-tuning; needs the student as wide as the "
                                "teacher); favours mappings whose layers each have little to reproduce (consecutive "
                                "teacher layers; with an extracted start, the layers it was cut from), whatever "
                                "the task heads make of them", choices=PROXY_METRICS)
    heldout_sequences: int = setting(256, "heldout_loss: the corpus sequences after the proxy's that score it")
    proxy_general: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, lr=3e-4, batch_size=32))
    tasks: list[DataConfig] = field(default_factory=_proxy_tasks)
    proxy_finetune: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, lr=1e-4, batch_size=32))
    search: GeneticConfig = field(default_factory=GeneticConfig)
    monotone: bool = True  # keep mappings non-decreasing, like every hand-made one
    distinct: bool = setting(False, "with monotone: no two student layers learn from the same teacher layer "
                             "(strictly increasing mappings; needs no more student than teacher layers)")
    separate_attention: bool = setting(False, "search the attention loss's mapping apart from the hidden-state "
                                       "mapping: a genome is both (twice the student's layers)")
    final_general: TrainConfig | None = setting(
        factory=lambda: TrainConfig(epochs=1, lr=3e-4, batch_size=32),
        help="full general distillation with the best mapping, on the whole corpus (null: none)",
        template=lambda: TrainConfig(epochs=1, lr=3e-4, batch_size=32))
    validate_top: int = setting(0, "the proxy's best N mappings and the uniform and last ones also get the full "
                                "general distillation and fine-tuning on tasks; search.json records their scores and "
                                "the proxy-vs-full rank agreement (Spearman) (0: no validation)")
    keep_candidates: bool = False  # keep every candidate's models (large) instead of only its scores
    output: str = setting("outputs/mapping_search", "output folder")
    seed: int = top_seed_setting()

    def __post_init__(self) -> None:
        derive_seeds(self)
        check(self.proxy_sequences >= 1, f"proxy_sequences must be >= 1, got {self.proxy_sequences}")
        check(not self.distinct or self.monotone, "distinct needs monotone (strictly increasing mappings)")
        check(not self.separate_attention or all(self.losses.weights.get(n, 0) > 0 for n in ("attention", "hidden")),
               "separate_attention needs both the attention and the hidden-state loss (weights > 0)")
        check(self.heldout_sequences >= 1, f"heldout_sequences must be >= 1, got {self.heldout_sequences}")
        check(self.validate_top >= 0, f"validate_top must be >= 0, got {self.validate_top}")
        check(not self.validate_top or self.final_general is not None,
              "validate_top needs final_general: the full runs use its settings")
        if self.proxy_metric == "finetune" or self.validate_top:  # heldout_loss fine-tunes nothing but validation
            check(len(self.tasks) >= 1, "tasks must name at least one task for the proxy")
            names = [t.task for t in self.tasks]
            check(len(set(names)) == len(names), f"tasks are scored by name, so each may appear once: {names}")
