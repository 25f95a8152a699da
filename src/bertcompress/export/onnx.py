"""Export a sequence classifier to ONNX and run it with ONNX Runtime on the CPU; the one home
of the torch → ONNX step for the float check in evaluation and the int8 form in export/onnx_int8.py.

We use the TorchScript exporter (`torch.onnx.export(..., dynamo=False)`): it needs no extra
package, exports all five encoder families we support in well under a second, and its graphs
match PyTorch to ~1e-8 (tested). The dynamo exporter would add `onnxscript` as a dependency.
The export is traced on a batch with a padded row, so the attention-mask path is in the graph
even if a library version skips the mask for all-ones inputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_write
from bertcompress.models.inputs import synthetic_batch

OPSET = 17
EXPORTER = f"torch.onnx TorchScript exporter (dynamo=False), opset {OPSET}"


def _trace_batch(model: nn.Module) -> dict[str, torch.Tensor]:
    """Two rows of 8 tokens, the second padded, with exactly the inputs this model takes."""
    batch = synthetic_batch(model, 2, 8)
    batch["attention_mask"][1, 5:] = 0  # a padded row: keep the mask in the traced graph
    return batch


def onnx_input_names(model: nn.Module) -> list[str]:
    """The inputs the graph takes: input_ids, attention_mask, and token_type_ids when the model uses them."""
    return list(_trace_batch(model))


class _LogitsOnly(nn.Module):
    """Positional inputs in, logits out: the graph gets exactly one output, whatever the model returns."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs))).logits


@torch.no_grad()
def export_onnx(model: nn.Module, path: str | Path, *, opset: int = OPSET,
                finish: Callable[[Path], None] | None = None) -> Path:
    """Write `model` (a sequence classifier; moved to the CPU) to `path` atomically: dynamic batch
    and sequence axes, output `logits`. `finish` may rewrite the file before it takes `path`'s place."""
    model = model.eval().cpu()
    example = _trace_batch(model)
    names = list(example)
    wrapper = _LogitsOnly(model, names).eval()  # the exporter restores the wrapper's mode onto the model
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings on shape checks; the tests compare outputs
            torch.onnx.export(wrapper, tuple(example.values()), str(tmp), input_names=names, output_names=["logits"],
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
        if finish is not None:
            finish(tmp)

    return atomic_write(path, write)


def onnx_session(path: str | Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session with `threads` intra-op threads (None: torch's current count)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1  # one graph at a time; intra-op threads are the ones we state
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for unreadable or invalid files
        raise UserError(f"cannot load ONNX model {path}: {str(e).strip().splitlines()[0]}") from None


def onnx_logits(session: Any, batch: dict[str, Any]) -> np.ndarray:
    """Logits for one batch (tensors on any device, or arrays); extra keys (labels, unused
    token_type_ids) are ignored. A graph that takes token_type_ids from a tokenizer that gives none
    (an ALBERT teacher with an MPNet tokenizer) gets zeros, as the PyTorch model defaults to."""
    def array(value: Any) -> np.ndarray:
        return np.asarray(value.cpu() if hasattr(value, "cpu") else value, dtype=np.int64)

    feed = {i.name: array(batch[i.name]) for i in session.get_inputs() if i.name in batch}
    if "token_type_ids" not in feed and any(i.name == "token_type_ids" for i in session.get_inputs()):
        feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
    return session.run(["logits"], feed)[0]


def onnx_predict_logits(session: Any, features: list[dict], collate: Callable, batch_size: int = 64) -> np.ndarray:
    """ONNX Runtime counterpart of `predict.predict_logits`: the same batches, logits stacked."""
    out = [onnx_logits(session, collate(features[i:i + batch_size])) for i in range(0, len(features), batch_size)]
    return np.concatenate(out) if out else np.empty((0, 0), dtype=np.float32)


class OnnxClassifier:
    """A session with the PyTorch model's calling convention: batch dict in, logits tensor out."""

    def __init__(self, path: str | Path, threads: int | None = None):
        self.session = onnx_session(path, threads)

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.from_numpy(onnx_logits(self.session, batch))

    def predict_logits(self, features: list[dict], collate: Callable, batch_size: int = 64) -> torch.Tensor:
        return torch.from_numpy(onnx_predict_logits(self.session, features, collate, batch_size))
