"""The inputs a model's forward takes: from a batch, or a fixed synthetic batch for timing and export."""

from __future__ import annotations

import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.models.family import family_of


def model_inputs(batch: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The batch keys this model's forward accepts (DistilBERT and MPNet take no token_type_ids)."""
    keys = ["input_ids", "attention_mask"]
    if "token_type_ids" in batch and getattr(model.config, "type_vocab_size", 0) and \
            family_of(model).takes_token_type_ids:
        keys.append("token_type_ids")
    return {k: batch[k] for k in keys if k in batch}


def max_sequence_length(model: nn.Module) -> int | None:
    return family_of(model).max_positions(model.config)


def synthetic_batch(model: nn.Module, batch_size: int, seq_len: int) -> dict[str, torch.Tensor]:
    """A fixed random full-length batch with exactly the inputs this model's forward takes."""
    if batch_size < 1 or seq_len < 2:
        raise UserError(f"latency needs batch size >= 1 and sequence length >= 2, got {batch_size}, {seq_len}")
    limit = max_sequence_length(model)
    if limit is not None and seq_len > limit:
        raise UserError(f"sequence length {seq_len} is longer than the model allows ({limit})")
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(min(5, vocab - 1), vocab, (batch_size, seq_len), generator=g),
             "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
             "token_type_ids": torch.zeros(batch_size, seq_len, dtype=torch.long)}
    return model_inputs(batch, model)
