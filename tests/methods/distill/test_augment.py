"""TinyBERT data augmentation: sampling, caching, and the same sentences as before on a fixed seed
(the candidate sources are tested in test_substitutes.py)."""

from __future__ import annotations

import json
import random

import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.data.examples import Example
from bertcompress.data.substitutes import (
    CandidateSource,
    CombinedCandidates,
    EmbeddingNeighbourCandidates,
    MaskedLMCandidates,
    never_replaced,
)
from bertcompress.data.tagging import TaggedSentence
from bertcompress.methods.distill import augment as aug
from bertcompress.methods.distill.augment import augment_examples, augment_sentence
from bertcompress.methods.distill.config import AugmentConfig
from conftest import biased_mlm, seeded, tiny_config

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


def _spy(monkeypatch) -> list[str | None]:
    """Record `mlm` (whose masked LM is asked) of every source build, still building the real source."""
    calls: list[str | None] = []
    real = aug.build_candidate_source

    def spy(teacher, tokenizer, *, mlm=None, device=None):
        calls.append(mlm)
        return real(teacher, tokenizer, mlm=mlm, device=device)

    monkeypatch.setattr(aug, "build_candidate_source", spy)
    return calls


def test_augment_examples_end_to_end_and_cache(tiny_bert_dir, tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    cfg = AugmentConfig(enabled=True, p=0.6, top_k=4, n_aug=5, seed=3)
    out = augment_examples(EXAMPLES, str(tiny_bert_dir), cfg, tmp_path, progress=False)
    assert calls == [None]  # the tiny classifier has no MLM head: neighbours only
    assert out[:3] == EXAMPLES and len(out) > 3
    assert out.record == {"source": "neighbours", "mlm_model": None, "skip_stop_words": True, "examples": 3,
                          "new_examples": len(out) - 3, "from_cache": False, "cache": out.record["cache"]}
    new = out[3:]
    assert len(new) <= 3 * cfg.n_aug
    for src in EXAMPLES:  # each augmented example keeps its source's label and pair structure
        mine = [e for e in new if len(e.text_a.split()) == len(src.text_a.split())
                and (e.text_b is None) == (src.text_b is None)]
        assert mine and all(e.label == src.label and e.words() != src.words() for e in mine)
        assert len({(e.text_a, e.text_b) for e in mine}) == len(mine)  # duplicates dropped
        assert all(e.text_a.split()[0] == src.text_a.split()[0] for e in mine)  # "a", "the", "i": stop words
    assert all(e.text_a.split()[-1] == "." for e in new if e.label == 0)  # punctuation kept

    files = list(tmp_path.glob("augment-*.jsonl"))
    assert len(files) == 1
    header = json.loads(files[0].read_text().splitlines()[0])
    assert header["source"] == "neighbours" and header["count"] == len(new) and header["mlm_model"] is None

    def boom(*a, **k):
        raise AssertionError("cache miss: the source was rebuilt")

    monkeypatch.setattr(aug, "build_candidate_source", boom)
    again = augment_examples(EXAMPLES, str(tiny_bert_dir), cfg, tmp_path, progress=False)
    assert again == out and again.record == {**out.record, "from_cache": True}


def test_augment_examples_deterministic_max_examples_and_bad_cache(tiny_bert_dir, tmp_path, monkeypatch):
    cfg = AugmentConfig(enabled=True, p=0.6, top_k=4, n_aug=3, seed=7, max_examples=1)
    a = augment_examples(EXAMPLES, str(tiny_bert_dir), cfg, tmp_path / "a", progress=False)
    assert a[:3] == EXAMPLES and all(e.label == 1 and e.text_b is None for e in a[3:])  # only the first
    (cache,) = (tmp_path / "a").glob("augment-*.jsonl")
    cache.write_text("\n".join(cache.read_text().splitlines()[:-1]) + "\n")  # a truncated cache...
    calls = _spy(monkeypatch)
    assert augment_examples(EXAMPLES, str(tiny_bert_dir), cfg, tmp_path / "a", progress=False) == a
    assert calls == [None]  # ...is recomputed, with the same result (seeded)
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
    assert calls == [str(folder)]
    # p = 1, top 1: "good" becomes the MLM's winner; duplicates of the first augmentation dropped
    assert len(out) == 2 and out[1].text_a.split()[1] == "great"
    (cache,) = (tmp_path / "cache").glob("augment-*.jsonl")
    assert json.loads(cache.read_text().splitlines()[0])["source"] == f"mlm({folder})+neighbours"
    assert out.record["source"] == f"mlm({folder})+neighbours" and out.record["mlm_model"] == str(folder)


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


# ------------------------------------------------------------------ augment.mlm_model

@pytest.fixture(scope="module")
def other_mlm_dir(tmp_path_factory):
    """A pre-trained-style masked LM with its OWN tokenizer: the tiny vocabulary plus "dogs" (one
    piece here, "dog ##s" for the teacher) and "puppies" (unknown to the teacher), its output
    bias making "puppies" the best word everywhere."""
    from transformers import BertForMaskedLM, BertTokenizerFast

    from conftest import write_vocab

    folder = tmp_path_factory.mktemp("mlm")
    vocab = write_vocab(folder)
    vocab.write_text(vocab.read_text(encoding="utf-8") + "dogs\npuppies\n", encoding="utf-8")
    tok = BertTokenizerFast.from_pretrained(folder, do_lower_case=True)
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config("bert", len(tok)))
    with torch.no_grad():
        model.get_output_embeddings().bias.zero_()
        model.get_output_embeddings().bias[tok.convert_tokens_to_ids("puppies")] = 100
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_mlm_model_proposes_for_single_pieces_of_its_own_tokenizer(tiny_bert_dir, tiny_tokenizer, other_mlm_dir,
                                                                   tmp_path, monkeypatch):
    from bertcompress.models.loading import load_model

    assert tiny_tokenizer.tokenize("dogs") == ["dog", "##s"] and "puppies" not in tiny_tokenizer.get_vocab()
    calls = _spy(monkeypatch)
    cfg = AugmentConfig(enabled=True, p=1.0, top_k=1, n_aug=3, seed=0, mlm_model=str(other_mlm_dir))
    out = augment_examples([Example("i love dogs and cats", None, 1)], str(tiny_bert_dir), cfg, tmp_path,
                           progress=False)
    assert calls == [str(other_mlm_dir)]
    # the teacher's input embeddings still give "cats" (two pieces for the MLM too) its neighbour
    emb = load_model(str(tiny_bert_dir), "base").get_input_embeddings().weight
    (cats,) = EmbeddingNeighbourCandidates(emb, tiny_tokenizer).candidates(["cats"], 0, 1)
    # "love" and "dogs" are single pieces for the MLM's tokenizer: its winner, a word only it knows;
    # "i" and "and" are stop words; p = 1, top 1: one augmentation, the others duplicates
    assert [e.text_a for e in out[1:]] == [f"i puppies puppies and {cats}"]
    assert cats != "puppies" and out[1].label == 1
    expected = f"mlm({other_mlm_dir})+neighbours"
    assert out.record["source"] == expected and out.record["mlm_model"] == str(other_mlm_dir)
    (cache,) = tmp_path.glob("augment-*.jsonl")
    header = json.loads(cache.read_text().splitlines()[0])
    assert header["source"] == expected and header["mlm_model"] == str(other_mlm_dir)


