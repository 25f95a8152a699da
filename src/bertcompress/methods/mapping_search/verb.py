"""`search_mapping`: the layer mapping of a task-agnostic student, found by a genetic algorithm
over a cheap proxy (general distillation on a corpus sample, then fine-tuning on a few tasks or
the held-out last-layer loss, methods/mapping_search/heldout.py).

Output folder:
    search.json               every scored mapping (proxy scores per task or held-out loss,
                              seconds), the generations, the best mapping and the hand-made
                              ones' scores; rewritten atomically after each candidate, so a
                              killed search resumes (`resume=True`) without scoring anything twice
    bertcompress_config.yaml  the settings
    init/                     with proxy_init etd: the one extracted student every candidate starts from
    candidates/<mapping>/     a candidate's models, while it is scored (kept with keep_candidates)
    student/                  with final_general (the default): the full general distillation with
                              the best mapping
    validation/<mapping>/     with validate_top: the other validated mappings' full runs, while scored
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from bertcompress.core.config import read_saved_config, save_config, to_dict
from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_write_json, is_output, prepare_output_folder, writes_output
from bertcompress.core.log import log
from bertcompress.methods.distill.config import DistillConfig
from bertcompress.methods.distill.verb import distill
from bertcompress.methods.finetune.config import FinetuneConfig
from bertcompress.methods.finetune.verb import finetune
from bertcompress.methods.mapping_search.config import MappingSearchConfig
from bertcompress.methods.mapping_search.genetic import Genome, genetic_search
from bertcompress.methods.mapping_search.heldout import check_widths, heldout_scores
from bertcompress.methods.mapping_search.validation import validate
from bertcompress.methods.prune.config import ExtractConfig
from bertcompress.models.layer_mapping import resolve_mapping
from bertcompress.models.loading import model_config
from bertcompress.train.config import TrainConfig

RESULT_FILE = "search.json"


def teacher_config(name: str):
    """The teacher's transformers config, read alone (no weights)."""

    try:
        return model_config(name)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read the config of teacher {name}: {str(e).strip().splitlines()[0]}") from None


def teacher_sizes(name: str) -> tuple[int, int]:
    """The teacher's (layers, hidden size), read from its config alone."""
    from bertcompress.models.architecture import size_fields

    config = teacher_config(name)
    layers_field, hidden_field = size_fields(config.model_type)[:2]
    return getattr(config, layers_field), getattr(config, hidden_field)


def init_config(cfg: MappingSearchConfig, mapping: Genome | None = None,
                output: Path | None = None) -> ExtractConfig:
    """ETD-Rand of the student's shape (a size left None is the teacher's): from the uniform
    mapping's teacher layers into <output>/init (etd), or from `mapping`'s into `output` (etd_mapped)."""
    s = cfg.student
    return ExtractConfig(teacher=cfg.teacher, output=str(output or Path(cfg.output) / "init"),
                         num_layers=s.num_layers, layers=list(mapping) if mapping else "uniform",
                         hidden_size=s.hidden_size, num_heads=s.num_heads, ffn_size=s.ffn_size, strategy="rand")


def student_init(cfg: MappingSearchConfig, mapping: Genome | None = None, output: Path | None = None) -> Path | None:
    """The folder a candidate's student starts from, extracted on first use and reused after, also
    on resume: one for every candidate (etd), or `mapping`'s own in `output` (etd_mapped: student layer
    i starts as the teacher layer it learns from); None for new random weights (random)."""
    if cfg.proxy_init == "random" or (cfg.proxy_init == "etd_mapped" and mapping is None):
        return None
    from bertcompress.methods.prune.verb import extract

    wanted = init_config(cfg, mapping, output) if cfg.proxy_init == "etd_mapped" else init_config(cfg)
    folder = Path(wanted.output)
    if not is_output(folder):
        log.info(f"extracting the initial student (ETD-Rand) into {folder}")
        return extract(wanted)
    saved = dataclasses.replace(read_saved_config(ExtractConfig, folder), output=wanted.output)
    if to_dict(saved) != to_dict(wanted):
        raise UserError(f"{folder} holds an initial student extracted with other settings; remove it or choose "
                        "another output")
    return folder


