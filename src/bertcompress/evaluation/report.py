"""`report`: evaluation records -> one self-contained HTML page (plots embedded as base64 PNG) and
a Markdown summary (plots beside it as PNG files).

The page has a table of every model and metric, accuracy against latency per runtime and batch
size and accuracy against size, each with its Pareto front marked, and loyalty and robustness
charts when the records carry those keys.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_write_bytes, atomic_write_text

METRICS = ("accuracy", "span_f1", "f1", "mcc", "pearson", "spearman")
LOYALTY = ("label_loyalty", "probability_loyalty")
ROBUSTNESS = ("attack_accuracy", "attack_success_rate", "advglue_accuracy")
RUNTIMES = (("latency", "CPU eager"), ("latency_onnx", "ONNX Runtime CPU"), ("latency_cuda", "CUDA eager"))
FILES_DIR = "report_files"


# ---------------------------------------------------------------- records


def load_records(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Records from JSON files written by `evaluate --json` (a list), one record, or a `run`
    report.json (its teacher and student), each checked by `check_records`."""
    records: list[dict[str, Any]] = []
    for path in paths:
        try:
            obj = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"records file not found: {path}") from None
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read records from {path}: {e}") from None
        if isinstance(obj, dict) and "model" not in obj and "teacher" in obj:
            obj = [obj[k] for k in ("teacher", "student") if isinstance(obj.get(k), dict)]
        found = obj if isinstance(obj, list) else [obj]
        if not any(isinstance(r, dict) and "model" in r for r in found):
            raise UserError(f"{path} holds no evaluation records (each needs 'model' and 'score')")
        check_records(found, str(path))
        records += found
    return records


# The fields the report reads, by what each must hold; any other field is left alone.
_TEXT = ("model", "task", "split", "metric", "baseline", "unit")
_NUMBERS = ("score", "parameters", "non_embedding_parameters", "bytes_on_disk", "trivial_score", "retention",
            *METRICS, *LOYALTY, *ROBUSTNESS)
_TABLES = ("ratios", "versions")
_REQUIRED = ("model", "score")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _shown(v: Any) -> str:
    """A JSON value and its kind, for messages: text '0.9', null, a list [1, 2], ..."""
    kind = ("null" if v is None else "a boolean" if isinstance(v, bool) else "a number" if _is_number(v)
            else "text" if isinstance(v, str) else "a table" if isinstance(v, dict) else "a list"
            if isinstance(v, list) else type(v).__name__)
    text = json.dumps(v, default=repr)
    return kind if v is None else f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


def check_records(records: Sequence[Any], source: str | None = None) -> None:
    """Each record is a JSON object whose fields the report reads have the right types: `model`
    text and `score` a number (both required); task, split, metric, baseline text; sizes, metrics,
    loyalty and robustness numbers; ratios and versions tables; each latency a table of
    `batch<N>` entries with a numeric `median_ms`. A one-line UserError names the file, the record
    (1-based) and the field."""
    for i, r in enumerate(records, 1):
        where = f"{source + ': ' if source else ''}record {i}"
        if not isinstance(r, dict):
            raise UserError(f"{where} is {_shown(r)}, not a record (a JSON object with 'model' and 'score')")
        if isinstance(r.get("model"), str) and r["model"]:
            where += f" ({r['model']})"

        def bad(field: str, want: str, got: Any) -> UserError:
            return UserError(f"{where}: field '{field}' must be {want}, got {_shown(got)}")

        for key in _REQUIRED:
            if key not in r:
                raise UserError(f"{where} has no '{key}' field (each record needs 'model' and 'score')")
        if not isinstance(r["model"], str) or not r["model"]:
            raise bad("model", "text (the model's folder or name)", r["model"])
        if not _is_number(r["score"]):
            raise bad("score", "a number", r["score"])
        for key in _TEXT:
            if r.get(key) is not None and not isinstance(r[key], str):
                raise bad(key, "text or null", r[key])
        for key in _NUMBERS:
            if r.get(key) is not None and not _is_number(r[key]):
                raise bad(key, "a number or null", r[key])
        for key in _TABLES:
            if r.get(key) is not None and not isinstance(r[key], dict):
                raise bad(key, "a table (JSON object) or null", r[key])
        for key, _ in RUNTIMES:
            table = r.get(key)
            if table is None:
                continue
            if not isinstance(table, dict):
                raise bad(key, "a table of batch sizes ({\"batch1\": {\"median_ms\": ...}, ...}) or null", table)
            for batch, entry in table.items():
                if not (batch.startswith("batch") and batch.removeprefix("batch").isdigit()):
                    raise UserError(f"{where}: field '{key}' has an entry {batch!r}; its keys are batch sizes "
                                    "(batch1, batch32, ...)")
                if not isinstance(entry, dict):
                    raise bad(f"{key}.{batch}", "a table with median_ms", entry)
                if not _is_number(entry.get("median_ms")):
                    raise bad(f"{key}.{batch}.median_ms", "a number", entry.get("median_ms"))
                for k in ("cpus", "load_1min"):
                    if entry.get(k) is not None and not _is_number(entry[k]):
                        raise bad(f"{key}.{batch}.{k}", "a number or null", entry[k])


