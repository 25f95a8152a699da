"""Every bad input: one line on stderr, a non-zero exit, no traceback, earlier output untouched."""

import subprocess
import sys

import pytest

from bertcompress.cli import main


def run_cli(capsys, args):
    code = main(args)
    err = capsys.readouterr().err
    return code, err


@pytest.fixture
def existing_output(tmp_path):
    """An earlier output of ours (it holds the config it ran with)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier result")
    (out / "bertcompress_config.yaml").write_text("kind: FinetuneConfig\n")
    return out


def _cases(tmp_path, tiny_bert_dir, sentiment_tsv):
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    bad_rows = tmp_path / "bad" / "train.tsv"
    bad_rows.parent.mkdir()
    bad_rows.write_text("sentence\tlabel\ngood\t1\nno label column here\n")
    bad_label = tmp_path / "badlabel" / "train.tsv"
    bad_label.parent.mkdir()
    bad_label.write_text("sentence\tlabel\ngood\t1\nbad\tmaybe\n")
    not_model = tmp_path / "notmodel"
    not_model.mkdir()
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("train: {lr: -1}\n")
    unknown_key = tmp_path / "unknown.yaml"
    unknown_key.write_text("train: {learning_rate: 1}\n")
    data = ["--data", str(sentiment_tsv), "--task", "sst2"]
    return {
        "missing data": (["finetune", "--model", str(tiny_bert_dir), "--data", str(tmp_path / "nope.tsv")],
                         "not found"),
        "empty data": (["finetune", "--model", str(tiny_bert_dir), "--task", "sst2", "--data", str(empty)], "empty"),
        "malformed row": (["finetune", "--model", str(tiny_bert_dir), "--task", "sst2",
                           "--data", str(bad_rows.parent)], "line 3"),
        "label outside set": (["finetune", "--model", str(tiny_bert_dir), "--task", "sst2",
                               "--data", str(bad_label.parent)], "maybe"),
        "unknown task": (["finetune", "--model", str(tiny_bert_dir), "--task", "sst9", "--data",
                          str(sentiment_tsv)], "unknown task"),
        "not a model": (["finetune", "--model", str(not_model)] + data, "not a model folder"),
        "missing model": (["finetune", "--model", str(tmp_path / "gone")] + data, "no such model folder"),
        "bad config value": (["finetune", "--model", str(tiny_bert_dir), "--config", str(bad_yaml)] + data,
                             "train.lr must be > 0"),
        "unknown config key": (["finetune", "--config", str(unknown_key)], "unknown key train.learning_rate"),
        "bad override type": (["finetune", "--set", "train.batch_size=big"], "train.batch_size must be int"),
        "missing config file": (["run", "--config", str(tmp_path / "none.yaml")], "config file not found"),
        "bad mapping": (["distill", "--stage", "task", "--teacher", str(tiny_bert_dir), "--set",
                         "losses.layer_mapping=[1, 9, 2, 3]"] + data, "out of range 1..4"),
        "out of range copy": (["distill", "--stage", "task", "--teacher", str(tiny_bert_dir), "--set",
                               "student.init=teacher_layers", "--set", "student.hidden_size=32",
                               "--set", "student.num_heads=4", "--set", "student.ffn_size=64",
                               "--set", "student.init_layers=[1, 2, 3, 7]"] + data, "out of range 1..4"),
    }


CASES = ["missing data", "empty data", "malformed row", "label outside set", "unknown task", "not a model",
         "missing model", "bad config value", "unknown config key", "bad override type", "missing config file",
         "bad mapping", "out of range copy"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clear_line(case, capsys, tmp_path, tiny_bert_dir, sentiment_tsv, existing_output):
    args, expected = _cases(tmp_path, tiny_bert_dir, sentiment_tsv)[case]
    # --overwrite: the distill cases may replace the finetune output, so their own bad input is what stops them
    # (and, checked before anything is written, leaves the earlier output as it was)
    code, err = run_cli(capsys, args + ["-o", str(existing_output), "--overwrite"])
    lines = [ln for ln in err.splitlines() if ln.startswith("bertcompress: error:")]
    assert code == 2
    assert len(lines) == 1 and expected in lines[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in existing_output.iterdir()) == ["bertcompress_config.yaml", "keep.txt"]


def test_vocab_mismatch(capsys, tmp_path, tiny_bert_dir, sentiment_tsv):
    from transformers import AutoModel, BertTokenizerFast

    from conftest import tiny_config

    other = tmp_path / "other"
    other.mkdir()
    (other / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]))
    BertTokenizerFast.from_pretrained(other).save_pretrained(other)
    AutoModel.from_config(tiny_config("bert", 7, layers=2)).save_pretrained(other)
    code, err = run_cli(capsys, ["distill", "--stage", "task", "--teacher", str(tiny_bert_dir), "--student",
                                 str(other), "--data", str(sentiment_tsv), "--task", "sst2",
                                 "-o", str(tmp_path / "o")])
    # another vocabulary is fine (each model reads with its own tokenizer), one that reads the text as [UNK] is not
    assert code == 2 and "as unknown ([UNK])" in err and "Traceback" not in err
    code, err = run_cli(capsys, ["distill", "--stage", "general", "--teacher", str(tiny_bert_dir), "--student",
                                 str(other), "-o", str(tmp_path / "g")])
    assert code == 2 and "different vocabularies" in err and "Traceback" not in err


def test_subprocess_exit_code_and_help():
    proc = subprocess.run([sys.executable, "-m", "bertcompress", "finetune", "--task", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("bertcompress: error:")
    assert "Traceback" not in proc.stderr
    help_text = subprocess.run([sys.executable, "-m", "bertcompress", "run", "--help"], capture_output=True,
                               text=True, timeout=120).stdout
    assert "--resume" in help_text and "--quick" in help_text


HEAVY = ("torch", "transformers", "sklearn", "onnxruntime", "datasets")


def import_budget(argv: list[str]) -> tuple[float, set[str]]:
    """Seconds Python spent importing modules for `bertcompress ARGV` (-X importtime: import time, not
    wall clock, so a busy machine does not fail it), and the heavy libraries it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "bertcompress", *argv], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    micros, heavy = 0, set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            micros += int(self_us)
            if name.split(".")[0] in HEAVY:
                heavy.add(name.split(".")[0])
    return micros / 1e6, heavy


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["nas", "--help"], ["quantize", "--print-config"]])
def test_help_imports_no_heavy_library_and_stays_under_a_second(argv):
    seconds, heavy = import_budget(argv)
    assert not heavy, f"bertcompress {' '.join(argv)} imported {sorted(heavy)}"
    assert seconds < 1.0, f"bertcompress {' '.join(argv)} spent {seconds:.2f} s importing"


def test_the_command_table_matches_the_verbs():
    import inspect

    from bertcompress.cli import build_parser
    from bertcompress.commands import COMMANDS
    from bertcompress.core.lazy import resolve

    parser = build_parser()
    for cmd in COMMANDS:
        verb = resolve(cmd.verb)
        assert ("resume" in inspect.signature(verb).parameters) == cmd.resumable, cmd.name
        help_text = parser._subparsers._group_actions[0].choices[cmd.name].format_help()
        assert ("--resume" in help_text) == cmd.resumable
        for flag in cmd.flags:
            assert f"--{flag.replace('_', '-')}" in help_text or f"--no-{flag.replace('_', '-')}" in help_text


def test_help_shows_the_defaults_of_the_commands_own_config(capsys):
    with pytest.raises(SystemExit):
        main(["distill", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: task; config key stage)" in out
    assert "(default: outputs/student; config key output)" in out


def test_a_list_flag_strips_the_spaces_around_its_items(capsys):
    assert main(["nas", "--print-config", "--budgets", "[2x, 12ms]"]) == 0
    assert "budgets:\n- 2x\n- 12ms\n" in capsys.readouterr().out
