"""Latency of NAS-BERT architectures from a per-module lookup table measured on the target device.

Timing every candidate architecture is out of reach; timing once each module an assembled model
(assemble.py) runs is not: an op at a width, a projection between two widths, the embeddings at
a width, the pooler. An architecture's latency is predicted as the sum of its modules' entries.
The sum misses what only a whole model pays: its per-call overhead, and weights that no longer sit
in cache when the next module runs (a module timed alone keeps its own weights hot). On a CPU at
one thread the raw sum was 35% short of measured models (benchmarks/README.md, nas_bert), so the
sum is calibrated: `LatencyCalibration.fit` maps it to measured latency by a line fitted on a few
assembled models that span the range (`nas` measures them once, beside the table).
`measure_model_ms` times a whole model to check the prediction.

Keys: "{op}@{h}" (one slot of `op` at width h, identity included: the model calls it too),
"proj@{a}>{b}" (a Linear a -> b: the embedding projection, each block's input projection and the
output projection), "embed@{E}" (lookups, sum and LayerNorm at width E), "pooler@{T}".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from bertcompress.core.errors import UserError
from bertcompress.evaluation.profile import measure_latency, time_call, torch_threads
from bertcompress.models.nasbert.arch import OPS, BlockArch, NasArch
from bertcompress.models.nasbert.modeling import NasBertEmbeddings, NasBertPooler
from bertcompress.models.nasbert.ops import make_op


@dataclass
class LatencyTable:
    device: str
    threads: int
    batch_size: int
    seq_len: int
    output_width: int  # the teacher's width, where the output projection ends and the pooler runs
    entries: dict[str, float] = field(default_factory=dict)  # median milliseconds per key

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyTable:
        try:
            return cls(device=str(data["device"]), threads=int(data["threads"]), batch_size=int(data["batch_size"]),
                       seq_len=int(data["seq_len"]), output_width=int(data["output_width"]),
                       entries={str(k): float(v) for k, v in data["entries"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"not a NAS-BERT latency table ({type(e).__name__} {e})") from None


@dataclass
class LatencyCalibration:
    """measured ms ~ scale x (summed table entries) + offset_ms, fitted on whole measured models."""

    scale: float = 1.0
    offset_ms: float = 0.0
    models: list[dict[str, Any]] = field(default_factory=list)  # {"arch", "predicted_raw_ms", "latency_ms"}

    def __call__(self, raw_ms: float) -> float:
        return self.scale * raw_ms + self.offset_ms

    @classmethod
    def fit(cls, raw_ms: list[float], measured_ms: list[float], archs: list[str] | None = None) -> LatencyCalibration:
        """Least squares over (raw sum, measured) pairs. Fewer than two distinct sums, or a slope
        that is not positive (noise), fall back to a pure ratio: the median of measured / raw."""
        raw, measured = np.asarray(raw_ms, dtype=float), np.asarray(measured_ms, dtype=float)
        models = [{"arch": a, "predicted_raw_ms": float(r), "latency_ms": float(m)}
                  for a, r, m in zip(archs or [""] * len(raw), raw, measured)]
        if len(raw) == 0:
            return cls(models=models)
        scale, offset = (np.polyfit(raw, measured, 1) if len(np.unique(raw)) >= 2 else (0.0, 0.0))
        if not scale > 0:
            scale, offset = float(np.median(measured / raw)), 0.0
        return cls(float(scale), float(offset), models)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyCalibration:
        return cls(float(data["scale"]), float(data["offset_ms"]), list(data.get("models", [])))


def arch_keys(arch: NasArch | dict | str, output_width: int, pooler: bool = True) -> list[str]:
    """The table entries the model assembled for `arch` runs, in order (repeats included)."""
    arch = NasArch.coerce(arch)
    width = arch.embedding_width
    keys = [f"embed@{width}"]
    for block in arch.blocks:
        keys.append(f"proj@{width}>{block.hidden}")
        keys += [f"{op}@{block.hidden}" for op in block.ops]
        width = block.hidden
    keys.append(f"proj@{width}>{output_width}")
    return keys + ([f"pooler@{output_width}"] if pooler else [])


def _sum(table: LatencyTable, keys: list[str], what: str) -> float:
    missing = next((k for k in keys if k not in table.entries), None)
    if missing is not None:
        raise UserError(f"the latency table has no entry {missing!r} for {what}; "
                        "measure it with the arch's widths, embedding sizes and ops")
    return sum(table.entries[k] for k in keys)


def predict_ms(table: LatencyTable, arch: NasArch | dict | str, pooler: bool = True) -> float:
    """The raw prediction for the assembled `arch`: the sum of its modules' entries (calibrate it
    with a `LatencyCalibration` to compare with a whole model's measured latency)."""
    return _sum(table, arch_keys(arch, table.output_width, pooler), f"NAS arch {NasArch.coerce(arch)}")


