"""Extract Then Distill: a smaller student built from slices of the teacher's own weights.

Depth: the student's layers are copies of chosen teacher layers (uniform, by importance, at
random, or listed). Width: ONE set of hidden dimensions is kept for the embeddings, every layer,
the pooler and the task head, so the residual stream stays one coordinate system; per layer a set
of heads, a set of dimensions inside each kept head, and a set of FFN neurons.

Head dimension. HF encoders fix head_dim = hidden_size / num_heads, and Q/K/V must output
hidden_size features. So the student's head_dim is its hidden size over its head count:
  * num_heads None (default) keeps the teacher's head count and gives each head
    hidden/heads of its teacher dimensions — what ETD extracts ("head neurons");
  * a smaller num_heads with hidden = num_heads × the teacher's head_dim keeps whole heads.
A head can lose dimensions but never gain them, so a head_dim above the teacher's is an error.
We do not rescale Q when a head loses dimensions: its scores are then the kept part of the dot
product over √(new head_dim); distillation adapts the rest.

The output is a normal model of the teacher's class with a smaller config: `save_pretrained`
writes it and `DistillConfig.student_path` (or plain `from_pretrained`) loads it. Slicing hidden
dimensions changes what LayerNorm averages over, so the student equals the teacher exactly only
when nothing is removed; that is what the tests check.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.methods.prune.config import ExtractConfig
from bertcompress.methods.prune.importance import Importance, compute_importance
from bertcompress.models.family import family_of
from bertcompress.models.layer_mapping import resolve_mapping
from bertcompress.models.units import Encoder, encoder

# (axis 0, axis 1) roles of a layer part's weight; a bias follows axis 0. Anything else: hidden.
AXIS_ROLES = {"query": ("units", "hidden"), "key": ("units", "hidden"), "value": ("units", "hidden"),
              "out": ("hidden", "units"), "ffn_in": ("ffn", "hidden"), "ffn_out": ("hidden", "ffn")}


@dataclass
class ExtractionPlan:
    """What the student keeps; 0-based teacher indices, sorted (so keeping all is the identity)."""

    layers: list[int]  # teacher layer of each student layer
    hidden: list[int]
    heads: list[list[int]]  # per student layer: teacher heads
    units: list[list[int]]  # per student layer: Q/K/V rows (= output-projection columns)
    ffn: list[list[int]]  # per student layer: FFN neurons
    num_heads: int

    def summary(self) -> dict:
        out = asdict(self)
        out["layers"] = [t + 1 for t in self.layers]  # 1-based like every layer mapping
        out.pop("units")
        return out


def _teacher_sizes(enc: Encoder) -> tuple[int, int, int]:
    ffn = {p["ffn_in"].out_features for p in enc.parts}
    if len(ffn) > 1 or any(enc.heads_in(i) != enc.num_heads for i in range(enc.num_layers)):
        raise UserError("extraction needs a teacher whose layers all have the same size (not a pruned model)")
    return enc.hidden_size, enc.num_heads, ffn.pop()


def _student_sizes(enc: Encoder, cfg: ExtractConfig) -> tuple[int, int, int]:
    hidden_t, heads_t, ffn_t = _teacher_sizes(enc)
    hidden = cfg.hidden_size or hidden_t
    heads = cfg.num_heads or heads_t
    ffn = cfg.ffn_size or ffn_t
    for name, v, t in (("num_layers", cfg.num_layers, enc.num_layers), ("hidden_size", hidden, hidden_t),
                       ("num_heads", heads, heads_t), ("ffn_size", ffn, ffn_t)):
        if v > t:
            raise UserError(f"cannot extract {name} {v}: the teacher has only {t}")
    if hidden % heads:
        raise UserError(f"hidden_size {hidden} is not a multiple of num_heads {heads}; set num_heads")
    if hidden // heads > enc.head_dim:
        raise UserError(f"{heads} heads of hidden {hidden} need head dimension {hidden // heads}, more than the "
                        f"teacher's {enc.head_dim}; use at least {-(-hidden // enc.head_dim)} heads")
    return hidden, heads, ffn


def _pick(n: int, k: int, scores: torch.Tensor | None, gen: torch.Generator) -> list[int]:
    """k of n indices, sorted: the k highest scores (ties: the lower index), or random if no scores."""
    if k >= n:
        return list(range(n))
    if scores is None:
        return sorted(torch.randperm(n, generator=gen)[:k].tolist())
    return sorted(torch.argsort(scores.float(), descending=True, stable=True)[:k].tolist())


def plan_extraction(teacher: nn.Module, cfg: ExtractConfig, importance: Importance | None = None) -> ExtractionPlan:
    enc = encoder(teacher)
    hidden, heads, ffn = _student_sizes(enc, cfg)
    rand = cfg.strategy == "rand"
    if importance is None and (not rand or cfg.layers == "importance"):
        raise UserError("ETD-Impt and layers: importance need importance scores")
    imp = None if rand else importance
    gen = torch.Generator().manual_seed(cfg.seed)
    n_teacher = enc.num_layers
    if isinstance(cfg.layers, list):
        bad = [v for v in cfg.layers if v > n_teacher]
        if bad:
            raise UserError(f"layers: teacher layer {bad[0]} is out of range 1..{n_teacher}")
        layers = [v - 1 for v in cfg.layers]
    elif cfg.layers == "uniform":
        layers = [g - 1 for g in resolve_mapping("uniform", cfg.num_layers, n_teacher)]
    else:
        layer_scores = importance.layer_scores() if cfg.layers == "importance" else None
        layers = _pick(n_teacher, cfg.num_layers, layer_scores, gen)
    kept_hidden = _pick(enc.hidden_size, hidden, None if imp is None else imp.hidden, gen)
    d, d_new = enc.head_dim, hidden // heads
    shared = None
    if family_of(teacher).shared_head_bias:  # one per-head table serves every layer: one head set
        shared = _pick(enc.num_heads, heads, None if imp is None else sum(imp.heads[t] for t in layers), gen)
    plan = ExtractionPlan(layers=layers, hidden=kept_hidden, heads=[], units=[], ffn=[], num_heads=heads)
    for t in layers:
        kept = shared or _pick(enc.num_heads, heads, None if imp is None else imp.heads[t], gen)
        plan.heads.append(kept)
        plan.units.append([h * d + j for h in kept
                           for j in _pick(d, d_new, None if imp is None else imp.units[t][h * d:(h + 1) * d], gen)])
        plan.ffn.append(_pick(enc.parts[t]["ffn_in"].out_features, ffn, None if imp is None else imp.ffn[t], gen))
    return plan


def _student_config(teacher: nn.Module, plan: ExtractionPlan):
    config = copy.deepcopy(teacher.config)
    family = family_of(config)
    layers_f, hidden_f, heads_f, ffn_f = family.size_fields
    hidden_t = getattr(config, hidden_f)
    for name, v in ((layers_f, len(plan.layers)), (heads_f, plan.num_heads), (ffn_f, len(plan.ffn[0]))):
        setattr(config, name, v)
    family.set_hidden_size(config, len(plan.hidden))
    embedding_f = family.embedding_size_field  # factorised embeddings (ELECTRA)
    embedding = getattr(config, embedding_f, None) if embedding_f else None
    if embedding == hidden_t:
        setattr(config, embedding_f, len(plan.hidden))  # tied to the hidden size: no projection, slice it too
    elif embedding == len(plan.hidden):
        raise UserError(f"a {family.name} student of hidden size {embedding} (its embedding size) would "
                        "lose the teacher's embedding projection; choose another hidden_size")
    return config


def apply_plan(teacher: nn.Module, plan: ExtractionPlan) -> nn.Module:
    """A model of the teacher's class whose every tensor is the planned slice of the teacher's."""
    enc = encoder(teacher)
    shared = family_of(teacher).shared_head_bias
    student = type(teacher)(_student_config(teacher, plan)).to(next(teacher.parameters()).device)
    hidden = torch.tensor(plan.hidden)
    layer_re = re.compile(rf"^{re.escape(enc.layer_prefix)}(\d+)\.(.+)\.(\w+)$")
    part_of = {path: part for part, path in enc.paths.items()}
    t_state = teacher.state_dict()
    new_state = {}
    for name, target in student.state_dict().items():
        roles, index = ("hidden", "hidden"), {"hidden": hidden}
        m = layer_re.match(name)
        if m:  # a layer tensor: read the chosen teacher layer, with this layer's heads and neurons
            j = int(m[1])
            t_name = f"{enc.layer_prefix}{plan.layers[j]}.{m[2]}.{m[3]}"
            roles = AXIS_ROLES.get(part_of.get(m[2]), roles)
            index.update(units=torch.tensor(plan.units[j]), ffn=torch.tensor(plan.ffn[j]))
        else:
            t_name = name
            if shared and name.endswith(f"{shared}.weight"):  # MPNet's position bias: [buckets, heads]
                roles, index["heads"] = ("hidden", "heads"), torch.tensor(plan.heads[0])
        tensor = t_state[t_name]
        for axis in range(tensor.dim()):
            if tensor.shape[axis] != target.shape[axis]:  # only shrunk axes are sliced
                tensor = tensor.index_select(axis, index[roles[min(axis, 1)]].to(tensor.device))
        if tensor.shape != target.shape:
            raise UserError(f"cannot extract {name}: teacher slice {tuple(tensor.shape)} "
                            f"does not fit the student's {tuple(target.shape)}")
        new_state[name] = tensor
    student.load_state_dict(new_state)
    return student.train(teacher.training)


def extract_student(teacher: nn.Module, cfg: ExtractConfig, *, batches=None, importance: Importance | None = None,
            mask_token_id: int | None = None) -> nn.Module:
    """ETD: the student `cfg` describes, initialised from `teacher`.

    ETD-Impt needs importance: pass `importance`, or `batches` for Taylor importance (magnitude
    needs neither). ETD-Rand uses `cfg.seed` and no data.
    """
    needs_scores = cfg.strategy == "impt" or cfg.layers == "importance"
    if needs_scores and importance is None:
        importance = compute_importance(teacher, cfg.importance, batches, mask_token_id=mask_token_id,
                                        seed=cfg.seed)
    return apply_plan(teacher, plan_extraction(teacher, cfg, importance))
