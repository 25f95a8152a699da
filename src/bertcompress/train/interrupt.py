"""What a Ctrl-C tells the user: where the run stopped and how to continue it."""

from __future__ import annotations

from pathlib import Path


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt that says which phase stopped at which step, and what --resume does."""

    def __init__(self, phase: str, step: int, total: int, checkpoint_step: int | None, work_dir: Path):
        where = f"interrupted in {phase} at step {step} of {total}"
        if checkpoint_step:
            kept = f"--resume continues from its checkpoint at step {checkpoint_step} ({work_dir})"
        else:
            kept = "--resume restarts this phase (no checkpoint of it yet; train.save_every sets one)"
        super().__init__(f"{where}; {kept}; finished stages and outputs are kept")