def test_mlm_model_without_mlm_head_or_missing_is_a_user_error(tiny_bert_dir, tmp_path):
    cfg = AugmentConfig(enabled=True, mlm_model=str(tiny_bert_dir))  # a classifier: no MLM head
    with pytest.raises(UserError, match="augment.mlm_model .* has no trained masked-LM head"):
        augment_examples(EXAMPLES, str(tiny_bert_dir), cfg, tmp_path, progress=False)
    cfg = AugmentConfig(enabled=True, mlm_model=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="augment.mlm_model: no such model folder"):
        augment_examples(EXAMPLES, str(tiny_bert_dir), cfg, tmp_path, progress=False)
    assert not list(tmp_path.glob("augment-*.jsonl"))


def test_cache_key_follows_mlm_model_and_stop_words(tiny_bert_dir, tiny_tokenizer, other_mlm_dir, tmp_path):
    cfg = AugmentConfig(enabled=True, seed=0)
    teacher, subset = str(tiny_bert_dir), EXAMPLES[:1]
    copy = tmp_path / "copy"
    biased_mlm(tiny_tokenizer).save_pretrained(copy)
    tiny_tokenizer.save_pretrained(copy)
    keys = [aug._cache_key(teacher, mlm, cfg, subset) for mlm in (None, str(other_mlm_dir), str(copy))]
    assert len(set(keys)) == 3
    assert aug._cache_key(teacher, str(copy), cfg, subset) == keys[2]  # stable
    biased_mlm(tiny_tokenizer, {"bad": 100}).save_pretrained(copy)  # re-trained in the same folder
    assert aug._cache_key(teacher, str(copy), cfg, subset) != keys[2]
    no_stop = AugmentConfig(enabled=True, seed=0, skip_stop_words=False)
    assert aug._cache_key(teacher, None, no_stop, subset) != keys[0]
    # end to end: another mlm_model, another cache file
    for mlm in (None, str(other_mlm_dir)):
        augment_examples(subset, teacher, AugmentConfig(enabled=True, seed=0, n_aug=2, mlm_model=mlm), tmp_path / "c",
                         progress=False)
    assert sorted(json.loads(f.read_text().splitlines()[0])["source"] for f in (tmp_path / "c").glob("*.jsonl")) == \
        sorted(["neighbours", f"mlm({other_mlm_dir})+neighbours"])


