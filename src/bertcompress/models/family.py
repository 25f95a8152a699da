"""What differs between the encoder families we support, in one place.

Code that needs family knowledge asks `family_of(model or config)` instead of testing model_type
strings. A type we do not list gets BERT's answers, except that its attention is not assumed to
run through transformers' AttentionInterface (the hooks that read scores work on any model).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bertcompress.core.errors import UserError


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
    # config field of a factorised embedding width (ELECTRA, ALBERT), else None
    embedding_size_field: str | None = None
    # a student's factorised embedding width follows its hidden size (ELECTRA ties them); ALBERT
    # keeps its narrow embeddings and the projection after them
    embedding_follows_hidden: bool = True
    # the pre-softmax scores exist only inside the attention function (fused QKV, rotary positions):
    # teachers too record through our attention function, never by hooks
    scores_inside_attention: bool = False
    # extra pre-softmax terms rebuilt beside QK^T in hooks mode: "disentangled" (DeBERTa's
    # content-to-position and position-to-content terms)
    score_terms: str | None = None
    # one set of layer weights applied N times (ALBERT): a "layer" is one application
    shared_layers: bool = False
    # why extraction and pruning cannot cut it, or None when they can
    no_surgery: str | None = None
    # why a layer cannot be moved to another depth or stand for several (module replacing), or None
    unmovable_layers: str | None = None
    # config fields that hold the hidden size again (DeBERTa's classification pooler)
    tied_to_hidden: tuple[str, ...] = ()

    def set_hidden_size(self, config: Any, hidden: int) -> None:
        """The config's hidden size, and every field that repeats it, set to `hidden`."""
        old = getattr(config, self.size_fields[1])
        setattr(config, self.size_fields[1], hidden)
        for name in self.tied_to_hidden:
            if getattr(config, name, None) == old:
                setattr(config, name, hidden)

    def set_layers(self, config: Any, layers: list[int]) -> None:
        """The config of a model made of these (1-based) layers of `config`'s model: their count,
        and their kinds where layers differ (ModernBERT's local and global attention)."""
        types = getattr(config, "layer_types", None)
        setattr(config, self.size_fields[0], len(layers))
        if isinstance(types, list):
            config.layer_types = [types[i - 1] for i in layers]

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
    Family("deberta-v2", "DeBERTa-v2/v3", uses_attention_interface=False, score_terms="disentangled",
           tied_to_hidden=("pooler_hidden_size",)),
    Family("modernbert", "ModernBERT", takes_token_type_ids=False, scores_inside_attention=True,
           no_surgery="its fused QKV projection and gated FFN are not sliced by our extraction and pruning yet",
           unmovable_layers="its layers are bound to their depth (the first has no attention norm; local and "
                            "global attention alternate)"),
    Family("albert", "ALBERT", embedding_size_field="embedding_size", embedding_follows_hidden=False,
           shared_layers=True,
           no_surgery="its layers share one set of weights, so a layer cannot be chosen or sliced alone",
           unmovable_layers="its layers share one set of weights, so one cannot be replaced alone"),
)}


def supported_families(where: str | None = None) -> str:
    """The families we support, for refusals: "BERT (bert), RoBERTa (roberta), ..."; with `where`
    (a Family field such as "no_surgery"), only those whose field is empty."""
    return ", ".join(f"{f.name} ({f.model_type})" for f in FAMILIES.values() if where is None or not getattr(f, where))


def surgery_families() -> str:
    """The families extraction and pruning support, for their refusals."""
    return supported_families("no_surgery")


def check_surgery(obj: Any, what: str) -> None:
    """A one-line refusal when `what` (extraction, pruning) cannot cut this family's layers."""
    family = family_of(obj)
    if family.no_surgery:
        raise UserError(f"{what} cannot cut {family.name}: {family.no_surgery}; supported families: "
                        f"{surgery_families()}")


def check_movable_layers(obj: Any, what: str) -> None:
    """A one-line refusal when `what` (module replacing) moves layers this family cannot move."""
    family = family_of(obj)
    if family.unmovable_layers:
        raise UserError(f"{what} cannot move {family.name}'s layers: {family.unmovable_layers}; supported "
                        f"families: {supported_families('unmovable_layers')}")


def family_of(obj: Any) -> Family:
    """The family of a model, a config or a model_type string."""
    config = getattr(obj, "config", obj)
    model_type = config if isinstance(config, str) else getattr(config, "model_type", "")
    known = FAMILIES.get(model_type)
    return known or replace(BERT, model_type=model_type, name=model_type or "unknown",
                            uses_attention_interface=False)
