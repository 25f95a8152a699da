"""Choosing never looks at the split that is reported: keep_best, patience and search choose on a
seeded, stratified validation slice carved from training; the eval split only scores."""

import json

from bertcompress.cli import main
from bertcompress.data.config import DataConfig
from bertcompress.data.examples import Example
from bertcompress.data.sampling import stratified_sample
from bertcompress.data.splits import carve_validation


def test_stratified_sample_keeps_every_class_in_its_share():
    labels = [0, 1] * 10  # 10% of 20 rows: a plain random pair is one class a third of the time
    for seed in range(30):
        picked = stratified_sample(labels, 2, seed)
        assert sorted(labels[i] for i in picked) == [0, 1]
    skewed = [0] * 80 + [1] * 20
    picked = stratified_sample(skewed, 10, 0)
    assert sorted(skewed[i] for i in picked) == [0] * 8 + [1] * 2
    assert stratified_sample(skewed, 10, 0) == picked != stratified_sample(skewed, 10, 1)
    assert len(stratified_sample([0.5, 1.5, 2.5, None], 2, 0)) == 2  # regression, tagging: one stratum


def test_single_file_holdout_is_stratified(tmp_path):
    from bertcompress.data.kinds import load_examples

    rows = [f"sentence {i}\t{int(i < 10)}" for i in range(100)]  # 10% positive
    (tmp_path / "t.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    for seed in range(10):
        _, dev = load_examples(DataConfig(task="sst2", path=str(tmp_path / "t.tsv"), holdout_seed=seed), "dev")
        assert sorted(e.label for e in dev) == [0] * 9 + [1]


def test_carve_validation_is_disjoint_seeded_and_capped():
    train = [Example(f"s{i}", None, i % 3) for i in range(300)]
    rest, val, described = carve_validation(train, DataConfig(validation_fraction=0.1, validation_seed=1))
    assert len(val) == 30 and len(rest) == 270 and not {e.text_a for e in val} & {e.text_a for e in rest}
    assert [sum(e.label == c for e in val) for c in range(3)] == [10, 10, 10]
    assert described.startswith("validation (30 of the 300 train examples")
    _, capped, _ = carve_validation(train, DataConfig(validation_fraction=0.5, max_validation_examples=40))
    assert len(capped) == 40


def test_finetune_chooses_on_validation_and_scores_dev(sentiment_tsv, tiny_bert_dir, tmp_path, monkeypatch):
    import bertcompress.methods.finetune.verb as finetuning

    scored = []
    real = finetuning.score
    monkeypatch.setattr(finetuning, "score", lambda m, t, feats, *a, **k: (scored.append(len(feats)),
                                                                         real(m, t, feats, *a, **k))[1])
    out = tmp_path / "ft"
    assert main(["finetune", "--task", "sst2", "--data", str(sentiment_tsv), "--model", str(tiny_bert_dir),
                 "--output", str(out), "--set", "train.max_steps=4", "--set", "train.keep_best=true",
                 "--set", "train.eval_every=2", "--set", "data.validation_fraction=0.2"]) == 0
    record = json.loads((out / "bertcompress_result.json").read_text())
    # 40 train rows: 8 carved for validation; dev (10 rows) is scored once, at the end
    assert record["chosen_on"].startswith("validation (8 of the 40 train examples") and record["eval_split"] == "dev"
    assert scored == [8, 8, 10] and set(record["validation"]) >= {"score"} and record["stopped"] == "planned steps"


def test_without_choosing_nothing_is_carved(sentiment_tsv, tiny_bert_dir, tmp_path):
    out = tmp_path / "ft"
    assert main(["finetune", "--task", "sst2", "--data", str(sentiment_tsv), "--model", str(tiny_bert_dir),
                 "--output", str(out), "--set", "train.max_steps=1"]) == 0
    assert "chosen_on" not in json.loads((out / "bertcompress_result.json").read_text())
