"""Token-classification (tagging) tasks through the whole toolkit: data, finetune, distill,
evaluate (metrics and per-token loyalty), quantize and `run --task brown-pos --quick`."""

from __future__ import annotations

import json
import random
import zipfile

import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModelForTokenClassification, AutoTokenizer

from bertcompress.cli import main
from bertcompress.core.errors import UserError
from bertcompress.data.config import DataConfig, TaggingConfig
from bertcompress.data.kinds import kind_of, load_examples, split_description
from bertcompress.data.splits import load_task_splits
from bertcompress.data.tagging import IGNORE, TaggedSentence
from bertcompress.evaluation.task_scores import task_scores
from bertcompress.methods.distill.config import AugmentConfig, LossConfig
from bertcompress.methods.distill.loss_registry import loss_function
from bertcompress.methods.distill.losses import LossContext, soft_cross_entropy
from bertcompress.models.intermediates import Intermediates
from bertcompress.train.objectives import task_loss
from conftest import SHARED_DATA

BROWN_ZIP = SHARED_DATA / "corpus" / "nltk" / "brown.zip"
TINY = ["--set", "student.num_layers=2", "--set", "student.hidden_size=16", "--set", "student.num_heads=4",
        "--set", "student.ffn_size=32"]
WORDS = {"DET": ["the", "a"], "ADJ": ["good", "bad", "great", "dull", "funny"],
         "NOUN": ["movie", "film", "cat", "dog", "man", "woman", "story"], "VERB": ["sat", "ran", "went", "came"]}
# raw Brown tags of the same words, for a tiny brown.zip
BROWN_RAW = {"DET": "at", "ADJ": "jj", "NOUN": "nn", "VERB": "vbd", ".": "."}


