"""Settings of one run of the shared training loop, and of its optional hyper-parameter search."""

from __future__ import annotations

from bertcompress.core.config import (
    check,
    config,
    fill_own_seeds,
    seed_setting,
    setting,
)

TRACKERS = ("tensorboard", "mlflow")
# settings that say where a run is reported, not how it trains: a resumed run may change them
REPORTING = ("report_to", "tracking_uri")


@config
class SearchConfig:
    """A small search over learning rate and epochs, scored on the eval split (train/hyperparameter_search.py)."""

    trials: int = setting(6, "trials at most; each trains from the same starting weights and seed")
    minutes: float = setting(30.0, "time budget: no new trial starts after this many minutes")
    lr_min: float = setting(1e-5, "smallest learning rate tried (sampled on a log scale)")
    lr_max: float = setting(2e-4, "largest learning rate tried")
    epochs_min: int = setting(1, "fewest epochs tried (min_steps still applies)")
    epochs_max: int = setting(5, "most epochs tried")
    prune: bool = setting(True, "stop a trial whose evaluation trails the median of earlier trials at the "
                          "same point")
    seed: int | None = seed_setting("the sampler (Optuna TPE)")

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        self.epochs_min, self.epochs_max = int(self.epochs_min), int(self.epochs_max)
        check(self.trials >= 1, f"search.trials must be >= 1, got {self.trials}")
        check(self.minutes > 0, f"search.minutes must be > 0, got {self.minutes}")
        check(0 < self.lr_min <= self.lr_max, f"search needs 0 < lr_min <= lr_max, got {self.lr_min}, {self.lr_max}")
        check(1 <= self.epochs_min <= self.epochs_max,
               f"search needs 1 <= epochs_min <= epochs_max, got {self.epochs_min}, {self.epochs_max}")


@config
class TrainConfig:
    """One run of the shared training loop (train/loop.py)."""

    epochs: float = setting(1.0, "passes over the training data")
    max_steps: int | None = setting(None, "optimizer steps; overrides epochs when set")
    min_steps: int = setting(0, "at least this many optimizer steps: a small data set gets more epochs "
                             "(0: epochs alone decide)")
    batch_size: int = setting(32, "examples per step and process")
    grad_accum: int = setting(1, "micro-batches accumulated per optimizer step")
    lr: float = setting(5e-5, "peak learning rate (AdamW)")
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and LayerNorms)")
    warmup_ratio: float = setting(0.1, "share of the steps with a linear warm-up, then linear decay")
    max_grad_norm: float = setting(1.0, "gradient clipping norm (0: off)")
    group_by_length: bool = setting(True, "batch texts of similar length together: less padding, same data")
    eval_every: int = setting(0, "evaluate every N optimizer steps (0: only at the end)")
    keep_best: bool = setting(False, "evaluate on the eval_every schedule (0: about 5 times a run) and end with "
                              "the weights of the best evaluation (the metric named `score`), not the last")
    patience: int = setting(0, "stop when this many evaluations in a row have not improved on the best "
                            "(0: train the planned steps); the planned steps, max_steps and max_minutes are the caps")
    max_minutes: float | None = setting(None, "stop after this many minutes of training (null: no limit)")
    track_eval_split: bool = setting(False, "also score the eval split at every evaluation, in the history only "
                                     "(eval_reported_score); it never chooses: it shows what choosing on it "
                                     "would have reported")
    save_every: int = setting(0, "checkpoint every N optimizer steps for --resume (0: only at the end)")
    log_every: int = setting(10, "log every N optimizer steps")
    seed: int | None = seed_setting("data order, dropout and new weights")
    precision: str = setting("auto", "auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16",
                             choices=("auto", "fp32", "bf16"))
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    cuda_graphs: bool = setting(False, "replay each step from a CUDA graph (small students, whose GPU steps "
                                "are launch-bound); one CUDA device, one process, grad_accum 1")
    torch_compile: bool = setting(False, "torch.compile the step from the second step on (the first, eager, "
                                  "lets transformers install its output hooks)")
    search: SearchConfig | None = setting(None, "fine-tuning only: choose lr and epochs by a search on the eval "
                                          "split first (set any search.* key to turn it on)", template=SearchConfig)
    report_to: list[str] = setting(factory=list, choices=TRACKERS, help=(
        "send this run's curves and settings to tensorboard and/or mlflow (pip install 'bertcompress[track]'); "
        "TensorBoard event files go to <output's folder>/tensorboard/<output name>/<phase>"))
    tracking_uri: str | None = setting(None, "MLflow tracking URI: a server (http://...) or a store "
                                       "(null: sqlite:///<output's folder>/mlflow.db)")

    def __post_init__(self) -> None:
        fill_own_seeds(self)
        self.epochs = float(self.epochs)  # a default written as 2 saves as 2.0, as a loaded one does
        check(self.patience >= 0, f"train.patience must be >= 0, got {self.patience}")
        self.max_minutes = None if self.max_minutes is None else float(self.max_minutes)
        check(self.max_minutes is None or self.max_minutes > 0,
               f"train.max_minutes must be > 0, got {self.max_minutes}")
        check(self.epochs > 0 or (self.max_steps or 0) > 0, "train.epochs or train.max_steps must be > 0")
        check(self.max_steps is None or self.max_steps > 0, f"train.max_steps must be > 0, got {self.max_steps}")
        check(self.min_steps >= 0, f"train.min_steps must be >= 0, got {self.min_steps}")
        check(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        check(self.grad_accum >= 1, f"train.grad_accum must be >= 1, got {self.grad_accum}")
        check(self.lr > 0, f"train.lr must be > 0, got {self.lr}")
        check(0 <= self.warmup_ratio < 1, f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        check(self.weight_decay >= 0, "train.weight_decay must be >= 0")
        check(self.eval_every >= 0 and self.save_every >= 0 and self.log_every >= 1,
               "train.eval_every/save_every must be >= 0 and log_every >= 1")
        check(not (self.cuda_graphs and self.grad_accum > 1), "train.cuda_graphs needs train.grad_accum 1")
        check(not (self.cuda_graphs and self.torch_compile),
               "train.cuda_graphs and train.torch_compile together are not supported yet; choose one")

    def uses_bf16(self, device_type: str) -> bool:
        """Whether this run trains under bf16 autocast on a device of this type."""
        return self.precision == "bf16" or (self.precision == "auto" and device_type == "cuda")
