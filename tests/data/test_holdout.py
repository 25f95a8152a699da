"""A single data file: a seeded part of it is held out as the eval split, never trained on, and
every record says so (issue #12: a file used to serve both splits, so "dev" scored training rows)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from bertcompress.cli import main
from bertcompress.core.errors import UserError
from bertcompress.data.config import DataConfig
from bertcompress.data.examples import Example
from bertcompress.data.kinds import load_examples, split_description
from bertcompress.data.splits import load_task_splits
from conftest import WORDS

HELD_OUT = "dev (held out: 10% of train.tsv, seed 42)"


@pytest.fixture
def single_tsv(tmp_path):
    """50 distinct labelled sentences in one SST-2-style file."""
    pairs = itertools.islice(itertools.product(WORDS[:10], WORDS[10:20]), 50)
    rows = [f"the {a} {b}\t{i % 2}" for i, (a, b) in enumerate(pairs)]
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _texts(examples: list[Example]) -> set[str]:
    return {e.text_a for e in examples}


def test_single_file_holds_out_a_seeded_disjoint_eval_split(single_tsv):
    cfg = DataConfig(task="sst2", path=str(single_tsv))
    _, dev_first = load_examples(cfg, "dev")  # asked first: the same rows as when train is read first
    _, train = load_examples(cfg, "train")
    _, dev = load_examples(cfg, "dev")
    assert (len(train), len(dev)) == (45, 5) and dev == dev_first
    assert not _texts(train) & _texts(dev) and len(_texts(train) | _texts(dev)) == 50
    other = DataConfig(task="sst2", path=str(single_tsv), holdout_seed=1)
    assert _texts(load_examples(other, "dev")[1]) != _texts(dev)
    assert split_description(cfg, "dev") == HELD_OUT
    assert split_description(cfg, "train") == "train (train.tsv less the 10% held out, seed 42)"
    assert split_description(DataConfig(task="sst2", path=str(single_tsv.parent)), "dev") == "dev"


def test_holdout_zero_refuses_a_single_file_for_evaluation(single_tsv):
    cfg = DataConfig(task="sst2", path=str(single_tsv), holdout_fraction=0)
    assert len(load_examples(cfg, "train")[1]) == 50
    with pytest.raises(UserError, match=r"single file.*give a folder with separate splits.*data.holdout_fraction"):
        load_examples(cfg, "dev")


def test_single_file_has_no_test_split_and_needs_two_rows(single_tsv, tmp_path):
    with pytest.raises(UserError, match=r"no 'test' split in the single file"):
        load_examples(DataConfig(task="sst2", path=str(single_tsv)), "test")
    one = tmp_path / "one.tsv"
    one.write_text("sentence\tlabel\ngood\t1\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"one.tsv has 1 row: too few to hold out"):
        load_examples(DataConfig(task="sst2", path=str(one)), "train")


def test_task_splits_encode_lazily_and_say_what_they_hold(single_tsv, tiny_tokenizer, said):
    splits = load_task_splits(DataConfig(task="sst2", path=str(single_tsv), max_seq_len=16), tiny_tokenizer)
    assert splits.eval_split == HELD_OUT and HELD_OUT in said.text
    assert len(splits.train_features) == 45 and len(splits.eval_features) == 5
    fewer = replace(splits, train_examples=splits.train_examples[:3])  # e.g. augmented, before encoding
    assert len(fewer.train_features) == 3 and fewer.eval_features == splits.eval_features


def test_finetune_on_one_file_scores_rows_it_did_not_train_on(single_tsv, tiny_bert_dir, tmp_path, monkeypatch):
    import bertcompress.methods.finetune.verb as finetuning

    seen = {}
    real_loop, real_score = finetuning.train_loop, finetuning.score

    def loop(objective, features, *args, **kw):
        seen["train"] = features
        return real_loop(objective, features, *args, **kw)

    def score(model, task, features, *args, **kw):
        seen["eval"] = features
        return real_score(model, task, features, *args, **kw)

    monkeypatch.setattr(finetuning, "train_loop", loop)
    monkeypatch.setattr(finetuning, "score", score)
    out = tmp_path / "ft"
    assert main(["finetune", "--task", "sst2", "--data", str(single_tsv), "--model", str(tiny_bert_dir),
                 "--output", str(out), "--set", "train.max_steps=2"]) == 0
    record = json.loads((out / "bertcompress_result.json").read_text())
    assert record["eval_split"] == HELD_OUT and 0.0 <= record["dev"]["accuracy"] <= 1.0
    ids = {kind: {tuple(f["input_ids"]) for f in feats} for kind, feats in seen.items()}
    assert len(ids["train"]) == 45 and len(ids["eval"]) == 5 and not ids["train"] & ids["eval"]


def test_evaluate_records_and_table_say_held_out(single_tsv, tiny_bert_dir):
    from bertcompress.evaluation.evaluator import evaluate, records_markdown

    (record,) = evaluate([str(tiny_bert_dir)], DataConfig(task="sst2", path=str(single_tsv)), latency=False,
                         onnx=False)
    assert record["split"] == HELD_OUT and record["examples"] == 5
    assert HELD_OUT in records_markdown([record])


def test_quantize_theseus_and_distill_records_say_held_out(single_tsv, tiny_bert_dir, tmp_path):
    from bertcompress.methods.distill.config import DistillConfig
    from bertcompress.methods.distill.verb import distill
    from bertcompress.methods.quantize.config import QuantizeTrainConfig
    from bertcompress.methods.quantize.verb import ptq_baseline, quantize
    from bertcompress.methods.theseus.config import TheseusConfig
    from bertcompress.methods.theseus.verb import theseus
    from bertcompress.models.config import StudentConfig
    from bertcompress.models.quantized.config import QuantConfig
    from bertcompress.train.config import TrainConfig

    data, teacher, step = DataConfig(task="sst2", path=str(single_tsv)), str(tiny_bert_dir), TrainConfig(max_steps=1)
    lsq = QuantizeTrainConfig(student=teacher, data=data, train=step, kd=False, quant=QuantConfig.parse("w8a8"),
                              output=str(tmp_path / "lsq"))
    runs = {
        "lsq": lambda: quantize(lsq),
        "ptq": lambda: ptq_baseline(replace(lsq, output=str(tmp_path / "ptq"))),
        "theseus": lambda: theseus(TheseusConfig(teacher=teacher, data=data, successor_layers=2, replacing=step,
                                                 finetune=step, output=str(tmp_path / "theseus"))),
        "distill": lambda: distill(DistillConfig(teacher=teacher, data=data, train=step, prediction_train=step,
                                                 student=StudentConfig(num_layers=2, hidden_size=16, num_heads=4,
                                                                       ffn_size=32),
                                                 output=str(tmp_path / "distill"))),
    }
    for name, run in runs.items():
        record = json.loads((run() / "bertcompress_result.json").read_text())
        assert record["eval_split"] == HELD_OUT, name


def test_pruning_importance_samples_the_training_part_only(single_tsv, tiny_tokenizer, monkeypatch):
    from bertcompress.data import encoding
    from bertcompress.data.config import CorpusConfig
    from bertcompress.methods.prune.verb import sample_batches

    class TinyForSequenceClassification:  # sample_batches tells a classifier by its class name
        config = SimpleNamespace(num_labels=2)

    seen, real = [], encoding.encode_examples
    monkeypatch.setattr(encoding, "encode_examples", lambda tok, ex, n: seen.extend(ex) or real(tok, ex, n))
    cfg = DataConfig(task="sst2", path=str(single_tsv))
    sample_batches(TinyForSequenceClassification(), tiny_tokenizer, cfg, CorpusConfig(), 100, 8, 0)
    assert _texts(seen) == _texts(load_examples(cfg, "train")[1])
