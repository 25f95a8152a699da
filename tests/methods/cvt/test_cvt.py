"""Cross-View Training: text splitting, vocabularies, the views' restricted context, the
cross-view loss, EMA, the verb end to end, reload, ONNX, resume, errors, and a Brown slice."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bertcompress.core.config import from_dict
from bertcompress.core.errors import UserError
from bertcompress.data.tagging import IGNORE
from bertcompress.methods.cvt.config import CvtConfig, CvtDataConfig, CvtModelConfig, CvtUnlabelledConfig
from bertcompress.methods.cvt.model import CvtTagger
from bertcompress.methods.cvt.objective import CvtObjective, UnlabelledBatches, cross_view_loss, soft_cross_entropy
from bertcompress.methods.cvt.onnx_tagger import compare_runtimes, export_cvt_onnx
from bertcompress.methods.cvt.predict import predict_tags
from bertcompress.methods.cvt.saving import load_cvt, save_tagger
from bertcompress.methods.cvt.sentences import labelled_data, read_unlabelled
from bertcompress.methods.cvt.text import split_words, text_sentences
from bertcompress.methods.cvt.verb import cvt
from bertcompress.methods.cvt.vocab import CvtCollator, CvtVocab, word_key
from bertcompress.train.config import TrainConfig
from conftest import SHARED_DATA

NLTK = SHARED_DATA / "corpus" / "nltk"
BROWN_ZIP = NLTK / "brown.zip"
TAGS = ["DET", "NOUN", "VERB", "."]
TINY = dict(word_dim=6, char_dim=4, char_widths=[2, 3], char_filters=3, lstm1=5, lstm2=4, projection=6,
            dropout_labelled=0.0, dropout_unlabelled=0.0, label_smoothing=0.0)
SENTENCES = [["The", "cat", "sat", "on", "the", "mat", "."], ["A", "dog", "ran", "."],
             ["Mary", "saw", "2", "dogs", "."]]


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def tiny_tagger(seed: int = 0, **model) -> CvtTagger:
    vocab = CvtVocab.build(SENTENCES, [["the", "dogs", "ran", "home"]], TAGS, lowercase=True, min_count=1,
                           max_vocab=100, max_word_length=8)
    torch.manual_seed(seed)
    return CvtTagger(CvtModelConfig(**(TINY | model)), vocab, ["forward", "backward", "future", "past"])


def batch_of(tagger: CvtTagger, sentences: list[list[str]]) -> dict[str, torch.Tensor]:
    return CvtCollator(tagger.min_chars)([tagger.vocab.encode(s) for s in sentences])


def all_logits(tagger: CvtTagger, batch) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        encoded = tagger.encode(batch["input_ids"], batch["chars"], batch["attention_mask"])
        return {"primary": tagger.primary(encoded.full), **tagger.view_logits(encoded)}


# ---------------------------------------------------------------- text and vocabulary

def test_split_words_follows_brown():
    text = 'He said, "I don\'t know." Mr. Smith paid $1,000 in the 1960\'s -- at 3 p.m. in the U.S. J. F. Kennedy!'
    assert split_words(text) == [
        "He", "said", ",", "``", "I", "don't", "know", ".", "''", "Mr.", "Smith", "paid", "$1,000", "in", "the",
        "1960's", "--", "at", "3", "p.m.", "in", "the", "U.S.", "J.", "F.", "Kennedy", "!"]
    assert split_words("a 10-year plan and/or 5% of the ladies' hats") == [
        "a", "10-year", "plan", "and/or", "5%", "of", "the", "ladies'", "hats"]


def test_text_sentences_raw_and_lines():
    raw = 'He said, "No." Then he left. Mr. Smith\nstayed at 3 p.m. Nobody came.\n\nA new paragraph'
    assert text_sentences(raw, "raw") == [
        ["He", "said", ",", "``", "No", ".", "''"], ["Then", "he", "left", "."],
        ["Mr.", "Smith", "stayed", "at", "3", "p.m.", "Nobody", "came", "."], ["A", "new", "paragraph"]]
    assert text_sentences("one line. Two\n\n  \nthree", "lines") == [["one", "line", ".", "Two"], ["three"]]


def test_vocabulary_keys_ids_and_chars():
    vocab = CvtVocab.build([["The", "the", "cat", "1961"]], [["the", "dog", "dog", "emu"]], TAGS, lowercase=True,
                           min_count=2, max_vocab=10, max_word_length=3)
    assert word_key("Year-1961", True) == "year-0000"
    # most frequent first, ties alphabetical; "emu" (once, unlabelled only) is left out, "cat" (labelled) is in
    assert vocab.words == ["<pad>", "<unk>", "the", "dog", "0000", "cat"]
    assert vocab.word_ids(["THE", "1848", "emu"]) == [2, 4, 1]
    c = {ch: i for i, ch in enumerate(vocab.chars)}
    assert vocab.char_ids(["The"]) == [[2, c["T"], c["h"], c["e"], 3]]
    assert vocab.char_ids(["doggy"]) == [[2, c["d"], c["o"], c["g"], 3]]  # cut to max_word_length
    assert vocab.char_ids(["Zq"]) == [[2, 1, 1, 3]]
    cased = CvtVocab.build([["The", "the"]], [], TAGS, lowercase=False, min_count=1, max_vocab=10, max_word_length=5)
    assert cased.words == ["<pad>", "<unk>", "The", "the"]


def test_collator_pads_words_chars_and_labels():
    tagger = tiny_tagger()
    features = [tagger.vocab.encode(["A", "dog"], ["DET", "NOUN"]), tagger.vocab.encode(["Mary"], ["NOUN"])]
    batch = CvtCollator(min_chars=9)(features)
    assert batch["input_ids"].shape == (2, 2) and batch["chars"].shape == (2, 2, 9)
    assert batch["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert batch["labels"].tolist() == [[0, 1], [1, IGNORE]]
    assert batch["chars"][1, 1].tolist() == [0] * 9 and batch["input_ids"][1, 1] == 0


# ---------------------------------------------------------------- the views

def view_states(tagger: CvtTagger, batch) -> dict[str, torch.Tensor]:
    """What each module reads at each word (the prediction modules are per-word functions of it)."""
    with torch.no_grad():
        encoded = tagger.encode(batch["input_ids"], batch["chars"], batch["attention_mask"])
        return {"primary": encoded.full, **{v: tagger.view_states(encoded, v) for v in tagger.views}}


def test_each_view_sees_only_its_context():
    tagger = tiny_tagger()
    sentence = ["The", "cat", "sat", "on", "the", "mat", "."]
    changed = sentence.copy()
    changed[3] = "dogs"  # another word and other characters at position k = 3
    a, b = view_states(tagger, batch_of(tagger, [sentence])), view_states(tagger, batch_of(tagger, [changed]))

    def same(view: str, t: int) -> bool:
        return torch.allclose(a[view][0, t], b[view][0, t], rtol=0, atol=1e-7)

    k, n = 3, len(sentence)
    for t in range(n):
        assert same("forward", t) == (t < k), t  # words 0..t
        assert same("future", t) == (t <= k), t  # words 0..t-1
        assert same("backward", t) == (t > k), t  # words t..n-1
        assert same("past", t) == (t >= k), t  # words t+1..n-1
        assert not same("primary", t), t  # the whole sentence
    # at the edges the shifted views read the LSTMs' initial state: zeros, whatever the sentence
    assert not a["future"][0, 0].any() and not a["past"][0, n - 1].any()
    assert a["future"][0, 1:].all() and a["past"][0, :n - 1].all()


def test_padding_does_not_leak():
    tagger = tiny_tagger()
    short = ["A", "dog", "ran", "."]
    alone = all_logits(tagger, batch_of(tagger, [short]))
    # beside a longer sentence (word padding) with a longer word (character padding)
    padded_batch = batch_of(tagger, [["Mary", "saw", "extraordinarily", "many", "dogs", "on", "the", "mat"], short])
    assert padded_batch["chars"].shape[-1] > batch_of(tagger, [short])["chars"].shape[-1]
    padded = all_logits(tagger, padded_batch)
    for view in alone:
        assert torch.allclose(alone[view][0], padded[view][1, :len(short)], atol=1e-6), view


# ---------------------------------------------------------------- the unlabelled loss

def test_cross_view_loss_by_hand():
    probs = torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]]])
    mask = torch.tensor([[1, 1, 0]])  # the third word is padding
    views = {"forward": torch.tensor([[[1.0, 0.0, -1.0], [0.5, 0.5, 0.0], [9.0, -9.0, 0.0]]]),
             "past": torch.tensor([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])}

    def by_hand(logits: list[list[float]], targets: list[list[float]]) -> float:
        total = 0.0
        for row, p in zip(logits, targets):
            log_z = math.log(sum(math.exp(x) for x in row))
            total += -sum(pc * (x - log_z) for pc, x in zip(p, row))
        return total / len(logits)

    expected = {v: by_hand(x[0, :2].tolist(), probs[0, :2].tolist()) for v, x in views.items()}
    # "past": uniform logits cost log 3; logits (2, 0, 0) against (0.1, 0.1, 0.8) cost log(e^2 + 2) - 0.2
    assert expected["past"] == pytest.approx((math.log(3) + math.log(math.e ** 2 + 2) - 0.2) / 2)
    total, per_view = cross_view_loss(views, probs, mask)
    for v in views:
        assert float(per_view[v]) == pytest.approx(expected[v], rel=1e-6)
        assert float(soft_cross_entropy(views[v], probs, mask)) == pytest.approx(expected[v], rel=1e-6)
    assert float(total) == pytest.approx(sum(expected.values()), rel=1e-6)


def _objective(tagger: CvtTagger, weight: float = 1.0, ema: float = 0.0) -> CvtObjective:
    unlabelled = UnlabelledBatches([["the", "dogs", "ran", "home"], ["Mary", "sat", "."]], tagger.vocab, 2, 0,
                                   tagger.min_chars)
    return CvtObjective(tagger, unlabelled, weight=weight, dropout_labelled=0.0, dropout_unlabelled=0.0,
                        label_smoothing=0.0, ema=ema)


def test_objective_adds_the_cross_view_loss_to_primary_targets():
    tagger = tiny_tagger()
    objective = _objective(tagger, weight=0.5)
    labelled = CvtCollator(tagger.min_chars)([tagger.vocab.encode(["A", "dog", "ran", "."],
                                                                  ["DET", "NOUN", "VERB", "."])])
    loss, logs = objective(labelled)
    assert objective.draws == 1
    unlabelled = objective.unlabelled.batch(0)
    inputs = (unlabelled["input_ids"], unlabelled["chars"], unlabelled["attention_mask"])
    with torch.no_grad():
        targets = torch.softmax(tagger(*inputs), -1)
        views = tagger.view_logits(tagger.encode(*inputs))
        expected_unlabelled = cross_view_loss(views, targets, unlabelled["attention_mask"])[0]
        logits = tagger(labelled["input_ids"], labelled["chars"], labelled["attention_mask"])
        expected_supervised = torch.nn.functional.cross_entropy(logits[0], labelled["labels"][0])
    assert float(logs["unlabelled"]) == pytest.approx(float(expected_unlabelled), rel=1e-6)
    assert float(logs["supervised"]) == pytest.approx(float(expected_supervised), rel=1e-6)
    assert float(loss.detach()) == pytest.approx(float(expected_supervised + 0.5 * expected_unlabelled), rel=1e-6)


def test_unlabelled_loss_never_trains_the_primary_module():
    # the primary module's predictions are targets: computed with no gradient, so its own weights
    # get the same gradient with or without the unlabelled loss, while the encoder's differ
    labelled = None
    grads = []
    for weight in (1.0, 0.0):
        tagger = tiny_tagger()
        labelled = labelled or CvtCollator(tagger.min_chars)([tagger.vocab.encode(["A", "dog"], ["DET", "NOUN"])])
        loss, _ = _objective(tagger, weight)(labelled)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in tagger.named_parameters() if p.grad is not None})
    with_unlabelled, without = grads
    for name in without:
        if name.startswith("primary."):
            assert torch.allclose(with_unlabelled[name], without[name], atol=1e-7), name
    assert not torch.allclose(with_unlabelled["forward1.weight_ih_l0"], without["forward1.weight_ih_l0"])
    assert "auxiliary.view_past.out.weight" in with_unlabelled and "auxiliary.view_past.out.weight" not in without


def test_unlabelled_batches_are_a_function_of_seed_and_draw():
    sentences = [["w"] * n for n in range(1, 11)]
    vocab = CvtVocab.build([["w"]], [], TAGS, lowercase=True, min_count=1, max_vocab=5, max_word_length=5)
    first, again = (UnlabelledBatches(sentences, vocab, 3, seed=7, min_chars=2) for _ in range(2))
    draws = [first.indices(k) for k in range(8)]
    assert draws == [again.indices(k) for k in range(8)]
    assert sorted(i for d in draws[:4] for i in d) == list(range(10))  # one pass: every sentence once
    assert draws[4:8] != draws[:4]  # the next pass is shuffled anew
    other = UnlabelledBatches(sentences, vocab, 3, seed=8, min_chars=2)
    assert [other.indices(k) for k in range(4)] != draws[:4]


def test_ema_follows_the_stepped_decay_and_is_idempotent():
    tagger = tiny_tagger()
    objective = _objective(tagger, ema=0.998)
    start = {n: p.detach().clone() for n, p in objective.ema.named_parameters()}
    with torch.no_grad():
        for p in tagger.parameters():
            p.add_(1.0)
    objective.sync_ema()
    assert objective.ema_updates == 0  # no optimizer step yet: nothing to fold in
    objective.draws = 1
    objective.sync_ema()
    objective.sync_ema()  # a second sync for the same step changes nothing
    decay = min(0.998, 1 / 10)  # update 0 of TensorFlow's stepped schedule
    for name, p in objective.ema.named_parameters():
        assert torch.allclose(p, start[name] + (1 - decay) * 1.0, atol=1e-6), name
    state = objective.state_dict()
    restored = _objective(tiny_tagger(seed=1), ema=0.998)
    restored.load_state_dict(state)
    assert (restored.draws, restored.ema_updates) == (1, 1)


# ---------------------------------------------------------------- the verb

def write_tagged(path: Path, n: int = 48, seed: int = 0) -> Path:
    rng = random.Random(seed)
    dets, nouns, verbs = ["the", "a", "The", "A"], ["cat", "dog", "man", "Mary", "John"], ["saw", "liked", "ran"]
    blocks = []
    for _ in range(n):
        words = [(rng.choice(dets), "DET"), (rng.choice(nouns), "NOUN"), (rng.choice(verbs), "VERB"),
                 (rng.choice(dets[:2]), "DET"), (rng.choice(nouns), "NOUN"), (".", ".")]
        blocks.append("\n".join(f"{w}\t{t}" for w, t in words))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_cfg(tmp_path) -> CvtConfig:
    tagged = write_tagged(tmp_path / "tagged.conll")
    text = tmp_path / "unlabelled.txt"
    text.write_text("The dog saw a cat. A man liked the dog. Mary ran.\n\nJohn saw the man.\n", encoding="utf-8")
    return CvtConfig(data=CvtDataConfig(path=str(tagged), labelled_limit=16),
                     # joint: every step holds both losses (test_cvt_reference.py runs the default, alternate)
                     unlabelled=CvtUnlabelledConfig(paths=[str(text)], schedule="joint"),
                     model=CvtModelConfig(**(TINY | {"dropout_labelled": 0.3, "dropout_unlabelled": 0.1})),
                     train=TrainConfig(max_steps=6, batch_size=4, lr=1e-2, device="cpu", log_every=1),
                     ema=0.9, output=str(tmp_path / "out"))


def test_cvt_end_to_end_writes_a_complete_folder(tiny_cfg):
    out = cvt(tiny_cfg)
    names = {p.name for p in out.iterdir()}
    assert names == {"model.safetensors", "cvt_config.json", "words.json", "chars.json", "tags.json",
                     "model.onnx", "bertcompress_result.json", "bertcompress_config.yaml", "README.md"}
    result = json.loads((out / "bertcompress_result.json").read_text())
    # 48 sentences: 38 train (16 labelled, 22 more unlabelled), 5 dev, 5 test; 4 sentences from the text file
    assert result["data"] == {"labelled": 16, "unlabelled": 26, "dev": 5, "test": 5, "tags": 4,
                              "words": result["data"]["words"], "chars": result["data"]["chars"],
                              "pretrained_words": None}
    assert result["steps"] == 6 and result["dev"]["words"] == 30 and result["test"]["words"] == 30
    assert result["trivial_predictor"].startswith("majority tag") and 0 < result["trivial_score"] < 1
    assert 0 < result["parameters"]["primary"] < result["parameters"]["total"]
    logged = [h for h in result["history"] if "loss" in h]
    assert len(logged) == 6 and all({"supervised", "unlabelled", "view_future"} <= set(h) for h in logged)
    assert json.loads((out / "tags.json").read_text()) == [".", "DET", "NOUN", "VERB"]
    assert "kind: CvtConfig" in (out / "bertcompress_config.yaml").read_text()
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.to_dict()["pipeline_tag"] == "token-classification" and "load_cvt(" in card.text
    assert card.data.eval_results[0].metric_value == pytest.approx(result["dev"]["accuracy"], abs=5e-5)
    # the saved (EMA) tagger scores what the result says
    tagger = load_cvt(out)
    data = labelled_data(tiny_cfg.data)
    predicted = predict_tags(tagger, data.dev)
    correct = sum(p == g for s, row in zip(data.dev, predicted) for p, g in zip(s.tags, row))
    assert correct / 30 == pytest.approx(result["dev"]["accuracy"])
    assert not (out.parent / ".out.checkpoints").exists()


def test_cvt_without_unlabelled_loss_is_supervised_only(tiny_cfg):
    cfg = replace(tiny_cfg, unlabelled=replace(tiny_cfg.unlabelled, weight=0.0, paths=["/no/such/file"]), onnx=False)
    result = json.loads((cvt(cfg) / "bertcompress_result.json").read_text())
    assert result["data"]["unlabelled"] == 0  # the sources are not even read
    assert all("unlabelled" not in h for h in result["history"])


def test_reload_gives_the_same_predictions(tmp_path):
    tagger = tiny_tagger()
    folder = save_tagger(tagger, tmp_path / "tagger")
    loaded = load_cvt(folder)
    batch = batch_of(tagger, SENTENCES + [["Unseen", "words", "here"]])
    for view, logits in all_logits(tagger, batch).items():
        assert torch.equal(logits, all_logits(loaded, batch)[view]), view
    assert predict_tags(loaded, ["A dog ran."]) == predict_tags(tagger, [["A", "dog", "ran", "."]])


def _encode_without_bertcompress(folder: Path, sentences: list[list[str]]):
    """The folder's documented encoding (cvt_config.json "encoding") with numpy alone."""
    import re

    import numpy as np

    arch = json.loads((folder / "cvt_config.json").read_text())
    words = {w: i for i, w in enumerate(json.loads((folder / "words.json").read_text()))}
    chars = {c: i for i, c in enumerate(json.loads((folder / "chars.json").read_text()))}

    def key(w: str) -> str:
        w = re.sub(r"\d", "0", w)
        return w.lower() if arch["lowercase"] else w

    n, width = max(map(len, sentences)), max(max(arch["model"]["char_widths"]),
                                             max(len(w[:arch["max_word_length"]]) + 2 for s in sentences for w in s))
    ids, char_ids, mask = (np.zeros((len(sentences), n), np.int64), np.zeros((len(sentences), n, width), np.int64),
                           np.zeros((len(sentences), n), np.int64))
    for r, s in enumerate(sentences):
        for t, w in enumerate(s):
            ids[r, t], mask[r, t] = words.get(key(w), 1), 1
            row = [2] + [chars.get(c, 1) for c in w[:arch["max_word_length"]]] + [3]
            char_ids[r, t, :len(row)] = row
    return {"input_ids": ids, "chars": char_ids, "attention_mask": mask}


