"""Building a new student of the teacher's family, and DistilBERT-style init from teacher layers."""

from __future__ import annotations

import copy

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.models.architecture import base_model, describe
from bertcompress.models.config import StudentConfig
from bertcompress.models.family import family_of


def student_config(teacher_config, cfg: StudentConfig, num_labels: int | None = None,
                   init_layers: list[int] | None = None):
    """The teacher's config with the student's sizes: same family, vocabulary and positions; its
    layers' kinds (ModernBERT's local or global) those of the teacher layers it starts from."""
    config = copy.deepcopy(teacher_config)
    family = family_of(config)
    layers_f, hidden_f, heads_f, ffn_f = family.size_fields
    depth = cfg.depth(getattr(config, layers_f))
    chosen = (cfg.init_layers or init_layers) if cfg.init == "teacher_layers" else None
    family.set_layers(config, chosen if chosen and len(chosen) == depth else list(range(1, depth + 1)))
    if cfg.hidden_size is not None:  # None keeps the teacher's size
        family.set_hidden_size(config, cfg.hidden_size)
    for field, size in ((heads_f, cfg.num_heads), (ffn_f, cfg.ffn_size)):
        if size is not None:
            setattr(config, field, size)
    if family.embedding_size_field and family.embedding_follows_hidden and cfg.hidden_size is not None:
        setattr(config, family.embedding_size_field, cfg.hidden_size)  # ELECTRA's embeddings follow the hidden size
    hidden, heads = getattr(config, hidden_f), getattr(config, heads_f)
    if hidden % heads:
        raise UserError(f"student hidden size {hidden} is not a multiple of its head count {heads}")
    if num_labels is not None:
        config.num_labels = num_labels
    config.architectures = None
    return config


def check_student(teacher_config, cfg: StudentConfig,
                  mappings: dict[str, str | list[int] | None] | None = None) -> None:
    """What building and distilling this student from a teacher of `teacher_config` would refuse,
    from the configs alone (no weights), so a verb can say it before it writes anything: its sizes on
    the teacher's family, the layers `init: teacher_layers` copies, and the layer mappings
    (`{"losses.layer_mapping": spec, ...}`) against the teacher's depth."""
    from bertcompress.models.layer_mapping import resolve_mapping

    family = family_of(teacher_config)
    layers_f, *sizes = family.size_fields
    n_teacher = getattr(teacher_config, layers_f)
    for name, spec in (mappings or {}).items():
        if spec is not None:
            try:
                resolve_mapping(spec, cfg.depth(n_teacher), n_teacher)
            except UserError as e:
                raise UserError(f"{name}: {e}") from None
    if cfg.pretrained is not None:
        return  # its shape is checked against the init model's (pretrained_start)
    config = student_config(teacher_config, cfg)
    if cfg.init == "teacher_layers":
        if any(getattr(config, f) != getattr(teacher_config, f) for f in sizes):
            raise UserError("student.init=teacher_layers needs the student's hidden, head and FFN sizes to equal the "
                            f"teacher's ({', '.join(f'{f} {getattr(teacher_config, f)}' for f in sizes)})")
        layers = cfg.init_layers
        if layers is not None:
            if len(layers) != cfg.depth(n_teacher):
                raise UserError(f"student.init_layers needs {cfg.depth(n_teacher)} teacher layers, got {len(layers)}")
            for layer in layers:
                if not 1 <= layer <= n_teacher:
                    raise UserError(f"student.init_layers: teacher layer {layer} is out of range 1..{n_teacher}")


def build_student(teacher: nn.Module, cfg: StudentConfig, *, classifier: bool = False, kind: str | None = None,
                  num_labels: int | None = None, init_layers: list[int] | None = None, seed: int = 42) -> nn.Module:
    """A fresh student of `kind` (loading.ModelKind; default: "classifier" if `classifier` else
    "base"); with cfg.init == 'teacher_layers', embeddings and the chosen (1-based) teacher layers
    are copied, which needs every layer size equal to the teacher's."""
    from bertcompress.models.loading import auto_class

    config = student_config(teacher.config, cfg, num_labels, init_layers)
    torch.manual_seed(seed)
    student = auto_class(kind or ("classifier" if classifier else "base")).from_config(config).float()
    if cfg.init == "teacher_layers":
        copy_teacher_layers(teacher, student, cfg.init_layers or init_layers or [])
    return student


def _outside_layers(model: nn.Module, layers: list[nn.Module]) -> dict[str, torch.Tensor]:
    """The bare encoder's tensors that belong to no layer: embeddings, and what every layer shares
    (MPNet's position bias, DeBERTa's relative embeddings, ALBERT's embedding projection)."""
    inside = {id(t) for layer in layers for t in layer.state_dict(keep_vars=True).values()}
    return {k: t for k, t in base_model(model).state_dict(keep_vars=True).items() if id(t) not in inside}


def copy_teacher_layers(teacher: nn.Module, student: nn.Module, layers: list[int]) -> None:
    """Embeddings, shared tables and the chosen teacher layers into the student. ALBERT's layers
    are one module: every choice copies it. ModernBERT's first layer has no attention norm: a
    teacher layer copied there leaves its norm behind, one copied from there gets a fresh one."""
    t, s = describe(teacher), describe(student)
    if len(layers) != s.num_layers:
        raise UserError(f"student.init_layers needs {s.num_layers} teacher layers, got {len(layers)}")
    for layer in layers:
        if not 1 <= layer <= t.num_layers:
            raise UserError(f"student.init_layers: teacher layer {layer} is out of range 1..{t.num_layers}")
    t_rest, s_rest = _outside_layers(teacher, t.layers), _outside_layers(student, s.layers)
    try:
        with torch.no_grad():
            for name, tensor in s_rest.items():
                if name in t_rest:
                    tensor.copy_(t_rest[name])
        strict = family_of(teacher).unmovable_layers is None
        for s_layer, t_index in zip(s.layers, layers):
            s_layer.load_state_dict(t.layers[t_index - 1].state_dict(), strict=strict)
    except RuntimeError:
        raise UserError("student.init=teacher_layers needs the student's hidden, head and FFN sizes to "
                        f"equal the teacher's (teacher hidden {t.hidden_size}, heads {t.num_heads})") from None
