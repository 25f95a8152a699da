"""The int8 ONNX model agrees with the fake-quantized model and runs integer MatMuls."""

from __future__ import annotations

import collections

import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.data.encoding import Collator
from bertcompress.export.onnx import OnnxClassifier
from bertcompress.export.onnx_int8 import export_onnx_int8
from bertcompress.models.quantized.config import QuantConfig
from bertcompress.models.quantized.modules import calibrate_, quantize_


def _features(n, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(3, 40, (1,), generator=g))
        ids = [2] + torch.randint(5, vocab, (length,), generator=g).tolist() + [3]
        out.append({"input_ids": ids, "token_type_ids": [0] * len(ids)})
    return out


@pytest.mark.parametrize("spec,per_channel", [("w8a8", True), ("w4a8", False)])
def test_onnx_int8_agrees_with_fake_quantized_model(tiny_bert_dir, tmp_path, spec, per_channel):
    import onnx
    import onnxruntime as ort
    from transformers import AutoModelForSequenceClassification

    from bertcompress.evaluation.predict import predict_logits

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).eval()
    quantize_(model, QuantConfig.parse(spec, per_channel=per_channel))
    vocab, collate = model.config.vocab_size, Collator(0)
    features = _features(400, vocab)
    calibrate_(model, collate(features[:32]))
    path = export_onnx_int8(model, tmp_path / "model.onnx")

    onnx_logits = OnnxClassifier(path, threads=1).predict_logits(features, collate, batch_size=50)
    torch_logits = predict_logits(model, features, collate, batch_size=50)
    agreement = (onnx_logits.argmax(-1) == torch_logits.argmax(-1)).float().mean().item()
    assert agreement >= 0.995, agreement
    assert torch.allclose(onnx_logits, torch_logits, atol=0.05 * torch_logits.abs().max().item())

    # ONNX Runtime fuses the QDQ linears into integer MatMuls: every encoder linear (6 per layer)
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    ops = collections.Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
    assert ops["MatMulIntegerToFloat"] >= 6 * model.config.num_hidden_layers, ops


def test_onnx_needs_8bit_activations(tiny_bert_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = quantize_(AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir), QuantConfig.parse("w8a4"))
    with pytest.raises(UserError, match="8-bit"):
        export_onnx_int8(model, tmp_path / "m.onnx")
