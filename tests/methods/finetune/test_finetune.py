"""finetune: the trivial baseline is checked as soon as the teacher is trained."""

import json

from bertcompress.cli import main


def test_a_teacher_that_learned_nothing_is_reported_at_once(capsys, tmp_path, tiny_bert_dir, sentiment_tsv):
    out = tmp_path / "teacher"
    assert main(["finetune", "--model", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
                 "--set", "train.max_steps=1", "--set", "train.lr=1e-9", "-o", str(out)]) == 0
    result = json.loads((out / "bertcompress_result.json").read_text())
    # 10 dev rows, 5 of each class: the majority predictor (class 0) scores 0.5; learned needs >= 0.55
    assert (result["trivial_score"], result["trivial_predictor"]) == (0.5, "majority class 0")
    assert result["dev"]["score"] < 0.55 and result["learned"] is False  # an untrained head (seeded)
    err = capsys.readouterr().err
    assert "WARNING: finetune: accuracy" in err and "trivial baseline (majority class 0: 0.500)" in err
