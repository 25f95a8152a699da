"""`search_mapping`: the layer mapping of a task-agnostic student, found by a genetic algorithm
over a cheap proxy (general distillation on a corpus sample, fine-tuning on a few tasks).

Output folder:
    search.json               every scored mapping (proxy scores per task, seconds), the
                              generations, the best mapping and the hand-made ones' scores;
                              rewritten atomically after each candidate, so a killed search
                              resumes (`resume=True`) without scoring anything twice
    bertcompress_config.yaml  the settings
    candidates/<mapping>/     a candidate's models, while it is scored (kept with keep_candidates)
    student/                  with final_general: the full general distillation with the best mapping
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..config import DistillConfig, FinetuneConfig, read_saved_config, save_config, to_dict
from ..distillation.mapping import resolve_mapping
from ..distillation.stages import distill
from ..errors import UserError
from ..finetuning import finetune
from ..io import atomic_write_json, is_output, writes_output
from ..models.loading import resolve_model_path
from .config import MappingSearchConfig
from .genetic import Genome, genetic_search

RESULT_FILE = "search.json"


def teacher_layers(name: str) -> int:
    from transformers import AutoConfig

    from ..models.architecture import size_fields

    try:
        config = AutoConfig.from_pretrained(resolve_model_path(name))
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read the config of teacher {name}: {str(e).strip().splitlines()[0]}") from None
    return getattr(config, size_fields(config.model_type)[0])


def proxy_score(cfg: MappingSearchConfig, mapping: Genome, folder: Path, resume: bool = False) -> dict[str, Any]:
    """General distillation with `mapping` on the corpus sample, then fine-tuning on each proxy
    task; returns the tasks' dev scores and their mean. `resume` continues a candidate that was
    being scored when the search was killed."""
    start = time.perf_counter()
    general = distill(DistillConfig(
        stage="general", teacher=cfg.teacher, student=cfg.student,
        losses=dataclasses.replace(cfg.losses, layer_mapping=list(mapping)), train=cfg.proxy_general,
        corpus=dataclasses.replace(cfg.corpus, max_sequences=cfg.proxy_sequences), output=str(folder / "general")),
        resume=resume)
    scores = {}
    for task in cfg.tasks:
        out = finetune(FinetuneConfig(model=str(general), data=task, train=cfg.proxy_finetune,
                                      output=str(folder / task.task)), resume=resume)
        scores[task.task] = json.loads((out / "bertcompress_result.json").read_text())["dev"]["score"]
    if not cfg.keep_candidates:
        shutil.rmtree(folder, ignore_errors=True)
    return {"mapping": list(mapping), "fitness": sum(scores.values()) / len(scores), "scores": scores,
            "seconds": round(time.perf_counter() - start, 1)}


def _earlier_scores(out: Path, cfg: MappingSearchConfig) -> dict[Genome, dict[str, Any]]:
    """Scored candidates of an interrupted search with the same settings (else a clear error)."""
    if not (out / RESULT_FILE).is_file():
        return {}
    if is_output(out):
        free = ("final_general", "keep_candidates", "output")  # settings that change no score
        earlier = {k: v for k, v in to_dict(read_saved_config(MappingSearchConfig, out)).items() if k not in free}
        if earlier != {k: v for k, v in to_dict(cfg).items() if k not in free}:
            raise UserError(f"cannot resume the search in {out}: it was started with other settings")
    saved = json.loads((out / RESULT_FILE).read_text())
    return {tuple(c["mapping"]): c for c in saved.get("candidates", [])}


@writes_output
def search_mapping(cfg: MappingSearchConfig, *, resume: bool = False) -> Path:
    """Run the search; write search.json (and with final_general the distilled student) to cfg.output."""
    out = Path(cfg.output)
    n_teacher, n_student = teacher_layers(cfg.teacher), cfg.student.num_layers
    heuristics = {name: tuple(resolve_mapping(name, n_student, n_teacher))
                  for name in ("uniform", "last") if name == "uniform" or n_student <= n_teacher}
    candidates = _earlier_scores(out, cfg) if resume else {}
    if out.exists() and not resume and (out / RESULT_FILE).is_file():
        raise UserError(f"{out} already holds a search; pass resume to continue it or choose another output")
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)

    def write(extra: dict[str, Any] | None = None) -> None:
        atomic_write_json(out / RESULT_FILE, {"teacher_layers": n_teacher, "student_layers": n_student,
                                              "candidates": list(candidates.values()), **(extra or {})})

    def fitness(genome: Genome) -> float:
        name = "-".join(map(str, genome))
        print(f"[bertcompress] scoring mapping {list(genome)} ({len(candidates) + 1} scored so far)")
        candidates[genome] = proxy_score(cfg, genome, out / "candidates" / name, resume)
        write()
        return candidates[genome]["fitness"]

    result = genetic_search(fitness, n_student, 1, n_teacher, cfg.search, monotone=cfg.monotone,
                            seeds=heuristics.values(), known={g: c["fitness"] for g, c in candidates.items()})
    summary = {
        "best": {"mapping": list(result.best), "fitness": result.best_fitness,
                 "scores": candidates[result.best]["scores"]},
        "heuristics": {name: {"mapping": list(g), "fitness": result.scores[g]} for name, g in heuristics.items()},
        "generations": [{**dataclasses.asdict(h), "best": list(h.best), "population": [list(p) for p in h.population]}
                        for h in result.history]}
    write(summary)
    print(f"[bertcompress] best mapping {list(result.best)}: proxy score {result.best_fitness:.4f} "
          + ", ".join(f"{n} {list(h['mapping'])}: {h['fitness']:.4f}" for n, h in summary["heuristics"].items()))
    if cfg.final_general is not None:
        distill(DistillConfig(stage="general", teacher=cfg.teacher, student=cfg.student,
                              losses=dataclasses.replace(cfg.losses, layer_mapping=list(result.best)),
                              train=cfg.final_general, corpus=cfg.corpus, output=str(out / "student")),
                resume=resume)
    return out