def value(record: dict[str, Any], key: str) -> Any:
    """`record[key]`, or the same key one level down (e.g. record["loyalty"]["label_loyalty"]).
    Task metrics are read from the top level only: a nested "accuracy" may be another data set's."""
    if key in record or key in METRICS:
        return record.get(key)
    for sub in record.values():
        if isinstance(sub, dict) and key in sub and not isinstance(sub[key], dict):
            return sub[key]
    return None


def short_names(records: list[dict[str, Any]]) -> list[str]:
    """Folder names, with the parent folder added where two would otherwise look the same."""
    base = [Path(r["model"]).name or r["model"] for r in records]
    names = ["/".join(Path(r["model"]).parts[-2:]) if base.count(b) > 1 else b for r, b in zip(records, base)]
    return [n if names.count(n) == 1 else f"{n} #{i + 1}" for i, n in enumerate(names)]


def latency_series(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(record key, batch key, label) for every runtime and batch size some record has."""
    out = []
    for key, label in RUNTIMES:
        batches = sorted({b for r in records for b in (r.get(key) or {})}, key=lambda b: int(b.removeprefix("batch")))
        out += [(key, b, f"{label}, batch {b.removeprefix('batch')}") for b in batches]
    return out


def median_ms(record: dict[str, Any], key: str, batch: str) -> float | None:
    entry = (record.get(key) or {}).get(batch)
    return entry["median_ms"] if entry else None


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, score) points no other point beats: none has cost <= and score >=
    with one of them strict. Lower cost (latency, size) and higher score are better."""
    front = []
    for i, (c, s) in enumerate(points):
        if not any((c2 <= c and s2 >= s) and (c2 < c or s2 > s) for c2, s2 in points):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


# ---------------------------------------------------------------- plots


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # the Agg canvas, no pyplot state: safe without a display

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _tradeoff_axes(ax, xs: list[float], ys: list[float], names: list[str], baselines: list[bool], xlabel: str,
                   ylabel: str, title: str) -> None:
    """Scatter score against a cost, the Pareto front as a red step line through its points."""
    front = pareto_front(list(zip(xs, ys)))
    for i, (x, y, name) in enumerate(zip(xs, ys, names)):
        on = i in front
        ax.scatter([x], [y], s=90 if baselines[i] else 45, marker="*" if baselines[i] else "o", zorder=3,
                   color="#d62728" if on else "#7f7f7f", edgecolor="black", linewidth=0.5)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    fx, fy = [xs[i] for i in front], [ys[i] for i in front]
    ax.step(fx, fy, where="post", color="#d62728", alpha=0.6, linewidth=1.2, label="Pareto front")
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.margins(x=0.15, y=0.12)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.title.set_fontsize(10)


def _grid(n: int):
    cols = min(2, n)
    rows = math.ceil(n / cols)
    fig = _figure(5.4 * cols, 3.9 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def latency_plot(records: list[dict[str, Any]], names: list[str], ylabel: str) -> bytes | None:
    series = latency_series(records)
    if not series:
        return None
    fig, axes = _grid(len(series))
    for ax, (key, batch, label) in zip(axes, series):
        idx = [i for i, r in enumerate(records) if median_ms(r, key, batch) is not None]
        _tradeoff_axes(ax, [median_ms(records[i], key, batch) for i in idx], [records[i]["score"] for i in idx],
                       [names[i] for i in idx], [_is_baseline(records[i]) for i in idx], "median latency (ms)",
                       ylabel, label)
    return _png(fig)


def size_plot(records: list[dict[str, Any]], names: list[str], ylabel: str) -> bytes | None:
    panels = [(k, label, scale) for k, label, scale in (("parameters", "parameters (millions)", 1e6),
                                                        ("bytes_on_disk", "MB on disk", 1e6))
              if any(r.get(k) for r in records)]
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    for ax, (key, label, scale) in zip(axes, panels):
        idx = [i for i, r in enumerate(records) if r.get(key)]
        _tradeoff_axes(ax, [records[i][key] / scale for i in idx], [records[i]["score"] for i in idx],
                       [names[i] for i in idx], [_is_baseline(records[i]) for i in idx], label, ylabel,
                       f"{ylabel} against {label.split(' (')[0]}")
    return _png(fig)


def bar_plot(records: list[dict[str, Any]], names: list[str], keys: Sequence[str],
             labels: dict[str, str] | None = None) -> bytes | None:
    """Grouped horizontal bars, one group per model that has any of `keys`, one bar per key
    (values in [0, 1]). None when no record has a loyalty or robustness key."""
    import numpy as np

    keys = [k for k in keys if any(_num(value(r, k)) is not None for r in records)]
    if not any(k in LOYALTY + ROBUSTNESS for k in keys):  # the clean score alone is no chart
        return None
    shown = [i for i, r in enumerate(records) if any(_num(value(r, k)) is not None for k in keys
                                                     if k in LOYALTY + ROBUSTNESS)]
    fig = _figure(8, 0.9 + 0.2 * len(shown) * len(keys) + 0.15 * len(shown))
    ax = fig.subplots()
    height = 0.8 / len(keys)
    ys = np.arange(len(shown))
    for j, key in enumerate(keys):
        vals = [_num(value(records[i], key)) for i in shown]
        pos = ys + (j - (len(keys) - 1) / 2) * height
        bars = ax.barh(pos, [v if v is not None else 0 for v in vals], height=height,
                       label=(labels or {}).get(key, _label(key)))
        ax.bar_label(bars, labels=[f"{v:.3f}" if v is not None else "n/a" for v in vals], fontsize=7, padding=2)
    ax.set_yticks(ys, [names[i] for i in shown])
    ax.invert_yaxis()  # first record on top, as in the table
    ax.set_xlim(0, 1.1)
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(keys), frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


# ---------------------------------------------------------------- table


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _label(key: str) -> str:
    return key.replace("_", " ").replace("advglue", "AdvGLUE")


def _human(n: float | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}" if n / scale < 100 else f"{n / scale:.0f}{unit}"
    return f"{n:.0f}"


def _is_baseline(record: dict[str, Any]) -> bool:
    return record.get("baseline") == record["model"]


Table = tuple[list[str], list[list[str]]]  # header, rows of strings


def tables(records: list[dict[str, Any]], names: list[str]) -> tuple[Table, Table]:
    """Two tables, one row per model: quality (every metric, retention, loyalty, robustness present)
    and cost (size, latency with speed-up against the baseline, ONNX agreement)."""
    def have(key: str) -> bool:
        return any(_num(value(r, key)) is not None for r in records)

    metrics = [k for k in METRICS if have(k)] + (["score"] if not any(have(k) for k in METRICS) else [])
    quality_keys = metrics + [k for k in ("trivial_score", "retention", *LOYALTY, *ROBUSTNESS) if have(k)]
    series = latency_series(records)
    agreement = have("prediction_agreement")
    quality_head = ["model", "task", "split"] + [_label(k) for k in quality_keys]
    cost_head = (["model", "params", "non-emb params", "MB on disk", "disk ratio"]
                 + [f"{label} ms" for _, _, label in series] + (["ONNX = PyTorch"] if agreement else []))
    quality, cost = [], []
    for r, name in zip(records, names):
        name += " (baseline)" if _is_baseline(r) else ""
        ratios = r.get("ratios") or {}
        quality.append([name, str(r.get("task", "–")), str(r.get("split", "–"))]
                       + [_fmt(value(r, k), ".4f") for k in quality_keys])
        disk = r.get("bytes_on_disk")
        row = [name, _human(r.get("parameters")), _human(r.get("non_embedding_parameters")),
               f"{disk / 1e6:.1f}" if disk else "–", _fmt(ratios.get("disk_ratio"), ".2f", "×")]
        for key, batch, _ in series:
            ms = median_ms(r, key, batch)
            speedup = _num(ratios.get(f"{key.replace('latency', 'latency_ratio')}_{batch}"))
            row.append("–" if ms is None else f"{ms:.1f}" + (f" ({speedup:.2f}×)" if speedup is not None else ""))
        if agreement:
            row.append(_fmt(value(r, "prediction_agreement"), ".2%"))
        cost.append(row)
    return (quality_head, quality), (cost_head, cost)


def _fmt(v: Any, spec: str, suffix: str = "") -> str:
    v = _num(v)
    return "–" if v is None else f"{v:{spec}}{suffix}"


# ---------------------------------------------------------------- page


def _settings_line(records: list[dict[str, Any]]) -> str:
    """How latency was measured (read from the first latency entry), and a warning when the
    machine was busier than its CPU count during any measurement."""
    entries = [e for r in records for key, _ in RUNTIMES for e in (r.get(key) or {}).values()]
    if not entries:
        return "No latency was measured."
    first = entries[0]
    line = (f"Latency: median (p90 in the JSON) of {first.get('repeats', '?')} runs after "
            f"{first.get('warmup', '?')} warm-up runs, {first.get('seq_len', '?')} tokens per sequence, "
            f"{first.get('threads', '?')} CPU threads, every model in the same run. "
            f"In brackets: speed-up against the baseline.")
    busy = [e for e in entries if e.get("cpus") and e.get("load_1min", 0) > e["cpus"]]
    if busy:
        worst = max(busy, key=lambda e: e["load_1min"])
        line += (f" Warning: the machine was busy during {len(busy)} of {len(entries)} measurements (load "
                 f"{worst['load_1min']:.1f} on {worst['cpus']} CPUs); those times and ratios are unreliable.")
    return line


def report(records: list[dict[str, Any]], output_dir: str | Path, budget: dict[str, Any] | None = None
           ) -> dict[str, Path]:
    """Write report.html (self-contained) and report.md (+ PNGs in report_files/) to `output_dir`.
    `budget`: a `run --budget` report's budget section, for a plot of the candidates and each
    budget's result."""
    if not records:
        raise UserError("report needs at least one record")
    check_records(records)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder")
    names = short_names(records)
    quality, cost = tables(records, names)
    tasks = list(dict.fromkeys(str(r.get("task", "")) for r in records))
    sections: list[tuple[str, str, bytes]] = []  # (title, file stem, png)
    for task in tasks:
        idx = [i for i, r in enumerate(records) if str(r.get("task", "")) == task]
        recs, nms = [records[i] for i in idx], [names[i] for i in idx]
        metric = recs[0].get("metric") or "score"
        tag = f" ({task})" if len(tasks) > 1 else ""
        stem = f"_{task}" if len(tasks) > 1 else ""
        for title, fname, png in (
                (f"{metric.capitalize()} against latency{tag}", "accuracy_latency", latency_plot(recs, nms, metric)),
                (f"{metric.capitalize()} against size{tag}", "accuracy_size", size_plot(recs, nms, metric)),
                (f"Loyalty to the teacher{tag} (higher: closer to the teacher)", "loyalty",
                 bar_plot(recs, nms, LOYALTY)),
                (f"Robustness{tag} (attack success rate: lower is better)", "robustness",
                 bar_plot(recs, nms, ("score", *ROBUSTNESS), {"score": f"clean {metric}"}))):
            if png is not None:
                sections.append((title, fname + stem, png))
    notes = _front_lines(records, names)
    if budget is not None:
        from bertcompress.evaluation.budget import result_line
        from bertcompress.evaluation.budget_plot import budget_plot

        png = budget_plot(budget)
        if png is not None:
            sections.append(("Budget: the candidates' latency and size, the budgets (dashed), the pick (ringed) "
                             "and the final model (star)", "budget", png))
        notes.append(f"Budget pick: {budget['pick']['why']}")
        notes += [f"Budget {result_line(r)} (final model, re-measured)" for r in (budget.get("final") or {})
                  .get("results", [])]
    out.mkdir(parents=True, exist_ok=True)
    for _, stem, png in sections:
        atomic_write_bytes(out / FILES_DIR / f"{stem}.png", png)
    settings = _settings_line(records)
    html_path, md_path = out / "report.html", out / "report.md"
    atomic_write_text(html_path, _html(quality, cost, sections, settings, records, notes))
    atomic_write_text(md_path, _markdown(quality, cost, sections, settings, records, notes))
    return {"html": html_path, "markdown": md_path}


def _front_lines(records: list[dict[str, Any]], names: list[str]) -> list[str]:
    lines = []
    for key, batch, label in latency_series(records)[:1] + [("parameters", "", "parameters")]:
        idx = [i for i, r in enumerate(records) if (median_ms(r, key, batch) if batch else r.get(key)) is not None]
        pts = [((median_ms(records[i], key, batch) if batch else records[i][key]), records[i]["score"]) for i in idx]
        front = [names[idx[j]] for j in pareto_front(pts)]
        if front:
            lines.append(f"Pareto front, score against {label}: " + ", ".join(front))
    return lines


def _html(quality: Table, cost: Table, sections, settings: str, records, notes: list[str]) -> str:
    e = html.escape

    def table_html(head, rows) -> str:
        align = ["" if h in ("model", "task", "split") else " class=\"num\"" for h in head]
        return ("<div class=\"scroll\"><table><thead><tr>"
                + "".join(f"<th{a}>{e(h)}</th>" for h, a in zip(head, align)) + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td{a}>{e(c)}</td>" for c, a in zip(row, align)) + "</tr>"
                          for row in rows)
                + "</tbody></table></div>")

    figures = "".join(f"<h2>{e(title)}</h2><img alt=\"{e(title)}\" src=\"data:image/png;base64,"
                      f"{base64.b64encode(png).decode()}\">" for title, _, png in sections)
    fronts = "".join(f"<li>{e(line)}</li>" for line in notes)
    first = records[0]
    subtitle = ", ".join(f"{k} {first[k]}" for k in ("task", "split", "examples") if k in first)
    versions = ", ".join(f"{k} {v}" for k, v in (first.get("versions") or {}).items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bertcompress report</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1150px;
       padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.5rem; margin-bottom: .2rem; }} h2 {{ font-size: 1.15rem; margin-top: 2rem; }}
