"""`finetune`: train a model (usually the teacher) on a labelled task with the shared loop: a
sentence classifier or regressor, or for a tagging task a token classifier (data/kinds.py)."""

from __future__ import annotations

from pathlib import Path

from bertcompress.core.io import writes_output
from bertcompress.core.log import log
from bertcompress.data.kinds import kind_of
from bertcompress.data.splits import load_task_splits
from bertcompress.evaluation.metrics import learned
from bertcompress.evaluation.predict import score
from bertcompress.evaluation.task_scores import trivial_baseline
from bertcompress.methods.finetune.config import FinetuneConfig
from bertcompress.models.loading import load_model, load_tokenizer
from bertcompress.models.saving import checkpoint_dir, publish_model_folder
from bertcompress.models.task_head import label_task_head
from bertcompress.train.hyperparameter_search import search_train
from bertcompress.train.loop import seed_run, train_loop
from bertcompress.train.objectives import SupervisedObjective


@writes_output
def finetune(cfg: FinetuneConfig, *, resume: bool = False) -> Path:
    """Fine-tune `cfg.model` on `cfg.data`; write a `save_pretrained` folder to `cfg.output`."""
    seed_run(cfg.train.seed)
    tokenizer = load_tokenizer(cfg.model)
    chooses = cfg.train.keep_best or cfg.train.patience > 0 or cfg.train.search is not None
    splits = load_task_splits(cfg.data, tokenizer, allow_tagging=True, validation=chooses)
    task, kind = splits.task, kind_of(splits.task)

    def new_objective() -> SupervisedObjective:
        model = load_model(cfg.model, kind.model_kind, num_labels=task.num_labels, new_head=True)
        label_task_head(model, task)
        return SupervisedObjective(model, task.is_regression)

    collate = splits.collate
    # what chooses (best checkpoint, early stop, search) sees the validation slice; eval only scores
    evaluate = splits.selection_evaluator(lambda m, feats: score(m.model, task, feats, collate),
                                          track_eval_split=cfg.train.track_eval_split)
    work_dir = checkpoint_dir(cfg.output, "finetune")
    extra = {}
    if cfg.train.search is not None:  # trials are not checkpointed: --resume starts the search again
        found = search_train(new_objective, splits.train_features, collate, cfg.train, evaluate=evaluate,
                             work_dir=work_dir, desc="finetune search")
        objective, result = found.module, found.result
        extra["search"] = {"chosen": {"lr": found.train.lr, "epochs": found.train.epochs},
                           "trials": found.trials, "seconds": found.seconds}
    else:
        objective = new_objective()
        result = train_loop(objective, splits.train_features, collate, cfg.train, config=cfg, work_dir=work_dir,
                            resume=resume, evaluate=evaluate, desc="finetune")
    if result.best_step is not None:
        extra["best_step"] = result.best_step
    if chooses:
        extra.update(chosen_on=splits.chosen_on, validation=result.final_eval or evaluate(objective),
                     stopped=result.stopped)
    # said now, not only in a later report: a teacher that learned nothing teaches nothing
    trivial = trivial_baseline(task, splits.eval_examples)
    dev = score(objective.model, task, splits.eval_features, collate)
    extra.update(trivial, learned=learned(dev["score"], trivial["trivial_score"]))
    if not extra["learned"]:
        log.warning(f"finetune: {task.metrics[0]} {dev['score']:.3f} on "
                    f"{splits.eval_split} is not clearly above the trivial baseline ({trivial['trivial_predictor']}: "
                    f"{trivial['trivial_score']:.3f}); try more steps or another learning rate "
                    "(train.min_steps, train.lr, or train.search)")
    return publish_model_folder(cfg.output, objective.model, tokenizer, cfg,
                                {"task": task.name, "eval_split": splits.eval_split, "dev": dev,
                                 "history": result.history, "train_seconds": result.seconds, **extra})
