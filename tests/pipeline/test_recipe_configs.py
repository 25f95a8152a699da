"""The checked-in recipes in configs/ load, resolve and print as the configs they say they are."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bertcompress.cli import main
from bertcompress.core.config import config_to_yaml, load_config
from bertcompress.pipeline.config import PipelineConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = {"demo.yaml": "run", "base_teacher_sst2.yaml": "run", "tagging_brown_pos.yaml": "run"}


def leaves(data: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_recipe_is_listed():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_recipe_prints_as_the_config_it_sets(name, capsys):
    path = CONFIGS / name
    assert main([RECIPES[name], "--config", str(path), "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["kind"] == "PipelineConfig"
    resolved = leaves(printed)
    for key, value in leaves(yaml.safe_load(path.read_text(encoding="utf-8"))).items():
        assert resolved[key] == value, f"{name}: {key} is {resolved[key]!r} after loading, the file says {value!r}"
    # what the file leaves out keeps run's own defaults
    defaults = leaves(yaml.safe_load(config_to_yaml(PipelineConfig())))
    untouched = set(defaults) - set(leaves(yaml.safe_load(path.read_text(encoding="utf-8"))))
    assert untouched and all(resolved[k] == defaults[k] for k in untouched if not k.endswith("seed"))


def test_the_demo_recipe_is_what_the_demo_runs():
    cfg = load_config(PipelineConfig, CONFIGS / "demo.yaml")
    assert (cfg.output, cfg.finetune.max_minutes, cfg.task_prediction.max_minutes) == ("outputs/demo", 4, 3)
    assert cfg.finetune.patience == PipelineConfig().finetune.patience  # a key set lands on its section's defaults
    demo = (CONFIGS.parent / "scripts" / "demo.sh").read_text(encoding="utf-8")
    assert "--config configs/demo.yaml" in demo
