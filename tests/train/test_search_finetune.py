"""train.search: a small Optuna search over lr and epochs for fine-tuning, chosen on the eval split."""

import json
import sys

import pytest

from bertcompress.cli import main
from bertcompress.core.config import load_config
from bertcompress.core.errors import UserError
from bertcompress.data.config import DataConfig
from bertcompress.methods.finetune.config import FinetuneConfig
from bertcompress.methods.finetune.verb import finetune
from bertcompress.train.config import SearchConfig, TrainConfig
from bertcompress.train.loop import train_loop


def _config(tiny_bert_dir, sentiment_tsv, out, **search):
    return FinetuneConfig(model=str(tiny_bert_dir), data=DataConfig(task="sst2", path=str(sentiment_tsv)),
                          train=TrainConfig(batch_size=4, lr=1e-3, search=SearchConfig(**search)), output=str(out))


def test_search_keeps_the_best_trial_and_records_every_trial(tmp_path, tiny_bert_dir, sentiment_tsv, said):
    out = finetune(_config(tiny_bert_dir, sentiment_tsv, tmp_path / "t", trials=3, epochs_max=2, prune=False))
    result = json.loads((out / "bertcompress_result.json").read_text())
    trials = result["search"]["trials"]
    assert len(trials) == 3 and all(t["state"] == "complete" for t in trials)
    assert all(1e-5 <= t["lr"] <= 2e-4 and t["epochs"] in (1, 2) for t in trials)
    chosen = [t for t in trials if t["chosen"]]
    assert len(chosen) == 1 and chosen[0]["score"] == max(t["score"] for t in trials)
    assert result["search"]["chosen"] == {"lr": chosen[0]["lr"], "epochs": float(chosen[0]["epochs"])}
    assert result["dev"]["score"] == chosen[0]["score"]  # the published weights are the chosen trial's
    assert not (out / "checkpoints").exists() and "search trial 3" in said.text


def test_the_sampler_seed_makes_the_search_repeatable(tmp_path, tiny_bert_dir, sentiment_tsv):
    runs = [json.loads((finetune(_config(tiny_bert_dir, sentiment_tsv, tmp_path / f"t{i}", trials=2, prune=False))
                        / "bertcompress_result.json").read_text())["search"]["trials"] for i in range(2)]
    assert [(t["lr"], t["epochs"], t["score"]) for t in runs[0]] == [(t["lr"], t["epochs"], t["score"])
                                                                       for t in runs[1]]


def test_a_search_turned_on_by_one_key_starts_from_the_defaults(tmp_path):
    cfg = load_config(FinetuneConfig, overrides=["train.search.trials=4"])
    assert cfg.train.search == SearchConfig(trials=4)
    assert load_config(FinetuneConfig).train.search is None


@pytest.mark.parametrize("bad, message", [
    ({"trials": 0}, "search.trials must be >= 1"),
    ({"lr_min": 1e-3, "lr_max": 1e-4}, "lr_min <= lr_max"),
    ({"epochs_min": 3, "epochs_max": 2}, "epochs_min <= epochs_max"),
    ({"minutes": 0}, "search.minutes must be > 0"),
])
def test_bad_search_settings_are_one_line_errors(bad, message):
    with pytest.raises(UserError, match=message):
        SearchConfig(**bad)


def test_search_outside_fine_tuning_is_refused(tmp_path):
    with pytest.raises(UserError, match="only for fine-tuning"):
        train_loop(None, [{"x": 1}], list, TrainConfig(search=SearchConfig()), work_dir=tmp_path)


def test_search_without_optuna_says_how_to_install_it(monkeypatch, tmp_path, tiny_bert_dir, sentiment_tsv, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    assert main(["finetune", "--model", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
                 "--set", "train.search.trials=2", "-o", str(tmp_path / "t")]) == 2
    assert "pip install 'bertcompress[search]'" in capsys.readouterr().err
