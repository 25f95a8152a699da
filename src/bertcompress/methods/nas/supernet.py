"""The NAS-BERT supernet and its block-wise distillation objective (docs/methods.md, "NAS-BERT").

The teacher's L layers split into N equal blocks. Supernet block b holds every candidate the
search space allows there: per hidden size h, an input projection (teacher width T -> h), `slots`
slots each holding every op at width h, and an output projection back to T. Block b reads the
TEACHER's output of block b-1 and is scored by the masked MSE against the teacher's output of
block b, so the blocks train independently and an architecture's quality can be approximated by
the sum of its blocks' losses. Each embedding size is trained the same way against the teacher's
embedding output.

Training is single-path: each step samples one alive candidate per block and one embedding size,
so only the sampled ops get gradients. Search-space pruning marks candidates dead in boolean
buffers, which the training loop's checkpoints carry.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.core.log import progress_bar
from bertcompress.models.architecture import base_model, describe
from bertcompress.models.family import family_of
from bertcompress.models.inputs import model_inputs
from bertcompress.models.nasbert.arch import OPS, BlockArch, NasArch
from bertcompress.models.nasbert.modeling import NasBertEmbeddings, init_weights
from bertcompress.models.nasbert.ops import make_op
from bertcompress.train.objectives import WithFrozenTeacher

Batch = dict[str, torch.Tensor]


def teacher_block_ends(num_layers: int, num_blocks: int) -> list[int]:
    """The teacher layer (1-based, an index into its hidden_states) that ends each block."""
    if num_blocks < 1 or num_layers < 1 or num_layers % num_blocks:
        raise UserError(f"NAS-BERT splits the teacher's {num_layers} layers into equal blocks: "
                        f"{num_blocks} blocks do not divide them")
    size = num_layers // num_blocks
    return [size * (n + 1) for n in range(num_blocks)]


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real tokens and features; padded positions never count (in fp32)."""
    keep = attention_mask.to(torch.float32)[..., None]
    squared = (prediction.float() - target.float()) ** 2 * keep
    return squared.sum() / (keep.sum() * prediction.shape[-1]).clamp_min(1)


