"""The TinyBERT objective as a module: student + projections (trained), teacher (frozen).

`forward(batch)` runs teacher and student once each and returns the weighted sum of the
registered loss terms with non-zero weight, plus each term's value for the logs. The training
loop only sees `(loss, logs)`, so every distillation stage, and later methods, plug in here.

The teacher's side is read from `teacher_outputs` (computed once, teacher_outputs.py) when set
and it holds what this objective's losses read; a student of another vocabulary gets the
teacher's own encoding of each text and the aligned positions in its batch (data/alignment.py).
"""

from __future__ import annotations

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.core.log import log
from bertcompress.methods.distill.config import LossConfig
from bertcompress.methods.distill.loss_registry import LOSSES, is_layer_loss, loss_function, without_layer_losses
from bertcompress.methods.distill.losses import LossContext
from bertcompress.methods.distill.projections import Projections
from bertcompress.methods.distill.teacher_outputs import CachedLayers, TeacherOutputs, teacher_inputs
from bertcompress.models.architecture import describe
from bertcompress.models.intermediates import Intermediates, ScoreRecorder, run_with_intermediates
from bertcompress.models.layer_mapping import resolve_mapping
from bertcompress.models.nasbert.blocks import block_widths
from bertcompress.train.objectives import WithFrozenTeacher


def reads_layers(model: nn.Module) -> bool:
    """Whether the layer losses can read this model's Transformer layers (a NAS-BERT model's
    blocks of mixed ops are not such layers; its blocks' outputs are read as layers all the same)."""
    try:
        describe(model)
    except UserError:
        return False
    return True


def check_head_counts(student: int, teacher: int, head_rule: str) -> None:
    """What the attention loss refuses: unequal head counts under head_rule strict; under mean,
    counts neither of which divides the other."""
    if student == teacher:
        return
    small, big = sorted((student, teacher))
    if head_rule == "strict":
        raise UserError(f"attention loss needs equal head counts (student {student}, teacher {teacher}); set "
                        "losses.head_rule: mean or losses.weights.attention: 0")
    if big % small:
        raise UserError(f"losses.head_rule mean needs one head count to divide the other (student {student}, "
                        f"teacher {teacher})")


def without_unreadable_layer_losses(student: nn.Module, weights: dict[str, float], desc: str) -> dict[str, float]:
    """`weights` less the layer losses that cannot read the student's layers, said once on the
    console: a NAS-BERT student keeps the embedding and hidden-state losses (each block read as a
    layer, models/nasbert/blocks.py) and loses the attention loss; a student with no readable
    layers learns from the teacher's predictions only."""
    if not any(w > 0 and is_layer_loss(name) for name, w in weights.items()) or reads_layers(student):
        return weights
    if block_widths(student) is not None:
        if weights.get("attention", 0) > 0:
            log.info(f"{desc}: a NAS-BERT student's blocks hold no attention maps to compare; it learns from "
                     "each block's output (embedding and hidden-state losses) and the predictions")
        return {name: w for name, w in weights.items() if name != "attention"}
    log.info(f"{desc}: the student's layers ({student.config.model_type}) are not Transformer layers "
             "the layer losses can read; it learns from the teacher's predictions only")
    return without_layer_losses(weights)


