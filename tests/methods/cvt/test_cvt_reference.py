"""CVT closer to the reference code (issue 29): the fifth auxiliary module (the full view), the
alternating schedule of labelled and unlabelled updates, and pretrained word vectors."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from test_cvt import SENTENCES, TAGS, TINY, one_line, tiny_cfg  # noqa: F401  (tiny_cfg: a fixture)

from bertcompress.core.config import from_dict
from bertcompress.core.errors import UserError
from bertcompress.methods.cvt.config import CvtConfig, CvtModelConfig, CvtUnlabelledConfig
from bertcompress.methods.cvt.model import CvtTagger
from bertcompress.methods.cvt.objective import CvtObjective, UnlabelledBatches, cross_view_loss
from bertcompress.methods.cvt.verb import cvt
from bertcompress.methods.cvt.vocab import CvtCollator, CvtVocab
from bertcompress.methods.cvt.word_vectors import load_word_vectors, read_vectors

FIVE = ["forward", "backward", "future", "past", "full"]


def tagger_with(views=FIVE, seed: int = 0, **model) -> CvtTagger:
    vocab = CvtVocab.build(SENTENCES, [["the", "dogs", "ran", "home"]], TAGS, lowercase=True, min_count=1,
                           max_vocab=100, max_word_length=8)
    torch.manual_seed(seed)
    return CvtTagger(CvtModelConfig(**(TINY | model)), vocab, views)


def test_the_full_view_reads_the_primary_input_through_a_linear_hidden_layer():
    assert CvtUnlabelledConfig().views == FIVE  # the reference's five modules by default
    tagger = tagger_with()
    batch = CvtCollator(tagger.min_chars)([tagger.vocab.encode(s) for s in SENTENCES])
    with torch.no_grad():
        encoded = tagger.encode(batch["input_ids"], batch["chars"], batch["attention_mask"])
        module = tagger.auxiliary["view_full"]
        by_hand = encoded.full @ module.hidden.weight.T + module.hidden.bias  # no ReLU
        by_hand = by_hand @ module.out.weight.T + module.out.bias
        assert torch.allclose(tagger.view_logits(encoded)["full"], by_hand, atol=1e-6)
        assert (module.hidden(encoded.full) < 0).any()  # so a ReLU would have changed something
        # the primary module reads the same states, through its ReLU
        primary = tagger.primary
        relu = F.relu(encoded.full @ primary.hidden.weight.T + primary.hidden.bias)
        assert torch.allclose(tagger(batch["input_ids"], batch["chars"], batch["attention_mask"]),
                              relu @ primary.out.weight.T + primary.out.bias, atol=1e-6)
    assert module.hidden.in_features == primary.hidden.in_features == 2 * TINY["lstm1"] + 2 * TINY["lstm2"]


def _objective(tagger: CvtTagger, schedule: str, grad_accum: int = 1, weight: float = 0.5) -> CvtObjective:
    unlabelled = UnlabelledBatches([["the", "dogs", "ran", "home"], ["Mary", "sat", "."], ["A", "cat", "."]],
                                   tagger.vocab, 1, 0, tagger.min_chars)
    return CvtObjective(tagger, unlabelled, weight=weight, dropout_labelled=0.0, dropout_unlabelled=0.0,
                        label_smoothing=0.0, ema=0.0, grad_accum=grad_accum, schedule=schedule)


def _expected(tagger: CvtTagger, labelled, unlabelled) -> tuple[float, float]:
    """The supervised cross-entropy on `labelled` and the cross-view loss on `unlabelled`, by hand."""
    with torch.no_grad():
        logits = tagger(labelled["input_ids"], labelled["chars"], labelled["attention_mask"])
        supervised = F.cross_entropy(logits[0], labelled["labels"][0])
        inputs = (unlabelled["input_ids"], unlabelled["chars"], unlabelled["attention_mask"])
        targets = torch.softmax(tagger(*inputs), -1)
        views = tagger.view_logits(tagger.encode(*inputs))
        cross_view = cross_view_loss(views, targets, unlabelled["attention_mask"])[0]
    return float(supervised), float(cross_view)


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_alternate_schedule_gives_each_minibatch_its_own_update(grad_accum):
    tagger = tagger_with()
    objective = _objective(tagger, "alternate", grad_accum)
    collate = CvtCollator(tagger.min_chars)
    labelled = [collate([tagger.vocab.encode(s, t)]) for s, t in
                ((["A", "dog", "ran", "."], ["DET", "NOUN", "VERB", "."]), (["The", "cat", "."], ["DET", "NOUN", "."]))]
    # 4 optimizer steps: labelled, unlabelled, labelled, unlabelled (each of grad_accum micro-batches)
    kinds, unlabelled_draws = [], 0
    for draw in range(4 * grad_accum):
        batch = labelled[draw % 2]
        loss, logs = objective(batch)
        supervised, _ = _expected(tagger, batch, objective.unlabelled.batch(0))
        if (draw // grad_accum) % 2 == 0:
            kinds.append("labelled")
            assert float(loss.detach()) == pytest.approx(supervised, rel=1e-6)  # no cross-view term at all
        else:
            kinds.append("unlabelled")
            # the loop's labelled batch is not read: the unlabelled draws run 0, 1, 2, ... with none skipped
            _, cross_view = _expected(tagger, batch, objective.unlabelled.batch(unlabelled_draws))
            unlabelled_draws += 1
            assert float(loss.detach()) == pytest.approx(0.5 * cross_view, rel=1e-6)
            assert float(logs["unlabelled"]) == pytest.approx(cross_view, rel=1e-6)
            assert "supervised" in logs  # the latest labelled term, kept for the logs
    assert kinds == [k for k in ("labelled", "unlabelled") * 2 for _ in range(grad_accum)]
    assert unlabelled_draws == 2 * grad_accum and objective.draws == 4 * grad_accum


def test_joint_schedule_still_sums_both_in_one_step():
    tagger = tagger_with()
    objective = _objective(tagger, "joint")
    batch = CvtCollator(tagger.min_chars)([tagger.vocab.encode(["A", "dog", "."], ["DET", "NOUN", "."])])
    loss, logs = objective(batch)
    supervised, cross_view = _expected(tagger, batch, objective.unlabelled.batch(0))
    assert float(loss.detach()) == pytest.approx(supervised + 0.5 * cross_view, rel=1e-6)
    assert float(logs["view_full"]) > 0 and set(logs) >= {"supervised", "unlabelled", "view_past"}


def test_alternate_run_end_to_end(tiny_cfg):  # noqa: F811
    cfg = replace(tiny_cfg, unlabelled=replace(tiny_cfg.unlabelled, schedule="alternate"), onnx=False)
    result = json.loads((cvt(cfg) / "bertcompress_result.json").read_text())
    assert result["steps"] == 12  # train.max_steps 6 counts labelled minibatches: 6 of each kind
    logged = [h for h in result["history"] if "loss" in h]
    # odd steps labelled, even ones unlabelled (log_every 1): each shows its own loss as "loss"
    for h in logged:
        own = h["supervised"] if h["step"] % 2 == 1 else h["unlabelled"]  # unlabelled.weight 1
        assert h["loss"] == pytest.approx(own, rel=1e-5)
    assert all({"supervised", "unlabelled", "view_full"} <= set(h) for h in logged[1:])
    with pytest.raises(UserError) as excinfo:
        from_dict(CvtConfig, {"unlabelled": {"schedule": "interleaved"}})
    assert "schedule must be one of joint, alternate" in one_line(excinfo)


# ---------------------------------------------------------------- pretrained word vectors

def write_vectors(path, rows: dict[str, list[float]], header: bool = False):
    lines = [f"{len(rows)} {len(next(iter(rows.values())))}"] if header else []
    lines += [" ".join([word, *(f"{x:g}" for x in vector)]) for word, vector in rows.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("header", [False, True])  # GloVe's text format, and word2vec's with its count line
def test_word_vectors_start_the_embeddings_of_the_words_they_hold(tmp_path, header):
    tagger = tagger_with(word_dim=3)
    before = tagger.word_embed.weight.detach().clone()
    path = write_vectors(tmp_path / "vectors.txt", {
        "the": [1, 2, 3], "The": [9, 9, 9],  # the first line of a key wins ("The" is looked up as "the")
        "dogs": [-1, 0.5, 0], "1999": [4, 4, 4],  # digits are looked up as 0: "2" is "0"
        "0": [7, 8, 9], "zebra": [5, 5, 5]}, header)  # zebra: not in the vocabulary, no row
    found = load_word_vectors(tagger.word_embed, tagger.vocab, path)
    vocab = tagger.vocab
    assert found == 3
    rows = {w: tagger.word_embed.weight[vocab.word_ids([w])[0]].tolist() for w in ("the", "dogs", "2")}
    assert rows == {"the": [1, 2, 3], "dogs": [-1, 0.5, 0], "2": [7, 8, 9]}
    untouched = [i for i, w in enumerate(vocab.words) if w not in ("the", "dogs", "0")]
    assert torch.equal(tagger.word_embed.weight[untouched], before[untouched])  # <pad>, <unk> and the rest


def test_word_vectors_errors_are_one_line(tmp_path):
    tagger = tagger_with(word_dim=3)
    wide = write_vectors(tmp_path / "wide.txt", {"the": [1, 2, 3, 4]})
    with pytest.raises(UserError) as excinfo:
        load_word_vectors(tagger.word_embed, tagger.vocab, wide)
    assert "4 numbers, but model.word_dim is 3" in one_line(excinfo)
    bad = tmp_path / "bad.txt"
    bad.write_text("the 1 2 x\n", encoding="utf-8")
    with pytest.raises(UserError) as excinfo:
        read_vectors(bad, {"the"}, 3, True)
    assert "line 1: not a word followed by 3 numbers" in one_line(excinfo)
    with pytest.raises(UserError) as excinfo:
        read_vectors(tmp_path / "missing.txt", {"the"}, 3, True)
    assert "word_vectors not found" in one_line(excinfo)


def test_a_run_with_word_vectors_records_how_many_words_they_started(tmp_path, tiny_cfg):  # noqa: F811
    path = write_vectors(tmp_path / "glove.txt", {"the": [0.1] * 6, "dog": [0.2] * 6, "cat": [0.3] * 6})
    cfg = replace(tiny_cfg, model=replace(tiny_cfg.model, word_vectors=str(path)), onnx=False)
    out = cvt(cfg)
    assert json.loads((out / "bertcompress_result.json").read_text())["data"]["pretrained_words"] == 3
    assert json.loads((out / "cvt_config.json").read_text())["model"]["word_vectors"] == str(path)
