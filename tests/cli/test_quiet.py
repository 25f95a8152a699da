"""Messages go through logging: the CLI shows progress on stderr, `--quiet` keeps warnings and
errors only, and the Python API prints no progress of its own or of `transformers`."""

from __future__ import annotations

import logging

import pytest

from bertcompress.cli import main
from bertcompress.core.log import log


def finetune(tmp_path, tiny_bert_dir, sentiment_tsv, name, *extra):
    return main(["finetune", "--model", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
                 "--set", "train.max_steps=1", "--set", "train.lr=1e-9", "-o", str(tmp_path / name), *extra])


@pytest.mark.parametrize("where", ["after", "before"])
def test_quiet_keeps_the_warning_and_drops_the_progress(where, capsys, tmp_path, tiny_bert_dir, sentiment_tsv):
    assert finetune(tmp_path, tiny_bert_dir, sentiment_tsv, "loud") == 0
    loud = capsys.readouterr()
    if where == "after":
        assert finetune(tmp_path, tiny_bert_dir, sentiment_tsv, "quiet", "--quiet") == 0
    else:
        assert main(["--quiet", "finetune", "--model", str(tiny_bert_dir), "--task", "sst2", "--data",
                     str(sentiment_tsv), "--set", "train.max_steps=1", "--set", "train.lr=1e-9",
                     "-o", str(tmp_path / "quiet")]) == 0
    quiet = capsys.readouterr()
    assert "finetune: 100%" in loud.err and "finetune: 100%" not in quiet.err  # the training bar
    # the warning that the teacher learned nothing is kept; the result line is stdout, kept too
    assert "[bertcompress] WARNING: finetune: accuracy" in quiet.err
    assert "wrote" in quiet.out and "wrote" in loud.out


def test_the_cli_restores_logging_for_the_next_caller(capsys, tmp_path, tiny_bert_dir, sentiment_tsv):
    before = log.handlers[:], log.level, log.propagate
    assert finetune(tmp_path, tiny_bert_dir, sentiment_tsv, "t", "--quiet") == 0
    assert (log.handlers[:], log.level, log.propagate) == before


def test_the_api_prints_nothing_unless_asked(capsys, caplog, tmp_path, tiny_bert_dir, sentiment_tsv):
    from bertcompress.core.config import load_config
    from bertcompress.methods.finetune.config import FinetuneConfig
    from bertcompress.methods.finetune.verb import finetune as finetune_verb
    from bertcompress.models.loading import load_model

    load_model(str(tiny_bert_dir), "classifier")
    assert "Loading weights" not in capsys.readouterr().err  # transformers' bar stays off
    caplog.set_level(logging.INFO, logger="bertcompress")
    cfg = load_config(FinetuneConfig, overrides=[f"model={tiny_bert_dir}", "data.task=sst2",
                                                 f"data.path={sentiment_tsv}", "train.max_steps=1", "train.lr=1e-9",
                                                 f"output={tmp_path / 'api'}"])
    finetune_verb(cfg)
    assert "not clearly above the trivial baseline" in caplog.text  # a logging record, for the caller to show
    assert "[bertcompress]" not in capsys.readouterr().out
