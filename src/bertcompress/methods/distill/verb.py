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

from bertcompress.core.config import to_dict
from bertcompress.core.errors import UserError
from bertcompress.core.io import writes_output
from bertcompress.core.log import log
from bertcompress.data.alignment import two_view_training
from bertcompress.data.corpus import chunk_corpus, load_corpus
from bertcompress.data.encoding import Collator
from bertcompress.data.examples import TaskSpec
from bertcompress.data.kinds import kind_of
from bertcompress.data.splits import load_task_splits
from bertcompress.evaluation.predict import score
from bertcompress.methods.distill.config import DistillConfig, LossConfig
from bertcompress.methods.distill.loss_registry import task_weights, without_layer_losses
from bertcompress.methods.distill.objective import (
    DistillationObjective,
    without_unreadable_layer_losses,
)
from bertcompress.methods.distill.teacher_outputs import TeacherOutputs, build_teacher_outputs
from bertcompress.models.architecture import describe
from bertcompress.models.config import StudentConfig
from bertcompress.models.layer_mapping import resolve_mapping
from bertcompress.models.loading import (
    check_same_vocab,
    check_task_model,
    load_model,
    load_tokenizer,
    model_config,
)
from bertcompress.models.saving import checkpoint_dir, publish_model_folder
from bertcompress.models.student import build_student
from bertcompress.models.task_head import label_task_head
from bertcompress.train.distributed import pick_device
from bertcompress.train.loop import seed_run, train_loop

MAX_UNKNOWN_SHARE = 0.2  # a student of another vocabulary that cannot read more of the text is refused


def phase_weights(losses: LossConfig, phase: str, prediction_loss: str = "prediction") -> dict[str, float]:
    """The loss weights of a phase: the layer losses (intermediate) or the others (prediction), the
    prediction term being the task kind's `prediction_loss`."""
    return task_weights(losses.weights, prediction_loss, layers=phase != "prediction")


def _student(cfg: DistillConfig, teacher: nn.Module, *, kind: str, task: TaskSpec | None) -> nn.Module:
    num_labels = task.num_labels if task else None
    if cfg.student_path is None:
        t_layers = describe(teacher).num_layers
        if cfg.student.pretrained is not None:
            raise UserError(f"student.init {cfg.student.pretrained}: distill starts from a pre-trained model given as "
                            "student_path (cut it to a smaller shape with `extract` first; `run` does both)")
        mapping = resolve_mapping(cfg.losses.layer_mapping, cfg.student.depth(t_layers), t_layers)
        return build_student(teacher, cfg.student, kind=kind, num_labels=num_labels,
                             init_layers=mapping, seed=cfg.train.seed)
    # a task student is usually a general (bare) student: its head is trained here, so a fresh one is meant
    return load_model(cfg.student_path, kind, num_labels=num_labels, new_head=True)


