"""Settings of `bertcompress cvt`: Cross-View Training of a small CNN-BiLSTM tagger (Clark et al.
2018; docs/methods.md, "Cross-View Training"). Sizes default to a CPU-friendly fraction of the paper's."""

from __future__ import annotations

from bertcompress.core.config import (
    check,
    config,
    derive_seeds,
    fill_own_seeds,
    seed_setting,
    setting,
    top_seed_setting,
)
from bertcompress.train.config import TrainConfig

TAGSETS = ("universal", "brown")
TEXT_FORMATS = ("raw", "lines")
VIEWS = ("forward", "backward", "future", "past", "full")
SCHEDULES = ("joint", "alternate")


@config
class CvtDataConfig:
    """The labelled data: one file of tagged sentences, split train/dev/test by a seeded shuffle."""

    path: str | None = setting(None, "tagged sentences: NLTK's brown.zip, a CoNLL column file (a token a line, "
                               "blank line between sentences) or a .jsonl/.json file with tokens and tags lists")
    tagset: str = setting("universal", "Brown only: universal (12 tags) or brown (its own tags, simplified)",
                          choices=TAGSETS)
    categories: list[str] | None = setting(None, "Brown only: the genres to read (null: all)")
    tag_column: int = setting(-1, "CoNLL only: the tag column (the token is column 0; -1: the last column)")
    split: list[float] = setting(factory=lambda: [0.8, 0.1, 0.1], help="train/dev/test fractions of the file")
    split_seed: int | None = seed_setting("the train/dev/test split and of the labelled sample")
    labelled_limit: int | None = setting(1000, "the labelled budget: a seeded sample of this many train sentences "
                                         "keeps its tags (null: the whole train split)")

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        check(len(self.split) == 3 and all(f >= 0 for f in self.split) and abs(sum(self.split) - 1) < 1e-6,
               f"cvt data.split must be three fractions >= 0 summing to 1, got {self.split}")
        check(self.split[0] > 0 and self.split[1] > 0, f"cvt data.split needs train and dev shares, got {self.split}")
        check(self.labelled_limit is None or self.labelled_limit >= 1,
               f"cvt data.labelled_limit must be >= 1 or null, got {self.labelled_limit}")


@config
class CvtUnlabelledConfig:
    """The unlabelled sentences the auxiliary modules learn from."""

    paths: list[str] = setting(factory=list, help="text files, folders of .txt files, or NLTK corpus zips (brown.zip: "
                               "its sentences, tags dropped; others: every text file inside)")
    text_format: str = setting("raw", "how a text file holds sentences: raw (running text, split into sentences) or "
                               "lines (one sentence a line)", choices=TEXT_FORMATS)
    brown_categories: list[str] | None = setting(None, "a brown.zip among paths gives only these genres (null: all); "
                                                 "it may be the labelled zip if its genres are not data.categories")
    rest_of_train: bool = setting(True, "the train sentences beyond labelled_limit join the unlabelled data, "
                                  "tags dropped (the usual semi-supervised setting)")
    limit: int | None = setting(None, "use at most this many unlabelled sentences (a seeded sample)")
    max_words: int = setting(100, "longer unlabelled sentences are cut to this many words")
    weight: float = setting(1.0, "weight of the unlabelled (cross-view) loss; 0: supervised training only")
    views: list[str] = setting(factory=lambda: list(VIEWS), help="auxiliary views: " + ", ".join(VIEWS) +
                               " (full: the primary module's whole view, through dropout and no ReLU, as the "
                               "reference's fifth module)")
    # alternate: 1.2 and 2.2 points above joint on Brown POS with 1,000 labels, in and out of domain
    # (benchmarks/README.md, cvt_tagging, 2026-12-07)
    schedule: str = setting("alternate", "alternate (the reference code's): steps alternate between a labelled and an "
                            "unlabelled minibatch, each its own update; the loop runs twice train's steps (or "
                            "epochs), so train.* counts labelled minibatches under either schedule. joint: each step "
                            "sums a labelled and an unlabelled minibatch's losses in one update", choices=SCHEDULES)

    def __post_init__(self) -> None:
        check(self.limit is None or self.limit >= 1, f"cvt unlabelled.limit must be >= 1 or null, got {self.limit}")
        check(self.max_words >= 1, f"cvt unlabelled.max_words must be >= 1, got {self.max_words}")
        check(self.weight >= 0, f"cvt unlabelled.weight must be >= 0, got {self.weight}")
        for view in self.views:
            check(view in VIEWS, f"cvt unlabelled.views: unknown view {view!r} (known: {', '.join(VIEWS)})")
        check(len(set(self.views)) == len(self.views), f"cvt unlabelled.views must not repeat, got {self.views}")
        check(bool(self.views) or self.weight == 0, "cvt unlabelled.views is empty: name a view or set weight 0")


