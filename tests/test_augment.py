"""TinyBERT data augmentation: candidate sources on hand-made values, sampling, caching."""

from __future__ import annotations

import json
import random

import pytest
import torch

from bertcompress.config import AugmentConfig
from bertcompress.data.examples import Example
from bertcompress.distillation import augment as aug
from bertcompress.distillation.augment import (
    CandidateSource,
    CombinedCandidates,
    EmbeddingNeighbourCandidates,
    MaskedLMCandidates,
    augment_examples,
    augment_sentence,
)
from conftest import tiny_config


def _embeddings(tok) -> torch.Tensor:
    """2-d vectors with known cosine neighbours; every other row points away from all of them."""
    emb = torch.tensor([-1.0, -0.5]).repeat(len(tok), 1)
    rows = {"good": [1, 0], "great": [0.9, 0.1], "fine": [0.5, 0.5], "bad": [0, 1], "dog": [-1, 2],
            "##s": [1, 0], "##ed": [1, 0], "[CLS]": [1, 0], ".": [1, 0]}  # the last four must never come back
    for t, v in rows.items():
        emb[tok.convert_tokens_to_ids(t)] = torch.tensor(v, dtype=torch.float)
    return emb


@pytest.fixture(scope="module")
def neighbours(tiny_tokenizer) -> EmbeddingNeighbourCandidates:
    return EmbeddingNeighbourCandidates(_embeddings(tiny_tokenizer), tiny_tokenizer)


@pytest.fixture(scope="module")
def tiny_mlm(tiny_tokenizer):
    """A random tiny masked LM whose output bias makes "great" the best allowed word."""
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config("bert", len(tiny_tokenizer)))
    bias = model.get_output_embeddings().bias
    with torch.no_grad():
        bias.zero_()
        for t, v in {"good": 100, "[SEP]": 90, "##s": 80, ".": 75, "great": 50, "bad": 40}.items():
            bias[tiny_tokenizer.convert_tokens_to_ids(t)] = v
    return model


# ------------------------------------------------------------------ embedding neighbours

def test_neighbours_exact_order_and_exclusions(neighbours):
    # cos to [1,0]: great .994, fine .707, bad 0, dog -.447, the rest -.894; specials, ## pieces,
    # punctuation and "good" itself are excluded although they point the same way
    assert neighbours.candidates(["good"], 0, 4) == ["great", "fine", "bad", "dog"]
    assert neighbours.candidates(["a", "Good", "film"], 1, 2) == ["great", "fine"]  # lowercased like the tokenizer


def test_neighbours_multi_piece_word_uses_mean_of_pieces(neighbours, tiny_tokenizer):
    assert tiny_tokenizer.tokenize("dogs") == ["dog", "##s"]
    # mean([-1,2], [1,0]) = [0,1]: bad 1.0, dog .894, fine .707, great .110
    assert neighbours.candidates(["dogs"], 0, 4) == ["bad", "dog", "fine", "great"]


def test_neighbours_cache_and_unknown_words(neighbours):
    neighbours._cache.clear()
    first = neighbours.candidates(["the", "good", "movie"], 1, 3)
    assert neighbours.candidates(["good"], 0, 3) == first
    assert len(neighbours._cache) == 1  # one entry per (word, top_k), whatever the sentence
    assert neighbours.candidates(["€"], 0, 3) == []  # [UNK]: nothing to look up
    assert neighbours.sentence_candidates(["good", ".", "42"], 2) == [["great", "fine"], [], []]


# ------------------------------------------------------------------ masked LM

def test_mlm_biased_token_wins_and_exclusions(tiny_mlm, tiny_tokenizer):
    src = MaskedLMCandidates(tiny_mlm, tiny_tokenizer)
    cands = src.candidates(["a", "good", "movie"], 1, 3)
    assert cands[0] == "great" and cands[1] == "bad" and len(cands) == 3
    assert not {"good", "[SEP]", "##s", "."} & set(cands)  # original word, special, piece, punctuation
    assert src.candidates(["i", "love", "dogs"], 2, 3) == []  # multi-piece: not the MLM's job