def split_genome(cfg: MappingSearchConfig, genome: Genome) -> tuple[Genome, Genome | None]:
    """The hidden-state mapping and, with separate_attention, the attention loss's own."""
    if not cfg.separate_attention:
        return genome, None
    k = len(genome) // 2
    return genome[:k], genome[k:]


def genome_record(cfg: MappingSearchConfig, genome: Genome) -> dict[str, list[int]]:
    hidden, attention = split_genome(cfg, genome)
    return {"mapping": list(genome), **({"hidden_mapping": list(hidden), "attention_mapping": list(attention)}
                                        if attention else {})}


def genome_text(cfg: MappingSearchConfig, genome: Genome) -> str:
    hidden, attention = split_genome(cfg, genome)
    return f"hidden {list(hidden)} attention {list(attention)}" if attention else str(list(genome))


def general_config(cfg: MappingSearchConfig, mapping: Genome, output: Path, train: TrainConfig,
                   sequences: int | None) -> DistillConfig:
    """General distillation with `mapping` on the first `sequences` of the corpus (None: all of
    it), from the search's student initialisation (extracted here on first use; etd_mapped
    extracts the hidden-state mapping's layers)."""
    hidden, attention = split_genome(cfg, mapping)
    init = student_init(cfg, hidden, output.with_name(f"{output.name}-init"))
    corpus = dataclasses.replace(cfg.corpus, max_sequences=sequences) if sequences else cfg.corpus
    losses = dataclasses.replace(cfg.losses, layer_mapping=list(hidden),
                                 attention_mapping=list(attention) if attention else cfg.losses.attention_mapping)
    return DistillConfig(stage="general", teacher=cfg.teacher, student=cfg.student,
                         student_path=str(init) if init else None, losses=losses, train=train,
                         corpus=corpus, output=str(output))


def proxy_general(cfg: MappingSearchConfig, mapping: Genome, output: Path, train: TrainConfig, sequences: int | None,
                  resume: bool = False) -> Path:
    """Run `general_config`'s distillation."""
    return distill(general_config(cfg, mapping, output, train, sequences), resume=resume)


def proxy_score(cfg: MappingSearchConfig, mapping: Genome, folder: Path, resume: bool = False) -> dict[str, Any]:
    """General distillation with `mapping` on the corpus sample, then the proxy metric: the proxy
    tasks' dev scores and their mean (finetune), or the held-out loss, whose negative is the
    fitness (heldout_loss). `resume` continues a candidate that was being scored when the search
    was killed."""
    start = time.perf_counter()
    general = proxy_general(cfg, mapping, folder / "general", cfg.proxy_general, cfg.proxy_sequences, resume)
    record: dict[str, Any] = genome_record(cfg, mapping)
    if cfg.proxy_metric == "heldout_loss":
        scores = heldout_scores(general, cfg.teacher, cfg.losses, cfg.corpus, cfg.proxy_sequences,
                                cfg.heldout_sequences, list(split_genome(cfg, mapping)[0]),
                                cfg.proxy_general.batch_size, cfg.proxy_general.device)
        record.update(fitness=-scores["loss"], heldout_loss=scores["loss"], heldout_layer_mse=scores["layer_mse"],
                      heldout_layer_relative=scores["layer_relative"], heldout_last_mse=scores["last_mse"])
    else:
        scores = {}
        for task in cfg.tasks:
            out = finetune(FinetuneConfig(model=str(general), data=task, train=cfg.proxy_finetune,
                                          output=str(folder / task.task)), resume=resume)
            scores[task.task] = json.loads((out / "bertcompress_result.json").read_text())["dev"]["score"]
        record.update(fitness=sum(scores.values()) / len(scores), scores=scores)
    if not cfg.keep_candidates:
        shutil.rmtree(folder, ignore_errors=True)
    return {**record, "seconds": round(time.perf_counter() - start, 1)}


