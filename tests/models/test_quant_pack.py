"""Bit packing for every width, and the packed export reloading to the same logits."""

from __future__ import annotations

import json

import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.export.onnx_int8 import export_onnx_int8
from bertcompress.models.quantized.config import QuantConfig
from bertcompress.models.quantized.modules import calibrate_, quantize_
from bertcompress.models.quantized.packed import (
    DESCRIPTION_FILE,
    WEIGHTS_FILE,
    load_packed,
    pack_bits,
    save_packed,
    unpack_bits,
)
from conftest import SENTENCES, STANDARD_TOOLS, float_activations


@pytest.mark.parametrize("bits", range(2, 9))
def test_pack_round_trip_every_width(bits):
    g = torch.Generator().manual_seed(bits)
    for n in (0, 1, 7, 8, 9, 1001):  # ragged lengths: the last byte is partly used
        values = torch.randint(0, 1 << bits, (n,), generator=g)
        if n:
            values[0], values[-1] = 0, (1 << bits) - 1  # both ends of the range
        packed = pack_bits(values, bits)
        assert packed.dtype == torch.uint8 and packed.numel() == (n * bits + 7) // 8
        assert torch.equal(unpack_bits(packed, bits, n), values)


def test_pack_layout_is_little_endian_bit_stream():
    assert pack_bits(torch.tensor([1, 2, 3, 0]), 2).tolist() == [0b00_11_10_01]  # first code in the low bits
    assert pack_bits(torch.tensor([0xA, 0x5]), 4).tolist() == [0x5A]
    # 3 bits: codes 1..3 -> stream bits 001 010 011 (LSB first) = 0b011_010_001
    assert pack_bits(torch.tensor([1, 2, 3]), 3).tolist() == [0b11_010_001, 0b0]
    with pytest.raises(ValueError):
        pack_bits(torch.tensor([4]), 2)


def _quantized(tiny_bert_dir, spec, per_channel=True, **kw):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).eval()
    qcfg = QuantConfig.parse(spec, per_channel=per_channel, **kw)
    quantize_(model, qcfg)
    return model, qcfg


def _batch(vocab=80):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (6, 14), generator=g)
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0
    mask[4, 3:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


@pytest.mark.parametrize("spec,per_channel,kw", [("w2a8", True, {}), ("w3a4", False, {}), ("w4a8e2", True, {}),
                                                 ("w8a8", False, {"quantize_classifier": True}),
                                                 ("w5a32", True, {})])
def test_packed_export_reloads_to_identical_logits(tiny_bert_dir, tmp_path, spec, per_channel, kw):
    model, qcfg = _quantized(tiny_bert_dir, spec, per_channel, **kw)
    batch = _batch()
    calibrate_(model, batch)
    with torch.no_grad():  # move the steps off their init, as training would
        for name, p in model.named_parameters():
            if name.endswith(".step"):
                p.mul_(1.1)
    save_packed(tmp_path / "packed", model, qcfg)
    loaded = load_packed(tmp_path / "packed")
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)
    again = load_packed(tmp_path / "packed", keep_weight_quantizers=True)
    with torch.no_grad():
        assert torch.equal(again(**batch).logits, model(**batch).logits)


def test_packed_size_and_description(tiny_bert_dir, tmp_path):
    fp_bytes = (tiny_bert_dir / "model.safetensors").stat().st_size
    sizes = {}
    for spec in ("w2a8", "w4a8", "w8a8"):
        model, qcfg = _quantized(tiny_bert_dir, spec)
        save_packed(tmp_path / spec, model, qcfg)
        sizes[spec] = (tmp_path / spec / WEIGHTS_FILE).stat().st_size
        desc = json.loads((tmp_path / spec / DESCRIPTION_FILE).read_text())
        word = desc["tensors"]["bert.embeddings.word_embeddings.weight"]
        assert word["bits"] == int(spec[1]) and word["per_channel"]
    assert sizes["w2a8"] < sizes["w4a8"] < sizes["w8a8"] < fp_bytes
    # the 4-bit codes of the 2x4x(32x32 + 2x32x64) + embedding weights are half the 8-bit ones
    model, _ = _quantized(tiny_bert_dir, "w4a8")
    quantized = sum(m.weight.numel() for m in model.modules() if getattr(m, "weight_quant", None) is not None)
    assert sizes["w8a8"] - sizes["w4a8"] == pytest.approx(quantized / 2, rel=0.01)


def test_load_packed_errors(tmp_path, tiny_bert_dir):
    with pytest.raises(UserError, match="not a packed"):
        load_packed(tiny_bert_dir)
    model, qcfg = _quantized(tiny_bert_dir, "w4a8")
    save_packed(tmp_path / "p", model, qcfg)
    desc = json.loads((tmp_path / "p" / DESCRIPTION_FILE).read_text())
    desc["version"] = 99
    (tmp_path / "p" / DESCRIPTION_FILE).write_text(json.dumps(desc))
    with pytest.raises(UserError, match="unknown packed format"):
        load_packed(tmp_path / "p")


