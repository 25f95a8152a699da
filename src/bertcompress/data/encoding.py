"""Examples to token ids, and batches of them to padded tensors.

Encoding keeps each example unpadded; `collate` pads a batch only to its own longest sequence,
which on short-sentence tasks makes most batches far shorter than max_seq_len.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bertcompress.data.examples import Example

ENCODE_BATCH = 2048


def encode_examples(tokenizer: Any, examples: list[Example], max_seq_len: int) -> list[dict[str, Any]]:
    """One feature dict per example: input_ids, token_type_ids (if the tokenizer uses them) and
    labels (int, or float for regression) when the example has a label."""
    with_types = "token_type_ids" in tokenizer.model_input_names
    features: list[dict[str, Any]] = []
    for start in range(0, len(examples), ENCODE_BATCH):
        batch = examples[start:start + ENCODE_BATCH]
        encoded = _tokenize(tokenizer, batch, max_seq_len, with_types)
        for ex, enc in zip(batch, encoded):
            if ex.label is not None:
                enc["labels"] = float(ex.label) if isinstance(ex.label, float) else int(ex.label)
            features.append(enc)
    return features


def _tokenize(tokenizer: Any, batch: list[Example], max_seq_len: int, with_types: bool) -> list[dict[str, Any]]:
    """Tokenize singles and pairs as two calls (a tokenizer call takes one kind), keeping order."""
    out: list[dict[str, Any]] = [{} for _ in batch]
    for is_pair in (False, True):
        idx = [i for i, ex in enumerate(batch) if (ex.text_b is not None) == is_pair]
        if not idx:
            continue
        texts_b = [batch[i].text_b for i in idx] if is_pair else None
        enc = tokenizer([batch[i].text_a for i in idx], texts_b, truncation="longest_first",
                        max_length=max_seq_len, return_token_type_ids=with_types,
                        return_attention_mask=False)
        for j, i in enumerate(idx):
            out[i]["input_ids"] = list(enc["input_ids"][j])
            if with_types:
                out[i]["token_type_ids"] = list(enc["token_type_ids"][j])
    return out


def _pad(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ints -> (padded (B, longest) long tensor, 0/1 mask of the real entries)."""
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return out, mask


def collate(features: list[dict[str, Any]], pad_token_id: int,
            teacher_pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sequence: input_ids, attention_mask (1 real, 0 pad),
    token_type_ids when present, labels (long, or float32 for regression) when present; a feature's
    `index` (its row in the training set, for cached teacher outputs) as `index`; a student of
    another vocabulary's teacher encoding (data/alignment.py) as teacher_input_ids,
    teacher_attention_mask, teacher_token_type_ids, and its aligned positions as align_student,
    align_teacher and align_mask."""
    batch: dict[str, torch.Tensor] = {}
    batch["input_ids"], batch["attention_mask"] = _pad([f["input_ids"] for f in features], pad_token_id)
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = _pad([f["token_type_ids"] for f in features], 0)[0]
    if "labels" in features[0]:
        labels = [f["labels"] for f in features]
        regression = any(isinstance(v, float) for v in labels)
        batch["labels"] = torch.tensor(labels, dtype=torch.float32 if regression else torch.long)
    if "index" in features[0]:
        batch["index"] = torch.tensor([f["index"] for f in features], dtype=torch.long)
    if "teacher_input_ids" in features[0]:
        batch["teacher_input_ids"], batch["teacher_attention_mask"] = _pad(
            [f["teacher_input_ids"] for f in features], teacher_pad_token_id)
        if "teacher_token_type_ids" in features[0]:
            batch["teacher_token_type_ids"] = _pad([f["teacher_token_type_ids"] for f in features], 0)[0]
        batch["align_student"], batch["align_mask"] = _pad([f["align_student"] or [0] for f in features], 0)
        batch["align_teacher"] = _pad([f["align_teacher"] or [0] for f in features], 0)[0]
        for i, f in enumerate(features):  # an example with nothing aligned: its placeholder 0 is masked
            if not f["align_student"]:
                batch["align_mask"][i] = 0
    return batch


@dataclass
class Collator:
    """`collate` with its pad id bound; a plain class so DataLoader workers can pickle it."""

    pad_token_id: int
    teacher_pad_token_id: int = 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return collate(features, self.pad_token_id, self.teacher_pad_token_id)
