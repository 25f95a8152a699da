"""Config loading: YAML quirks and the saved file as input."""

import pytest

from bertcompress.core.config import CONFIG_FILENAME, DerivedSeed, load_config, save_config, to_dict
from bertcompress.core.errors import UserError
from bertcompress.methods.distill.config import DistillConfig
from bertcompress.methods.finetune.config import FinetuneConfig
from bertcompress.pipeline.config import PipelineConfig


def test_exponent_without_dot_is_a_float():
    # YAML 1.1 reads 1e-4 as a string; the README's own example must work
    cfg = load_config(DistillConfig, None, ["train.lr=1e-4", "losses.temperature=2"])
    assert cfg.train.lr == 1e-4 and cfg.losses.temperature == 2.0
    with pytest.raises(UserError, match="train.lr must be float"):
        load_config(DistillConfig, None, ["train.lr=fast"])


def test_a_saved_config_loads_back_as_its_own_kind(tmp_path):
    cfg = load_config(DistillConfig, None, ["train.epochs=3", "stage=task"])
    save_config(cfg, tmp_path)
    again = load_config(DistillConfig, tmp_path / "bertcompress_config.yaml")
    assert again == cfg
    with pytest.raises(UserError, match="holds a DistillConfig, not a FinetuneConfig"):
        load_config(FinetuneConfig, tmp_path / "bertcompress_config.yaml")


def test_verbs_stay_functions_after_their_modules_are_imported():
    import bertcompress
    import bertcompress.methods.distill.verb  # noqa: F401
    import bertcompress.methods.finetune.verb  # noqa: F401
    import bertcompress.pipeline.verb  # noqa: F401

    for name in ("run", "finetune", "distill", "evaluate", "report", "quantize", "extract", "prune", "theseus"):
        assert callable(getattr(bertcompress, name)) and not isinstance(getattr(bertcompress, name), type(bertcompress))
    with pytest.raises(AttributeError):
        bertcompress.no_such_verb  # noqa: B018


# ---------------------------------------------------------------- overrides land on their section's defaults

import dataclasses  # noqa: E402
import json  # noqa: E402

import yaml  # noqa: E402

from bertcompress.cli import main  # noqa: E402
from bertcompress.commands import COMMANDS  # noqa: E402
from bertcompress.core.lazy import resolve  # noqa: E402

CONFIG_CLASSES = sorted({resolve(c.config) for c in COMMANDS}, key=lambda c: c.__name__)


