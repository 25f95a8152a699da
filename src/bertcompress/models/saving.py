"""Every output is a `save_pretrained` folder (safetensors) with its tokenizer, the config it ran
with, a result record and a model card (card.py), written atomically: it appears complete or not
at all."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from torch import nn

from bertcompress.core.config import save_config
from bertcompress.core.io import RESULT_FILENAME, atomic_dir, atomic_write_json, checkpoints_folder
from bertcompress.models.card import CardFacts, facts_from_run, write_model_card
from bertcompress.models.loading import transformers_bars_off
from bertcompress.models.pruned import RECORD


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
        write_model_card(tmp, card_facts(output, model, config, result))
    return output


def card_facts(output: Path, model: nn.Module, config: Any, result: dict[str, Any]) -> CardFacts:
    facts = facts_from_run(output, model, config, result)
    if getattr(model.config, RECORD, None):  # layers of uneven sizes: plain transformers cannot load it
        facts.library = "bertcompress"
        facts.load = ("from bertcompress.models.loading import load_model, load_tokenizer\n\n"
                      f"model = load_model(\"path/to/{output.name}\", \"{facts.model_kind}\")\n"
                      f"tokenizer = load_tokenizer(\"path/to/{output.name}\")")
    return facts


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
