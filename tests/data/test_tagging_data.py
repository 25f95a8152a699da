"""Token-classification data: readers, splits, word-piece alignment, tagging metrics, Brown."""

from __future__ import annotations

import json
import zipfile
from collections import Counter

import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.data.brown import (
    BROWN_TO_UNIVERSAL,
    FICTION_CATEGORIES,
    NEWS_CATEGORIES,
    UNIVERSAL_TAGS,
    brown_categories,
    brown_plain_sentences,
    brown_to_universal,
    load_brown,
    simplify_brown_tag,
)
from bertcompress.data.tagging import (
    IGNORE,
    TaggedSentence,
    collate_tagged,
    encode_tagged,
    ids_to_tags,
    is_span_tagset,
    read_conll,
    read_tagged_dataset,
    read_tagged_jsonl,
    seeded_split,
    tag_vocabulary,
    truncated_words,
    word_labels,
    word_predictions,
)
from bertcompress.evaluation.tagging_metrics import tagging_metrics, tagging_trivial_baseline
from conftest import SHARED_DATA

BROWN_ZIP = SHARED_DATA / "corpus" / "nltk" / "brown.zip"


def one_line_error(excinfo, *parts: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message
    return message


def test_tagged_sentence_needs_one_tag_per_token():
    with pytest.raises(UserError, match="2 tokens but 1 tags"):
        TaggedSentence(["a", "b"], ["X"])
    with pytest.raises(UserError, match="no tokens"):
        TaggedSentence([], [])


# ---------------------------------------------------------------- CoNLL

CONLL = """-DOCSTART- -X- -X- O

# sent_id = 1
EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
# NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_read_conll_columns_docstart_comments_and_last_sentence(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(CONLL, encoding="utf-8")
    ner = read_conll(path)
    assert [s.tokens for s in ner] == [["EU", "rejects", "German", "#"], ["Peter", "Blackburn"]]
    assert ner[0].tags == ["B-ORG", "O", "B-MISC", "O"]  # the "#" inside a sentence is a token
    assert read_conll(path, tag_column=1)[1].tags == ["NNP", "NNP"]
    assert read_conll(path, tag_column=-2)[0].tags == ["B-NP", "B-VP", "B-NP", "I-NP"]


def test_read_conll_separator_keeps_spaces_in_tokens(tmp_path):
    path = tmp_path / "tabs.tsv"
    path.write_text("New York\tB-LOC\ncity\tO\r\n\r\nhi\tO\n", encoding="utf-8")
    sentences = read_conll(path, separator="\t")
    assert sentences == [TaggedSentence(["New York", "city"], ["B-LOC", "O"]), TaggedSentence(["hi"], ["O"])]


@pytest.mark.parametrize("text, kwargs, expected", [
    ("a DT O\nb NN\n", {}, "line 2: expected 3 columns"),
    ("a DT\nb NN\n", {"tag_column": 4}, "line 1: no tag column 4 (the line has 2 columns)"),
    ("a DT\n", {"token_column": -3}, "line 1: no token column -3"),
    ("a\nb\n", {}, "line 1: token column 0 and tag column -1 are the same column"),
    ("\n\na\tDT\nb\t\n", {"separator": "\t"}, "line 4: empty tag"),
    ("-DOCSTART- O\n\n# only a comment\n", {}, "has no tagged sentences"),
])
def test_read_conll_bad_lines_name_file_and_line(tmp_path, text, kwargs, expected):
    path = tmp_path / "bad.conll"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as excinfo:
        read_conll(path, **kwargs)
    one_line_error(excinfo, str(path), expected)


def test_read_conll_missing_file_and_bad_encoding(tmp_path):
    with pytest.raises(UserError) as excinfo:
        read_conll(tmp_path / "absent.conll")
    one_line_error(excinfo, "not found", "absent.conll")
    path = tmp_path / "latin1.conll"
    path.write_bytes(b"a DT\n\ncaf\xe9 NN\n")
    with pytest.raises(UserError) as excinfo:
        read_conll(path)
    one_line_error(excinfo, str(path), "line 3", "UTF-8")


# ---------------------------------------------------------------- JSONL and datasets

def test_read_tagged_jsonl_string_and_index_tags(tmp_path):
    path = tmp_path / "tags.jsonl"
    rows = [{"words": ["I", "ran"], "pos": ["PRON", "VERB"]}, {"words": ["Go"], "pos": ["VERB"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert read_tagged_jsonl(path, "words", "pos")[0] == TaggedSentence(["I", "ran"], ["PRON", "VERB"])
    indexed = tmp_path / "ids.jsonl"
    indexed.write_text(json.dumps({"tokens": ["Ann", "ran"], "tags": [1, 0]}) + "\n", encoding="utf-8")
    assert read_tagged_jsonl(indexed, tag_names=["O", "B-PER"])[0].tags == ["B-PER", "O"]
    with pytest.raises(UserError) as excinfo:
        read_tagged_jsonl(indexed)
    one_line_error(excinfo, str(indexed), "line 1", "class index")


@pytest.mark.parametrize("line, expected", [
    ('{"tokens": ["a", "b"], "tags": ["X"]}', "2 tokens but 1 tags"),
    ('{"tokens": ["a"], "tags": [3]}', "tag index 3 is outside the 2 tag names"),
    ('{"tokens": ["a"], "tags": [true]}', "neither a tag name nor a class index"),
    ('{"tokens": "a b", "tags": ["X", "Y"]}', "tokens must be a list"),
    ('{"tokens": [], "tags": []}', "no tokens"),
    ('{"tokens": ["a"]}', "no 'tags' key"),
    ('["a", "X"]', "expected a JSON object"),
    ('{"tokens": ["a"], "tags": ["X"]', "not valid JSON"),
])
def test_read_tagged_jsonl_bad_lines(tmp_path, line, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"tokens": ["ok"], "tags": ["O"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(UserError) as excinfo:
        read_tagged_jsonl(path, tag_names=["O", "B-X"])
    one_line_error(excinfo, str(path), "line 2", expected)


def test_read_tagged_dataset_class_labels_and_strings():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))})
    ds = datasets.Dataset.from_dict({"tokens": [["Ann", "Lee", "ran"], ["Go"]], "ner_tags": [[1, 2, 0], [0]]},
                                    features=features)
    assert read_tagged_dataset(ds, tags_key="ner_tags") == [
        TaggedSentence(["Ann", "Lee", "ran"], ["B-PER", "I-PER", "O"]), TaggedSentence(["Go"], ["O"])]
    plain = datasets.Dataset.from_dict({"tokens": [["Go"]], "pos": [["VERB"]]})
    assert read_tagged_dataset(plain, tags_key="pos")[0].tags == ["VERB"]
    with pytest.raises(UserError) as excinfo:
        read_tagged_dataset(ds, tags_key="pos_tags")
    one_line_error(excinfo, "no column 'pos_tags'", "ner_tags")
    bad = datasets.Dataset.from_dict({"tokens": [["a"], ["a", "b"]], "tags": [["X"], ["X"]]})
    with pytest.raises(UserError) as excinfo:
        read_tagged_dataset(bad)
    one_line_error(excinfo, "row 1", "2 tokens but 1 tags")
    with pytest.raises(UserError, match="one split"):
        read_tagged_dataset(datasets.DatasetDict({"train": ds}))


# ---------------------------------------------------------------- tag sets and splits

def test_tag_vocabulary_puts_outside_first_then_sorts():
    ner = [TaggedSentence(["a", "b", "c"], ["I-PER", "O", "B-PER"]), TaggedSentence(["d"], ["B-LOC"])]
    assert tag_vocabulary(ner) == ["O", "B-LOC", "B-PER", "I-PER"]
    assert tag_vocabulary([TaggedSentence(["a", "b"], ["VERB", "ADJ"])]) == ["ADJ", "VERB"]


def test_seeded_split_is_deterministic_disjoint_and_in_source_order():
    items = list(range(100))
    parts = seeded_split(items, seed=3)
    assert [len(parts[k]) for k in ("train", "dev", "test")] == [80, 10, 10]
    assert sorted(parts["train"] + parts["dev"] + parts["test"]) == items
    assert all(part == sorted(part) for part in parts.values())
    assert seeded_split(items, seed=3) == parts
    assert seeded_split(items, seed=4)["dev"] != parts["dev"]
    assert seeded_split(items, (0.5, 0.5, 0.0))["test"] == []


def test_seeded_split_rejects_bad_fractions_and_too_few_items():
    with pytest.raises(UserError, match="summing to 1"):
        seeded_split([1, 2, 3], (0.8, 0.1))
    with pytest.raises(UserError, match="summing to 1"):
        seeded_split([1, 2, 3], (0.8, 0.3, -0.1))
    with pytest.raises(UserError, match="4 sentences are too few .* the test split would be empty"):
        seeded_split([1, 2, 3, 4], (0.8, 0.1, 0.1))


# ---------------------------------------------------------------- word-piece alignment

TAGS = {"O": 0, "NOUN": 1, "VERB": 2, "DET": 3}


def pieces(tokenizer, feature):
    return tokenizer.convert_ids_to_tokens(feature["input_ids"])


def test_first_piece_carries_the_tag_and_the_rest_are_ignored(tiny_tokenizer):
    sentence = TaggedSentence(["The", "xylophones", "sat", "quizzically"], ["DET", "NOUN", "VERB", "O"])
    [feature] = encode_tagged(tiny_tokenizer, [sentence], TAGS, max_seq_len=64)
    toks = pieces(tiny_tokenizer, feature)
    assert toks[0] == "[CLS]" and toks[-1] == "[SEP]"
    assert toks[2:12] == ["x", "##y", "##l", "##o", "##p", "##h", "##o", "##n", "##e", "##s"]
    assert feature["word_positions"] == [1, 2, 12, 13]
    assert [toks[p] for p in feature["word_positions"]] == ["the", "x", "sat", "q"]
    expected = [IGNORE] * len(toks)
    for position, tag in zip(feature["word_positions"], sentence.tags):
        expected[position] = TAGS[tag]
    assert feature["labels"] == expected
    assert sum(label != IGNORE for label in feature["labels"]) == 4  # one label per word
    assert feature["word_count"] == 4
    assert feature["attention_mask"] == [1] * len(toks)
    assert len(feature["token_type_ids"]) == len(toks)


def test_truncation_drops_the_words_it_cuts(tiny_tokenizer):
    sentences = [TaggedSentence(["the", "xylophones", "sat", "dog"], ["DET", "NOUN", "VERB", "NOUN"]),
                 TaggedSentence(["the", "cat"], ["DET", "NOUN"])]
    features = encode_tagged(tiny_tokenizer, sentences, TAGS, max_seq_len=6)
    cut, whole = features
    assert len(cut["input_ids"]) == 6
    assert pieces(tiny_tokenizer, cut) == ["[CLS]", "the", "x", "##y", "##l", "[SEP]"]
    # "xylophones" keeps its first piece, so it keeps its label; "sat" and "dog" are cut.
    assert cut["labels"] == [IGNORE, 3, 1, IGNORE, IGNORE, IGNORE]
    assert cut["word_count"] == 2 and whole["word_count"] == 2
    assert truncated_words(sentences, features) == 2


def test_a_word_without_pieces_is_fed_as_unknown(tiny_tokenizer):
    sentence = TaggedSentence(["the", "\u200b", "cat"], ["DET", "O", "NOUN"])
    [feature] = encode_tagged(tiny_tokenizer, [sentence], TAGS, max_seq_len=16)
    assert pieces(tiny_tokenizer, feature) == ["[CLS]", "the", "[UNK]", "cat", "[SEP]"]
    assert feature["labels"] == [IGNORE, 3, 0, 1, IGNORE]


def test_encode_tagged_rejects_unknown_tags_and_slow_tokenizers(tiny_tokenizer):
    with pytest.raises(UserError, match="sentence 1: tag 'ADJ' is not in the task's tag set"):
        encode_tagged(tiny_tokenizer, [TaggedSentence(["a"], ["DET"]), TaggedSentence(["good"], ["ADJ"])],
                      TAGS, 16)
    with pytest.raises(UserError, match="fast tokenizer"):
        encode_tagged(object(), [TaggedSentence(["a"], ["DET"])], TAGS, 16)


def test_collate_pads_labels_with_ignore_and_predictions_map_back_to_words(tiny_tokenizer):
    sentences = [TaggedSentence(["the", "xylophones"], ["DET", "NOUN"]), TaggedSentence(["run"], ["VERB"])]
    features = encode_tagged(tiny_tokenizer, sentences, TAGS, max_seq_len=32)
    batch = collate_tagged(features, tiny_tokenizer.pad_token_id)
    width = len(features[0]["input_ids"])
    assert batch["input_ids"].shape == batch["labels"].shape == (2, width)
    assert batch["labels"][1, 3:].tolist() == [IGNORE] * (width - 3)
    assert batch["attention_mask"][1].tolist() == [1, 1, 1] + [0] * (width - 3)
    logits = torch.zeros(2, width, len(TAGS))
    logits[..., TAGS["NOUN"]] = 1.0  # a tagger that says NOUN everywhere
    assert word_predictions(logits, batch["labels"]) == [[1, 1], [1]]
    gold = word_labels(batch["labels"])
    assert gold == [[3, 1], [2]]
    assert word_predictions(batch["labels"].clamp(min=0), batch["labels"]) == gold
    names = ["O", "NOUN", "VERB", "DET"]
    assert ids_to_tags(gold, names) == [s.tags for s in sentences]


# ---------------------------------------------------------------- metrics

def test_accuracy_for_a_plain_tag_set():
    gold = [["DET", "NOUN", "VERB"], ["NOUN"]]
    predicted = [["DET", "VERB", "VERB"], ["NOUN"]]
    metrics = tagging_metrics(gold, predicted, truncated_words=5)
    assert metrics == {"accuracy": 0.75, "words": 4, "truncated_words": 5, "score": 0.75}


def test_span_metrics_for_bio_tags_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    metrics = tagging_metrics(gold, predicted)
    # Gold spans: PER(0-1), LOC(3), ORG(0). Predicted: PER(0-1), ORG(0), LOC(1). Right: PER, ORG.
    assert metrics["span_precision"] == pytest.approx(2 / 3)
    assert metrics["span_recall"] == pytest.approx(2 / 3)
    assert metrics["span_f1"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["score"] == metrics["span_f1"]


def test_span_metrics_for_bioes_tags_and_partial_spans():
    gold = [["B-PER", "E-PER", "S-LOC", "O"]]
    predicted = [["B-PER", "O", "S-LOC", "S-LOC"]]
    metrics = tagging_metrics(gold, predicted)
    # Predicted "B-PER O" is a one-word PER span: wrong boundary. Right: LOC(2). P 1/3, R 1/2.
    assert metrics["span_precision"] == pytest.approx(1 / 3)
    assert metrics["span_recall"] == pytest.approx(1 / 2)
    assert metrics["span_f1"] == pytest.approx(0.4)
    assert metrics["accuracy"] == pytest.approx(0.5)


def test_span_detection_and_mismatched_inputs():
    assert is_span_tagset(["O", "B-PER", "I-PER", "E-PER", "S-LOC"])
    assert not is_span_tagset(["O"]) and not is_span_tagset(["NOUN", "B-X"])
    assert "span_f1" not in tagging_metrics([["O"]], [["O"]])
    assert tagging_metrics([["O"]], [["O"]], tag_names=["O", "B-X"])["span_f1"] == 0.0
    with pytest.raises(UserError, match="sentence 1: 1 predicted tags for 2 gold tags"):
        tagging_metrics([["A"], ["A", "B"]], [["A"], ["A"]])
    with pytest.raises(UserError, match="1 predicted sentences for 2 gold"):
        tagging_metrics([["A"], ["B"]], [["A"]])
    with pytest.raises(UserError, match="no tagged words"):
        tagging_metrics([], [])


def test_trivial_baseline_is_the_majority_tag():
    pos = tagging_trivial_baseline([["NOUN", "VERB", "NOUN"], ["DET", "NOUN"]])
    assert pos == {"trivial_score": 0.6, "trivial_predictor": "majority tag NOUN", "trivial_accuracy": 0.6}
    ner = tagging_trivial_baseline([["B-PER", "I-PER", "O"], ["O", "O", "B-LOC"]])
    assert ner["trivial_predictor"] == "majority tag O"
    assert ner["trivial_accuracy"] == 0.5 and ner["trivial_span_f1"] == 0.0 and ner["trivial_score"] == 0.0
    assert tagging_trivial_baseline([["B", "A"]])["trivial_predictor"] == "majority tag A"  # ties: sorted


# ---------------------------------------------------------------- Brown: rules and a small zip

@pytest.mark.parametrize("raw, brown, universal", [
    ("nn-tl-hl", "NN", "NOUN"),
    ("NP-TL", "NP", "NOUN"),
    ("pps+bez", "PPS+BEZ", "PRT"),
    ("PPS+BEZ-HL", "PPS+BEZ", "PRT"),
    ("MD+PPSS", "MD+PPSS", "VERB"),
    ("bez*", "BEZ*", "VERB"),
    ("*", "*", "ADV"),
    ("*-NC", "*", "ADV"),
    ("FW-IN+NN-TL", "FW", "X"),
    ("FW-*", "FW", "X"),
    ("FW-IN+AT-T", "FW", "X"),
    ("PPSS+BER-N", "PPSS+BER", "PRT"),
    ("---HL", "--", "."),
    ("(-HL", "(", "."),
    ("NIL", "NIL", "X"),
    ("PP$", "PP$", "DET"),
    ("CS", "CS", "ADP"),
])
def test_brown_tag_simplification_and_universal_mapping(raw, brown, universal):
    assert simplify_brown_tag(raw) == brown
    assert brown_to_universal(raw) == universal


def test_universal_table_uses_exactly_the_twelve_tags():
    assert set(BROWN_TO_UNIVERSAL.values()) == set(UNIVERSAL_TAGS) and len(UNIVERSAL_TAGS) == 12
    with pytest.raises(UserError, match="'ZZ' has no universal tag"):
        brown_to_universal("ZZ")


def small_brown_zip(tmp_path, ca01="The/at jury/nn-tl said/vbd ./.", name="brown.zip"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("brown/", "")
        archive.writestr("brown/cats.txt", "ca01 news\ncn01 adventure\n")
        archive.writestr("brown/ca01", f"\n\n\t{ca01}\n\n\n\tHe's/pps+bez n't/* here/rb ./.\n")
        archive.writestr("brown/cn01", "\n\n\tGo/vb home/nr ,/, Pierre/np-tl ./.\n")
        archive.writestr("brown/README", "not a corpus file\n")
    return path


def test_brown_reader_on_a_small_zip(tmp_path):
    path = small_brown_zip(tmp_path)
    assert brown_categories(path) == ["adventure", "news"]
    news = load_brown(path, "brown", categories=["news"])
    assert news == [TaggedSentence(["The", "jury", "said", "."], ["AT", "NN", "VBD", "."]),
                    TaggedSentence(["He's", "n't", "here", "."], ["PPS+BEZ", "*", "RB", "."])]
    assert [s.tags for s in load_brown(path)] == [["DET", "NOUN", "VERB", "."], ["PRT", "ADV", "ADV", "."],
                                                  ["VERB", "NOUN", ".", "NOUN", "."]]
    assert brown_plain_sentences(path, ["adventure"]) == [["Go", "home", ",", "Pierre", "."]]
    assert len(brown_plain_sentences(path)) == 3


def test_brown_bad_inputs_are_one_line_errors(tmp_path):
    path = small_brown_zip(tmp_path)
    cases = [
        (lambda: load_brown(path, tagset="ptb"), "unknown Brown tag set 'ptb'"),
        (lambda: load_brown(path, categories=["poetry"]), "unknown Brown categories ['poetry']"),
        (lambda: load_brown(path, categories=[]), "empty list of Brown categories"),
        (lambda: load_brown(tmp_path / "absent.zip"), "Brown corpus zip not found"),
    ]
    not_zip = tmp_path / "plain.zip"
    not_zip.write_text("hello", encoding="utf-8")
    cases.append((lambda: brown_categories(not_zip), "is not a zip file"))
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("abc/rural.txt", "text")
    cases.append((lambda: load_brown(other), "has no brown/cats.txt"))
    untagged = small_brown_zip(tmp_path, ca01="The/at jury said/vbd", name="untagged.zip")
    cases.append((lambda: load_brown(untagged), "ca01, sentence 1: token 'jury' has no /TAG"))
    unmappable = small_brown_zip(tmp_path, ca01="The/zz", name="unmappable.zip")
    cases.append((lambda: load_brown(unmappable), "ca01, sentence 1: Brown tag 'ZZ' has no universal tag"))
    for call, expected in cases:
        with pytest.raises(UserError) as excinfo:
            call()
        one_line_error(excinfo, expected)


# ---------------------------------------------------------------- Brown: the real corpus

needs_brown = pytest.mark.skipif(not BROWN_ZIP.is_file(), reason=f"{BROWN_ZIP} is absent")


@pytest.fixture(scope="module")
def brown_raw_tags() -> Counter:
    """Every raw tag of the whole corpus with its count, read with NLTK's reader."""
    from bertcompress.data.brown import _reader

    return Counter(tag for _, tag in _reader(BROWN_ZIP).tagged_words())


@needs_brown
def test_real_brown_categories_and_genre_groups():
    categories = brown_categories(BROWN_ZIP)
    assert len(categories) == 15
    assert set(NEWS_CATEGORIES) <= set(categories) and set(FICTION_CATEGORIES) <= set(categories)
    assert not set(NEWS_CATEGORIES) & set(FICTION_CATEGORIES)


@needs_brown
def test_real_brown_slice_in_both_tag_sets():
    universal = load_brown(BROWN_ZIP, categories=["science_fiction"])
    brown = load_brown(BROWN_ZIP, "brown", categories=["science_fiction"])
    plain = brown_plain_sentences(BROWN_ZIP, ["science_fiction"])
    assert len(universal) == len(brown) == len(plain) == 948
    assert [s.tokens for s in universal] == plain
    assert universal[0].tokens[:4] == ["Now", "that", "he", "knew"]
    assert all(tag in UNIVERSAL_TAGS for s in universal for tag in s.tags)
    assert all(tag in BROWN_TO_UNIVERSAL for s in brown for tag in s.tags)


@needs_brown
def test_every_raw_brown_tag_maps_and_totals_look_right(brown_raw_tags):
    assert len(brown_raw_tags) == 472 and sum(brown_raw_tags.values()) == 1_161_192
    universal, brown = Counter(), set()
    for raw, count in brown_raw_tags.items():
        universal[brown_to_universal(raw)] += count  # raises on any tag the table misses
        brown.add(simplify_brown_tag(raw))
    assert brown == set(BROWN_TO_UNIVERSAL)  # 181 simplified tags, every one of them in use
    assert set(universal) == set(UNIVERSAL_TAGS)
    assert universal.most_common(1)[0][0] == "NOUN"
    assert 0.20 < universal["NOUN"] / 1_161_192 < 0.30 and universal["X"] < 2_000


@needs_brown
def test_real_brown_news_counts_match_the_universal_mapping():
    # en-brown.map (via NLTK's map_tag) on the news genre gives these counts.
    counts = Counter(tag for s in load_brown(BROWN_ZIP, categories=["news"]) for tag in s.tags)
    assert counts == {"NOUN": 30654, "VERB": 14399, "ADP": 12355, ".": 11928, "DET": 11389, "ADJ": 6706,
                      "ADV": 3349, "CONJ": 2717, "PRON": 2535, "PRT": 2264, "NUM": 2166, "X": 92}
