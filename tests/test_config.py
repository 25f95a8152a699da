"""Config loading: YAML quirks and the saved file as input."""

import pytest

from bertcompress.config import DistillConfig, FinetuneConfig, load_config, save_config
from bertcompress.errors import UserError


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
    import bertcompress.distillation.stages  # noqa: F401
    import bertcompress.finetuning  # noqa: F401
    import bertcompress.pipeline  # noqa: F401

    for name in ("run", "finetune", "distill", "evaluate", "report", "quantize", "extract", "prune", "theseus"):
        assert callable(getattr(bertcompress, name)) and not isinstance(getattr(bertcompress, name), type(bertcompress))
    with pytest.raises(AttributeError):
        bertcompress.no_such_verb  # noqa: B018
