"""One forward pass that also yields what TinyBERT distils: every hidden state and the attention
scores BEFORE softmax (QKᵀ/√d_k), without `output_attentions=True` (which forces the eager path
for every layer and returns probabilities, not scores).

A `ScoreRecorder` gets the scores of chosen layers in one of two ways:

- "attention" (students): the model's attention runs through our function, registered with
  transformers' AttentionInterface. It computes the scores once, keeps them, and goes on with
  softmax·V, so the loss's gradient flows through the very product the model used. Families whose
  attention does not go through that interface (MPNet; every family before transformers 5, whose
  models do not declare `_supports_attention_backend`) fall back to hooks. Should a model's
  attention bypass our function all the same (the fast capture records nothing), the recorder
  switches to hooks for good and the forward runs again from the same random state: the same
  scores, so the same losses. ModernBERT's scores exist only there (fused QKV, then rotary
  positions): its teachers record through our function too, and a local layer's pairs outside its
  window score 0, as its softmax never sees them.
- "hooks" (teachers): forward hooks on the query/key projections; the scores are rebuilt after the
  forward, for the mapped layers only, and every layer keeps the model's own kernel (SDPA, flash).
  DeBERTa's relative-position terms are rebuilt beside them (disentangled.py).

ALBERT applies one layer module N times: a module's calls are counted during a recording, so its
k-th call records layer k.

Either way, every pair with a padded query or key scores exactly 0 (as in TinyBERT's reference
code), so a loss can sum over all entries in one pass. MPNet adds a relative-position bias (one
table shared by every layer) to its scores before softmax; the recorder adds it too, taken from
the model's own table during the forward, so the scores are the ones its softmax sees (and a
student's table gets the attention loss's gradient).
"""

from __future__ import annotations

import contextlib
import math
import weakref
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.models.architecture import describe
from bertcompress.models.disentangled import DisentangledInputs, disentangled_scores
from bertcompress.models.family import family_of
from bertcompress.models.inputs import model_inputs

RECORDING_ATTENTION = "bertcompress_recording"


@dataclass
class Intermediates:
    hidden_states: tuple[torch.Tensor, ...]  # [embedding output, layer 1, ..., layer N]
    # 1-based layer -> (B, H, L, L) pre-softmax scores, 0 at every pair that touches padding
    scores: dict[int, torch.Tensor] = field(default_factory=dict)
    logits: torch.Tensor | None = None


