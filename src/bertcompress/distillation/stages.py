"""`distill`: TinyBERT's two stages.

general: a pre-trained (not fine-tuned) teacher and unlabelled text; embedding + hidden +
attention losses; gives a task-agnostic student (a bare encoder).
task: a fine-tuned teacher and the task's data (optionally augmented); an intermediate-layer
phase (embedding + hidden + attention) and then a prediction-layer phase (soft cross-entropy, or
MSE for regression; for a tagging task soft cross-entropy per labelled word), each a run of the
shared training loop. What depends on the task's kind comes from data/kinds.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..config import DistillConfig, LossConfig, StudentConfig, to_dict
from ..data import Collator, chunk_corpus, kind_of, load_corpus, load_task_splits
from ..data.examples import TaskSpec
from ..errors import UserError
from ..evaluation.predict import score
from ..finetuning import label_task_head
from ..io import writes_output
from ..models.architecture import describe
from ..models.loading import check_same_vocab, check_task_model, load_model, load_tokenizer
from ..models.saving import checkpoint_dir, publish_model_folder
from ..models.student import build_student
from ..train.distributed import pick_device
from ..train.loop import seed_run, train_loop
from .mapping import resolve_mapping
from .objective import DistillationObjective, without_unreadable_layer_losses

INTERMEDIATE = ("embedding", "hidden", "attention")


def phase_weights(losses: LossConfig, phase: str, prediction_loss: str = "prediction") -> dict[str, float]:
    """The loss weights of a phase; `prediction_loss` is the task kind's prediction term."""
    if phase == "prediction":
        return {prediction_loss: losses.prediction}
    return {name: getattr(losses, name) for name in INTERMEDIATE}


def _student(cfg: DistillConfig, teacher: nn.Module, teacher_tok, *, kind: str,
             task: TaskSpec | None) -> nn.Module:
    num_labels = task.num_labels if task else None
    if cfg.student_path is None:
        t_layers = describe(teacher).num_layers
        mapping = resolve_mapping(cfg.losses.layer_mapping, cfg.student.num_layers, t_layers)
        return build_student(teacher, cfg.student, kind=kind, num_labels=num_labels,
                             init_layers=mapping, seed=cfg.train.seed)
    student_tok = None
    try:
        student_tok = load_tokenizer(cfg.student_path)
    except UserError:
        pass  # a student saved without tokenizer is checked by vocabulary size below
    if student_tok is not None:
        check_same_vocab(teacher_tok, student_tok, cfg.teacher, cfg.student_path)
    # a task student is usually a general (bare) student: its head is trained here, so a fresh one is meant
    student = load_model(cfg.student_path, kind, num_labels=num_labels, new_head=True)
    if student.config.vocab_size != teacher.config.vocab_size:
        raise UserError(f"teacher {cfg.teacher} and student {cfg.student_path} have different vocabularies "
                        f"({teacher.config.vocab_size} vs {student.config.vocab_size} tokens)")
    return student


def _set_teacher_precision(cfg: DistillConfig, teacher: nn.Module) -> None:
    """After the student is built (copying layers needs the fp32 teacher): this stage owns the
    teacher, so it is cast in place; the objective runs a non-fp32 teacher outside autocast."""
    if cfg.teacher_in_bf16(pick_device(cfg.train.device).type):
        teacher.to(torch.bfloat16)


