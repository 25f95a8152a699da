"""Single device, one CUDA GPU, or several processes under `torchrun` (DDP), from one code path."""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bertcompress.core.errors import UserError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str = "auto") -> torch.device:
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name} asked for, but no CUDA GPU is available")
    if name == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"process {local_rank} of this node needs GPU {local_rank}, but "
                            f"{torch.cuda.device_count()} GPU(s) are visible; start at most that many "
                            f"processes per node, or set train.device: cpu")
        return torch.device(f"cuda:{local_rank}")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"bad config: unknown device {name!r}") from None


def launched_world_size() -> int:
    """How many processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", 1))


def refuse_ddp(message: str) -> None:
    """One line instead of a hang for the verbs that run on one process only."""
    if launched_world_size() > 1:
        raise UserError(message)


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on CUDA)."""
    world = launched_world_size()
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        # Left to interpreter teardown, gloo's threads can abort the process ("terminate called
        # without an active exception") after a clean stop such as a diverged loss.
        atexit.register(_leave_process_group)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def _leave_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.world_size > 1:
        dist.barrier()


def any_rank(flag: torch.Tensor, ctx: DistContext) -> bool:
    """True where `flag` (a bool tensor) is true on any process: all ranks decide alike, so a stop
    on one rank cannot leave the others waiting in a collective."""
    if ctx.world_size > 1:
        flag = flag.to(torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag)