def test_onnx_matches_pytorch_with_no_bertcompress_code(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    tagger = tiny_tagger()
    folder = save_tagger(tagger, tmp_path / "tagger")
    export_cvt_onnx(tagger, folder / "model.onnx")
    sentences = [["Mary", "saw", "42", "extraordinary", "dogs", "."], ["A", "cat", "."], ["Zebras"]]
    feed = _encode_without_bertcompress(folder, sentences)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], feed)[0]
    batch = batch_of(tagger, sentences)
    assert all(torch.equal(torch.from_numpy(feed[k]), batch[k]) for k in feed)  # the documented encoding is ours
    with torch.no_grad():
        expected = tagger(batch["input_ids"], batch["chars"], batch["attention_mask"]).numpy()
    assert got.shape == (3, 6, len(TAGS))
    for r, s in enumerate(sentences):
        assert abs(got[r, :len(s)] - expected[r, :len(s)]).max() < 1e-5


def test_compare_runtimes_reports_both(tmp_path):
    pytest.importorskip("onnxruntime")
    from bertcompress.data.tagging import TaggedSentence

    tagger = tiny_tagger()
    export_cvt_onnx(tagger, tmp_path / "model.onnx")
    gold = [TaggedSentence(["A", "dog", "ran", "."], ["DET", "NOUN", "VERB", "."]),
            TaggedSentence(["Mary", "sat"], ["NOUN", "VERB"])]
    report = compare_runtimes(tagger, tmp_path / "model.onnx", gold, batch_size=1, repeats=1)
    assert report["tokens"] == 6 and report["agreement"] == 1.0
    assert report["pytorch"]["accuracy"] == report["onnxruntime"]["accuracy"]
    expected = sum(p == g for s, row in zip(gold, predict_tags(tagger, gold)) for p, g in zip(s.tags, row)) / 6
    assert report["pytorch"]["accuracy"] == pytest.approx(expected)
    assert report["pytorch"]["ms_per_1000_tokens"] > 0 and report["onnxruntime"]["ms_per_1000_tokens"] > 0