@writes_output
def distill(cfg: DistillConfig, *, resume: bool = False) -> Path:
    """Run one distillation stage and write the student to `cfg.output`."""
    seed_run(cfg.train.seed)
    tokenizer = load_tokenizer(cfg.teacher)
    collate = Collator(tokenizer.pad_token_id or 0)
    result: dict = {"stage": cfg.stage, "teacher": cfg.teacher}
    if cfg.stage == "general":
        teacher = load_model(cfg.teacher, "base")
        student = _student(cfg, teacher, tokenizer, kind="base", task=None)
        features = chunk_corpus(tokenizer, load_corpus(cfg.corpus), cfg.corpus.max_seq_len,
                                cfg.corpus.max_sequences)
        _set_teacher_precision(cfg, teacher)
        objective = DistillationObjective(student, teacher, cfg.losses, phase_weights(cfg.losses, "intermediate"))
        run = train_loop(objective, features, collate, cfg.train, resume=resume, desc="general distill",
                         work_dir=checkpoint_dir(cfg.output, "general"), settings=to_dict(cfg.losses))
        result.update(**objective.mapping_record(), sequences=len(features), history=run.history,
                      train_seconds=run.seconds)
    else:
        chooses = any(t.keep_best or t.patience > 0 for t in (cfg.train, cfg.prediction_train))
        splits = load_task_splits(cfg.data, tokenizer, allow_tagging=True, validation=chooses)
        task, kind = splits.task, kind_of(splits.task)
        collate = splits.collate
        teacher = load_model(cfg.teacher, kind.model_kind)
        check_task_model(teacher, cfg.teacher, "teacher", kind.architecture, task.num_labels, task.name,
                         "fine-tune the teacher on the task first")
        student = _student(cfg, teacher, tokenizer, kind=kind.model_kind, task=task)
        label_task_head(student, task)
        _set_teacher_precision(cfg, teacher)
        if cfg.augment.enabled:
            from .augment import augment_examples

            cache = cfg.augment.cache_dir or str(checkpoint_dir(cfg.output, "augment_cache"))
            # before the features exist: they are encoded from the augmented examples
            splits = replace(splits, train_examples=augment_examples(splits.train_examples, cfg.teacher,
                                                                     cfg.augment, cache))
        features, dev_features = splits.train_features, splits.eval_features
        # what chooses (best checkpoint, early stop) sees the validation slice; eval only scores
        evaluate = splits.selection_evaluator(lambda m, feats: score(m.student, task, feats, collate),
                                              track_eval_split=cfg.prediction_train.track_eval_split)
        phases = [("intermediate", cfg.train), ("prediction", cfg.prediction_train)]
        for phase, train_cfg in phases:
            weights = without_unreadable_layer_losses(student, phase_weights(cfg.losses, phase, kind.prediction_loss),
                                                      f"task distill ({phase})")
            if not any(w > 0 for w in weights.values()):
                continue  # all of this phase's weights are zero: skip it
            objective = DistillationObjective(student, teacher, cfg.losses, weights,
                                              regression=task.is_regression)
            run = train_loop(objective, features, collate, train_cfg, resume=resume,
                             desc=f"task distill ({phase})", work_dir=checkpoint_dir(cfg.output, phase),
                             evaluate=evaluate if phase == "prediction" else None,
                             settings={"losses": to_dict(cfg.losses), "augment": to_dict(cfg.augment)})
            result[phase] = {"history": run.history, "train_seconds": run.seconds, "stopped": run.stopped,
                             "chosen_on_score": run.final_eval,
                             **({"best_step": run.best_step} if train_cfg.keep_best else {})}
            result.update(objective.mapping_record())
        result.update(task=task.name, eval_split=splits.eval_split, chosen_on=splits.chosen_on,
                      train_examples=len(splits.train_examples))
        student.eval()
        result["dev"] = score(student, task, dev_features, collate)
    if cfg.student_path is not None and (shape := student_shape(student, cfg.student.init)) is not None:
        cfg = replace(cfg, student=shape)  # the saved config describes the student that ran, not the default
    return publish_model_folder(cfg.output, student, tokenizer, cfg, result)


def student_shape(student: nn.Module, init: str) -> StudentConfig | None:
    """A loaded student's shape as a StudentConfig (a pruned student's per-layer sizes may differ:
    this gives its config's); None for one a StudentConfig cannot describe (a NAS-BERT student:
    its `arch` in config.json is its shape)."""
    try:
        view, config = describe(student), student.config
    except UserError:
        return None
    ffn = next((getattr(config, k) for k in ("intermediate_size", "hidden_dim", "ffn_dim")
                if isinstance(getattr(config, k, None), int)), None)
    return StudentConfig(num_layers=view.num_layers, hidden_size=view.hidden_size, num_heads=view.num_heads,
                         ffn_size=ffn, init=init)
