"""Substitute-word sources (data/substitutes.py) on hand-made values (helpers `seeded`, `biased_mlm`
and `fake_wordnet` in conftest.py, shared with the augmentation and attack tests)."""

from __future__ import annotations

import pytest
import torch

from bertcompress.data.substitutes import (
    NEGATIONS,
    CandidateSource,
    CombinedCandidates,
    EmbeddingNeighbourCandidates,
    MaskedLMCandidates,
    WordNetSynonyms,
    WordVocab,
    _word_start_marker,
    never_replaced,
    stop_words,
)
from conftest import biased_mlm, fake_wordnet


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
    return biased_mlm(tiny_tokenizer)


# ------------------------------------------------------------------ vocabulary

def test_word_vocab_whole_words_only(tiny_tokenizer):
    vocab = WordVocab(tiny_tokenizer)
    assert vocab.surface[tiny_tokenizer.convert_tokens_to_ids("movie")] == "movie"
    for t in ("##s", "[CLS]", ".", "[MASK]"):  # pieces, specials, punctuation: never candidates
        assert vocab.surface[tiny_tokenizer.convert_tokens_to_ids(t)] is None
    assert vocab.pieces("dogs") == tuple(tiny_tokenizer.convert_tokens_to_ids(["dog", "##s"]))
    assert vocab.known("dogs") and not vocab.known("€") and vocab.normalised("Good") == "good"
    assert _word_start_marker({"Ġgood": 0, "Ġbad": 1, "s": 2}) == "Ġ"
    assert _word_start_marker({"▁good": 0, "a": 1}) == "▁" and _word_start_marker({"a": 0}) == "##"


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
    assert neighbours.candidates_at(["good", "dogs", "good"], [2, 1], 1) == [["great"], ["bad"]]


# ------------------------------------------------------------------ masked LM

def test_mlm_excludes_the_word_itself_specials_pieces_and_punctuation(tiny_mlm, tiny_tokenizer):
    src = MaskedLMCandidates(tiny_mlm, tiny_tokenizer)
    cands = src.candidates(["a", "good", "movie"], 1, 3)
    assert cands[0] == "great" and cands[1] == "bad" and len(cands) == 3
    assert not {"good", "[SEP]", "##s", "."} & set(cands)  # original word, special, piece, punctuation
    assert src.candidates(["i", "love", "dogs"], 2, 3) == []  # multi-piece: not the MLM's job


def test_sources_propose_stop_words_callers_filter_them(tiny_tokenizer):
    # the sources rank stop words like any word: dropping them is the caller's choice (the attack does)
    src = MaskedLMCandidates(biased_mlm(tiny_tokenizer, {"the": 100, "great": 50}), tiny_tokenizer)
    cands = src.candidates(["a", "good", "movie"], 1, 2)
    assert cands == ["the", "great"] and "the" in stop_words() and "great" not in stop_words()


def test_never_replaced_keeps_negations_whatever_the_stop_word_list():
    words = never_replaced()
    assert stop_words() <= words and NEGATIONS <= words
    assert {"not", "no", "nor", "never", "but", "the", "a", "despite", "unless"} <= words
    assert "despite" not in stop_words()  # why the explicit set is there
    assert not {"good", "movie", "great", "bad"} & words and all(w == w.lower() for w in words)


def test_mlm_batched_equals_one_by_one(tiny_mlm, tiny_tokenizer):
    src = MaskedLMCandidates(tiny_mlm, tiny_tokenizer)
    words = ["the", "cat", "sat", "on", "the", "mat", "."]
    batched = src.sentence_candidates(words, 5)
    single = [src.candidates(words, i, 5) if w.isalpha() else [] for i, w in enumerate(words)]
    assert batched == single and batched[-1] == [] and all(batched[:-1])
    assert src.candidates_at(words, [5, 1], 5) == [single[5], single[1]]  # in the order asked


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


def test_combined_dispatch(tiny_mlm, tiny_tokenizer, neighbours):
    combined = CombinedCandidates(neighbours, MaskedLMCandidates(tiny_mlm, tiny_tokenizer))
    cands = combined.sentence_candidates(["good", "dogs", "."], 2)
    assert cands == [["great", "bad"], ["bad", "dog"], []]  # MLM, neighbours, punctuation kept
    assert combined.candidates(["good", "dogs"], 1, 2) == ["bad", "dog"]
    assert combined.candidates_at(["good", "dogs"], [1, 0], 2) == [["bad", "dog"], ["great", "bad"]]
    alone = CombinedCandidates(neighbours)  # no MLM head: neighbours for every word
    assert alone.sentence_candidates(["good", "dogs"], 2) == [["great", "fine"], ["bad", "dog"]]
    assert (combined.kind, alone.kind) == ("mlm+neighbours", "neighbours")


# ------------------------------------------------------------------ WordNet

def test_wordnet_reader(tmp_path):
    wn = WordNetSynonyms.find(str(fake_wordnet(tmp_path)))
    assert isinstance(wn, CandidateSource)
    assert wn.synonyms("Good", 5) == ["fine", "bad"] and wn.synonyms("film", 5) == []
    assert wn.synonyms("good", 1) == ["fine"]  # most frequent sense first
    assert wn.sentence_candidates(["a", "good", "film", "!"], 5) == [[], ["fine", "bad"], [], []]
    assert WordNetSynonyms.find(str(tmp_path / "missing")) is None


@pytest.mark.skipif(WordNetSynonyms.find() is None, reason="WordNet database not installed")
def test_real_wordnet():
    assert "film" in WordNetSynonyms.find().synonyms("movie", 10)