def _row_mask(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if mask is None else mask[:, None, :, None].to(like.dtype)  # (B, 1, L, 1)


def _pair_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    m = mask.to(like.dtype)
    return m[:, None, :, None] * m[:, None, None, :]  # (B, 1, L, L): 1 where query and key are real


def scores_from_heads(q: torch.Tensor, k: torch.Tensor, scale: float,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, H, L, d) queries and keys -> (B, H, L, L) scores q·kᵀ·scale, 0 at every pair with a
    padded query or key (`mask` (B, L) of 0/1). The rows of q and k are masked (and q scaled)
    before the product: B·L·H·d work instead of B·H·L² passes."""
    m = _row_mask(mask, q)
    if m is not None:
        q, k = q * (m * scale), k * m
    else:
        q = q * scale
    return torch.matmul(q, k.transpose(-1, -2))


def attention_scores(q: torch.Tensor, k: torch.Tensor, num_heads: int,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, L, H·d) query and key projections -> (B, H, L, L) scores QKᵀ/√d (see scores_from_heads)."""
    b, q_len, hd = q.shape
    d = hd // num_heads
    q = q.view(b, q_len, num_heads, d).transpose(1, 2)
    k = k.view(b, k.shape[1], num_heads, d).transpose(1, 2)
    return scores_from_heads(q, k, 1 / math.sqrt(d), mask)


# attention module -> (its recorder, the 1-based layers it computes, in call order: one layer, or
# ALBERT's shared module N times); weak, so a dropped model leaves nothing behind
_RECORDED: weakref.WeakKeyDictionary[nn.Module, tuple[ScoreRecorder, list[int]]] = weakref.WeakKeyDictionary()


def _recording_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         attention_mask: torch.Tensor | None, scaling: float | None = None,
                         dropout: float = 0.0, **_kwargs) -> tuple[torch.Tensor, None]:
    """Eager attention (as transformers' `eager_attention_forward`) that keeps its scores."""
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    recorder, layers = _RECORDED.get(module, (None, []))
    layer = recorder.next_call(module, layers) if recorder is not None and recorder.armed else 0
    if layer in getattr(recorder, "layers", ()):
        scores = scores_from_heads(query, key, scale, recorder.mask)
        # a local (sliding-window) layer's softmax never sees the pairs outside its window: 0, as padding
        recorded = scores if getattr(module, "sliding_window", None) is None or attention_mask is None else \
            scores.masked_fill(~attention_mask, 0)
        recorder.scores[layer] = recorded
    else:
        scores = scores_from_heads(query, key, scale)
    # the L×L maps stay in the scores' dtype (bf16 under autocast), as in transformers' eager
    # attention, but without its fp32 masked copy: masking, softmax (fp32 inside the kernel) and
    # dropout each make one bf16 pass instead of fp32 ones. `attention_mask` is boolean (True
    # where attended): `_sdpa_mask_always` builds it once per forward
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    with torch.autocast(scores.device.type, enabled=False):
        probs = torch.softmax(scores, dim=-1)
    probs = nn.functional.dropout(probs, p=dropout, training=module.training)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def _sdpa_mask_always(*args, **kwargs) -> torch.Tensor | None:
    """transformers' boolean padding mask (True where attended), always built: deciding to skip
    it (no padding) takes `mask.all()`, a host sync on every forward."""
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, **{**kwargs, "allow_is_causal_skip": False, "allow_is_bidirectional_skip": False})


def _eager_mask(*args, dtype: torch.dtype = torch.float32, **kwargs) -> torch.Tensor | None:
    """Eager attention's additive float mask (0 where attended, dtype's min elsewhere), always
    built and made on the device alone: transformers' own copies a host scalar in, which a
    CUDA-graph capture refuses."""
    allowed = _sdpa_mask_always(*args, **kwargs)
    if allowed is None:
        return None
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(
        ~allowed, torch.finfo(dtype).min)


@contextlib.contextmanager
def no_mask_skip() -> Iterator[None]:
    """Within: sdpa and eager models always get an explicit padding mask, so a forward makes no
    host sync (what a CUDA graph capture needs). Costs a kernel choice: SDPA's flash kernel takes
    no mask, so a batch without padding runs the masked kernel instead."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS as masks

    saved = {k: masks._local_mapping.get(k) for k in ("sdpa", "eager")}
    masks["sdpa"], masks["eager"] = _sdpa_mask_always, _eager_mask
    try:
        yield
    finally:
        for k, fn in saved.items():
            if fn is None:
                del masks[k]
            else:
                masks[k] = fn


def _register_recording_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(RECORDING_ATTENTION, _recording_attention)
    AttentionMaskInterface.register(RECORDING_ATTENTION, _sdpa_mask_always)


def _uses_attention_interface(model: nn.Module, view) -> bool:
    """Whether the model's attention is looked up in transformers' AttentionInterface, so that
    our recording function can run: the family's does (family.py), and so does this
    transformers version's model class (`_supports_attention_backend`: transformers 5; before,
    BERT and the rest had their own eager and SDPA classes)."""
    return family_of(view.model_type).uses_attention_interface and bool(
        getattr(model, "_supports_attention_backend", False))


_RngState = tuple[torch.Tensor, torch.device, torch.Tensor | None]


def _rng_state(device: torch.device) -> _RngState:
    """The CPU random state and that of the model's CUDA device (its dropout draws from it)."""
    return torch.get_rng_state(), device, torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(state: _RngState | None) -> None:
    if state is not None:
        cpu, device, cuda = state
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)


