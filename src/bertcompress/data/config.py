"""Settings of the data: a labelled task (sentence or tagging) and an unlabelled corpus."""

from __future__ import annotations

from bertcompress.core.config import (
    check,
    config,
    fill_own_seeds,
    seed_setting,
    setting,
)

DEFAULT_TASK = "rt-sentiment"


@config
class TaggingConfig:
    """How token-classification (tagging) data is read: tasks `tagging` (your files or a `datasets`
    set) and `brown-pos` (data/tagging_loaders.py)."""

    token_column: int = setting(0, "CoNLL files: column of the token (0-based; negative counts from the end)")
    tag_column: int = setting(-1, "CoNLL files: column of the tag (-1: the last)")
    separator: str | None = setting(None, "CoNLL files: column separator (null: any whitespace)")
    tokens_key: str = setting("tokens", "JSONL files and datasets: key of the token list")
    tags_key: str | None = setting(None, "JSONL files and datasets: key of the tag list (null: tags, then "
                                   "ner_tags, pos_tags, chunk_tags)")
    brown_tagset: str = setting("universal", "brown-pos: universal (the 12 tags of Petrov et al.) or brown "
                                "(Brown's own tags, simplified: data/brown.py)", choices=("universal", "brown"))
    brown_categories: list[str] | None = setting(None, "brown-pos: the Brown genres to read, e.g. [news, "
                                                 "editorial] (null: all 15)")
    split: list[float] = setting(factory=lambda: [0.8, 0.1, 0.1], help="brown-pos: train/dev/test shares of the "
                                 "sentences (a seeded shuffle, each part in corpus order)")
    split_seed: int | None = seed_setting("brown-pos: the train/dev/test split")

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        self.split = [float(x) for x in self.split]
        check(len(self.split) == 3 and all(x >= 0 for x in self.split) and abs(sum(self.split) - 1) < 1e-6
               and self.split[0] > 0, f"data.tagging.split must be 3 shares summing to 1 (train > 0), got {self.split}")
        check(self.separator is None or self.separator != "", "data.tagging.separator must not be empty")


@config
class DataConfig:
    """A labelled task. `path`: a GLUE-layout folder, a CSV/TSV/JSONL file, a folder written by
    `datasets.save_to_disk`, or a `datasets` hub name; None means the embedded default."""

    task: str = setting(DEFAULT_TASK, "a GLUE task (sst2, mrpc, stsb, mnli, ...), rt-sentiment (embedded "
                        "default), classification or regression (your own files); tagging (your CoNLL/JSONL "
                        "files or a datasets set) or brown-pos (NLTK's Brown corpus) for token classification")
    path: str | None = setting(None, "GLUE folder, CSV/TSV/JSONL file, saved dataset or datasets name; for "
                               "tagging a CoNLL/JSONL file or folder; for brown-pos NLTK's brown.zip "
                               "(null: the embedded default; brown-pos: ../shared/data/corpus/nltk/brown.zip)")
    config_name: str | None = setting(None, "a Hub dataset's config (subset), e.g. sst2 of glue (null: glue's is the "
                                      "task, other datasets have none)")
    revision: str | None = setting(None, "a Hub dataset's branch, tag or commit (null: its main branch)")
    text_a: str | None = setting(None, "column of the first text (CSV/TSV/JSONL, datasets)")
    text_b: str | None = setting(None, "column of the second text of a pair")
    label: str | None = setting(None, "column of the label")
    train_split: str = setting("train", "split to train on")
    eval_split: str = setting("dev", "split to evaluate on")
    max_seq_len: int = setting(128, "tokens per example; longer texts are truncated")
    max_train_examples: int | None = setting(None, "a seeded random subset of the training split")
    max_eval_examples: int | None = setting(None, "a seeded random subset of the evaluation split")
    holdout_fraction: float = setting(0.1, "a single data file has no held-out split: this seeded share of "
                                      "it becomes the eval split and leaves training (0: refuse)")
    holdout_seed: int | None = seed_setting("the held-out share of a single data file (stratified by label)")
    validation_fraction: float = setting(0.1, "a stage that chooses (keep_best, patience, search) chooses on this "
                                         "seeded, stratified share of the training split, never on the eval "
                                         "split, which only scores; that share leaves training (0: choose on "
                                         "the eval split, as before)")
    max_validation_examples: int | None = setting(1000, "at most this many validation examples")
    validation_seed: int | None = seed_setting("the validation slice")
    metric: str | None = setting(None, "the metric that is the score (retention and the trivial baseline "
                                 "compare it): accuracy, f1 (of class 1 with two classes, e.g. the minority "
                                 "class of an imbalanced set), mcc; pearson or spearman; tagging: accuracy "
                                 "(of words) or span_f1 (BIO/BIOES tags); null: the task's first")
    tagging: TaggingConfig = setting(factory=TaggingConfig)

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        check(0 <= self.validation_fraction < 1,
               f"data.validation_fraction must be in [0, 1), got {self.validation_fraction}")
        check(self.max_validation_examples is None or self.max_validation_examples >= 1,
               "data.max_validation_examples must be >= 1")
        check(self.metric is None or self.metric in ("accuracy", "f1", "mcc", "pearson", "spearman", "span_f1"),
               f"data.metric must be accuracy, f1, mcc, pearson, spearman or span_f1, got {self.metric!r}")
        check(0 <= self.holdout_fraction < 1,
               f"data.holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        check(8 <= self.max_seq_len <= 4096, f"data.max_seq_len must be in [8, 4096], got {self.max_seq_len}")
        for n in ("max_train_examples", "max_eval_examples"):
            v = getattr(self, n)
            check(v is None or v >= 1, f"data.{n} must be >= 1, got {v}")


@config
class CorpusConfig:
    """Unlabelled text for general distillation: a text file or a folder of them; None means the
    embedded default corpus."""

    path: str | None = setting(None, "unlabelled text file or folder (null: the embedded default corpus)")
    max_seq_len: int = setting(128, "tokens per training sequence")
    max_sequences: int | None = setting(None, "use at most this many sequences")

    def __post_init__(self) -> None:
        check(8 <= self.max_seq_len <= 4096, f"corpus.max_seq_len must be in [8, 4096], got {self.max_seq_len}")
        check(self.max_sequences is None or self.max_sequences >= 1, "corpus.max_sequences must be >= 1")
