"""QuantConfig / QuantizeTrainConfig: bit-width strings, validation, YAML round trip, CLI flags."""

from __future__ import annotations

import pytest
import yaml

from bertcompress.core.config import from_dict, load_config, read_saved_config, save_config, to_dict
from bertcompress.core.errors import UserError
from bertcompress.methods.quantize.config import QuantizeTrainConfig
from bertcompress.models.quantized.config import QuantConfig


def test_parse_bit_strings():
    q = QuantConfig.parse("w4a8")
    assert (q.weight_bits, q.act_bits, q.emb_bits) == (4, 8, 4)
    q = QuantConfig.parse("W2A8E4", per_channel=False)
    assert (q.weight_bits, q.act_bits, q.embedding_bits, q.per_channel) == (2, 8, 4, False)
    assert QuantConfig.parse("w8a32").act_bits is None
    for spec in ("w4a8", "w2a8e4", "w8a32"):
        assert QuantConfig.parse(spec).spec() == spec


@pytest.mark.parametrize("bad", ["w1a8", "w9a8", "w4a1", "w4a9", "w4a8e9", "4a8", "w4", "w4a8x"])
def test_bad_bit_strings(bad):
    with pytest.raises(UserError):
        QuantConfig.parse(bad)


@pytest.mark.parametrize("key,value", [("weight_bits", 1), ("weight_bits", 9), ("act_bits", 1), ("act_bits", 9),
                                       ("embedding_bits", 0)])
def test_bad_bits_through_config(key, value):
    with pytest.raises(UserError, match="bad config"):
        from_dict(QuantizeTrainConfig, {"quant": {key: value}})


def test_onnx_needs_8bit_activations():
    with pytest.raises(UserError, match="act_bits"):
        QuantizeTrainConfig(quant=QuantConfig.parse("w4a4"), onnx=True)
    QuantizeTrainConfig(quant=QuantConfig.parse("w4a8"), onnx=True)


def test_yaml_and_dict_round_trip(tmp_path):
    cfg = QuantizeTrainConfig(student="s", teacher="t", quant=QuantConfig.parse("w2a8e4", quantize_classifier=True),
                              kd=False, output=str(tmp_path / "o"))
    assert from_dict(QuantizeTrainConfig, to_dict(cfg)) == cfg
    save_config(cfg, tmp_path)
    assert read_saved_config(QuantizeTrainConfig, tmp_path) == cfg
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(to_dict(cfg)))
    loaded = load_config(QuantizeTrainConfig, tmp_path / "my.yaml", ["quant.act_bits=null", "train.lr=0.0001"])
    assert loaded.quant.act_bits is None and loaded.train.lr == 0.0001 and loaded.teacher == "t"
    with pytest.raises(UserError, match="unknown key"):
        from_dict(QuantizeTrainConfig, {"quant": {"bits": 4}})


def config_from_args(argv):
    from bertcompress.cli import build_parser, resolve_config
    from bertcompress.commands import BY_NAME

    return resolve_config(BY_NAME["quantize"], build_parser().parse_args(["quantize", *argv]))


def test_cli_flags_become_config(tmp_path):
    cfg = config_from_args(["--student", "S", "--bits", "w2a8e4", "--no-kd", "--task", "sst2",
                                   "--data", "D", "-o", "O", "--set", "quant.weight_bits=3"])
    assert (cfg.student, cfg.teacher, cfg.kd, cfg.data.task, cfg.data.path, cfg.output) == ("S", None, False, "sst2",
                                                                                            "D", "O")
    assert (cfg.quant.weight_bits, cfg.quant.act_bits, cfg.quant.embedding_bits) == (3, 8, 4)  # --set wins
    cfg = config_from_args(["--bits", "w8a32", "--teacher", "T"])
    assert cfg.quant.act_bits is None and cfg.teacher == "T" and cfg.kd and not cfg.onnx
    assert config_from_args(["--bits", "w8a8", "--onnx"]).onnx
    with pytest.raises(UserError):  # onnx needs a8
        config_from_args(["--bits", "w8a32", "--onnx"])
    with pytest.raises(UserError):
        config_from_args(["--bits", "w9a8"])