def test_resume_matches_an_uninterrupted_run(tiny_cfg, monkeypatch):
    cfg = replace(tiny_cfg, train=replace(tiny_cfg.train, save_every=2), onnx=False)
    whole = cvt(replace(cfg, output=str(Path(cfg.output).parent / "whole")))

    forward, crashed = CvtObjective.forward, []

    def crash_once_at_draw_5(self, batch):
        if self.draws == 5 and not crashed:
            crashed.append(True)
            raise KeyboardInterrupt
        return forward(self, batch)

    monkeypatch.setattr(CvtObjective, "forward", crash_once_at_draw_5)
    with pytest.raises(KeyboardInterrupt):
        cvt(cfg)
    assert not Path(cfg.output).exists()
    resumed = cvt(cfg, resume=True)
    assert crashed == [True]
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    result = json.loads((resumed / "bertcompress_result.json").read_text())
    assert result["steps"] == 2  # steps 5 and 6, after the checkpoint at step 4
    assert result["dev"] == json.loads((whole / "bertcompress_result.json").read_text())["dev"]


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("change, expected", [
    ({"data": {"path": None}}, "set data.path"),
    ({"data": {"path": "/no/such.conll"}}, "not found"),
    ({"unlabelled": {"paths": ["/no/such.txt"]}}, "unlabelled path not found"),
    ({"unlabelled": {"rest_of_train": False, "paths": []}}, "no unlabelled sentences"),
    ({"data": {"categories": ["news"]}}, "not a Brown zip"),
])
def test_bad_inputs_are_one_line_errors(tiny_cfg, change, expected):
    cfg = from_dict(CvtConfig, change, base=tiny_cfg)
    with pytest.raises(UserError) as excinfo:
        cvt(cfg)
    assert expected in one_line(excinfo)