def _leaf_keys(obj, prefix=""):
    """Every `section.key` of a config whose parent is a nested section (depth >= 2)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            for g in dataclasses.fields(value):
                leaf = getattr(value, g.name)
                if not dataclasses.is_dataclass(leaf):  # a seed nobody set is written null
                    yield f"{prefix}{f.name}.{g.name}", None if isinstance(leaf, DerivedSeed) else leaf
            yield from _leaf_keys(value, f"{prefix}{f.name}.")


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_setting_one_nested_key_keeps_the_rest_of_its_section(cls, tmp_path):
    # Setting a key to its own default must change nothing: before the fix, touching one key
    # rebuilt the whole section from the bare class defaults (e.g. TrainConfig() lr 5e-5).
    default = cls()
    for key, value in _leaf_keys(default):
        override = f"{key}={json.dumps(value)}"
        assert load_config(cls, None, [override]) == default, override
        section, leaf = key.rsplit(".", 1)
        nested: dict = {}
        node = nested
        for part in section.split("."):
            node = node.setdefault(part, {})
        node[leaf] = value
        path = tmp_path / "one_key.yaml"
        path.write_text(yaml.safe_dump(nested))
        assert load_config(cls, path) == default, key


@pytest.mark.parametrize("argv, key, expected", [
    (["run", "--set", "general.epochs=2"], "general.lr", 3e-4),
    (["run", "--set", "general.epochs=2"], "general.epochs", 2.0),
    (["run", "--set", "finetune.epochs=2"], "finetune.min_steps", 600),
    (["run", "--set", "task_prediction.lr=5e-5"], "task_prediction.keep_best", True),
    (["run", "--quick"], "task_prediction.min_steps", 0),
    (["run", "--quick"], "finetune.lr", 1e-4),
    (["run", "--quick"], "data.max_train_examples", 1200),
    (["distill", "--set", "train.epochs=1"], "train.lr", 1e-4),
    (["distill", "--augment"], "augment.n_aug", 20),
    (["theseus", "--set", "replacing.epochs=1"], "replacing.warmup_ratio", 0.0),
    (["search-mapping", "--set", "proxy_general.epochs=2"], "proxy_general.lr", 3e-4),
    (["search-mapping", "--set", "corpus.path=x.txt"], "corpus.max_seq_len", 64),
    (["search-mapping", "--set", "final_general.epochs=2"], "final_general.lr", 3e-4),
    (["quantize", "--set", "train.epochs=1"], "train.lr", 5e-5),
    (["quantize", "--bits", "w2a8", "--set", "quant.act_bits=null"], "quant.weight_bits", 2),
    (["theseus", "--replace-prob", "0.7"], "curriculum", "constant"),
    (["theseus", "--replace-prob", "0.7", "--curriculum", "linear"], "curriculum", "linear"),
])
def test_cli_overrides_land_on_the_commands_defaults(argv, key, expected, capsys):
    assert main(argv + ["--print-config"]) == 0
    value = yaml.safe_load(capsys.readouterr().out)
    for part in key.split("."):
        value = value[part]
    assert value == expected


def test_a_list_of_sections_merges_each_item_onto_the_first_default(tmp_path):
    from bertcompress.methods.mapping_search.config import MappingSearchConfig

    path = tmp_path / "search.yaml"
    path.write_text("tasks:\n  - {task: sst2, path: /data/SST-2}\n  - {task: mrpc, path: /data/MRPC}\n")
    cfg = load_config(MappingSearchConfig, path)
    assert [(t.task, t.max_seq_len, t.max_train_examples) for t in cfg.tasks] == [("sst2", 64, 2000),
                                                                                   ("mrpc", 64, 2000)]


def test_yaml_file_then_flags_then_set(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("teacher: from-file\nfinetune: {epochs: 3}\ndata: {task: mrpc}\n")
    assert main(["run", "--config", str(path), "--task", "sst2", "--set", "finetune.lr=2e-5",
                 "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["teacher"] == "from-file" and cfg["data"]["task"] == "sst2"
    assert cfg["finetune"] == {**to_dict(PipelineConfig().finetune), "epochs": 3, "lr": 2e-5}


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_nested_set_through_the_cli_keeps_the_commands_defaults(command, capsys):
    assert main([command, "--print-config"]) == 0
    default = capsys.readouterr().out
    for key, value in _leaf_keys(resolve(next(c for c in COMMANDS if c.name == command).config)()):
        assert main([command, "--set", f"{key}={json.dumps(value)}", "--print-config"]) == 0
        assert capsys.readouterr().out == default, key


def test_one_seed_derives_every_other_and_each_stays_overridable(tmp_path):
    cfg = load_config(PipelineConfig, None, ["seed=5", "general.seed=7"])
    derived = [cfg.finetune.seed, cfg.task_intermediate.seed, cfg.task_prediction.seed, cfg.augment.seed,
               cfg.data.holdout_seed, cfg.data.validation_seed, cfg.data.tagging.split_seed]
    assert derived == [5] * 7 and cfg.general.seed == 7
    saved = to_dict(cfg)  # unset seeds are written null, the set one as its number
    assert saved["seed"] == 5 and saved["finetune"]["seed"] is None and saved["general"]["seed"] == 7
    save_config(cfg, tmp_path)
    again = load_config(PipelineConfig, tmp_path / CONFIG_FILENAME, ["seed=9"])  # a saved config re-derives
    assert (again.finetune.seed, again.data.holdout_seed, again.general.seed) == (9, 9, 7)
    assert PipelineConfig().finetune.seed == 42 and FinetuneConfig(seed=3).train.seed == 3
