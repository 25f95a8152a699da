"""DDP with 2 CPU processes (gloo) takes the same steps as one process with the doubled batch."""

import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent


def _run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_ddp_two_processes_equal_single_process_big_batch(tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _run([sys.executable, str(HERE / "ddp_worker.py"), str(single), "8"], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          str(HERE / "ddp_worker.py"), str(ddp), "4"], tmp_path)
    one = torch.load(single / "rank0.pt", weights_only=True)
    r0 = torch.load(ddp / "rank0.pt", weights_only=True)
    r1 = torch.load(ddp / "rank1.pt", weights_only=True)
    start = torch.load(single / "ckpt" / "last.pt", weights_only=True)["step"]
    assert start == 4
    for k in one:
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=0)  # ranks stay in lockstep
        torch.testing.assert_close(r0[k], one[k], rtol=1e-4, atol=1e-5)  # = one process, batch 8


def test_nan_on_one_rank_stops_every_rank(tmp_path):
    """Losses are checked in batches, and the verdict is shared: a NaN seen by one process stops
    both (instead of leaving the other waiting in the next all-reduce)."""
    out = tmp_path / "ddp"
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          str(HERE / "ddp_worker.py"), str(out), "4", "nan-on-rank1"], tmp_path)
    assert "loss became nan at step 2" in (out / "rank1.diverged").read_text()
    assert "loss became" in (out / "rank0.diverged").read_text()