def test_bad_files_are_one_line_errors(tmp_path, tiny_cfg):
    empty = tmp_path / "empty.conll"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(UserError) as excinfo:
        labelled_data(CvtDataConfig(path=str(empty)))
    assert "no tagged sentences" in one_line(excinfo)
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n\n", encoding="utf-8")
    with pytest.raises(UserError) as excinfo:
        read_unlabelled(blank, "raw")
    assert "holds no sentences" in one_line(excinfo)
    with pytest.raises(UserError) as excinfo:
        read_unlabelled(tiny_cfg.data.path, "raw", labelled=tiny_cfg.data)
    assert "dev and test sentences" in one_line(excinfo)
    with pytest.raises(UserError) as excinfo:
        load_cvt(tmp_path)
    assert "not a CVT tagger folder" in one_line(excinfo)


@pytest.mark.parametrize("data, expected", [
    ({"ema": 1.0}, "ema must be in [0, 1)"),
    ({"data": {"split": [0.5, 0.5]}}, "three fractions"),
    ({"data": {"labelled_limit": 0}}, "labelled_limit"),
    ({"unlabelled": {"views": ["forward", "sideways"]}}, "unknown view 'sideways'"),
    ({"unlabelled": {"weight": -1}}, "unlabelled.weight"),
    ({"model": {"lstm1": 0}}, "model.lstm1"),
    ({"model": {"dropout_labelled": 1.0}}, "dropout_labelled"),
    ({"model": {"char_widths": []}}, "char_widths"),
    ({"train": {"cuda_graphs": True}}, "cuda_graphs"),
    ({"runtimes": True, "onnx": False}, "needs onnx"),
])
def test_bad_config_values_are_one_line_errors(data, expected):
    with pytest.raises(UserError) as excinfo:
        from_dict(CvtConfig, data)
    assert expected in one_line(excinfo)


