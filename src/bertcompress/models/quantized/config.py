"""What a quantized model quantizes and at how many bits: QuantConfig, saved beside packed weights."""

from __future__ import annotations

import re

from bertcompress.core.config import check, config
from bertcompress.core.errors import UserError

MIN_BITS, MAX_BITS = 2, 8  # LSQ's range here (lsq.py); kept free of torch so the CLI starts fast


_BITS_SPEC = re.compile(r"w(\d+)a(\d+)(?:e(\d+))?")


def _bits_ok(bits: int | None, name: str, allow_none: bool = False) -> None:
    if bits is None:
        check(allow_none, f"quant.{name} must be set")
        return
    check(MIN_BITS <= bits <= MAX_BITS, f"quant.{name} must be in [{MIN_BITS}, {MAX_BITS}], got {bits}")


@config
class QuantConfig:
    """Which tensors LSQ quantizes (models/quantized/modules.py `quantize_`).

    Every nn.Linear of the encoder (attention Q/K/V and output, FFN in and out, the pooler, ELECTRA's
    embedding projection) gets `weight_bits` weights and `act_bits` inputs; the word embeddings get
    `embedding_bits`, the learned position embeddings `weight_bits` (unless not
    `quantize_positions`). The task head (every Linear
    outside the encoder: BERT's classifier, RoBERTa's dense + out_proj, DistilBERT's pre_classifier +
    classifier) stays in float unless `quantize_classifier`: it holds a negligible share of the
    weights (768×2 in BERT-base) and its error lands directly on the logits. LayerNorm, biases,
    token-type embeddings (two rows) and the attention matmuls (QKᵀ, softmax·V) stay in float.
    """

    weight_bits: int = 4
    act_bits: int | None = 8  # None: float activations (weight-only quantization)
    embedding_bits: int | None = None  # word embeddings; None: same as weight_bits
    per_channel: bool = True  # one step per output row of each weight (and per embedding row)
    quantize_embeddings: bool = True
    quantize_positions: bool = True  # the learned position table too (with quantize_embeddings)
    quantize_classifier: bool = False

    def __post_init__(self) -> None:
        _bits_ok(self.weight_bits, "weight_bits")
        _bits_ok(self.act_bits, "act_bits", allow_none=True)
        _bits_ok(self.embedding_bits, "embedding_bits", allow_none=True)

    @property
    def emb_bits(self) -> int:
        return self.embedding_bits or self.weight_bits

    @classmethod
    def parse(cls, spec: str, **kwargs) -> QuantConfig:
        """'w4a8' (4-bit weights, 8-bit activations), 'w2a8e4' (4-bit embeddings), 'w8a32' (float
        activations: 32 means not quantized)."""
        m = _BITS_SPEC.fullmatch(spec.strip().lower())
        if m is None:
            raise UserError(f"bad bit widths {spec!r}: expected wWaA[eE], e.g. w4a8, w8a8, w2a8e4 or w4a32")
        w, a, e = int(m[1]), int(m[2]), m[3]
        return cls(weight_bits=w, act_bits=None if a == 32 else a,
                   embedding_bits=int(e) if e is not None else None, **kwargs)

    def spec(self) -> str:
        e = f"e{self.embedding_bits}" if self.embedding_bits and self.embedding_bits != self.weight_bits else ""
        return f"w{self.weight_bits}a{self.act_bits or 32}{e}"
