"""Outputs are safe: never put in place of something we did not write, claimed by one run at a
time, never half-written on a full disk, and a Ctrl-C says where it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bertcompress.cli import main
from bertcompress.core.errors import UserError
from bertcompress.core.io import CONFIG_FILENAME, atomic_dir, atomic_write_text, claim_output
from bertcompress.train.checkpoint import CHECKPOINT_NAME, save_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _finetune(tiny_bert_dir, sentiment_tsv, output, *extra):
    return ["finetune", "--model", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
            "--set", "train.max_steps=2", "--set", "train.batch_size=4", "-o", str(output), *extra]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("bertcompress: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_an_output_path_that_is_a_file_is_refused_and_kept(capsys, tmp_path, tiny_bert_dir, sentiment_tsv):
    victim = tmp_path / "notes.txt"
    victim.write_text("the user's own file")
    assert main(_finetune(tiny_bert_dir, sentiment_tsv, victim)) == 2
    assert "exists and is not a folder" in _one_error_line(capsys)
    assert victim.read_text() == "the user's own file"


def test_a_folder_we_did_not_write_is_refused_and_kept(capsys, tmp_path, tiny_bert_dir, sentiment_tsv):
    theirs = tmp_path / "documents"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    assert main(_finetune(tiny_bert_dir, sentiment_tsv, theirs)) == 2
    assert "did not write" in _one_error_line(capsys)
    assert [p.name for p in theirs.iterdir()] == ["thesis.tex"]
    with pytest.raises(UserError, match="did not write"), atomic_dir(theirs):
        pass  # the last line of defence, for every verb that writes a folder
    assert (theirs / "thesis.tex").read_text() == "years of work"


def test_our_own_output_and_an_empty_folder_are_replaced(capsys, tmp_path, tiny_bert_dir, sentiment_tsv):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_finetune(tiny_bert_dir, sentiment_tsv, empty)) == 0
    assert (empty / CONFIG_FILENAME).is_file()
    assert main(_finetune(tiny_bert_dir, sentiment_tsv, empty, "--set", "train.seed=1")) == 0
    assert "seed: 1" in (empty / CONFIG_FILENAME).read_text()


def test_a_second_run_on_a_claimed_output_is_refused(capsys, tmp_path, tiny_bert_dir, sentiment_tsv):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from bertcompress.core.io import claim_output\n"
        f"with claim_output({str(out)!r}):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(_finetune(tiny_bert_dir, sentiment_tsv, out)) == 2
        line = _one_error_line(capsys)
        assert "being written by another run" in line and f"pid {holder.pid}" in line
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    assert main(_finetune(tiny_bert_dir, sentiment_tsv, out)) == 0  # the lock died with its process
    assert not (tmp_path / ".out.lock").exists()


def test_claims_of_one_process_on_one_output_exclude_each_other(tmp_path):
    with claim_output(tmp_path / "x"), pytest.raises(UserError, match="another run"), claim_output(tmp_path / "x"):
        pass
    with claim_output(tmp_path / "x"):  # released on exit
        pass


# ---------------------------------------------------------------- a full disk

def _fail_like_a_full_disk(monkeypatch, after_bytes: int):
    """torch.save writes some bytes, then fails as it does when the disk is full."""
    real_save = torch.save

    def save(obj, f, *a, **k):
        Path(f).write_bytes(b"x" * after_bytes)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr("shutil.disk_usage", lambda p: type("U", (), {"free": 0})())
    return real_save


def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_last_one(monkeypatch, tmp_path):
    folder = tmp_path / ".out.checkpoints" / "finetune"
    save_checkpoint(folder, {"step": 1})
    _fail_like_a_full_disk(monkeypatch, 100)
    with pytest.raises(UserError, match=f"no space left on device while writing {folder / CHECKPOINT_NAME}"):
        save_checkpoint(folder, {"step": 2})
    assert [p.name for p in folder.iterdir()] == [CHECKPOINT_NAME]  # no half-written temporary file
    assert torch.load(folder / CHECKPOINT_NAME)["step"] == 1
    fresh = tmp_path / ".other.checkpoints" / "finetune"
    with pytest.raises(UserError, match="no space left"):
        save_checkpoint(fresh, {"step": 1})
    assert not (tmp_path / ".other.checkpoints").exists()  # no empty folder left behind


def test_a_full_disk_while_saving_a_model_folder(monkeypatch, tmp_path):
    out = tmp_path / "model"
    with atomic_dir(out) as tmp:
        atomic_write_text(tmp / CONFIG_FILENAME, "kind: X\n")
    err = OSError(28, "No space left on device")
    with pytest.raises(UserError, match=f"no space left on device while writing {out}"), atomic_dir(out) as tmp:
        (tmp / "partial.bin").write_bytes(b"half")
        raise err
    assert [p.name for p in out.iterdir()] == [CONFIG_FILENAME]  # the earlier output is kept
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # and nothing half-written beside it


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 3 MB file system, where the machine lets us mount one (root on Linux)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_finetune_on_a_really_full_disk(capsys, tiny_disk, tiny_bert_dir, sentiment_tsv):
    (tiny_disk / "filler").write_bytes(b"\0" * 2_900_000)
    out = tiny_disk / "teacher"
    assert main(_finetune(tiny_bert_dir, sentiment_tsv, out)) == 2
    assert "no space left on device while writing" in _one_error_line(capsys)
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]


# ---------------------------------------------------------------- Ctrl-C

def test_ctrl_c_says_where_it_stopped_and_how_to_continue(tmp_path, tiny_bert_dir, sentiment_tsv):
    import re

    out = tmp_path / "teacher"
    argv = [sys.executable, "-m", "bertcompress", "finetune", "--model", str(tiny_bert_dir), "--task", "sst2",
            "--data", str(sentiment_tsv), "--set", "train.max_steps=100000", "--set", "train.batch_size=2",
            "--set", "train.save_every=5", "-o", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, stderr=err, env=env, cwd=REPO)
        checkpoint = tmp_path / ".teacher.checkpoints" / "finetune" / CHECKPOINT_NAME
        deadline = time.time() + 120
        while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)  # training is past its first checkpoint
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:  # never leave a 100,000-step run behind on a failure
                proc.kill()
    text = log.read_text()
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.startswith("bertcompress:")]
    assert proc.returncode == 130
    assert len(lines) == 1 and "Traceback" not in text, text
    m = re.search(r"interrupted in finetune at step (\d+) of 100000; --resume continues from its checkpoint "
                  r"at step (\d+) \(", lines[0])
    assert m, lines[0]
    stopped, saved = int(m[1]), int(m[2])
    assert saved % 5 == 0 and 5 <= saved <= stopped
    assert torch.load(checkpoint)["step"] == saved
    assert not out.exists()