# ---------------------------------------------------------------- the real corpora

needs_nltk = pytest.mark.skipif(not BROWN_ZIP.is_file(), reason=f"{BROWN_ZIP} is absent")


@needs_nltk
def test_brown_slice_end_to_end(tmp_path):
    data = CvtDataConfig(path=str(BROWN_ZIP), categories=["science_fiction"], labelled_limit=40)
    cfg = CvtConfig(data=data, unlabelled=CvtUnlabelledConfig(limit=60, max_words=30),
                    model=CvtModelConfig(**TINY), train=TrainConfig(max_steps=3, batch_size=8, device="cpu"),
                    onnx=False, output=str(tmp_path / "brown"))
    result = json.loads((cvt(cfg) / "bertcompress_result.json").read_text())
    # 948 sentences: 758 train (40 labelled, 60 of the other 718 unlabelled), 95 dev, 95 test
    assert result["data"]["labelled"] == 40 and result["data"]["unlabelled"] == 60
    assert (result["data"]["dev"], result["data"]["test"]) == (95, 95) and result["data"]["tags"] == 12
    assert result["dev"]["words"] > 1000
    # the unlabelled text splitter gives back Brown's own sentences
    sentences = [s.tokens for s in labelled_data(data).dev]
    assert sum(split_words(" ".join(s)) == s for s in sentences) / len(sentences) > 0.95