# ------------------------------------------------------------------ stop words and pairs

class _Everything(CandidateSource):
    """Proposes "zz<word>" for every word it is asked about, and records what it was asked."""

    def __init__(self):
        self.asked: list[list[str]] = []

    def candidates_at(self, words, positions, top_k):
        self.asked.append([words[p] for p in positions])
        return [["zz" + words[p]] for p in positions]

    def prefetch(self, words, top_k):
        pass


def test_stop_words_and_negations_are_never_replaced(tiny_bert_dir, tmp_path, monkeypatch):
    words = "The movie was not good but no fun and never dull".split()
    src = _Everything()
    (out,) = aug.augment_words(words, src, 1.0, 5, 1, random.Random(0), protected=never_replaced())
    assert out == "The zzmovie was not zzgood but no zzfun and never zzdull".split()
    assert src.asked == [["movie", "good", "fun", "dull"]]  # protected words are not even looked up
    (unprotected,) = aug.augment_words(words, src, 1.0, 5, 1, random.Random(0))
    assert unprotected == ["zz" + w for w in words]

    # end to end with the real (neighbour) source, p = 1: every other word changes, these never do
    ex = Example("the movie was not good but no fun", None, 1)
    cfg = AugmentConfig(enabled=True, p=1.0, top_k=3, n_aug=6, seed=0)
    new = augment_examples([ex], str(tiny_bert_dir), cfg, tmp_path / "a", progress=False)[1:]
    assert new
    for e in new:
        w = e.text_a.split()
        assert [w[i] for i in (0, 2, 3, 5, 6)] == ["the", "was", "not", "but", "no"]
        assert all(w[i] != ex.text_a.split()[i] for i in (1, 4, 7))
    off = AugmentConfig(enabled=True, p=1.0, top_k=3, n_aug=6, seed=0, skip_stop_words=False)
    new = augment_examples([ex], str(tiny_bert_dir), off, tmp_path / "b", progress=False)[1:]
    assert all(a != b for e in new for a, b in zip(e.text_a.split(), ex.text_a.split()))  # all replaced


def test_pairs_change_on_both_sides_each_from_its_own_sentence(tiny_bert_dir, tmp_path, monkeypatch):
    pair = Example("i love dogs", "the cat sat", 1)
    assert pair.words() == ["i", "love", "dogs", "the", "cat", "sat"]
    assert pair.with_words(["we", "hate", "cats", "a", "dog", "ran"]) == Example("we hate cats", "a dog ran", 1)
    with pytest.raises(ValueError):
        pair.with_words(["too", "few"])

    cfg = AugmentConfig(enabled=True, p=1.0, top_k=4, n_aug=5, seed=1)
    out = augment_examples([pair, Example("a good movie", None, 0)], str(tiny_bert_dir), cfg, tmp_path / "real",
                           progress=False)
    pairs = [e for e in out[2:] if e.text_b is not None]
    singles = [e for e in out[2:] if e.text_b is None]
    assert pairs and singles and all(e.label == 1 for e in pairs) and all(e.label == 0 for e in singles)
    for e in pairs:  # p = 1: every replaceable word of both sides changed, stop words ("i", "the") kept
        a, b = e.text_a.split(), e.text_b.split()
        assert len(a) == len(b) == 3 and a[0] == "i" and b[0] == "the"
        assert a[1] != "love" and a[2] != "dogs"
        assert b[1] != "cat" and b[2] != "sat"

    src = _Everything()
    monkeypatch.setattr(aug, "build_candidate_source", lambda *a, **k: src)
    out = augment_examples([pair], str(tiny_bert_dir), cfg, tmp_path / "spy", progress=False)
    assert src.asked == [["love", "dogs"], ["cat", "sat"]]  # each side's candidates from its own sentence
    assert out[1:] == [Example("i zzlove zzdogs", "the zzcat zzsat", 1)]


def test_tagged_sentences_still_augment(tiny_bert_dir, tmp_path):
    sent = TaggedSentence(["the", "good", "movie", "."], ["DET", "ADJ", "NOUN", "PUNCT"])
    cfg = AugmentConfig(enabled=True, p=1.0, top_k=3, n_aug=4, seed=0)
    out = augment_examples([sent], str(tiny_bert_dir), cfg, tmp_path, progress=False)
    assert out[0] == sent and len(out) > 1
    for s in out[1:]:
        assert s.tags == sent.tags and s.tokens[0] == "the" and s.tokens[3] == "."
        assert s.tokens[1] != "good" and s.tokens[2] != "movie" and s.tokens[1].isalpha()