def test_mlm_batched_equals_one_by_one(tiny_mlm, tiny_tokenizer):
    src = MaskedLMCandidates(tiny_mlm, tiny_tokenizer)
    words = ["the", "cat", "sat", "on", "the", "mat", "."]
    batched = src.sentence_candidates(words, 5)
    single = [src.candidates(words, i, 5) if w.isalpha() else [] for i, w in enumerate(words)]
    assert batched == single and batched[-1] == [] and all(batched[:-1])


def test_combined_dispatch(tiny_mlm, tiny_tokenizer, neighbours):
    combined = CombinedCandidates(neighbours, MaskedLMCandidates(tiny_mlm, tiny_tokenizer))
    cands = combined.sentence_candidates(["good", "dogs", "."], 2)
    assert cands == [["great", "bad"], ["bad", "dog"], []]  # MLM, neighbours, punctuation kept
    assert combined.candidates(["good", "dogs"], 1, 2) == ["bad", "dog"]
    alone = CombinedCandidates(neighbours)  # no MLM head: neighbours for every word
    assert alone.sentence_candidates(["good", "dogs"], 2) == [["great", "fine"], ["bad", "dog"]]
    assert (combined.kind, alone.kind) == ("mlm+neighbours", "neighbours")


# ------------------------------------------------------------------ augment_sentence

class _Fixed(CandidateSource):
    table = {"good": ["great", "fine", "nice"], "movie": ["film", "story"]}

    def candidates(self, words, position, top_k):
        return self.table.get(words[position], [])[:top_k]