@needs_nltk
def test_brown_genres_as_unlabelled_text():
    labelled = CvtDataConfig(path=str(BROWN_ZIP), categories=["science_fiction"])
    humor = read_unlabelled(BROWN_ZIP, "raw", brown_categories=["humor"], labelled=labelled)
    assert len(humor) == 1053 and humor[0][:3] == ["It", "was", "among"]
    with pytest.raises(UserError) as excinfo:
        read_unlabelled(BROWN_ZIP, "raw", brown_categories=["humor", "science_fiction"], labelled=labelled)
    assert "share science_fiction" in one_line(excinfo)
    with pytest.raises(UserError) as excinfo:
        read_unlabelled(BROWN_ZIP, "raw", labelled=labelled)
    assert "is the labelled data file" in one_line(excinfo)


@needs_nltk
def test_nltk_text_zip_as_unlabelled_source():
    sentences = read_unlabelled(NLTK / "inaugural.zip", "raw")
    assert len(sentences) > 4000
    assert sentences[0][:6] == ["Fellow-Citizens", "of", "the", "Senate", "and", "of"]
    assert all(s for s in sentences)


def test_cvt_command_line(tmp_path, capsys):
    from bertcompress.cli import main

    tagged = write_tagged(tmp_path / "tagged.conll")
    text = tmp_path / "unlabelled.txt"
    text.write_text("The dog saw a cat. A man liked the dog.\n", encoding="utf-8")
    sizes = [f"--set=model.{k}={v}" for k, v in TINY.items() if not isinstance(v, list)]
    out = tmp_path / "cli"
    assert main(["cvt", "--data", str(tagged), "--labelled", "12", "--unlabelled", str(text), *sizes,
                 "--set", "train.max_steps=2", "--set", "train.batch_size=4", "--set", "onnx=false",
                 "-o", str(out)]) == 0
    saved = (out / "bertcompress_config.yaml").read_text()
    assert "labelled_limit: 12" in saved and str(text) in saved
    assert json.loads((out / "bertcompress_result.json").read_text())["data"]["labelled"] == 12
    assert main(["cvt", "--data", str(tmp_path / "missing.conll"), "-o", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err
    assert "missing.conll" in err and "Traceback" not in err