def block_ms(table: LatencyTable, block: BlockArch) -> float:
    """Predicted latency of one block's slots; the projections between widths belong to the whole arch."""
    return _sum(table, [f"{op}@{block.hidden}" for op in block.ops], f"block {block.hidden}:{','.join(block.ops)}")


def _modules(widths: list[int], embedding_sizes: list[int], output_width: int, ops: list[str], *,
             head_size: int, vocab_size: int, type_vocab_size: int, seq_len: int,
             layer_norm_eps: float) -> Iterator[tuple[str, Callable[[], nn.Module], int | None, bool]]:
    """(key, module factory, input width (None: token ids), whether it takes the mask) per entry."""
    for e in embedding_sizes:
        yield f"embed@{e}", lambda e=e: NasBertEmbeddings(e, vocab_size, seq_len, type_vocab_size, 0,
                                                          layer_norm_eps, 0.0), None, False
    for op in ops:
        for h in widths:
            if op != "mha" or h % head_size == 0:  # no arch has attention at other widths
                yield f"{op}@{h}", lambda op=op, h=h: make_op(op, h, head_size, 0.0, layer_norm_eps), h, True
    pairs = {(e, h) for e in embedding_sizes for h in widths} | {(a, b) for a in widths for b in widths} \
        | {(h, output_width) for h in widths}
    for a, b in sorted(pairs):
        yield f"proj@{a}>{b}", lambda a=a, b=b: nn.Linear(a, b), a, False
    yield f"pooler@{output_width}", lambda: NasBertPooler(output_width), output_width, False


def _device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device} asked for, but no CUDA device is available")
    return dev


@torch.no_grad()
def measure_table(widths: Iterable[int], embedding_sizes: Iterable[int], teacher_width: int,
                  ops: Iterable[str] = OPS, *, head_size: int = 64, vocab_size: int = 30522,
                  type_vocab_size: int = 2, layer_norm_eps: float = 1e-12, device: str = "cpu",
                  threads: int | None = None, batch_size: int = 1, seq_len: int = 128, repeats: int = 20,
                  warmup: int = 3) -> LatencyTable:
    """Time every module alone (eval mode, float32, random weights) on a random [batch_size,
    seq_len, width] input with an all-real mask, as profile.measure_latency times whole models."""
    if batch_size < 1 or seq_len < 2:
        raise UserError(f"latency needs batch size >= 1 and sequence length >= 2, got {batch_size}, {seq_len}")
    ops = list(dict.fromkeys(ops))
    if any(op not in OPS for op in ops):
        raise UserError(f"NAS-BERT ops must be some of {', '.join(OPS)}, got {ops}")
    dev = _device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(min(5, vocab_size - 1), vocab_size, (batch_size, seq_len), generator=g).to(dev)
    types = torch.zeros_like(ids)
    mask = torch.ones(batch_size, seq_len, dtype=torch.long, device=dev)
    entries = {}
    with torch_threads(threads) as used:
        modules = _modules(sorted(set(widths)), sorted(set(embedding_sizes)), teacher_width, ops,
                           head_size=head_size, vocab_size=vocab_size, type_vocab_size=type_vocab_size,
                           seq_len=seq_len, layer_norm_eps=layer_norm_eps)
        for key, factory, width, takes_mask in modules:
            module = factory().eval().to(dev)
            if width is None:
                args = (ids, types if type_vocab_size else None)
            else:
                x = torch.randn(batch_size, seq_len, width, generator=g).to(dev)
                args = (x, mask) if takes_mask else (x,)
            entries[key] = time_call(lambda: module(*args), warmup=warmup, repeats=repeats, sync=sync)["median_ms"]
    return LatencyTable(device=dev.type, threads=used, batch_size=batch_size, seq_len=seq_len,
                        output_width=teacher_width, entries=entries)


def measure_model_ms(model: nn.Module, *, device: str = "cpu", threads: int | None = None, batch_size: int = 1,
                     seq_len: int = 128, repeats: int = 20, warmup: int = 3) -> float:
    """Median whole-model latency (profile.measure_latency), to compare with `predict_ms` under
    the table's settings."""
    _device(device)
    return measure_latency(model, batch_size=batch_size, seq_len=seq_len, repeats=repeats, warmup=warmup,
                           device=device, threads=threads)["median_ms"]
