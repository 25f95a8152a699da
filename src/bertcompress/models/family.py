"""What differs between the encoder families we support, in one place.

Code that needs family knowledge asks `family_of(model or config)` instead of testing model_type
strings. A type we do not list gets BERT's answers, except that its attention is not assumed to
run through transformers' AttentionInterface (the hooks that read scores work on any model).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Family:
    model_type: str
    name: str  # for messages
    # config attribute names: (layers, hidden, heads, ffn)
    size_fields: tuple[str, str, str, str] = ("num_hidden_layers", "hidden_size", "num_attention_heads",
                                              "intermediate_size")
    takes_token_type_ids: bool = True
    # position ids start at pad_token_id + 1 (RoBERTa style), so fewer positions are usable
    positions_after_padding: bool = False
    # attention dispatched through transformers' AttentionInterface (our recording attention can run)
    uses_attention_interface: bool = True
    # a per-head table every layer shares (path inside the base model): heads are pruned as one set
    shared_head_bias: str | None = None
    # config field of a factorised embedding width (ELECTRA), else None
    embedding_size_field: str | None = None

    def max_positions(self, config: Any) -> int | None:
        """The longest input the position table allows."""
        limit = getattr(config, "max_position_embeddings", None)
        if limit is not None and self.positions_after_padding:
            limit -= (getattr(config, "pad_token_id", None) or 0) + 1
        return limit


BERT = Family("bert", "BERT")
FAMILIES = {f.model_type: f for f in (
    BERT,
    Family("roberta", "RoBERTa", positions_after_padding=True),
    Family("xlm-roberta", "XLM-RoBERTa", positions_after_padding=True),
    Family("camembert", "CamemBERT", positions_after_padding=True),
    Family("electra", "ELECTRA", embedding_size_field="embedding_size"),
    Family("distilbert", "DistilBERT", size_fields=("n_layers", "dim", "n_heads", "hidden_dim"),
           takes_token_type_ids=False),
    Family("mpnet", "MPNet", takes_token_type_ids=False, positions_after_padding=True,
           uses_attention_interface=False, shared_head_bias="encoder.relative_attention_bias"),
)}


def supported_families() -> str:
    """The families we support, for refusals: "BERT (bert), RoBERTa (roberta), ..."."""
    return ", ".join(f"{f.name} ({f.model_type})" for f in FAMILIES.values())


def family_of(obj: Any) -> Family:
    """The family of a model, a config or a model_type string."""
    config = getattr(obj, "config", obj)
    model_type = config if isinstance(config, str) else getattr(config, "model_type", "")
    known = FAMILIES.get(model_type)
    return known or replace(BERT, model_type=model_type, name=model_type or "unknown",
                            uses_attention_interface=False)
