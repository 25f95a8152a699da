"""Which process writes outputs (rank 0, or the only one), read from the environment torchrun sets,
and the barrier the others wait at until it has."""

from __future__ import annotations

import os


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that writes outputs."""
    return int(os.environ.get("RANK", 0)) == 0


def wait_for_main() -> None:
    """Under DDP, hold every rank until rank 0 has written its outputs (the next stage reads them)."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return
    import torch.distributed as dist  # only under torchrun: core stays free of torch

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
