"""One text, two tokenizers: a student of another vocabulary than its teacher.

Each model reads the raw text through its own tokenizer, so a training example carries two
encodings: the student's (`input_ids`, ...) and the teacher's (`teacher_input_ids`, ...). The
prediction loss compares label distributions and needs nothing more; the layer losses compare
positions, so each example also carries the pairs of positions that hold the same text:

- a content piece aligns with the other tokenizer's piece that starts at the same character of
  the same text (a sentence pair's first or second text). Where both cut the text into the same
  pieces (MPNet's and BERT-uncased's do: the same WordPiece vocabulary), every piece aligns; where
  they cut differently, the pieces that start a word at the same character still do (the first
  piece of each word), and the rest are left out;
- special tokens: the first with the first ([CLS] / <s>) and the last with the last; when both put
  the same number of them, all in order (a single sentence: [CLS] x [SEP] and <s> x </s>).

Offsets need fast tokenizers (every Hugging Face model ships one); with a slow one, or where too few
positions align, the caller drops the layer losses (`AlignmentStats.usable`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bertcompress.data.encoding import ENCODE_BATCH, Collator, encode_examples
from bertcompress.data.examples import Example

MIN_ALIGNED_SHARE = 0.5  # below it, the layer losses would see too little of the text to help


@dataclass
class AlignmentStats:
    examples: int = 0
    same_pieces: int = 0  # examples both tokenizers cut into the same content pieces
    student_positions: int = 0
    aligned_positions: int = 0
    unknown_pieces: int = 0  # the student's [UNK]s: text its vocabulary cannot read
    fast_tokenizers: bool = True

    @property
    def aligned_share(self) -> float:
        return self.aligned_positions / max(self.student_positions, 1)

    @property
    def unknown_share(self) -> float:
        return self.unknown_pieces / max(self.student_positions, 1)

    @property
    def usable(self) -> bool:
        """Whether the layer losses can be computed on the aligned positions."""
        return self.fast_tokenizers and self.aligned_share >= MIN_ALIGNED_SHARE

    def record(self) -> dict[str, Any]:
        return {"examples": self.examples, "same_pieces": self.same_pieces,
                "aligned_student_positions": round(self.aligned_share, 4),
                "unknown_student_pieces": round(self.unknown_share, 4), "layer_losses": self.usable}

    def describe(self) -> str:
        if not self.fast_tokenizers:
            return "one of the tokenizers has no character offsets (not a fast tokenizer): positions cannot be aligned"
        how = ("every text into the same pieces" if self.same_pieces == self.examples
               else f"{self.same_pieces} of {self.examples} texts into the same pieces (elsewhere word starts align)")
        return f"the two tokenizers cut {how}; {self.aligned_share:.1%} of the student's positions align"


def is_fast(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "is_fast", False))


def _pieces(tokenizer: Any, batch: list[Example], max_seq_len: int) -> list[list[tuple]]:
    """Per example, per position: ("special",) or (text index 0/1, start char, end char)."""
    out: list[list[tuple]] = [[] for _ in batch]
    for is_pair in (False, True):
        idx = [i for i, ex in enumerate(batch) if (ex.text_b is not None) == is_pair]
        if not idx:
            continue
        enc = tokenizer([batch[i].text_a for i in idx], [batch[i].text_b for i in idx] if is_pair else None,
                        truncation="longest_first", max_length=max_seq_len, return_offsets_mapping=True,
                        return_attention_mask=False)
        for j, i in enumerate(idx):
            seq_ids = enc.sequence_ids(j)
            out[i] = [("special",) if s is None else (s, a, b) for s, (a, b) in zip(seq_ids, enc["offset_mapping"][j])]
    return out


def align_positions(student: list[tuple], teacher: list[tuple]) -> tuple[list[int], list[int], bool]:
    """(student positions, teacher positions, same content pieces) for one text's two tokenizations
    as `_pieces` describes them."""
    s_special = [i for i, p in enumerate(student) if p[0] == "special"]
    t_special = [i for i, p in enumerate(teacher) if p[0] == "special"]
    pairs: list[tuple[int, int]] = []
    if s_special and t_special:
        if len(s_special) == len(t_special):
            pairs += list(zip(s_special, t_special))
        else:
            pairs += [(s_special[0], t_special[0]), (s_special[-1], t_special[-1])]
    t_start = {(p[0], p[1]): i for i, p in enumerate(teacher) if p[0] != "special"}
    s_content = [p for p in student if p[0] != "special"]
    t_content = [p for p in teacher if p[0] != "special"]
    for i, p in enumerate(student):
        if p[0] != "special" and (j := t_start.get((p[0], p[1]))) is not None:
            pairs.append((i, j))
    pairs.sort()
    return [i for i, _ in pairs], [j for _, j in pairs], s_content == t_content


def encode_for_two(student_tok: Any, teacher_tok: Any, examples: list[Example],
                   max_seq_len: int) -> tuple[list[dict[str, Any]], AlignmentStats]:
    """The student's features (as `encode_examples`) each with the teacher's encoding of the same
    text (`teacher_input_ids`, `teacher_token_type_ids` when the teacher takes them) and the aligned
    positions (`align_student`, `align_teacher`, equal lengths)."""
    features = encode_examples(student_tok, examples, max_seq_len)
    teacher = encode_examples(teacher_tok, examples, max_seq_len)
    stats = AlignmentStats(examples=len(examples), fast_tokenizers=is_fast(student_tok) and is_fast(teacher_tok))
    unk = student_tok.unk_token_id
    for f, t in zip(features, teacher):
        stats.unknown_pieces += sum(i == unk for i in f["input_ids"]) if unk is not None else 0
        f["teacher_input_ids"] = t["input_ids"]
        if "token_type_ids" in t:
            f["teacher_token_type_ids"] = t["token_type_ids"]
        f["align_student"], f["align_teacher"] = [], []
        stats.student_positions += len(f["input_ids"])
    if not stats.fast_tokenizers:
        return features, stats
    for start in range(0, len(examples), ENCODE_BATCH):
        batch = examples[start:start + ENCODE_BATCH]
        for k, (s, t) in enumerate(zip(_pieces(student_tok, batch, max_seq_len),
                                       _pieces(teacher_tok, batch, max_seq_len))):
            f = features[start + k]
            f["align_student"], f["align_teacher"], same = align_positions(s, t)
            stats.same_pieces += same
            stats.aligned_positions += len(f["align_student"])
    return features, stats


def two_view_training(student_tok: Any, teacher_tok: Any, examples: list[Example],
                      max_seq_len: int) -> tuple[list[dict[str, Any]], Collator, AlignmentStats]:
    """`encode_for_two`'s features with the collator that pads both encodings."""
    features, stats = encode_for_two(student_tok, teacher_tok, examples, max_seq_len)
    return features, Collator(student_tok.pad_token_id or 0, teacher_tok.pad_token_id or 0), stats