class ScoreRecorder:
    """Pre-softmax scores of chosen layers (1-based) of `model`, during `recording(mask)`.

    mode "attention" uses our attention function where the family supports it (else hooks);
    mode "hooks" always uses hooks (the model keeps its own attention kernel), except for families
    whose scores exist only inside the attention function (ModernBERT's rotary positions).
    A module that computes several layers (ALBERT's shared layer) is told apart by its call order."""

    def __init__(self, model: nn.Module, layers: list[int], mode: str = "hooks"):
        view = describe(model)
        family = family_of(view.model_type)
        self.config = model.config
        self.num_heads = view.num_heads
        self.layers = sorted(set(layers))
        self._view = view
        interface = _uses_attention_interface(model, view)
        if family.scores_inside_attention and not interface:
            raise UserError(f"recording {family.name}'s attention scores needs transformers' attention interface "
                            "(transformers 5 or later)")
        self.mode = "attention" if interface and (mode == "attention" or family.scores_inside_attention) else "hooks"
        self._can_fall_back = not family.scores_inside_attention
        if self.mode == "attention":
            try:
                _register_recording_attention()
            except ImportError:  # a transformers without the interfaces
                self.mode = "hooks"
        self.scores: dict[int, torch.Tensor] = {}
        self.mask: torch.Tensor | None = None
        self.armed = False
        self._q: dict[int, torch.Tensor] = {}
        self._k: dict[int, torch.Tensor] = {}
        self._calls: dict[int, int] = {}  # id(module) -> its calls in this recording
        self._handles = []
        self._disentangled = DisentangledInputs() if family.score_terms == "disentangled" else None
        # attention mode until a forward has recorded through our function: the random state before
        # that forward, so a fallback to hooks can run it again identically
        self.verified = self.mode == "hooks"
        self._rng_before: _RngState | None = None
        if self.mode == "attention":
            for module, depths in self._modules_of(view.attentions).items():
                _RECORDED[module] = (self, depths)
        else:
            self._hook_layers()
        self._bias: torch.Tensor | None = None  # (1 or B, H, L, L) position bias of the last forward
        shared = family.shared_head_bias
        if shared:  # hooks mode only: no family with a shared bias goes through the interface
            table = next(m for name, m in model.named_modules() if name.endswith(shared))
            self._handles.append(table.register_forward_hook(self._save_bias))

    def _modules_of(self, per_layer: list[nn.Module]) -> dict[nn.Module, list[int]]:
        """Each module serving a recorded layer -> every 1-based layer it computes, in call order."""
        wanted = {id(per_layer[i - 1]) for i in self.layers}
        out: dict[nn.Module, list[int]] = {}
        for depth, module in enumerate(per_layer, start=1):
            if id(module) in wanted:
                out.setdefault(module, []).append(depth)
        return out

    def next_call(self, module: nn.Module, depths: list[int]) -> int:
        """The layer `module` computes at this call (its calls counted since the recording began)."""
        n = self._calls.get(id(module), 0)
        self._calls[id(module)] = n + 1
        return depths[n] if n < len(depths) else 0

    def _hook_layers(self) -> None:
        view = self._view
        for store, per_layer in ((self._q, view.queries), (self._k, view.keys)):
            for module, depths in self._modules_of(per_layer).items():
                self._handles.append(module.register_forward_hook(self._saver(store, module, depths)))
        if self._disentangled is not None:
            for layer in self.layers:
                self._handles += self._disentangled.hooks(view.attentions[layer - 1], layer)

    def fall_back_to_hooks(self) -> None:
        """Attention mode recorded nothing (the model's attention does not call our function):
        hooks from now on."""
        if not self._can_fall_back:
            raise RuntimeError(f"no attention scores recorded for this {self.config.model_type} model")
        for module in [m for m, (rec, _) in _RECORDED.items() if rec is self]:
            del _RECORDED[module]
        self.mode, self.verified, self.scores = "hooks", True, {}
        self._hook_layers()

    def _save_bias(self, _module: nn.Module, _inputs, output: torch.Tensor) -> None:
        # the table's lookup is (L, L, H), or (B, L, L, H) with explicit positions
        if self.armed:
            self._bias = output.permute(2, 0, 1).unsqueeze(0) if output.dim() == 3 else output.permute(0, 3, 1, 2)

    def _saver(self, store: dict, module: nn.Module, depths: list[int]):
        def hook(_module: nn.Module, _inputs, output: torch.Tensor) -> None:
            layer = self.next_call(module, depths)  # armed or not: a teacher's forward outside a recording
            if layer in self.layers:  # ALBERT's shared projection also runs at depths nobody records
                store[layer] = output
        return hook

    @contextlib.contextmanager
    def recording(self, mask: torch.Tensor | None) -> Iterator[None]:
        """Record during one forward; `mask` (B, L) marks the real tokens."""
        self.mask, self.armed = mask, True
        self._calls.clear()
        previous = self.config._attn_implementation
        if self.mode == "attention":
            if not self.verified:
                self._rng_before = _rng_state(next(self._view.attentions[0].parameters()).device)
            self.config._attn_implementation = RECORDING_ATTENTION
        try:
            yield
        finally:
            self.config._attn_implementation = previous
            self.armed = False

    def pop_scores(self, mask: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
        """The recorded scores (hooks: rebuilt now, zeroed at padded pairs of `mask` if given,
        else of the recording's mask); the recorder is empty afterwards."""
        if self.mode == "hooks":
            mask = self.mask if mask is None else mask
            layers = [i for i in self.layers if i in self._q]
            if self._disentangled is None:
                self.scores = {i: attention_scores(self._q[i], self._k[i], self.num_heads, mask) for i in layers}
            else:
                self.scores = {i: self._masked(disentangled_scores(self._view.attentions[i - 1], self._q[i], self._k[i],
                                                                   self._disentangled, i), mask) for i in layers}
                self._disentangled.clear()
            if self._bias is not None:  # added at real pairs only: padded ones stay exactly 0
                bias = self._bias if mask is None else self._bias * _pair_mask(mask, self._bias)
                self.scores = {i: s + bias for i, s in self.scores.items()}
            self._q.clear()
            self._k.clear()
            self._bias = None
        out, self.scores, self.mask = self.scores, {}, None
        self._calls.clear()
        return out

    @staticmethod
    def _masked(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return scores if mask is None else scores * _pair_mask(mask, scores)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for module in [m for m, (rec, _) in _RECORDED.items() if rec is self]:
            del _RECORDED[module]


def run_with_intermediates(model: nn.Module, batch: dict[str, torch.Tensor],
                           recorder: ScoreRecorder | None) -> Intermediates:
    if recorder is None:
        out = model(**model_inputs(batch, model), output_hidden_states=True, return_dict=True)
        return Intermediates(hidden_states=tuple(out.hidden_states), logits=getattr(out, "logits", None))
    with recorder.recording(batch.get("attention_mask")):
        out = model(**model_inputs(batch, model), output_hidden_states=True, return_dict=True)
    scores = recorder.pop_scores()
    if recorder.mode == "attention" and not recorder.verified:
        if scores:
            recorder.verified, recorder._rng_before = True, None
        else:  # the fast capture recorded nothing: hooks, and the same forward again
            _set_rng_state(recorder._rng_before)
            recorder.fall_back_to_hooks()
            return run_with_intermediates(model, batch, recorder)
    missing = set(recorder.layers) - set(scores)
    if missing:
        raise RuntimeError(f"no attention scores recorded for layers {sorted(missing)} of this "
                           f"{model.config.model_type} model")  # our bug or an unsupported model, not bad input
    return Intermediates(hidden_states=tuple(out.hidden_states), scores=scores,
                         logits=getattr(out, "logits", None))