def student_tokenizer(cfg: DistillConfig, teacher_tok, teacher_vocab_size: int, stage: str):
    """The tokenizer the student reads with: the teacher's, or (task stage) the student's own when
    it was saved with another vocabulary (each model then reads the text its own way,
    data/alignment.py). A student saved without a tokenizer must match the teacher's vocabulary
    size."""
    if cfg.student_path is None:
        return teacher_tok
    try:
        student_tok = load_tokenizer(cfg.student_path)
    except UserError:
        student_tok = None
    if student_tok is None:

        size = model_config(cfg.student_path).vocab_size
        if size != teacher_vocab_size:
            raise UserError(f"teacher {cfg.teacher} and student {cfg.student_path} have different vocabularies "
                            f"({teacher_vocab_size} vs {size} tokens) and the student has no tokenizer saved")
        return teacher_tok
    if student_tok.get_vocab() == teacher_tok.get_vocab():
        return teacher_tok
    if stage == "general":
        check_same_vocab(teacher_tok, student_tok, cfg.teacher, cfg.student_path)  # raises: same text, one view
    return student_tok


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
        student_tokenizer(cfg, tokenizer, teacher.config.vocab_size, "general")
        student = _student(cfg, teacher, kind="base", task=None)
        features = chunk_corpus(tokenizer, load_corpus(cfg.corpus), cfg.corpus.max_seq_len,
                                cfg.corpus.max_sequences)
        _set_teacher_precision(cfg, teacher)
        objective = DistillationObjective(student, teacher, cfg.losses, phase_weights(cfg.losses, "intermediate"))
        run = train_loop(objective, features, collate, cfg.train, config=cfg, resume=resume, desc="general distill",
                         work_dir=checkpoint_dir(cfg.output, "general"), settings=to_dict(cfg.losses))
        result.update(**objective.mapping_record(), sequences=len(features), history=run.history,
                      train_seconds=run.seconds)
        return _publish(cfg, student, tokenizer, result)

    teacher_tok = tokenizer
    chooses = any(t.keep_best or t.patience > 0 for t in (cfg.train, cfg.prediction_train))
    if cfg.student_path is not None:  # the student's tokenizer decides how the task data is read

        t_vocab = model_config(cfg.teacher).vocab_size
        tokenizer = student_tokenizer(cfg, teacher_tok, t_vocab, "task")
    two_views = tokenizer is not teacher_tok
    splits = load_task_splits(cfg.data, tokenizer, allow_tagging=True, validation=chooses)
    task, kind = splits.task, kind_of(splits.task)
    if two_views and kind.model_kind != "classifier":
        raise UserError(f"a student with another vocabulary than its teacher is supported for sentence and pair "
                        f"tasks, not {task.name} ({kind.unit}); use a student of the teacher's tokenizer")
    collate = splits.collate
    teacher = load_model(cfg.teacher, kind.model_kind)
    check_task_model(teacher, cfg.teacher, "teacher", kind.architecture, task.num_labels, task.name,
                     "fine-tune the teacher on the task first")
    student = _student(cfg, teacher, kind=kind.model_kind, task=task)
    label_task_head(student, task)
    _set_teacher_precision(cfg, teacher)
    if cfg.augment.enabled:
        from bertcompress.methods.distill.augment import augment_examples

        cache = cfg.augment.cache_dir or str(checkpoint_dir(cfg.output, "augment_cache"))
        # before the features exist: they are encoded from the augmented examples
        splits = replace(splits, train_examples=augment_examples(splits.train_examples, cfg.teacher,
                                                                 cfg.augment, cache))
        result["augment"] = splits.train_examples.record  # which candidate source, how many new examples
    layer_losses_readable = True
    if two_views:
        features, collate, stats = two_view_training(tokenizer, teacher_tok, splits.train_examples,
                                                     cfg.data.max_seq_len)
        if stats.unknown_share > MAX_UNKNOWN_SHARE:
            raise UserError(f"student {cfg.student_path}'s tokenizer reads {stats.unknown_share:.0%} of the task's "
                            f"pieces as unknown ({tokenizer.unk_token}): its vocabulary does not fit this text")
        layer_losses_readable = stats.usable
        log.info(f"the student reads its own tokenizer ({len(tokenizer.get_vocab()):,} pieces), the "
                 f"teacher its own ({len(teacher_tok.get_vocab()):,}): {stats.describe()}"
              + ("" if stats.usable else "; the layer losses are dropped, the student learns from the teacher's "
                 "predictions"))
        result["tokenizers"] = {"student": "own", **stats.record()}
    else:
        features = splits.train_features
    dev_features = splits.eval_features
    features = [dict(f, index=i) for i, f in enumerate(features)]  # rows of the teacher cache
    # what chooses (best checkpoint, early stop) sees the validation slice; eval only scores
    evaluate = splits.selection_evaluator(lambda m, feats: score(m.student, task, feats, collate),
                                          track_eval_split=cfg.prediction_train.track_eval_split)
    cached: TeacherOutputs | None = None
    for phase, train_cfg in (("intermediate", cfg.train), ("prediction", cfg.prediction_train)):
        weights = phase_weights(cfg.losses, phase, kind.prediction_loss)
        weights = without_unreadable_layer_losses(student, weights, f"task distill ({phase})")
        if not layer_losses_readable:
            weights = without_layer_losses(weights)
        if not any(w > 0 for w in weights.values()):
            continue  # all of this phase's weights are zero: skip it
        objective = DistillationObjective(student, teacher, cfg.losses, weights, regression=task.is_regression)
        if cached is None and cfg.teacher_cache.enabled and not train_cfg.cuda_graphs:
            cached = _teacher_cache(cfg, objective, features, collate, train_cfg)
            result["teacher_cache"] = {"folder": str(cached.folder), "hidden": list(cached.layers.hidden),
                                       "scores": list(cached.layers.scores),
                                       "build_seconds": round(cached.build_seconds, 1)}
        objective.teacher_outputs = cached
        run = train_loop(objective, features, collate, train_cfg, config=cfg, resume=resume,
                         desc=f"task distill ({phase})", work_dir=checkpoint_dir(cfg.output, phase),
                         evaluate=evaluate if phase == "prediction" else None,
                         settings={"losses": to_dict(cfg.losses), "augment": to_dict(cfg.augment)})
        result[phase] = {"history": run.history, "train_seconds": run.seconds, "step_seconds": run.step_seconds,
                         "stopped": run.stopped,
                         "chosen_on_score": run.final_eval,
                         **({"best_step": run.best_step} if train_cfg.keep_best else {})}
        result.update(objective.mapping_record())
    result.update(task=task.name, eval_split=splits.eval_split, chosen_on=splits.chosen_on,
                  train_examples=len(splits.train_examples))
    student.eval()
    result["dev"] = score(student, task, dev_features, collate)
    return _publish(cfg, student, tokenizer, result)


def _teacher_cache(cfg: DistillConfig, objective: DistillationObjective, features: list[dict], collate,
                   train_cfg) -> TeacherOutputs:
    """The teacher's outputs on the training features for every phase: what the first phase's
    losses read, and the logits."""
    device = pick_device(train_cfg.device)
    objective.to(device)
    view = describe(objective.teacher)
    precision = "bf16" if next(objective.teacher.parameters()).dtype == torch.bfloat16 else (
        "autocast-bf16" if train_cfg.uses_bf16(device.type) else "fp32")
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=train_cfg.uses_bf16(device.type)):
        return build_teacher_outputs(objective.run_teacher, features, collate, objective.teacher_layers(),
                                     cfg.teacher_cache, teacher=cfg.teacher, hidden_size=view.hidden_size,
                                     heads=view.num_heads, num_layers=view.num_layers, precision=precision,
                                     device=device, batch_size=max(train_cfg.batch_size, 32))


def _publish(cfg: DistillConfig, student: nn.Module, tokenizer, result: dict) -> Path:
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