def _earlier_scores(out: Path, cfg: MappingSearchConfig) -> dict[Genome, dict[str, Any]]:
    """Scored candidates of an interrupted search with the same settings (else a clear error)."""
    if not (out / RESULT_FILE).is_file():
        return {}
    if is_output(out):
        free = ("final_general", "keep_candidates", "output", "validate_top")  # settings that change no score
        earlier = {k: v for k, v in to_dict(read_saved_config(MappingSearchConfig, out)).items() if k not in free}
        if earlier != {k: v for k, v in to_dict(cfg).items() if k not in free}:
            raise UserError(f"cannot resume the search in {out}: it was started with other settings")
    saved = json.loads((out / RESULT_FILE).read_text())
    return {tuple(c["mapping"]): c for c in saved.get("candidates", [])}


def check_inputs(cfg: MappingSearchConfig, genome: Genome) -> None:
    """What the proxy runs would refuse only once the search had started (and rewritten its output):
    the student and the attention mapping against the teacher, a corpus too small for the proxy
    (and the held-out sequences), the proxy tasks' data, the stages' training settings, and the
    configs every candidate is run with (`genome`: one of them)."""
    from bertcompress.data.corpus import chunk_corpus, load_corpus
    from bertcompress.data.kinds import load_examples
    from bertcompress.models.loading import load_tokenizer
    from bertcompress.models.student import check_student

    hidden, attention = split_genome(cfg, genome)
    # the student's own init matters only where it is built afresh (etd and etd_mapped extract it)
    student = cfg.student if cfg.proxy_init == "random" else dataclasses.replace(cfg.student, init="random")
    check_student(teacher_config(cfg.teacher), student,
                  {"losses.attention_mapping": None if attention else cfg.losses.attention_mapping})
    for name in ("proxy_general", "final_general"):
        train = getattr(cfg, name)
        if train is not None and train.search is not None:
            raise UserError(f"{name}.search (choosing lr and epochs) is only for fine-tuning")
        if train is not None and train.keep_best:
            raise UserError(f"{name}.keep_best needs an evaluation, and general distillation has none")
    heldout = cfg.heldout_sequences if cfg.proxy_metric == "heldout_loss" else 0
    docs = load_corpus(cfg.corpus)
    sequences = chunk_corpus(load_tokenizer(cfg.teacher), docs, cfg.corpus.max_seq_len,
                             cfg.proxy_sequences + heldout)
    if not sequences:
        raise UserError(f"the corpus ({cfg.corpus.path or 'the embedded default'}) gives no sequence to distil on")
    if heldout and len(sequences) <= cfg.proxy_sequences:
        raise UserError(f"the corpus has no sequences after the proxy's first {cfg.proxy_sequences} to hold out; use "
                        "a larger corpus or fewer proxy_sequences")
    if cfg.proxy_metric == "finetune" or cfg.validate_top:
        for task in cfg.tasks:
            for split in dict.fromkeys((task.train_split, task.eval_split)):
                load_examples(task, split, allow_tagging=True)
    if cfg.proxy_init == "etd":
        init_config(cfg)
    elif cfg.proxy_init == "etd_mapped":
        init_config(cfg, hidden, Path(cfg.output) / "check-init")
    losses = dataclasses.replace(cfg.losses, layer_mapping=list(hidden),
                                 attention_mapping=list(attention) if attention else cfg.losses.attention_mapping)
    DistillConfig(stage="general", teacher=cfg.teacher, student=cfg.student, losses=losses, train=cfg.proxy_general,
                  corpus=cfg.corpus, output=str(Path(cfg.output) / "check"))