def test_version_1_folders_still_load(tiny_bert_dir, tmp_path):
    """Version 1 kept the position table in float and had no `quantize_positions` key."""
    model, qcfg = _quantized(tiny_bert_dir, "w4a8", quantize_positions=False)
    assert type(model.bert.embeddings.position_embeddings) is torch.nn.Embedding
    batch = _batch()
    calibrate_(model, batch)
    save_packed(tmp_path / "v1", model, qcfg)
    path = tmp_path / "v1" / DESCRIPTION_FILE
    desc = json.loads(path.read_text())
    assert desc["version"] == 2 and "bert.embeddings.position_embeddings.weight" not in desc["tensors"]
    desc["version"] = 1
    del desc["quant"]["quantize_positions"]
    path.write_text(json.dumps(desc))
    with torch.no_grad():
        assert torch.equal(load_packed(tmp_path / "v1")(**batch).logits, model(**batch).logits)


def test_packed_folder_loads_with_standard_tools(tiny_bert_dir, tiny_tokenizer, tmp_path):
    """from_pretrained reads the dequantized copy (model.safetensors) and ONNX Runtime the int8 model,
    from a copy of the folder, in a process without bertcompress: both match the in-memory model."""
    import shutil
    import subprocess
    import sys

    from bertcompress.evaluation.profile import bytes_on_disk
    from bertcompress.models.quantized.packed import README_FILE, STANDARD_WEIGHTS_FILE

    model, qcfg = _quantized(tiny_bert_dir, "w4a8")
    batch = tiny_tokenizer(SENTENCES * 4, padding=True, return_tensors="pt")
    calibrate_(model, dict(batch))
    with torch.no_grad():  # steps off their init, as training leaves them
        for name, p in model.named_parameters():
            if name.endswith(".step"):
                p.mul_(1.1)
    save_packed(tmp_path / "q", model, qcfg, tokenizer=tiny_tokenizer, write_onnx=export_onnx_int8)
    copy = shutil.copytree(tmp_path / "q", tmp_path / "elsewhere" / "copy")
    out = subprocess.run([sys.executable, "-c", STANDARD_TOOLS, str(copy), json.dumps(SENTENCES)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["info"]["missing_keys"] == [] and got["info"]["unexpected_keys"] == []

    enc = tiny_tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        fake_quant = model(**enc).logits
        weights_only = float_activations(model)(**enc).logits
    standard, onnx = torch.tensor(got["logits"]), torch.tensor(got["onnx"])
    # the dequantized weights are the quantized model's exactly: only the activations differ
    assert torch.allclose(standard, weights_only, atol=1e-6, rtol=0)
    scale = fake_quant.abs().max().item()
    assert torch.allclose(standard, fake_quant, atol=0.05 * scale, rtol=0)
    assert torch.equal(standard.argmax(-1), fake_quant.argmax(-1))
    assert torch.allclose(onnx, fake_quant, atol=0.05 * scale, rtol=0)
    assert torch.equal(onnx.argmax(-1), fake_quant.argmax(-1))

    # the folder says which file is which; its size is still the packed file's
    readme = (tmp_path / "q" / README_FILE).read_text()
    for name in (WEIGHTS_FILE, DESCRIPTION_FILE, STANDARD_WEIGHTS_FILE, "onnx/model.onnx", "load_packed",
                 "AutoModelForSequenceClassification.from_pretrained", "InferenceSession"):
        assert name in readme, name
    assert bytes_on_disk(tmp_path / "q") == (tmp_path / "q" / WEIGHTS_FILE).stat().st_size
    assert (tmp_path / "q" / STANDARD_WEIGHTS_FILE).stat().st_size > bytes_on_disk(tmp_path / "q")


def test_packed_tagger_loads_with_from_pretrained(tiny_bert_dir, tmp_path):
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=5,
                                                            ignore_mismatched_sizes=True).eval()
    qcfg = QuantConfig.parse("w2a8")
    quantize_(model, qcfg)
    batch = _batch()
    calibrate_(model, batch)
    save_packed(tmp_path / "t", model, qcfg, model_kind="token_classifier")
    plain, info = AutoModelForTokenClassification.from_pretrained(tmp_path / "t", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    with torch.no_grad():
        assert torch.allclose(plain.eval()(**batch).logits, float_activations(model)(**batch).logits,
                              atol=1e-6, rtol=0)
    assert "AutoModelForTokenClassification" in (tmp_path / "t" / "README.md").read_text()
    # bertcompress itself still reads the packed file: the quantized model, bit for bit
    from bertcompress.models.loading import load_model

    with torch.no_grad():
        assert torch.equal(load_model(str(tmp_path / "t"))(**batch).logits, model(**batch).logits)
