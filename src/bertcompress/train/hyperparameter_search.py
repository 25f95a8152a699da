"""Choose a fine-tuning run's learning rate and epochs on the validation slice (`train.search`).

Optuna's TPE sampler proposes (lr, epochs); each trial trains fresh starting weights with the
shared loop, keeping its best evaluation (`keep_best`), and the median pruner stops a trial whose
evaluation trails the earlier trials' at the same point. Every trial evaluates on one schedule
(twice an epoch), so "the same point" is the same optimizer step. The best trial's weights are
kept, not retrained. Its score was chosen on the eval split, so it is an optimistic estimate:
hold out a test split when the number itself matters.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.core.log import log
from bertcompress.train.config import TrainConfig
from bertcompress.train.distributed import refuse_ddp
from bertcompress.train.loop import Batch, EvalFn, TrainResult, seed_run, train_loop


@dataclass
class SearchResult:
    module: nn.Module  # the best trial's, with its best weights
    result: TrainResult
    train: TrainConfig  # the best trial's settings
    trials: list[dict[str, Any]]
    seconds: float


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UserError("train.search needs Optuna: pip install 'bertcompress[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def search_train(make_module: Callable[[], nn.Module], features: list[dict], collate: Callable[[list[dict]], Batch],
                 cfg: TrainConfig, *, evaluate: EvalFn, work_dir: str | Path, desc: str = "search") -> SearchResult:
    """Run up to `cfg.search.trials` trainings of `make_module()` (within `cfg.search.minutes`);
    return the one with the best evaluation score."""
    optuna, space = _optuna(), cfg.search
    assert space is not None
    refuse_ddp("train.search is not supported under DDP (torchrun) yet: run it in one process")
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2) if space.prune else optuna.pruners.NopPruner()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=space.seed),
                                pruner=pruner)
    steps_per_epoch = math.ceil(len(features) / cfg.batch_size / cfg.grad_accum)
    eval_every = max(1, steps_per_epoch // 2)
    trials: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    t0 = time.perf_counter()

    def objective(trial) -> float:
        trial_cfg = replace(cfg, search=None, keep_best=True, eval_every=eval_every, max_steps=None,
                            lr=trial.suggest_float("lr", space.lr_min, space.lr_max, log=True),
                            epochs=float(trial.suggest_int("epochs", space.epochs_min, space.epochs_max)))
        seed_run(cfg.seed)  # same head initialisation and data order in every trial
        module = make_module()
        evaluations = 0

        def evaluate_and_report(m: nn.Module) -> dict[str, float]:
            nonlocal evaluations
            scores = evaluate(m)
            evaluations += 1
            trial.report(_finite(scores.get("score")), evaluations * eval_every)
            if trial.should_prune():
                raise optuna.TrialPruned()
            return scores

        record = {"trial": trial.number, "lr": trial_cfg.lr, "epochs": int(trial_cfg.epochs)}
        trials.append(record)
        trial_dir = Path(work_dir) / f"trial{trial.number}"
        start = time.perf_counter()
        try:
            result = train_loop(module, features, collate, trial_cfg, work_dir=trial_dir,
                                evaluate=evaluate_and_report, desc=f"{desc} trial {trial.number + 1}/{space.trials}")
        except optuna.TrialPruned:
            record.update(state="pruned", evaluations=evaluations, seconds=round(time.perf_counter() - start, 1))
            _say(record)
            raise
        finally:
            shutil.rmtree(trial_dir, ignore_errors=True)
        score = _finite((result.final_eval or {}).get("score"))
        record.update(state="complete", score=score, best_step=result.best_step,
                      seconds=round(time.perf_counter() - start, 1))
        if not best or score > best["score"]:
            best.update(score=score, module=module, result=result, train=trial_cfg, trial=trial.number)
        _say(record)
        return score

    study.optimize(objective, n_trials=space.trials, timeout=space.minutes * 60)
    if not best:
        raise UserError(f"{desc}: no search trial finished within search.minutes={space.minutes}")
    for record in trials:
        record["chosen"] = record["trial"] == best["trial"]
    return SearchResult(module=best["module"], result=best["result"], train=best["train"], trials=trials,
                        seconds=round(time.perf_counter() - t0, 1))


def _finite(score: float | None) -> float:
    return -math.inf if score is None or math.isnan(score) else float(score)


def _say(record: dict[str, Any]) -> None:
    outcome = (f"score {record['score']:.4f}" if record["state"] == "complete"
               else f"pruned after {record['evaluations']} evaluations")
    log.info(f"search trial {record['trial'] + 1}: lr {record['lr']:.2e}, {record['epochs']} epochs "
             f"-> {outcome} ({record['seconds']} s)")
