"""An int8 model that really runs int8 on CPU: ONNX with QuantizeLinear/DequantizeLinear (QDQ)
nodes carrying the learned LSQ steps as scales, executed by ONNX Runtime.

Each QuantLinear becomes Q(x; s_a) → DQ → MatMul ← DQ(W_int8; s_w) → + b. ONNX Runtime's QDQ
optimiser fuses that into MatMulIntegerToFloat (int8 × int8 → int32 accumulation, rescaled to
float), so the linear layers, nearly all of BERT's compute, run on integer kernels. The numbers are
the fake-quantized model's: weights are its integer codes, activation codes are round(x/s_a)
clipped to int8, the same rounding (half to even) as torch.round.

Two details make the fusion happen:
- activations are exported as uint8 with zero point 128, which is the signed code + 128: the same
  values, but the layout ONNX Runtime's x86 integer MatMul takes (with signed activations it
  inserts a conversion that blocks the fusion when one Q feeds several layers, as Q/K/V do);
- weights go through the exporter as fake-quantized constants, whose QuantizeLinear we then fold
  into int8 initializers (`fold_weight_quantization`): the file stores int8 codes + DequantizeLinear.

Needs 8-bit activations (int8 kernels); weights may be 2 to 8 bits (their codes fit int8).
Attention matmuls, softmax, LayerNorm and GELU stay float. The embedding table is stored
dequantized in float here: this file is for speed; the small file is quant/pack.py's.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..models.intermediates import model_inputs
from .modules import QuantEmbedding, QuantLinear

OPSET = 17


class QDQLinear(nn.Module):
    """The inference form of a QuantLinear, written with the fake-quantize ops that the ONNX
    exporter turns into QuantizeLinear/DequantizeLinear pairs."""

    def __init__(self, q: QuantLinear):
        super().__init__()
        wq, aq = q.weight_quant, q.act_quant
        if aq is None or aq.bits != 8 or not aq.signed:
            raise UserError("ONNX int8 export needs 8-bit signed activation quantizers (quant.act_bits: 8)")
        with torch.no_grad():
            weight = wq(q.weight) if wq is not None else q.weight  # the quantized values
            self.register_buffer("weight", weight.detach().clone())
            self.register_buffer("bias", q.bias.detach().clone() if q.bias is not None else None)
            step = wq.step.detach().float().clamp_min(1e-8) if wq is not None else None
        self.per_channel = wq is not None and wq.per_channel
        self.register_buffer("w_scale", step)
        self.register_buffer("w_zero", torch.zeros_like(step, dtype=torch.int32) if step is not None else None)
        self.w_scale_scalar = float(step[0]) if step is not None else 0.0  # per-tensor: a constant in the graph
        self.a_scale = float(aq.step.detach().clamp_min(1e-8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # signed code c in [-128, 127] == unsigned code c + 128 in [0, 255]: identical values
        x = torch.fake_quantize_per_tensor_affine(x, self.a_scale, 128, 0, 255)
        w = self.weight
        if self.w_scale is not None:  # codes are within int8 for every bit width up to 8
            w = torch.fake_quantize_per_channel_affine(w, self.w_scale, self.w_zero, 0, -128, 127) \
                if self.per_channel else torch.fake_quantize_per_tensor_affine(w, self.w_scale_scalar, 0, -128, 127)
        return F.linear(x, w, self.bias)


def qdq_copy(model: nn.Module) -> nn.Module:
    """A copy of a fake-quantized model in its exportable inference form."""
    out = copy.deepcopy(model).cpu().eval()
    for name, module in list(out.named_modules()):
        if isinstance(module, (QuantLinear, QuantEmbedding)):
            if isinstance(module, QuantLinear):
                new = QDQLinear(module)
            else:
                new = nn.Embedding(module.num_embeddings, module.embedding_dim, module.padding_idx)
                with torch.no_grad():
                    new.weight.copy_(module.weight_quant(module.weight))
            parent, _, child = name.rpartition(".")
            setattr(out.get_submodule(parent) if parent else out, child, new)
    return out


class _LogitsOnly(nn.Module):
    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs))).logits


def export_onnx_int8(model: nn.Module, path: str | Path) -> Path:
    """Write the fake-quantized `model` as a QDQ ONNX file (batch and length dynamic). From a
    packed folder, load it with `load_packed(folder, keep_weight_quantizers=True)`: a linear layer
    without its weight quantizer has no integer weights to export and stays a float MatMul."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    qdq = qdq_copy(model)
    vocab = qdq.config.vocab_size
    # a padded row, so the traced graph keeps the attention-mask path (an all-ones mask may be
    # optimised away by `transformers` while tracing)
    ids = torch.randint(5, vocab, (2, 16), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    batch = model_inputs({"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}, qdq)
    names = list(batch)
    wrapper = _LogitsOnly(qdq, names).eval()
    axes = {n: {0: "batch", 1: "length"} for n in names} | {"logits": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(wrapper, tuple(batch.values()), str(path), dynamo=False, opset_version=OPSET,
                          input_names=names, output_names=["logits"], dynamic_axes=axes)
    fold_weight_quantization(path)
    return path


def fold_weight_quantization(path: str | Path) -> None:
    """Replace each QuantizeLinear of a float weight initializer by the int8 initializer it
    computes, so the file holds int8 weights (ONNX Runtime would fold them at load time anyway;
    this makes the file ~4x smaller for the linear layers)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}

    def constant(name: str) -> np.ndarray | None:
        while name in producers and producers[name].op_type == "Identity":
            name = producers[name].input[0]
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = producers.get(name)
        return numpy_helper.to_array(node.attribute[0].t) if node is not None and node.op_type == "Constant" else None

    folded = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in inits or len(node.input) < 3:
            continue
        w, scale, zero = (constant(name) for name in node.input[:3])
        if scale is None or zero is None:
            continue
        if scale.size > 1:  # per-axis: broadcast along the node's axis (ONNX default 1)
            shape = [1] * w.ndim
            shape[next((a.i for a in node.attribute if a.name == "axis"), 1)] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        lo, hi = np.iinfo(zero.dtype).min, np.iinfo(zero.dtype).max
        codes = np.clip(np.rint(w / scale) + zero.astype(np.int32), lo, hi).astype(zero.dtype)
        graph.initializer.append(numpy_helper.from_array(codes, node.output[0]))
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    onnx.save(model, str(path))


class OnnxClassifier:
    """An ONNX Runtime session with the model's calling convention: batch dict in, logits out."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        feeds = {n: batch[n].cpu().numpy().astype(np.int64) for n in self.input_names}
        return torch.from_numpy(self.session.run(["logits"], feeds)[0])

    def predict_logits(self, features: list[dict], collate: Callable, batch_size: int = 64) -> torch.Tensor:
        out = [self(collate(features[i:i + batch_size])) for i in range(0, len(features), batch_size)]
        return torch.cat(out) if out else torch.empty(0)