@config
class CvtModelConfig:
    """The CNN-BiLSTM tagger: word embeddings (random, or from word_vectors) and a character CNN, two BiLSTM
    layers, and one-hidden-layer prediction modules. The paper's sizes: word_dim 300, char_dim 50,
    char_filters 100 of widths 2-4, lstm1 1024, lstm2 512, projection 512."""

    word_dim: int = setting(100, "word embedding size")
    word_vectors: str | None = setting(None, "pretrained word vectors (a word2vec or GloVe text file: a word and "
                                       "its word_dim numbers a line) that start the embeddings of the words they "
                                       "hold, as the reference starts from GloVe (null: random)")
    lowercase: bool = setting(True, "words are looked up lowercased (the character CNN still sees the case)")
    min_count: int = setting(2, "a word seen only in unlabelled text needs this many occurrences to get an "
                             "embedding; every labelled training word gets one")
    max_vocab: int = setting(50000, "at most this many words in the vocabulary (the most frequent)")
    char_dim: int = setting(30, "character embedding size")
    char_widths: list[int] = setting(factory=lambda: [2, 3, 4], help="widths of the character CNN's filters")
    char_filters: int = setting(50, "filters per width")
    max_word_length: int = setting(20, "characters per word the CNN reads (longer words are cut)")
    lstm1: int = setting(200, "hidden size of each direction of the first BiLSTM")
    lstm2: int = setting(100, "hidden size of each direction of the second BiLSTM")
    projection: int = setting(100, "hidden layer of each prediction module")
    dropout_labelled: float = setting(0.5, "dropout on labelled minibatches")
    dropout_unlabelled: float = setting(0.2, "dropout on the auxiliary modules' unlabelled minibatches")
    label_smoothing: float = setting(0.1, "label smoothing of the supervised cross-entropy")

    def __post_init__(self) -> None:
        for name in ("word_dim", "min_count", "max_vocab", "char_dim", "char_filters", "max_word_length",
                     "lstm1", "lstm2", "projection"):
            v = getattr(self, name)
            check(v >= 1, f"cvt model.{name} must be >= 1, got {v}")
        check(bool(self.char_widths) and all(w >= 1 for w in self.char_widths),
               f"cvt model.char_widths must be one or more widths >= 1, got {self.char_widths}")
        for name in ("dropout_labelled", "dropout_unlabelled", "label_smoothing"):
            v = getattr(self, name)
            check(0 <= v < 1, f"cvt model.{name} must be in [0, 1), got {v}")


@config
class CvtConfig:
    """Cross-View Training: a light tagger learns from a small labelled budget (cross-entropy of its
    primary module) and from unlabelled sentences, on which auxiliary modules with restricted views
    learn to match the primary module's predictions. Evaluated and saved with EMA weights.

        bertcompress cvt --data ../shared/data/corpus/nltk/brown.zip --labelled 1000 -o tagger
    """

    data: CvtDataConfig = setting(factory=CvtDataConfig, help="the labelled data, its split and the labelled budget")
    unlabelled: CvtUnlabelledConfig = setting(factory=CvtUnlabelledConfig, help="the unlabelled sentences and "
                                              "the cross-view loss")
    model: CvtModelConfig = setting(factory=CvtModelConfig, help="the tagger's sizes, vocabulary and dropout")
    # an epoch is one pass over the labelled budget (1,000 sentences: 32 labelled minibatches), each
    # with an unlabelled minibatch of the same size (alternate: in a step of its own)
    train: TrainConfig = setting(factory=lambda: TrainConfig(epochs=30, lr=2e-3, batch_size=32, weight_decay=0.0,
                                                             warmup_ratio=0.05, max_grad_norm=1.0),
                                 help="the shared training loop (one labelled and one unlabelled minibatch a step)")
    ema: float = setting(0.998, "decay of the weights' moving average used to evaluate and save (0: the last weights)")
    onnx: bool = setting(True, "also write model.onnx: the primary tagger, for ONNX Runtime")
    runtimes: bool = setting(False, "measure test accuracy and latency per 1,000 tokens in PyTorch and ONNX "
                             "Runtime into the result (needs onnx)")
    output: str = setting("outputs/cvt", "output folder")
    seed: int = top_seed_setting()

    def __post_init__(self) -> None:
        derive_seeds(self)
        check(0 <= self.ema < 1, f"cvt ema must be in [0, 1), got {self.ema}")
        check(not self.train.cuda_graphs, "cvt draws its unlabelled batches in Python each step: train.cuda_graphs "
                                           "cannot replay that; turn it off")
        check(not self.train.torch_compile, "cvt does not support train.torch_compile; turn it off")
        check(not self.runtimes or self.onnx, "cvt runtimes compares PyTorch with ONNX Runtime: it needs onnx true")