def tagged_sentences(n: int, seed: int) -> list[TaggedSentence]:
    """DET (ADJ) NOUN (NOUN) VERB . sentences of the tiny vocabulary: NOUN is the most frequent tag."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tags = ["DET"] + (["ADJ"] if rng.random() < 0.5 else []) + ["NOUN"] * rng.choice((1, 2)) + ["VERB", "."]
        out.append(TaggedSentence([rng.choice(WORDS[t]) if t != "." else "." for t in tags], tags))
    return out


def write_conll(path, sentences, extra_column=True):
    lines = ["-DOCSTART- -X- O", ""]
    for s in sentences:
        lines += [f"{w} {t} X" if extra_column else f"{w} {t}" for w, t in zip(s.tokens, s.tags)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def tagged_dir(tmp_path):
    """train.conll and dev.conll: token, tag, and a third column (the tag is column 1)."""
    folder = tmp_path / "pos"
    folder.mkdir()
    write_conll(folder / "train.conll", tagged_sentences(40, 0))
    write_conll(folder / "dev.conll", tagged_sentences(10, 1))
    return folder


TAG_COLUMN = ["--set", "data.tagging.tag_column=1"]


def tiny_brown_zip(path, per_file=30):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("brown/", "")
        archive.writestr("brown/cats.txt", "ca01 news\ncn01 adventure\n")
        for name, seed in (("ca01", 0), ("cn01", 1)):
            text = "".join("\n\n\t" + " ".join(f"{w}/{BROWN_RAW[t]}" for w, t in zip(s.tokens, s.tags)) + "\n"
                           for s in tagged_sentences(per_file, seed))
            archive.writestr(f"brown/{name}", text)
    return path


# ---------------------------------------------------------------- data through DataConfig

def test_conll_folder_jsonl_file_and_dataset_as_tagging_tasks(tagged_dir, tmp_path):
    cfg = DataConfig(task="tagging", path=str(tagged_dir), tagging=TaggingConfig(tag_column=1))
    task, dev = load_examples(cfg, "dev", allow_tagging=True)
    assert task.kind == "tagging" and task.labels == (".", "ADJ", "DET", "NOUN", "VERB")
    assert task.metrics == ("accuracy",) and len(dev) == 10 and dev[0].tags[0] == "DET"
    assert kind_of(task).model_kind == "token_classifier"

    # one JSONL file: a seeded 10% is dev, tags from the whole file, BIO tags scored by span F1
    path = tmp_path / "ner.jsonl"
    rows = [{"tokens": ["the", "cat", "sat"], "ner_tags": ["B-X", "I-X", "O"]}] * 18 + \
           [{"tokens": ["a", "dog"], "ner_tags": ["B-Y", "I-Y"]}] * 2
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    jcfg = DataConfig(task="tagging", path=str(path))
    task, train = load_examples(jcfg, "train", allow_tagging=True)
    _, held = load_examples(jcfg, "dev", allow_tagging=True)
    assert (len(train), len(held)) == (18, 2) and task.labels == ("O", "B-X", "B-Y", "I-X", "I-Y")
    assert task.metrics == ("span_f1", "accuracy")
    assert split_description(jcfg, "dev") == "dev (held out: 10% of ner.jsonl, seed 42)"
    assert load_examples(DataConfig(task="tagging", path=str(path), metric="accuracy"), "train",
                         allow_tagging=True)[0].metrics == ("accuracy", "span_f1")

    # a `datasets` folder whose tags are ClassLabels: the feature's names, in its order
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "pos_tags": datasets.Sequence(datasets.ClassLabel(names=["NOUN", "DET", "X"]))})
    data = {"tokens": [["the", "cat"], ["a", "dog"]], "pos_tags": [[1, 0], [1, 0]]}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(data, features=features),
                               "validation": datasets.Dataset.from_dict(data, features=features)})
    dd.save_to_disk(str(tmp_path / "saved"))
    task, ex = load_examples(DataConfig(task="tagging", path=str(tmp_path / "saved")), "dev", allow_tagging=True)
    assert task.labels == ("NOUN", "DET", "X") and ex[1] == TaggedSentence(["a", "dog"], ["DET", "NOUN"])


def test_brown_pos_task_tag_sets_genres_and_seeded_split(tmp_path):
    zip_path = tiny_brown_zip(tmp_path / "brown.zip")
    cfg = DataConfig(task="brown-pos", path=str(zip_path))
    parts = {s: load_examples(cfg, s, allow_tagging=True) for s in ("train", "dev", "test")}
    task = parts["train"][0]
    assert task.labels == (".", "ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN", "NUM", "PRON", "PRT", "VERB", "X")
    assert [len(parts[s][1]) for s in ("train", "dev", "test")] == [48, 6, 6]
    assert parts["train"][1] == load_examples(cfg, "train", allow_tagging=True)[1]  # seeded
    assert split_description(cfg, "dev") == "dev (10% of Brown, all genres, seed 42)"
    brown = DataConfig(task="brown-pos", path=str(zip_path),
                       tagging=TaggingConfig(brown_tagset="brown", brown_categories=["news"], split_seed=3))
    task, train = load_examples(brown, "train", allow_tagging=True)
    assert len(task.labels) == 181 and {t for s in train for t in s.tags} <= {"AT", "JJ", "NN", "VBD", "."}
    assert len(train) == 24  # 80% of the 30 news sentences
    with pytest.raises(UserError, match="splits train, dev and test, not 'extra'"):
        load_examples(cfg, "extra", allow_tagging=True)


@pytest.mark.skipif(not BROWN_ZIP.is_file(), reason=f"{BROWN_ZIP} is absent")
def test_brown_pos_reads_the_shared_corpus_by_default():
    cfg = DataConfig(task="brown-pos", tagging=TaggingConfig(brown_categories=["humor"]))  # data.path: the default
    task, dev = load_examples(cfg, "dev", allow_tagging=True)
    assert len(task.labels) == 12 and len(dev) == 106  # 10% of humor's 1,053 sentences
    assert split_description(cfg, "dev") == "dev (10% of Brown, humor, seed 42)"


def one_line(capsys, argv, *parts):
    assert main(argv) == 2
    out = capsys.readouterr().err
    err = out.strip().splitlines()[-1]  # progress bars may come first; no traceback
    assert err.startswith("bertcompress: error: ") and "Traceback" not in out, out
    for part in parts:
        assert part in err, err
    return err


def test_bad_tagged_input_is_one_line(capsys, tmp_path, tagged_dir, tiny_bert_dir):
    finetune = ["finetune", "--model", str(tiny_bert_dir), "--task", "tagging", "-o", str(tmp_path / "out")]
    one_line(capsys, finetune + ["--data", str(tagged_dir), "--tag-column", "5"], "no tag column 5")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tokens": ["a", "b"], "tags": ["X"]}\n{"tokens": ["a"], "tags": ["Y"]}\n')
    one_line(capsys, finetune + ["--data", str(bad)], "bad.jsonl, line 1: 2 tokens but 1 tags")
    unseen = tmp_path / "unseen"
    unseen.mkdir()
    write_conll(unseen / "train.conll", tagged_sentences(4, 0))
    write_conll(unseen / "dev.conll", [TaggedSentence(["the", "cat"], ["DET", "PROPN"])])
    one_line(capsys, finetune + ["--data", str(unseen)] + TAG_COLUMN,
             "dev.conll, sentence 1: tag 'PROPN' is not among the", "tags of the training data")
    # a teacher whose head does not fit the tag set: a sentence classifier, or the wrong tag count
    distill = ["distill", "--stage", "task", "--task", "tagging", "--data", str(tagged_dir), "-o",
               str(tmp_path / "s")] + TAG_COLUMN
    one_line(capsys, distill + ["--teacher", str(tiny_bert_dir)],
             "is a BertForSequenceClassification, not a ...ForTokenClassification model as task tagging needs")
    tagger = tmp_path / "tagger3"
    AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=3,
                                                    ignore_mismatched_sizes=True).save_pretrained(tagger)
    one_line(capsys, distill + ["--teacher", str(tagger)], "predicts 3 labels but task tagging has 5")
    # commands without tagging support say so
    one_line(capsys, ["theseus", "--teacher", str(tiny_bert_dir), "--task", "tagging", "--data", str(tagged_dir),
                      "-o", str(tmp_path / "t")], "token-classification (tagging) task")
    one_line(capsys, ["evaluate", str(tagger), "--task", "tagging", "--data", str(tagged_dir), "--attack", "5"]
             + TAG_COLUMN, "AdvGLUE score sentence tasks")


# ---------------------------------------------------------------- losses

def test_token_prediction_loss_scores_labelled_positions_only():
    torch.manual_seed(0)
    s_logits, t_logits = torch.randn(2, 5, 3, requires_grad=True), torch.randn(2, 5, 3)
    labels = torch.tensor([[IGNORE, 1, IGNORE, 2, IGNORE], [IGNORE, 0, IGNORE, IGNORE, IGNORE]])  # 3 words
    ctx = LossContext(mapping=[], projections=None, attention_mask=torch.ones(2, 5), temperature=2.0, labels=labels)
    token_prediction = loss_function("token_prediction")
    loss = token_prediction(Intermediates((), logits=s_logits), Intermediates((), logits=t_logits), ctx)
    keep = labels != IGNORE
    assert torch.allclose(loss, soft_cross_entropy(s_logits[keep], t_logits[keep], 2.0))
    loss.backward()
    assert (s_logits.grad[~keep] == 0).all() and (s_logits.grad[keep] != 0).any()
    # the supervised loss: cross-entropy over the same positions
    expected = torch.nn.functional.cross_entropy(s_logits[keep], labels[keep])
    assert torch.allclose(task_loss(s_logits, labels, regression=False), expected)


# ---------------------------------------------------------------- finetune -> distill -> evaluate -> quantize

@pytest.fixture
def tagger_teacher(tmp_path, tiny_bert_dir, tagged_dir):
    out = tmp_path / "teacher"
    assert main(["finetune", "--model", str(tiny_bert_dir), "--task", "tagging", "--data", str(tagged_dir),
                 "-o", str(out), "--set", "train.max_steps=30", "--set", "train.batch_size=8",
                 "--set", "train.lr=1e-3"] + TAG_COLUMN) == 0
    return out


def test_finetune_distill_evaluate_quantize_a_tagger(tmp_path, tagger_teacher, tagged_dir, capsys):
    teacher = tagger_teacher
    result = json.loads((teacher / "bertcompress_result.json").read_text())
    assert result["trivial_predictor"] == "majority tag NOUN" and "learned" in result
    assert set(result["dev"]) >= {"accuracy", "words", "score"} and result["dev"]["words"] > 40
    model = AutoModelForTokenClassification.from_pretrained(teacher)  # plain transformers
    assert model.config.id2label == {0: ".", 1: "ADJ", 2: "DET", 3: "NOUN", 4: "VERB"}

    student = tmp_path / "student"
    assert main(["distill", "--stage", "task", "--teacher", str(teacher), "--task", "tagging", "--data",
                 str(tagged_dir), "-o", str(student), "--set", "train.max_steps=3", "--set",
                 "prediction_train.max_steps=3", "--set", "train.batch_size=8", "--set",
                 "prediction_train.batch_size=8"] + TINY + TAG_COLUMN) == 0
    result = json.loads((student / "bertcompress_result.json").read_text())
    assert set(result["intermediate"]["history"][-1]) >= {"embedding", "hidden", "attention"}
    assert any("token_prediction" in h for h in result["prediction"]["history"])
    plain = AutoModelForTokenClassification.from_pretrained(student).eval()
    assert plain.config.id2label[3] == "NOUN" and plain.config.num_hidden_layers == 2

    records_path = tmp_path / "records.json"
    assert main(["evaluate", str(teacher), str(student), "--task", "tagging", "--data", str(tagged_dir),
                 "--loyalty-to", str(teacher), "--no-latency", "--json", str(records_path)] + TAG_COLUMN) == 0
    t_rec, s_rec = json.loads(records_path.read_text())
    assert t_rec["label_loyalty"] == 1.0 and t_rec["probability_loyalty"] == pytest.approx(1.0)
    assert t_rec["unit"] == "sentences" and t_rec["examples"] == 10 and t_rec["onnx"]["prediction_agreement"] == 1.0
    assert t_rec["trivial_predictor"] == "majority tag NOUN"
    # per-token label loyalty, by hand: the share of words whose tags agree (plain transformers)
    tok = AutoTokenizer.from_pretrained(teacher)
    _, dev = load_examples(DataConfig(task="tagging", path=str(tagged_dir), tagging=TaggingConfig(tag_column=1)),
                           "dev", allow_tagging=True)
    t_model = AutoModelForTokenClassification.from_pretrained(teacher).eval()
    agree = total = 0
    for s in dev:
        enc = tok(s.tokens, is_split_into_words=True, return_tensors="pt")
        firsts = [i for i, w in enumerate(enc.word_ids()) if w is not None and w != enc.word_ids()[i - 1]]
        with torch.no_grad():
            same = t_model(**enc).logits[0].argmax(-1)[firsts] == plain(**enc).logits[0].argmax(-1)[firsts]
        agree, total = agree + int(same.sum()), total + len(firsts)
    assert total == s_rec["words"] and s_rec["label_loyalty"] == pytest.approx(agree / total)
    assert 0 <= s_rec["probability_loyalty"] <= 1

    packed = tmp_path / "quantized"
    assert main(["quantize", "--student", str(student), "--teacher", str(teacher), "--bits", "w8a8", "--task",
                 "tagging", "--data", str(tagged_dir), "-o", str(packed), "--set", "train.max_steps=2",
                 "--set", "train.batch_size=8"] + TAG_COLUMN) == 0
    result = json.loads((packed / "bertcompress_result.json").read_text())
    assert "words" in result["dev"] and any("token_prediction" in h for h in result["history"])
    from bertcompress.models.loading import load_model

    reloaded = load_model(str(packed))  # the packed format: rebuilt as a tagger
    assert type(reloaded).__name__ == "BertForTokenClassification"
    ptq = tmp_path / "ptq"
    assert main(["quantize", "--student", str(student), "--ptq", "--task", "tagging", "--data", str(tagged_dir),
                 "-o", str(ptq)] + TAG_COLUMN) == 0
    from bertcompress.methods.quantize.verb import load_ptq

    assert type(load_ptq(ptq)).__name__ == "BertForTokenClassification"


def test_task_splits_encode_and_collate_tagged_features(tagged_dir, tiny_tokenizer):
    cfg = DataConfig(task="tagging", path=str(tagged_dir), tagging=TaggingConfig(tag_column=1))
    splits = load_task_splits(cfg, tiny_tokenizer, allow_tagging=True)
    batch = splits.collate(splits.eval_features[:3])
    words = sum(len(s.tokens) for s in splits.eval_examples[:3])
    assert batch["labels"].shape == batch["input_ids"].shape and int((batch["labels"] != IGNORE).sum()) == words
    scores = task_scores(splits.task, np.eye(5)[[3] * sum(f["word_count"] for f in
                                                                        splits.eval_features)],
                                         splits.eval_features)
    nouns = sum(t == "NOUN" for s in splits.eval_examples for t in s.tags)
    assert scores["score"] == scores["accuracy"] == pytest.approx(nouns / scores["words"])


def test_augmenting_tagged_sentences_keeps_their_tags(tiny_bert_dir, tmp_path):
    from bertcompress.methods.distill.augment import augment_examples

    sentences = tagged_sentences(5, 0)
    cfg = AugmentConfig(enabled=True, p=0.8, top_k=4, n_aug=3, seed=0)
    out = augment_examples(sentences, str(tiny_bert_dir), cfg, tmp_path, progress=False)
    assert out[:5] == sentences and len(out) > 5
    for s in out[5:]:
        assert isinstance(s, TaggedSentence) and len(s.tokens) == len(s.tags)
        assert any(s.tags == o.tags and s.tokens != o.tokens for o in sentences)
    assert augment_examples(sentences, str(tiny_bert_dir), cfg, tmp_path, progress=False) == out  # cached


def test_the_prediction_weight_drives_the_token_term():
    from bertcompress.methods.distill.verb import phase_weights

    losses = LossConfig(weights={"hidden": 1.0, "prediction": 0.5})
    assert phase_weights(losses, "prediction", "token_prediction") == {"token_prediction": 0.5}
    assert phase_weights(losses, "intermediate", "token_prediction") == {"hidden": 1.0}


# ---------------------------------------------------------------- the pipeline

def test_run_brown_pos_quick_end_to_end(tmp_path, tiny_bert_dir, capsys):
    zip_path = tiny_brown_zip(tmp_path / "brown.zip")
    out = tmp_path / "run"
    assert main(["run", "--task", "brown-pos", "--data", str(zip_path), "--teacher", str(tiny_bert_dir), "--quick",
                 "--no-latency", "-o", str(out), "--set", "corpus.max_seq_len=16",
                 "--set", "student.num_layers=2"]) == 0  # the teacher's width, started from its layers 2 and 4
    # no corpus given: general distillation read the task's own train sentences (all 48), not the default
    general = yaml.safe_load((out / "general_student" / "bertcompress_config.yaml").read_text())
    assert general["corpus"]["path"] == str(out / "general_corpus.txt")
    lines = [line for line in (out / "general_corpus.txt").read_text().splitlines() if line]
    train = load_examples(DataConfig(task="brown-pos", path=str(zip_path)), "train", allow_tagging=True)[1]
    assert lines == [" ".join(s.tokens) for s in train] and len(lines) == 48
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "brown-pos" and report["split"] == "dev (10% of Brown, all genres, seed 42)"
    teacher, student = report["teacher"], report["student"]
    assert teacher["examples"] == 6 and teacher["unit"] == "sentences" and teacher["label_loyalty"] == 1.0
    assert 0 <= student["label_loyalty"] <= 1 and student["metric"] == "accuracy"
    assert "6 sentences" in (out / "report.md").read_text()
    model = AutoModelForTokenClassification.from_pretrained(out / "student")
    assert len(model.config.id2label) == 12 and model.config.id2label[0] == "."
    augmented = json.loads((out / "student" / "bertcompress_result.json").read_text())["train_examples"]
    assert augmented > 48  # the 48 training sentences and their augmentations
