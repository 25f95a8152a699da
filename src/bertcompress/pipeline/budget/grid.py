"""The candidates of a budget: shapes of the source's family (depth x width, heads at its head
size, FFN at its ratio to the width), each in every format it may ship in.

The source is the teacher, or the pre-trained model `student.init` names. A format says what
runs and what is counted on disk:
    fp32       PyTorch eager, float32                      model.safetensors
    onnx       ONNX Runtime, float32                       model.onnx
    onnx-int8  ONNX Runtime, int8 QDQ of a KDLSQ w8a8 model onnx/model.onnx of the quantized folder
    w8a8/w4a8  PyTorch eager from the packed KDLSQ folder  quantized.safetensors
               (weights dequantized, activations fake-quantized: small on disk, not faster)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bertcompress.core.errors import UserError
from bertcompress.evaluation.budget import show_count
from bertcompress.models.family import family_of


@dataclass(frozen=True)
class Format:
    name: str
    runtime: str
    ships: str
    precision: int  # 0 float, 1 8-bit weights, 2 4-bit weights: lower is expected more accurate
    bits: str | None = None  # the KDLSQ bit widths it is trained at, if quantized


FORMATS = {f.name: f for f in (
    Format("fp32", "PyTorch eager", "model.safetensors", 0),
    Format("onnx", "ONNX Runtime", "model.onnx (fp32)", 0),
    Format("onnx-int8", "ONNX Runtime int8", "onnx/model.onnx (int8 QDQ)", 1, "w8a8"),
    Format("w8a8", "PyTorch eager, packed", "quantized.safetensors (8-bit)", 1, "w8a8"),
    Format("w4a8", "PyTorch eager, packed", "quantized.safetensors (4-bit)", 2, "w4a8"),
)}
DEFAULT_DEPTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24)
DEFAULT_WIDTH_SHARES = (1.0, 3 / 4, 1 / 2, 1 / 3)


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    ffn: int
    name: str

    def covers(self, other: Shape) -> bool:
        """At least as large as `other` in every size: at least as slow and as big in any format."""
        return (self.layers >= other.layers and self.hidden >= other.hidden and self.heads >= other.heads
                and self.ffn >= other.ffn)


@dataclass
class Candidate:
    shape: Shape
    format: str
    parameters: int
    non_embedding: int  # the parameters outside the embeddings: what the pick ranks by
    latency_ms: float | None = None
    bytes: int | None = None
    status: str = "not measured"  # fits, misses, skipped, not measured
    note: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)  # evaluation/budget.check, with the margin

    @property
    def name(self) -> str:
        return f"{self.shape.name} {self.format}"

    @property
    def costs(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms, "bytes": self.bytes, "parameters": self.parameters}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "num_layers": self.shape.layers, "hidden_size": self.shape.hidden,
                "num_heads": self.shape.heads, "ffn_size": self.shape.ffn, "format": self.format,
                "parameters": self.parameters, "non_embedding_parameters": self.non_embedding,
                "latency_ms": self.latency_ms, "bytes": self.bytes,
                "status": self.status, "note": self.note, "results": self.results}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        name = d["name"].rsplit(" ", 1)[0]
        shape = Shape(d["num_layers"], d["hidden_size"], d["num_heads"], d["ffn_size"], name)
        return cls(shape, d["format"], d["parameters"], d["non_embedding_parameters"], d.get("latency_ms"),
                   d.get("bytes"), d.get("status", ""), d.get("note", ""), list(d.get("results", [])))


def source_sizes(config) -> tuple[int, int, int, int]:
    """Layers, hidden size, heads and FFN size of a model config of a supported family."""
    return tuple(int(getattr(config, f)) for f in family_of(config).size_fields)  # type: ignore[return-value]


def shapes(config, depths: list[int] | None = None, widths: list[int] | None = None,
           ffn_ratios: list[float] | None = None, what: str = "the teacher") -> list[Shape]:
    """The grid over `config`'s sizes (`what` names it in messages): every depth x width x FFN
    ratio, heads at the source's head size. Widths that are not a multiple of the head size, and
    depths or widths above the source's, are refused: a student is no larger than its source."""
    layers, hidden, heads, ffn = source_sizes(config)
    head_size = hidden // heads
    if depths is None:
        depths = sorted({d for d in DEFAULT_DEPTHS if d <= layers} | {layers})
    if widths is None:
        widths = sorted({max(head_size, round(hidden * share / head_size) * head_size)
                         for share in DEFAULT_WIDTH_SHARES})
    for d in depths:
        if d > layers:
            raise UserError(f"budget.depths: {d} is deeper than {what} ({layers} layers)")
    for w in widths:
        if w > hidden or w % head_size:
            raise UserError(f"budget.widths: {w} must be a multiple of the head size {head_size} of {what}, "
                            f"at most its hidden size {hidden}")
    own_ratio = ffn / hidden
    out = []
    for ratio in ffn_ratios or [own_ratio]:
        for d in sorted(set(depths)):
            for w in sorted(set(widths)):
                f = max(1, round(w * ratio))
                name = f"{d}x{w}" + ("" if abs(ratio - own_ratio) < 1e-9 else f"-ffn{f}")
                out.append(Shape(d, w, w // head_size, f, name))
    return out


def candidate_table(candidates: list[dict[str, Any]], teacher_ms: float | None, skipped: bool = False) -> str:
    """The candidates as a Markdown table (dicts as `Candidate.to_dict` writes them); those not
    measured are counted in a line under it unless `skipped` lists them too."""
    left_out = [c for c in candidates if c["status"] == "skipped" and not skipped]
    candidates = [c for c in candidates if skipped or c["status"] != "skipped"]
    rows = ["| candidate | layers x hidden, heads, FFN | format | parameters (non-embedding) | latency ms | speed-up "
            "| MB on disk | fits? |", "|---|---|---|---|---|---|---|---|"]
    for c in candidates:
        ms = c["latency_ms"]
        speedup = f"{teacher_ms / ms:.1f}x" if ms and teacher_ms else "-"
        size = "-" if c["bytes"] is None else f"{c['bytes'] / 1e6:.{1 if c['bytes'] >= 1e5 else 3}f}"
        status = c["status"] + (f" ({c['note']})" if c["note"] else "")
        rows.append(f"| {c['name']} | {c['num_layers']} x {c['hidden_size']}, {c['num_heads']}, {c['ffn_size']} "
                    f"| {c['format']} | {show_count(c['parameters'])} ({show_count(c['non_embedding_parameters'])}) "
                    f"| {f'{ms:.1f}' if ms is not None else '-'} "
                    f"| {speedup} | {size} | {status} |")
    if left_out:
        rows += ["", f"{len(left_out)} more not measured: each at least as large, in the same format, as a "
                 "candidate that misses a budget (listed in report.json)"]
    return "\n".join(rows)
