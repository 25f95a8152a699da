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

The export itself and the ONNX Runtime session are export/onnx.py's; this file adds the int8 parts.
Needs 8-bit activations (int8 kernels); weights may be 2 to 8 bits (their codes fit int8).
Attention matmuls, softmax, LayerNorm and GELU stay float. The embedding table is stored
dequantized in float here: this file is for speed; the small file is models/quantized/packed.py's.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.export.onnx import export_onnx
from bertcompress.models.quantized.modules import QuantEmbedding, QuantLinear


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


def export_onnx_int8(model: nn.Module, path: str | Path) -> Path:
    """Write the fake-quantized `model` as a QDQ ONNX file (batch and length dynamic). From a
    packed folder, load it with `load_packed(folder, keep_weight_quantizers=True)`: a linear layer
    without its weight quantizer has no integer weights to export and stays a float MatMul."""
    return export_onnx(qdq_copy(model), path, finish=fold_weight_quantization)


def fold_weight_quantization(path: str | Path) -> None:
    """Replace each QuantizeLinear of a float weight initializer by the int8 initializer it
    computes, so the file holds int8 weights (ONNX Runtime would fold them at load time anyway;
    this makes the file ~4x smaller for the linear layers). Ours: ONNX Runtime folds only inside a
    session (a saved optimised model would also bake in this machine's fusions), and the onnx
    package does no constant folding."""
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
