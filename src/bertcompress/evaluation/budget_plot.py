"""The budget's plot in the HTML report: every measured candidate's latency against its size on
disk, one marker per format, the budgets as dashed lines (dotted: a latency limit less the safety
margin), the pick ringed and the final model starred."""

from __future__ import annotations

import io
from typing import Any

from bertcompress.evaluation.budget import parse_budgets

MARKERS = {"fp32": "o", "onnx": "s", "onnx-int8": "D", "w8a8": "^", "w4a8": "v"}


def budget_plot(budget: dict[str, Any]) -> bytes | None:
    """PNG bytes, or None when no candidate has both a latency and a size."""
    from matplotlib.figure import Figure  # the Agg canvas, no pyplot state: safe without a display

    shown = [c for c in budget["candidates"] if c.get("latency_ms") is not None and c.get("bytes") is not None]
    if not shown:
        return None
    fig = Figure(figsize=(7.5, 4.8), dpi=110, layout="constrained")
    ax = fig.subplots()
    for fmt, marker in MARKERS.items():
        for fits in (True, False):
            pts = [c for c in shown if c["format"] == fmt and (c["status"] == "fits") == fits]
            if pts:
                ax.scatter([c["latency_ms"] for c in pts], [c["bytes"] / 1e6 for c in pts], marker=marker, s=36,
                           color="#2ca02c" if fits else "#b0b0b0", edgecolor="black", linewidth=0.4, zorder=3,
                           label=f"{fmt} ({'fits' if fits else 'misses'})")
    teacher_ms = budget["teacher_ms"]
    for b in parse_budgets(budget["targets"]):
        if b.timed:
            ax.axvline(b.limit(teacher_ms), color="#d62728", linestyle="--", linewidth=1)
            margin = budget["setting"].get("margin", 0.0)
            if margin:  # where a candidate had to come in, timed before training
                ax.axvline(b.limit(teacher_ms) * (1 - margin), color="#d62728", linestyle=":", linewidth=0.8)
            ax.annotate(b.text, (b.limit(teacher_ms), 1), xycoords=("data", "axes fraction"), color="#d62728",
                        fontsize=8, xytext=(3, -12), textcoords="offset points")
        elif b.kind == "bytes":
            ax.axhline(b.value / 1e6, color="#d62728", linestyle="--", linewidth=1)
            ax.annotate(b.text, (0, b.value / 1e6), xycoords=("axes fraction", "data"), color="#d62728",
                        fontsize=8, xytext=(3, 3), textcoords="offset points")
    pick = budget["pick"]
    if pick.get("latency_ms") is not None and pick.get("bytes") is not None:
        ax.scatter([pick["latency_ms"]], [pick["bytes"] / 1e6], s=260, facecolor="none", edgecolor="#1f77b4",
                   linewidth=2, zorder=4, label=f"pick: {pick['name']}")
    final = budget.get("final")
    if final is not None:
        ax.scatter([final["latency_ms"]], [final["bytes"] / 1e6], marker="*", s=220, color="#1f77b4",
                   edgecolor="black", linewidth=0.5, zorder=5, label="final model, re-measured")
    xs, ys = [c["latency_ms"] for c in shown], [c["bytes"] for c in shown]
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    if min(ys) > 0 and max(ys) / min(ys) > 20:
        ax.set_yscale("log")
    s = budget["setting"]
    ax.set(xlabel=f"latency (ms, {s['device']}, {s['threads']} threads, batch {s['batch_size']} x {s['seq_len']})",
           ylabel="MB on disk", title=f"Candidates against the budgets ({', '.join(budget['targets'])}); "
                                      f"teacher {teacher_ms:.1f} ms")
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