def _sizes(name: str, values: Iterable[int]) -> tuple[int, ...]:
    values = list(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise UserError(f"NAS-BERT {name} must be a non-empty list of positive integers, got {values!r}")
    return tuple(sorted(set(values)))


class SupernetBlock(nn.Module):
    """Every candidate of one block, as ModuleDicts keyed by str(width) (and op name in a slot)."""

    def __init__(self, teacher_width: int, widths: Sequence[int], slots: int, ops: Sequence[str],
                 head_size: int, make_slot) -> None:
        super().__init__()
        self.input_proj = nn.ModuleDict({str(h): nn.Linear(teacher_width, h) for h in widths})
        # no attention at a width that is not whole heads: check_choice refuses such candidates
        self.slots = nn.ModuleDict({
            str(h): nn.ModuleList(nn.ModuleDict({op: make_slot(op, h) for op in ops
                                                 if op != "mha" or h % head_size == 0}) for _ in range(slots))
            for h in widths})
        self.output_proj = nn.ModuleDict({str(h): nn.Linear(h, teacher_width) for h in widths})

    def forward(self, x: torch.Tensor, choice: BlockArch, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Teacher-width input -> the choice's width -> its slots -> back to the teacher's width."""
        h = str(choice.hidden)
        x = self.input_proj[h](x)
        for slot, op in zip(self.slots[h], choice.ops):
            x = slot[op](x, attention_mask)
        return self.output_proj[h](x)


class Supernet(nn.Module):
    """All candidate blocks and embeddings; see the module docstring. Weights start as BERT's
    (normal(0, 0.02), LayerNorm (1, 0)); `from_teacher` also copies the teacher's embeddings into
    the embedding size equal to the teacher's width, when that is a choice."""

    def __init__(self, *, teacher_width: int, vocab_size: int, max_position_embeddings: int, type_vocab_size: int,
                 pad_token_id: int | None, layer_norm_eps: float, head_size: int, num_blocks: int, slots: int,
                 hidden_sizes: Iterable[int], embedding_sizes: Iterable[int], ops: Iterable[str] = OPS,
                 dropout: float = 0.1, initializer_range: float = 0.02) -> None:
        super().__init__()
        if num_blocks < 1 or slots < 1:
            raise UserError(f"NAS-BERT needs at least one block and one slot, got {num_blocks} and {slots}")
        ops = tuple(dict.fromkeys(ops))
        unknown = [op for op in ops if op not in OPS]
        if not ops or unknown:
            raise UserError(f"NAS-BERT ops must be some of {', '.join(OPS)}, got {list(ops)}")
        self.teacher_width, self.head_size = teacher_width, head_size
        self.vocab_size, self.max_position_embeddings = vocab_size, max_position_embeddings
        self.type_vocab_size, self.pad_token_id, self.layer_norm_eps = type_vocab_size, pad_token_id, layer_norm_eps
        self.num_blocks, self.slots, self.ops, self.dropout = num_blocks, slots, ops, dropout
        self.hidden_sizes = _sizes("hidden sizes", hidden_sizes)
        self.embedding_sizes = _sizes("embedding sizes", embedding_sizes)
        self.initializer_range = initializer_range

        def make_slot(op: str, h: int) -> nn.Module:
            return make_op(op, h, head_size, dropout, layer_norm_eps)

        self.embeddings = nn.ModuleDict({
            str(e): NasBertEmbeddings(e, vocab_size, max_position_embeddings, type_vocab_size, pad_token_id,
                                      layer_norm_eps, dropout) for e in self.embedding_sizes})
        self.embedding_out = nn.ModuleDict({str(e): nn.Linear(e, teacher_width) for e in self.embedding_sizes})
        self.blocks = nn.ModuleList(SupernetBlock(teacher_width, self.hidden_sizes, slots, ops, head_size, make_slot)
                                    for _ in range(num_blocks))
        self.apply(lambda m: init_weights(m, initializer_range))

    @classmethod
    def from_teacher(cls, teacher: nn.Module, *, num_blocks: int, slots: int, hidden_sizes: Iterable[int],
                     embedding_sizes: Iterable[int], ops: Iterable[str] = OPS, dropout: float = 0.1) -> Supernet:
        """A supernet sized for `teacher` (any supported family), its embeddings at the teacher's
        width copied from the teacher's."""
        view, config = describe(teacher), teacher.config
        family = family_of(teacher)
        teacher_block_ends(view.num_layers, num_blocks)  # checks that the blocks divide the layers
        embeddings = getattr(base_model(teacher), "embeddings", None)
        norm = getattr(embeddings, "LayerNorm", None)
        eps = norm.eps if isinstance(norm, nn.LayerNorm) else getattr(config, "layer_norm_eps", 1e-12)
        supernet = cls(teacher_width=view.hidden_size, vocab_size=config.vocab_size,
                       max_position_embeddings=family.max_positions(config),
                       type_vocab_size=getattr(config, "type_vocab_size", 0) if family.takes_token_type_ids else 0,
                       pad_token_id=config.pad_token_id,
                       layer_norm_eps=eps,
                       head_size=view.hidden_size // view.num_heads, num_blocks=num_blocks, slots=slots,
                       hidden_sizes=hidden_sizes, embedding_sizes=embedding_sizes, ops=ops, dropout=dropout)
        if str(view.hidden_size) in supernet.embeddings:
            offset = (config.pad_token_id or 0) + 1 if family.positions_after_padding else 0
            copy_embeddings(supernet.embeddings[str(view.hidden_size)], embeddings, position_offset=offset)
        return supernet

    def check_choice(self, block: int, choice: BlockArch) -> None:
        """UserError unless `choice` is a candidate this supernet holds for `block` (0-based)."""
        choice.check(block, self.head_size)
        where = f"NAS-BERT block {block + 1}"
        if not 0 <= block < self.num_blocks:
            raise UserError(f"{where}: the supernet has {self.num_blocks} blocks")
        if choice.hidden not in self.hidden_sizes:
            raise UserError(f"{where}: hidden size {choice.hidden} is not in the supernet's {list(self.hidden_sizes)}")
        if len(choice.ops) > self.slots:
            raise UserError(f"{where}: {len(choice.ops)} ops, but the supernet has {self.slots} slots per block")
        missing = [op for op in choice.ops if op not in self.ops]
        if missing:
            raise UserError(f"{where}: op {missing[0]!r} is not in the supernet's {list(self.ops)}")

    def check_arch(self, arch: NasArch) -> None:
        if len(arch.blocks) != self.num_blocks:
            raise UserError(f"NAS arch {arch} has {len(arch.blocks)} blocks; the supernet has {self.num_blocks}")
        if arch.embedding_width not in self.embedding_sizes:
            raise UserError(f"NAS arch {arch}: embedding size {arch.embedding_width} is not in the supernet's "
                            f"{list(self.embedding_sizes)}")
        for b, choice in enumerate(arch.blocks):
            self.check_choice(b, choice)

    def embed(self, embedding_size: int, input_ids: torch.Tensor,
              token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of width `embedding_size`, mapped to the teacher's width."""
        e = str(embedding_size)
        return self.embedding_out[e](self.embeddings[e](input_ids, token_type_ids))

    def embedding_loss(self, embedding_size: int, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                       teacher_states: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> torch.Tensor:
        """Masked MSE of `embed` against the teacher's embedding output, `teacher_states[0]`."""
        return masked_mse(self.embed(embedding_size, input_ids, token_type_ids), teacher_states[0], attention_mask)

    def block_loss(self, block: int, choice: BlockArch, teacher_states: Sequence[torch.Tensor],
                   attention_mask: torch.Tensor) -> torch.Tensor:
        """Masked MSE of block `block` (0-based) run as `choice` on the teacher's input to it.

        `teacher_states` are the teacher's hidden states at the block boundaries: [embedding output,
        output of block 1, ..., output of block N] (BlockwiseObjective.teacher_states)."""
        out = self.blocks[block](teacher_states[block], choice, attention_mask)
        return masked_mse(out, teacher_states[block + 1], attention_mask)

    def forward(self, arch: NasArch, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """`arch` end to end, each block reading the previous block's own output (not the teacher's),
        at the teacher's width: what assemble(arch) computes."""
        self.check_arch(arch)
        x = self.embed(arch.embedding_width, input_ids, token_type_ids)
        for block, choice in zip(self.blocks, arch.blocks):
            x = block(x, choice, attention_mask)
        return x


@torch.no_grad()
def copy_embeddings(target: NasBertEmbeddings, source: nn.Module | None, position_offset: int = 0) -> bool:
    """Copy a teacher's word, position and token type tables and embedding LayerNorm into `target`
    when they have its width; False (nothing copied) when the teacher's are laid out otherwise.
    `position_offset`: where the teacher's position ids start (RoBERTa: after the padding id)."""
    width = target.word_embeddings.embedding_dim
    parts = {name: getattr(source, name, None) for name in ("word_embeddings", "position_embeddings", "LayerNorm")}
    if any(getattr(p, "weight", None) is None or p.weight.shape[-1] != width for p in parts.values()) \
            or parts["word_embeddings"].weight.shape != target.word_embeddings.weight.shape:
        return False
    target.word_embeddings.weight.copy_(parts["word_embeddings"].weight)
    positions = parts["position_embeddings"].weight[position_offset:]
    n = min(len(positions), target.position_embeddings.num_embeddings)
    target.position_embeddings.weight[:n].copy_(positions[:n])
    types = getattr(source, "token_type_embeddings", None)
    if target.token_type_embeddings is not None and types is not None \
            and types.weight.shape == target.token_type_embeddings.weight.shape:
        target.token_type_embeddings.weight.copy_(types.weight)
    target.LayerNorm.load_state_dict(parts["LayerNorm"].state_dict())
    return True


class BlockwiseObjective(WithFrozenTeacher):
    """The supernet (trained) against a frozen teacher, for train/loop.py: one teacher forward per
    step, one alive candidate per block and one embedding size sampled uniformly (torch's global
    generator, which checkpoints restore), loss = embedding loss + every block's loss.

    `candidates[b]` lists block b's candidate architectures; `alive_{b}` buffers mark those not
    pruned yet. `block_ends`: the teacher layer ending each block (default: equal blocks)."""

    def __init__(self, supernet: Supernet, teacher: nn.Module, candidates: Sequence[Sequence[BlockArch]],
                 block_ends: Sequence[int] | None = None) -> None:
        super().__init__()
        self.supernet = supernet
        self.hold_teacher(teacher)
        layers = describe(teacher).num_layers
        self.block_ends = list(teacher_block_ends(layers, supernet.num_blocks) if block_ends is None else block_ends)
        ends = [0] + self.block_ends
        if len(self.block_ends) != supernet.num_blocks or ends[-1] > layers \
                or not all(a < b for a, b in zip(ends, ends[1:])):
            raise UserError(f"NAS-BERT block ends must be {supernet.num_blocks} increasing teacher layers in "
                            f"1..{layers}, got {self.block_ends}")
        if len(candidates) != supernet.num_blocks:
            raise UserError(f"NAS-BERT needs candidates for each of {supernet.num_blocks} blocks, "
                            f"got {len(candidates)}")
        self.candidates = [list(c) for c in candidates]
        for b, block_candidates in enumerate(self.candidates):
            if not block_candidates:
                raise UserError(f"NAS-BERT block {b + 1} has no candidate architectures")
            for choice in block_candidates:
                supernet.check_choice(b, choice)
            self.register_buffer(f"alive_{b}", torch.ones(len(block_candidates), dtype=torch.bool))
        # alive indices as Python lists, re-read only when a buffer is replaced (.to(device)) or
        # changed in place (set_alive, load_state_dict): sampling never reads a device buffer, which
        # would be a host sync per step
        self._alive_cache: dict[int, tuple[torch.Tensor, int, list[int]]] = {}
        # training forwards so far, in the state: pruning points follow the step across a resume
        self.register_buffer("forwards", torch.zeros((), dtype=torch.long))

    def alive(self, block: int) -> list[int]:
        """Indices into `candidates[block]` of the candidates not pruned."""
        buffer = self.get_buffer(f"alive_{block}")
        cached = self._alive_cache.get(block)
        if cached is None or cached[0] is not buffer or cached[1] != buffer._version:
            cached = self._alive_cache[block] = (buffer, buffer._version, buffer.nonzero().flatten().tolist())
        return list(cached[2])

    def set_alive(self, block: int, mask: Sequence[bool] | torch.Tensor) -> None:
        """Mark which of block `block`'s candidates stay in the search (at least one must)."""
        mask = torch.as_tensor(mask, dtype=torch.bool).flatten()
        buffer = self.get_buffer(f"alive_{block}")
        if mask.shape != buffer.shape:
            raise UserError(f"NAS-BERT block {block + 1} has {len(buffer)} candidates, got a mask of {len(mask)}")
        if not mask.any():
            raise UserError(f"NAS-BERT block {block + 1}: pruning must leave at least one candidate")
        buffer.copy_(mask)

    @torch.no_grad()
    def teacher_states(self, batch: Batch) -> list[torch.Tensor]:
        """The teacher's hidden states at the block boundaries: [embedding output, block 1 output, ...]."""
        out = self.teacher(**model_inputs(batch, self.teacher), output_hidden_states=True, return_dict=True)
        return [out.hidden_states[0]] + [out.hidden_states[end] for end in self.block_ends]

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.training:
            self.forwards += 1
        states = self.teacher_states(batch)
        mask = batch["attention_mask"]
        sizes = self.supernet.embedding_sizes
        size = sizes[int(torch.randint(len(sizes), ()))]
        total = self.supernet.embedding_loss(size, batch["input_ids"], batch.get("token_type_ids"), states, mask)
        logs = {"embedding": total.detach()}
        for b in range(len(self.candidates)):
            alive = self.alive(b)
            choice = self.candidates[b][alive[int(torch.randint(len(alive), ()))]]
            loss = self.supernet.block_loss(b, choice, states, mask)
            total = total + loss
            logs[f"block{b + 1}"] = loss.detach()  # 1-based, as arch messages name blocks
        return total, logs


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def _heldout(objective: BlockwiseObjective, batches: Iterable[Batch], losses_of) -> np.ndarray:
    """Token-weighted mean over `batches` of `losses_of(batch, teacher_states)` (a 1-D tensor):
    the masked MSE over every real token of the held-out set."""
    device = next(objective.supernet.parameters()).device
    total, tokens = None, 0.0
    with _evaluating(objective):
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            n = batch["attention_mask"].sum()
            losses = losses_of(batch, objective.teacher_states(batch)) * n
            total = losses if total is None else total + losses
            tokens = tokens + n
    if total is None:
        raise UserError("NAS-BERT held-out losses need at least one held-out batch")
    return (total / tokens).cpu().numpy().astype(np.float64)


def heldout_block_losses(objective: BlockwiseObjective, batches: Iterable[Batch], block: int,
                         candidate_indices: Sequence[int], desc: str | None = None) -> np.ndarray:
    """Held-out loss of each of `candidate_indices` (into `objective.candidates[block]`), in that
    order: eval mode, no gradients, the teacher run once per batch for all of them. `desc`: show
    a progress bar over the candidates."""
    choices = [objective.candidates[block][i] for i in candidate_indices]
    if not choices:
        return np.zeros(0)
    return _heldout(objective, batches, lambda batch, states: torch.stack([
        objective.supernet.block_loss(block, c, states, batch["attention_mask"])
        for c in progress_bar(choices, desc=desc, disable=desc is None, leave=False)]))


def heldout_embedding_losses(objective: BlockwiseObjective, batches: Iterable[Batch],
                             sizes: Sequence[int] | None = None) -> np.ndarray:
    """Held-out loss of each embedding size (default: all of the supernet's, in its order)."""
    sizes = list(objective.supernet.embedding_sizes if sizes is None else sizes)
    known = objective.supernet.embedding_sizes
    unknown = [e for e in sizes if e not in known]
    if unknown:
        raise UserError(f"embedding size {unknown[0]} is not in the supernet's {list(known)}")
    if not sizes:
        return np.zeros(0)
    return _heldout(objective, batches, lambda batch, states: torch.stack([
        objective.supernet.embedding_loss(e, batch["input_ids"], batch.get("token_type_ids"), states,
                                          batch["attention_mask"]) for e in sizes]))
