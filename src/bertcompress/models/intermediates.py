"""One forward pass that also yields what TinyBERT distils: every hidden state and the attention
scores BEFORE softmax.

Scores are rebuilt from the query/key projections (captured by forward hooks) as QKᵀ/√d_k, so the
model keeps its fast attention kernel (SDPA) instead of the eager path that
`output_attentions=True` forces, and only the layers the loss needs are computed. MPNet adds a
relative-position bias to its scores; it does not depend on the input and a BERT-style student has
none, so we compare the content part QKᵀ/√d_k (documented in the README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .architecture import EncoderView


@dataclass
class Intermediates:
    hidden_states: tuple[torch.Tensor, ...]  # [embedding output, layer 1, ..., layer N]
    # 1-based layer -> (B, H, L, L) pre-softmax scores, 0 at every pair that touches padding
    scores: dict[int, torch.Tensor] = field(default_factory=dict)
    logits: torch.Tensor | None = None


def attention_scores(q: torch.Tensor, k: torch.Tensor, num_heads: int,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, L, H·d) query and key projections -> (B, H, L, L) scores QKᵀ/√d.

    With `mask` (B, L) of 0/1, every pair with a padded query or key scores exactly 0, as in
    TinyBERT's reference code, so a loss can sum over all entries in one fused pass. The rows of
    Q and K are masked (and Q scaled) before the product: B·L·H·d work instead of B·H·L² passes."""
    b, q_len, hd = q.shape
    d = hd // num_heads
    if mask is not None:
        m = mask[:, :, None].to(q.dtype)
        q, k = q * (m / math.sqrt(d)), k * m
    else:
        q = q / math.sqrt(d)
    q = q.view(b, q_len, num_heads, d).transpose(1, 2)
    k = k.view(b, k.shape[1], num_heads, d).transpose(1, 2)
    return torch.matmul(q, k.transpose(-1, -2))


class ScoreRecorder:
    """Forward hooks on the query/key projections of chosen layers (1-based)."""

    def __init__(self, view: EncoderView, layers: list[int]):
        self.view = view
        self.layers = sorted(set(layers))
        self._q: dict[int, torch.Tensor] = {}
        self._k: dict[int, torch.Tensor] = {}
        self._handles = []
        for layer in self.layers:
            self._handles.append(view.queries[layer - 1].register_forward_hook(self._saver(self._q, layer)))
            self._handles.append(view.keys[layer - 1].register_forward_hook(self._saver(self._k, layer)))

    @staticmethod
    def _saver(store: dict, layer: int):
        def hook(_module: nn.Module, _inputs, output: torch.Tensor) -> None:
            store[layer] = output
        return hook

    def pop_scores(self, mask: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
        out = {i: attention_scores(self._q[i], self._k[i], self.view.num_heads, mask)
               for i in self.layers if i in self._q}
        self._q.clear()
        self._k.clear()
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def model_inputs(batch: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The batch keys this model's forward accepts (DistilBERT takes no token_type_ids)."""
    keys = ["input_ids", "attention_mask"]
    if "token_type_ids" in batch and getattr(model.config, "type_vocab_size", 0) and \
            getattr(model.config, "model_type", "") not in ("distilbert", "mpnet"):
        keys.append("token_type_ids")
    return {k: batch[k] for k in keys if k in batch}


def run_with_intermediates(model: nn.Module, batch: dict[str, torch.Tensor],
                           recorder: ScoreRecorder | None) -> Intermediates:
    out = model(**model_inputs(batch, model), output_hidden_states=True, return_dict=True)
    scores = recorder.pop_scores(batch.get("attention_mask")) if recorder is not None else {}
    return Intermediates(hidden_states=tuple(out.hidden_states), scores=scores,
                         logits=getattr(out, "logits", None))