.sub {{ color: #666; margin-top: 0; }}
.scroll {{ overflow-x: auto; margin-bottom: 1rem; }}
table {{ border-collapse: collapse; font-size: .85rem; }}
th, td {{ padding: .35rem .6rem; border-bottom: 1px solid #ddd; white-space: nowrap; text-align: left; }}
th {{ background: #f3f3f3; white-space: normal; vertical-align: bottom; }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr:nth-child(even) td {{ background: #fafafa; }}
img {{ max-width: 100%; height: auto; }}
.note {{ color: #555; font-size: .85rem; }}
</style></head><body>
<h1>bertcompress evaluation report</h1>
<p class="sub">{e(subtitle)}{" · " + e(versions) if versions else ""}</p>
<h2>Quality</h2>
{table_html(*quality)}
<h2>Size and speed</h2>
{table_html(*cost)}
<p class="note">{e(settings)}</p>
<p class="note">In the plots, red points and line mark the Pareto front (no other model is both at least
as accurate and at least as cheap); a star marks the baseline.</p>
<ul class="note">{fronts}</ul>
{figures}
</body></html>
"""


def _markdown(quality: Table, cost: Table, sections, settings: str, records, notes: list[str]) -> str:
    def row(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = ["# bertcompress evaluation report", ""]
    for title, (head, rows) in (("Quality", quality), ("Size and speed", cost)):
        lines += [f"## {title}", "", row(head), "|" + "---|" * len(head)] + [row(r) for r in rows] + [""]
    lines += [settings, ""] + [f"- {line}" for line in notes] + [""]
    lines += [f"![{title}]({FILES_DIR}/{stem}.png)" for title, stem, _ in sections]
    lines += ["", "The same with the plots embedded: report.html", ""]
    return "\n".join(lines)
