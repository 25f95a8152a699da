"""TinyBERT data augmentation: sampling, caching, and the same sentences as before on a fixed seed
(the candidate sources are tested in test_substitutes.py)."""

from __future__ import annotations

import json
import random

from bertcompress.config import AugmentConfig
from bertcompress.data.examples import Example
from bertcompress.data.substitutes import (
    CandidateSource,
    CombinedCandidates,
    EmbeddingNeighbourCandidates,
    MaskedLMCandidates,
)
from bertcompress.distillation import augment as aug
from bertcompress.distillation.augment import augment_examples, augment_sentence
from conftest import tiny_config
from test_substitutes import biased_mlm, seeded

# ------------------------------------------------------------------ augment_sentence

class _Fixed(CandidateSource):
    table = {"good": ["great", "fine", "nice"], "movie": ["film", "story"]}

    def candidates_at(self, words, positions, top_k):
        return [self.table.get(words[p], [])[:top_k] for p in positions]


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


def test_augment_examples_uses_mlm_when_teacher_has_one(tiny_tokenizer, tmp_path, monkeypatch):
    folder = tmp_path / "mlm_teacher"
    biased_mlm(tiny_tokenizer).save_pretrained(folder)
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


def test_augmentation_unchanged_on_fixed_seed(tiny_tokenizer):
    """Recorded before the candidate sources moved to data/substitutes.py: the move changed nothing."""
    from transformers import BertForMaskedLM

    mlm = seeded(BertForMaskedLM(tiny_config("bert", len(tiny_tokenizer), layers=1)), 0)
    source = CombinedCandidates(EmbeddingNeighbourCandidates(mlm.get_input_embeddings().weight, tiny_tokenizer),
                                MaskedLMCandidates(mlm, tiny_tokenizer))
    sentences = ["the good movie was really fun .", "i love dogs and cats", "a terrible plot , boring actors !"]
    rng = random.Random(0)
    got = [augment_sentence(s.split(), source, 0.5, 5, 2, rng) for s in sentences]
    assert got == [["the good you was you fun .", "child good day was actor fun ."],
                   ["i love dog and cats", "day you dogs and cats"],
                   ["actor actor plot , work actors !", "a terrible plot , boring like !"]]