@writes_output
def search_mapping(cfg: MappingSearchConfig, *, resume: bool = False) -> Path:
    """Run the search; write search.json (and with final_general the distilled student) to cfg.output."""
    out = Path(cfg.output)
    (n_teacher, d_teacher) = teacher_sizes(cfg.teacher)
    n_student = cfg.student.depth(n_teacher)
    if cfg.proxy_metric == "heldout_loss":  # before anything runs: the metric needs equal widths
        check_widths(cfg.losses, cfg.student.hidden_size or d_teacher, d_teacher)
    if cfg.distinct and n_student > n_teacher:
        raise UserError(f"distinct mappings need no more student layers ({n_student}) than teacher layers "
                        f"({n_teacher})")
    heuristics = {name: tuple(resolve_mapping(name, n_student, n_teacher)) * (2 if cfg.separate_attention else 1)
                  for name in ("uniform", "last") if name == "uniform" or n_student <= n_teacher}
    candidates = _earlier_scores(out, cfg) if resume else {}
    if out.exists() and not resume and (out / RESULT_FILE).is_file():
        raise UserError(f"{out} already holds a search; pass resume to continue it or choose another output")
    check_inputs(cfg, heuristics["uniform"])  # all of them, before the output is touched
    prepare_output_folder(out, type(cfg).__name__)
    save_config(cfg, out)
    student_init(cfg)

    def write(extra: dict[str, Any] | None = None) -> None:
        atomic_write_json(out / RESULT_FILE, {"teacher_layers": n_teacher, "student_layers": n_student,
                                              "candidates": list(candidates.values()), **(extra or {})})

    def fitness(genome: Genome) -> float:
        name = "-".join(map(str, genome))
        log.info(f"scoring mapping {genome_text(cfg, genome)} ({len(candidates) + 1} scored so far)")
        candidates[genome] = proxy_score(cfg, genome, out / "candidates" / name, resume)
        write()
        return candidates[genome]["fitness"]

    segments = 2 if cfg.separate_attention else 1
    result = genetic_search(fitness, n_student * segments, 1, n_teacher, cfg.search, monotone=cfg.monotone,
                            distinct=cfg.distinct, segments=segments, seeds=heuristics.values(),
                            known={g: c["fitness"] for g, c in candidates.items()})
    best = candidates[result.best]
    summary = {
        "best": {**genome_record(cfg, result.best), "fitness": result.best_fitness,
                 **{k: best[k] for k in ("scores", "heldout_loss") if k in best}},
        "heuristics": {name: {**genome_record(cfg, g), "fitness": result.scores[g]} for name, g in heuristics.items()},
        "generations": [{**dataclasses.asdict(h), "best": list(h.best), "population": [list(p) for p in h.population]}
                        for h in result.history]}
    write(summary)
    log.info(f"best mapping {genome_text(cfg, result.best)}: proxy score {result.best_fitness:.4f}, "
          + ", ".join(f"{n}: {result.scores[g]:.4f}" for n, g in heuristics.items()))
    if cfg.proxy_metric == "heldout_loss" and not cfg.validate_top and result.best != heuristics["uniform"]:
        # measured in benchmarks/mapping_search.py: its best can be a mapping that learns nothing downstream
        log.warning(f"heldout_loss prefers {genome_text(cfg, result.best)} to the uniform mapping, but it favours "
                    "layers with little to reproduce and did not predict downstream scores in our benchmark; "
                    "check with validate_top before using it")
    if cfg.final_general is not None:  # from the same initialisation as the candidates
        student = proxy_general(cfg, result.best, out / "student", cfg.final_general, None, resume)
        if cfg.validate_top:
            ranked = sorted(candidates, key=lambda g: -candidates[g]["fitness"])[:cfg.validate_top]
            chosen = list(dict.fromkeys([*ranked, *heuristics.values()]))
            summary["validation"] = validate(cfg, chosen, {g: candidates[g]["fitness"] for g in chosen},
                                             {result.best: student}, out, resume,
                                             on_progress=lambda v: write({**summary, "validation": v}))
            write(summary)
    return out
