"""Every output is a `save_pretrained` folder (safetensors) with its tokenizer, the config it ran
with and a result record, written atomically: it appears complete or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from torch import nn

from bertcompress.core.config import save_config
from bertcompress.core.io import atomic_dir, atomic_write_json, checkpoints_folder
from bertcompress.models.loading import transformers_bars_off

RESULT_FILENAME = "bertcompress_result.json"


def save_model_folder(output: str | Path, model: nn.Module, tokenizer, config: Any,
                      result: dict[str, Any]) -> Path:
    output = Path(output)
    with atomic_dir(output) as tmp:
        with transformers_bars_off():
            model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        save_config(config, tmp)
        atomic_write_json(tmp / RESULT_FILENAME, result)
    return output


def checkpoint_dir(output: str | Path, phase: str) -> Path:
    """Where a run keeps its resumable state: beside the output, never inside it."""
    return checkpoints_folder(output) / phase


def drop_checkpoints(output: str | Path) -> None:
    shutil.rmtree(checkpoints_folder(output), ignore_errors=True)


def publish_model_folder(output: str | Path, model: nn.Module, tokenizer, config: Any,
                         result: dict[str, Any]) -> Path:
    """End of a training verb: the main process writes the finished folder (atomically) and drops
    the run's checkpoints; under DDP the other processes wait until it is there."""
    from bertcompress.core.ranks import is_main_process, wait_for_main

    if is_main_process():
        save_model_folder(output, model.cpu(), tokenizer, config, result)
        drop_checkpoints(output)
    wait_for_main()
    return Path(output)