class DistillationObjective(WithFrozenTeacher):
    def __init__(self, student: nn.Module, teacher: nn.Module, losses: LossConfig,
                 weights: dict[str, float], *, regression: bool = False):
        super().__init__()
        unknown = set(weights) - set(LOSSES)
        if unknown:
            raise UserError(f"unknown loss {sorted(unknown)[0]!r} (known: {', '.join(LOSSES)})")
        self.weights = {k: float(v) for k, v in weights.items() if v > 0}
        if not self.weights:
            raise UserError("every loss weight is zero: nothing to distil")
        self.loss_functions = {name: loss_function(name) for name in self.weights}
        self.student = student
        self.hold_teacher(teacher)
        self.temperature = losses.temperature
        self.regression = regression
        self.head_rule = losses.head_rule
        predicts = any(not is_layer_loss(name) for name in self.weights)
        if predicts and (getattr(student, "num_labels", None) is None or not hasattr(student, "classifier")):
            raise UserError("the prediction loss needs a student with a task head")
        self.mapping: list[int] = []
        self.attention_mapping: list[int] = []
        self.projections: nn.Module | None = None
        self._s_rec = self._t_rec = None
        self.teacher_outputs: TeacherOutputs | None = None  # set by the stage when cached
        if any(is_layer_loss(name) for name in self.weights):
            self._init_layer_losses(student, teacher, losses)

    def _init_layer_losses(self, student: nn.Module, teacher: nn.Module, losses: LossConfig) -> None:
        """The layer mapping, projections and score recorders the layer losses need."""
        t_view, widths = describe(teacher), block_widths(student)
        if widths is not None:  # NAS-BERT: its blocks as layers of their own widths
            if "attention" in self.weights:
                raise UserError("a NAS-BERT student's blocks hold no attention maps: set losses.weights.attention: 0")
            self.mapping = resolve_mapping(losses.layer_mapping, len(widths) - 1, t_view.num_layers)
            self.attention_mapping = self.mapping
            self.projections = Projections(widths[0], t_view.hidden_size, len(self.mapping),
                                           shared=losses.hidden_projection == "shared", kind=losses.projection,
                                           layer_widths=widths[1:])
            return
        s_view = describe(student)
        self.mapping = resolve_mapping(losses.layer_mapping, s_view.num_layers, t_view.num_layers)
        self.attention_mapping = self.mapping
        if losses.attention_mapping is not None:
            try:
                self.attention_mapping = resolve_mapping(losses.attention_mapping, s_view.num_layers,
                                                         t_view.num_layers)
            except UserError as e:
                raise UserError(f"losses.attention_mapping: {e}") from None
        if "attention" in self.weights:
            check_head_counts(s_view.num_heads, t_view.num_heads, losses.head_rule)
        self.projections = Projections(s_view.hidden_size, t_view.hidden_size, len(self.mapping),
                                       shared=losses.hidden_projection == "shared",
                                       kind=losses.projection)
        if "attention" in self.weights:
            # the student's scores come from its own attention (one product, trained through); the
            # teacher's are rebuilt for the mapped layers only, so every layer keeps its fast kernel
            self._s_rec = ScoreRecorder(student, list(range(1, s_view.num_layers + 1)), mode="attention")
            self._t_rec = ScoreRecorder(teacher, self.attention_mapping, mode="hooks")

    def mapping_record(self) -> dict[str, list[int]]:
        """The mappings used, for a result file: the attention loss's only where it has its own."""
        if not self.mapping:  # the prediction phase maps no layers
            return {}
        own = self.attention_mapping != self.mapping and "attention" in self.weights
        return {"mapping": self.mapping, **({"attention_mapping": self.attention_mapping} if own else {})}

    def teacher_layers(self) -> CachedLayers:
        """The teacher outputs this objective's losses read, beside the logits."""
        hidden = ([0] if "embedding" in self.weights else []) + (self.mapping if "hidden" in self.weights else [])
        scores = self.attention_mapping if "attention" in self.weights else []
        return CachedLayers(tuple(sorted(set(hidden))), tuple(sorted(set(scores))))

    def run_teacher(self, batch: dict[str, torch.Tensor]) -> Intermediates:
        """The live teacher on a batch of teacher inputs (see `teacher_inputs`)."""
        device = batch["input_ids"].device.type
        # a teacher stored in bf16/fp16 runs in its own dtype: under autocast its LayerNorms and
        # residual sums would run in fp32, with a cast around every one
        own_dtype = next(self.teacher.parameters()).dtype != torch.float32
        with torch.no_grad(), torch.autocast(device, enabled=torch.is_autocast_enabled(device) and not own_dtype):
            return run_with_intermediates(self.teacher, batch, self._t_rec)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        device = batch["input_ids"].device.type
        t_batch = teacher_inputs(batch)
        cached = self.teacher_outputs
        if cached is not None and "index" in batch and cached.layers.covers(self.teacher_layers()):
            t_out = cached.fetch(batch["index"], t_batch["input_ids"].shape[1], batch["input_ids"].device)
        else:
            t_out = self.run_teacher(t_batch)
        s_out = run_with_intermediates(self.student, batch, self._s_rec)
        alignment = (batch["align_student"], batch["align_teacher"], batch["align_mask"]) \
            if "align_student" in batch else None
        ctx = LossContext(mapping=self.mapping, attention_mapping=self.attention_mapping,
                          projections=self.projections,
                          attention_mask=batch["attention_mask"], temperature=self.temperature,
                          regression=self.regression, head_rule=self.head_rule, labels=batch.get("labels"),
                          alignment=alignment)
        total = torch.zeros((), device=device)
        logs = {}
        for name, w in self.weights.items():
            value = self.loss_functions[name](s_out, t_out, ctx)
            total = total + w * value
            logs[name] = value.detach()  # stays on the device: the loop reads logs only when it logs
        return total, logs
