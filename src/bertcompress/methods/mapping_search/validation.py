"""Does the proxy rank mappings as full runs do? (`validate_top`, methods/mapping_search/verb.py)

The proxy's best `validate_top` mappings and the hand-made ones each get the full general
distillation (`final_general`, the whole corpus, from the search's initialisation) and then
fine-tuning on `tasks` (`proxy_finetune`); their mean dev score is the full score. Recorded: every
mapping's proxy fitness and full scores, the Spearman rank correlation of the two (from 3 mappings
on), and whether the proxy's best is also the best in full. A finished part is read back on resume.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

from bertcompress.core.io import atomic_write_json
from bertcompress.core.log import log
from bertcompress.methods.finetune.config import FinetuneConfig
from bertcompress.methods.finetune.verb import finetune

Genome = tuple[int, ...]


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in order[i:j + 1]:
            out[k] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson's of the ranks); None under 3 pairs or with a constant side."""
    if len(a) < 3:
        return None
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)
    return cov / var ** 0.5 if var > 0 else None


def validate(cfg: Any, mappings: list[Genome], fitness: dict[Genome, float], done: dict[Genome, Path], out: Path,
             resume: bool, on_progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Full scores of `mappings` (`done`: mappings whose full general distillation already exists)."""
    from bertcompress.methods.mapping_search.verb import proxy_general  # the verb calls this module

    rows: dict[str, dict[str, Any]] = {}
    record: dict[str, Any] = {"mappings": rows}
    for mapping in mappings:
        name = "-".join(map(str, mapping))
        folder = out / "validation" / name
        general = done.get(mapping)
        scores = {}
        for task in cfg.tasks:
            cache = folder / f"{task.task}.json"
            if not cache.is_file():
                if general is None:
                    log.info(f"validating mapping {list(mapping)}: full general distillation")
                    general = proxy_general(cfg, mapping, folder / "general", cfg.final_general, None, resume)
                tuned = finetune(FinetuneConfig(model=str(general), data=task, train=cfg.proxy_finetune,
                                                output=str(folder / task.task)), resume=resume)
                result = json.loads((tuned / "bertcompress_result.json").read_text())
                atomic_write_json(cache, {"score": result["dev"]["score"]})
                if not cfg.keep_candidates:
                    shutil.rmtree(tuned, ignore_errors=True)
            scores[task.task] = json.loads(cache.read_text())["score"]
        if not cfg.keep_candidates and mapping not in done:
            shutil.rmtree(folder / "general", ignore_errors=True)
        rows[str(list(mapping))] = {"mapping": list(mapping), "proxy_fitness": fitness[mapping], "scores": scores,
                                    "full": sum(scores.values()) / len(scores)}
        _agreement(record)
        on_progress(record)
    return record


def _agreement(record: dict[str, Any]) -> None:
    rows = list(record["mappings"].values())
    proxy, full = [r["proxy_fitness"] for r in rows], [r["full"] for r in rows]
    record["spearman_proxy_full"] = spearman(proxy, full)
    best_proxy = max(rows, key=lambda r: r["proxy_fitness"])
    record["proxy_best_is_full_best"] = best_proxy["full"] == max(full)
