"""`quantize`: KDLSQ, i.e. LSQ quantization-aware training driven by TinyBERT distillation, and
its baselines (LSQ on the labels alone; post-training dynamic int8).

The student (a full-precision folder, typically the distilled student) is fake-quantized
(`quantize_`), its activation steps set from one batch, then trained by the shared loop with the
four TinyBERT losses at once against a full-precision teacher: the student's own unquantized copy
(default, as in KDLSQ, where the quantized model distils from itself in full precision) or a
fine-tuned teacher. The output is the packed low-bit folder (models/quantized/packed.py). A tagging student
(a token classifier) works the same way: its linear layers are quantized and the prediction term
is the per-word soft cross-entropy (data/kinds.py says which).
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from bertcompress.core.config import save_config, to_dict
from bertcompress.core.io import atomic_dir, atomic_write_json, writes_output
from bertcompress.core.log import log
from bertcompress.core.ranks import is_main_process, wait_for_main
from bertcompress.data.alignment import two_view_training
from bertcompress.data.kinds import kind_of
from bertcompress.data.splits import load_task_splits
from bertcompress.evaluation.predict import score
from bertcompress.export.onnx_int8 import export_onnx_int8
from bertcompress.methods.distill.loss_registry import task_weights, without_layer_losses
from bertcompress.methods.distill.objective import (
    DistillationObjective,
    without_unreadable_layer_losses,
)
from bertcompress.methods.quantize.config import QuantizeTrainConfig
from bertcompress.models.card import facts_from_run, write_model_card
from bertcompress.models.loading import (
    auto_class,
    check_same_vocab,
    check_task_model,
    load_model,
    load_tokenizer,
    model_kind_of,
    resolve_model_path,
)
from bertcompress.models.quantized.modules import calibrate_, quantize_
from bertcompress.models.quantized.packed import WEIGHTS_FILE, save_packed
from bertcompress.models.saving import RESULT_FILENAME, checkpoint_dir, drop_checkpoints
from bertcompress.models.task_head import label_task_head
from bertcompress.train.loop import seed_run, train_loop
from bertcompress.train.objectives import SupervisedObjective

PTQ_FILE = "ptq_int8.pt"


def _weights_bytes(name: str) -> int | None:
    """The student's weights on disk, counted as `evaluate` counts them (one copy; a packed folder's
    packed file, not its dequantized copy)."""
    from bertcompress.evaluation.profile import bytes_on_disk

    folder = Path(resolve_model_path(name))
    return (bytes_on_disk(folder) if folder.is_dir() else 0) or None


def _load_classifier(name: str, task, role: str) -> nn.Module:
    """The task model (sentence classifier or tagger) at `name`, checked against the task."""
    kind = kind_of(task)
    model = load_model(name, kind.model_kind)
    check_task_model(model, name, role, kind.architecture, task.num_labels, task.name,
                     "quantize a model fine-tuned or distilled on the task")
    return model


def kd_weights(cfg: QuantizeTrainConfig, task) -> dict[str, float]:
    """KDLSQ's terms at once: the layer losses and the task kind's prediction term."""
    return task_weights(cfg.losses.weights, kind_of(task).prediction_loss)


@writes_output
def quantize(cfg: QuantizeTrainConfig, *, resume: bool = False) -> Path:
    """Fake-quantize `cfg.student`, train it (KDLSQ, or LSQ on labels when kd is false), write the
    packed folder to `cfg.output`; with `cfg.ptq`, the dynamic-int8 baseline instead."""
    if cfg.ptq:
        return ptq_baseline(cfg)
    seed_run(cfg.train.seed)
    tokenizer = load_tokenizer(cfg.student)
    splits = load_task_splits(cfg.data, tokenizer, allow_tagging=True)
    collate = splits.collate
    task, features, dev_features = splits.task, splits.train_features, splits.eval_features
    fp_student = _load_classifier(cfg.student, task, "student")
    fp_dev = score(fp_student, task, dev_features, collate)
    student = quantize_(copy.deepcopy(fp_student), cfg.quant)
    label_task_head(student, task)
    # Activation steps start from one fixed batch (LSQ's first-batch init), before the loop
    # wraps the model in DDP, so every process starts from the same steps.
    calibrate_(student, collate(features[:cfg.train.batch_size]))
    train_collate = collate
    if cfg.kd:
        weights = without_unreadable_layer_losses(student, kd_weights(cfg, task), "quantize")
        if cfg.teacher is None:
            teacher = fp_student
        else:
            teacher_tok = load_tokenizer(cfg.teacher)
            teacher = _load_classifier(cfg.teacher, task, "teacher")
            if teacher_tok.get_vocab() != tokenizer.get_vocab():  # each reads the text its own way
                if kind_of(task).model_kind != "classifier":
                    check_same_vocab(teacher_tok, tokenizer, cfg.teacher, cfg.student)
                features, train_collate, stats = two_view_training(tokenizer, teacher_tok, splits.train_examples,
                                                                   cfg.data.max_seq_len)
                log.info(f"quantize: the teacher reads its own tokenizer: {stats.describe()}")
                if not stats.usable:
                    weights = without_layer_losses(weights)
        objective = DistillationObjective(student, teacher, cfg.losses, weights, regression=task.is_regression)
    else:
        objective = SupervisedObjective(student, task.is_regression)
    run = train_loop(objective, features, train_collate, cfg.train, config=cfg, resume=resume,
                     desc=f"quantize {cfg.quant.spec()} ({'KDLSQ' if cfg.kd else 'LSQ'})",
                     work_dir=checkpoint_dir(cfg.output, "quantize"),
                     settings={"quant": to_dict(cfg.quant), "kd": cfg.kd, "teacher": cfg.teacher,
                               "losses": to_dict(cfg.losses)},
                     evaluate=lambda _: score(student, task, dev_features, collate))
    student.eval()
    result = {"method": "kdlsq" if cfg.kd else "lsq", "bits": cfg.quant.spec(), "task": task.name,
              "eval_split": splits.eval_split, "teacher": cfg.teacher or cfg.student,
              "dev": run.final_eval or score(student, task, dev_features, collate),  # the loop's last eval
              "fp_dev": fp_dev, "fp_bytes_on_disk": _weights_bytes(cfg.student), "history": run.history,
              "train_seconds": run.seconds}
    if is_main_process():
        save_packed(cfg.output, student.cpu(), cfg.quant, tokenizer=tokenizer, config=cfg, result=result,
                    write_onnx=export_onnx_int8 if cfg.onnx else None, model_kind=kind_of(task).model_kind)
        drop_checkpoints(cfg.output)
    wait_for_main()
    return Path(cfg.output)


def show_result(cfg: QuantizeTrainConfig, folder: Path) -> None:
    """The CLI's summary line: the scores, and what they were computed on, and the size."""
    path = Path(folder) / RESULT_FILENAME
    if path.is_file():  # absent on non-zero ranks under torchrun
        r = json.loads(path.read_text(encoding="utf-8"))
        ratio = r["fp_bytes_on_disk"] / r["bytes_on_disk"] if r.get("fp_bytes_on_disk") else None
        print(f"[bertcompress] {r['method']}: {r.get('eval_split', 'dev')} {r['dev']} (full precision "
              f"{r['fp_dev']}); {r['bytes_on_disk']:,} bytes" + (f", {ratio:.1f}x smaller" if ratio else ""))
    print(f"[bertcompress] wrote {folder}")