def test_augment_sentence_p0_p1_count_and_determinism():
    words = ["a", "good", "movie", "!"]
    assert augment_sentence(words, _Fixed(), 0.0, 15, 5, random.Random(0)) == ["a good movie !"] * 5
    out = augment_sentence(words, _Fixed(), 1.0, 15, 7, random.Random(0))
    assert len(out) == 7
    for s in out:
        w = s.split()
        assert w[0] == "a" and w[3] == "!"  # no candidates: kept
        assert w[1] in _Fixed.table["good"] and w[2] in _Fixed.table["movie"]
    top1 = augment_sentence(words, _Fixed(), 1.0, 1, 3, random.Random(0))
    assert top1 == ["a great film !"] * 3  # top_k limits the choice
    runs = [augment_sentence(words, _Fixed(), 0.5, 15, 20, random.Random(s)) for s in (1, 1, 2)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


# ------------------------------------------------------------------ augment_examples

EXAMPLES = [Example("a good movie", None, 1), Example("the worst film .", None, 0),
            Example("i love dogs", "the cat sat", 1)]


def _spy(monkeypatch) -> list[bool]:
    """Record `use_mlm` of every source build, still building the real source."""
    calls: list[bool] = []
    real = aug.build_candidate_source

    def spy(teacher, tokenizer, *, use_mlm, device=None):
        calls.append(use_mlm)
        return real(teacher, tokenizer, use_mlm=use_mlm, device=device)

    monkeypatch.setattr(aug, "build_candidate_source", spy)
    return calls


def test_augment_examples_end_to_end_and_cache(tiny_bert_dir, tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    cfg = AugmentConfig(enabled=True, p=0.6, top_k=4, n_aug=5, seed=3)
    out = augment_examples(EXAMPLES, str(tiny_bert_dir), cfg, tmp_path, progress=False)
    assert calls == [False]  # the tiny classifier has no MLM head: neighbours only
    assert out[:3] == EXAMPLES and len(out) > 3
    new = out[3:]
    assert len(new) <= 3 * cfg.n_aug
    for src in EXAMPLES:  # each augmented example keeps its source's label and text_b
        mine = [e for e in new if len(e.text_a.split()) == len(src.text_a.split()) and e.text_b == src.text_b]
        assert all(e.label == src.label and e.text_a != src.text_a for e in mine)
        assert len({e.text_a for e in mine}) == len(mine)  # duplicates dropped
    assert sum(e.text_b == "the cat sat" for e in new) >= 1  # the pair was augmented, text_b kept
    assert all(e.text_a.split()[-1] == "." for e in new if e.label == 0)  # punctuation kept

    files = list(tmp_path.glob("augment-*.jsonl"))
    assert len(files) == 1
    header = json.loads(files[0].read_text().splitlines()[0])
    assert header["source"] == "neighbours" and header["count"] == len(new)

    def boom(*a, **k):
        raise AssertionError("cache miss: the source was rebuilt")

    monkeypatch.setattr(aug, "build_candidate_source", boom)
    assert augment_examples(EXAMPLES, str(tiny_bert_dir), cfg, tmp_path, progress=False) == out


def test_augment_examples_deterministic_max_examples_and_bad_cache(tiny_bert_dir, tmp_path, monkeypatch):
    cfg = AugmentConfig(enabled=True, p=0.6, top_k=4, n_aug=3, seed=7, max_examples=1)
    a = augment_examples(EXAMPLES, str(tiny_bert_dir), cfg, tmp_path / "a", progress=False)
    assert a[:3] == EXAMPLES and all(e.label == 1 and e.text_b is None for e in a[3:])  # only the first
    (cache,) = (tmp_path / "a").glob("augment-*.jsonl")
    cache.write_text("\n".join(cache.read_text().splitlines()[:-1]) + "\n")  # a truncated cache...
    calls = _spy(monkeypatch)
    assert augment_examples(EXAMPLES, str(tiny_bert_dir), cfg, tmp_path / "a", progress=False) == a
    assert calls == [False]  # ...is recomputed, with the same result (seeded)
    other = AugmentConfig(enabled=True, p=0.6, top_k=4, n_aug=3, seed=8, max_examples=1)
    augment_examples(EXAMPLES, str(tiny_bert_dir), other, tmp_path / "a", progress=False)
    assert len(list((tmp_path / "a").glob("augment-*.jsonl"))) == 2  # another seed, another cache file


def test_augment_examples_uses_mlm_when_teacher_has_one(tiny_mlm, tiny_tokenizer, tmp_path, monkeypatch):
    folder = tmp_path / "mlm_teacher"
    tiny_mlm.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    calls = _spy(monkeypatch)
    cfg = AugmentConfig(enabled=True, p=1.0, top_k=1, n_aug=2, seed=0)
    out = augment_examples([Example("a good movie", None, 1)], str(folder), cfg, tmp_path / "cache",
                           progress=False)
    assert calls == [True]
    # p = 1, top 1: "good" becomes the MLM's winner; duplicates of the first augmentation dropped
    assert len(out) == 2 and out[1].text_a.split()[1] == "great"
    (cache,) = (tmp_path / "cache").glob("augment-*.jsonl")
    assert json.loads(cache.read_text().splitlines()[0])["source"] == "mlm+neighbours"


def test_mlm_logits_at_matches_full_forward(tiny_mlm, tiny_tokenizer):
    src = MaskedLMCandidates(tiny_mlm, tiny_tokenizer)
    enc = tiny_tokenizer(["the [MASK] sat on the mat", "a [MASK] movie ! ! !"], padding=True, return_tensors="pt")
    positions = (enc["input_ids"] == tiny_tokenizer.mask_token_id).int().argmax(1)
    with torch.no_grad():
        full = tiny_mlm(**enc).logits
        fast = src.logits_at(enc, positions)
    rows = torch.arange(2)
    torch.testing.assert_close(fast, full[rows, positions])
    assert not torch.allclose(fast, full[rows, positions + 1])  # really the masked rows
    assert not tiny_mlm.get_output_embeddings()._forward_pre_hooks  # the hook is removed
