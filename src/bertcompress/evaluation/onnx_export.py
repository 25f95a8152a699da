"""Export a sequence classifier to ONNX and run it with ONNX Runtime on the CPU.

We use the TorchScript exporter (`torch.onnx.export(..., dynamo=False)`): it needs no extra
package, exports all five encoder families we support in well under a second, and its graphs
match PyTorch to ~1e-8 (tested). The dynamo exporter would add `onnxscript` as a dependency.
The export is traced on a batch with a padded row, so the attention-mask path is in the graph
even if a library version skips the mask for all-ones inputs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from .profile import synthetic_batch

OPSET = 17
EXPORTER = f"torch.onnx TorchScript exporter (dynamo=False), opset {OPSET}"


def onnx_input_names(model: nn.Module) -> list[str]:
    """The inputs the graph takes: input_ids, attention_mask, and token_type_ids when the model uses them."""
    return list(synthetic_batch(model, 1, 2))


@torch.no_grad()
def export_onnx(model: nn.Module, path: str | Path, *, opset: int = OPSET) -> Path:
    """Write `model` (a sequence classifier, on the CPU) to `path` atomically; dynamic batch and
    sequence axes; output `logits`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    example = synthetic_batch(model, 2, 8)
    example["attention_mask"][1, 5:] = 0  # a padded row: keep the mask in the traced graph
    names = list(example)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings on shape checks; the test compares outputs
            torch.onnx.export(model, tuple(example.values()), tmp, input_names=names, output_names=["logits"],
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


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
    """Logits for one batch; extra keys (labels, unused token_type_ids) are ignored."""
    wanted = [i.name for i in session.get_inputs()]
    feed = {k: np.asarray(batch[k].numpy() if hasattr(batch[k], "numpy") else batch[k], dtype=np.int64)
            for k in wanted}
    return session.run(["logits"], feed)[0]


def onnx_predict_logits(session: Any, features: list[dict], collate: Callable, batch_size: int = 64) -> np.ndarray:
    """ONNX Runtime counterpart of `predict.predict_logits`: the same batches, logits stacked."""
    out = [onnx_logits(session, collate(features[i:i + batch_size])) for i in range(0, len(features), batch_size)]
    return np.concatenate(out) if out else np.empty((0, 0), dtype=np.float32)