def ptq_dynamic_int8(model: nn.Module) -> nn.Module:
    """Post-training dynamic int8 (PyTorch eager mode): every nn.Linear gets int8 per-tensor
    weights, activations are quantized per batch on the fly; no training, no data. A copy, on CPU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao eager quantization's notice about torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear},
                                                      dtype=torch.qint8)


def ptq_baseline(cfg: QuantizeTrainConfig) -> Path:
    """Dynamic int8 PTQ of `cfg.student`, scored on the dev split; writes `ptq_int8.pt` (its state
    dict: `load_ptq` reads it back), the model config, tokenizer and result to `cfg.output`."""
    tokenizer = load_tokenizer(cfg.student)
    splits = load_task_splits(cfg.data, tokenizer, allow_tagging=True)
    collate = splits.collate
    task, dev_features = splits.task, splits.eval_features  # the training split is never encoded
    fp_student = _load_classifier(cfg.student, task, "student").cpu()
    model = ptq_dynamic_int8(fp_student)
    result = {"method": "ptq_dynamic_int8", "task": task.name, "eval_split": splits.eval_split,
              "dev": score(model, task, dev_features, collate),
              "fp_dev": score(fp_student, task, dev_features, collate),
              "fp_bytes_on_disk": _weights_bytes(cfg.student)}
    if is_main_process():
        with atomic_dir(cfg.output) as tmp:
            torch.save(model.state_dict(), tmp / PTQ_FILE)
            model.config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            save_config(cfg, tmp)
            atomic_write_json(tmp / RESULT_FILENAME, {**result, "bytes_on_disk": (tmp / PTQ_FILE).stat().st_size})
            facts = facts_from_run(Path(cfg.output), fp_student, cfg, result)  # the float model's shape
            facts.shape += ", dynamic int8 (PyTorch post-training quantization)"
            facts.library = "bertcompress"
            facts.load = (f"from bertcompress.methods.quantize.verb import load_ptq\n\n"
                          f"model = load_ptq(\"path/to/{facts.name}\")  # {PTQ_FILE}: PyTorch's own int8 modules")
            write_model_card(tmp, facts)
    wait_for_main()
    return Path(cfg.output)


def load_ptq(folder: str | Path) -> nn.Module:
    """The dynamic-int8 model written by `ptq_baseline` (a sentence classifier or a tagger, as saved)."""
    from transformers import AutoConfig

    folder = Path(folder)
    config = AutoConfig.from_pretrained(folder)
    model = ptq_dynamic_int8(auto_class(model_kind_of(config)).from_config(config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's TypedStorage notice when reading quantized tensors
        model.load_state_dict(torch.load(folder / PTQ_FILE, weights_only=True))
    return model.eval()


__all__ = ["quantize", "show_result", "ptq_baseline", "ptq_dynamic_int8", "load_ptq", "WEIGHTS_FILE"]
