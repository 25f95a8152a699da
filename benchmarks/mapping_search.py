"""Layer-mapping search on real data, in the order that makes its numbers readable: how noisy is
the proxy, how much do mappings differ under it, does the genetic algorithm find the proxy's best
with fewer proxy runs than trying them all, and does the proxy's ranking hold at full size?

Teacher all-MiniLM-L6-v2 (6 layers × 384, 12 heads). Student: --student-layers k (3) × 384, 12
heads, FFN 768 by default. Proxy (`search.layer_mapping.proxy_score`, the search verb's own):
general distillation of the student on the first --proxy-sequences (2,000) sequences of --seq-len (64) tokens of
WikiText-2, starting (--proxy-init etd, the default) from ONE ETD-Rand student extracted
from the teacher's uniform-mapping layers once, so only the mapping differs between candidates
(etd_mapped: each candidate's student extracted from the layers its own mapping names, so the start
never favours one mapping; random: new random weights, the setting whose scores were all alike at
CPU scale); then (--proxy-metric heldout_loss, the
default) minus the held-out loss on the next --heldout-sequences (256) sequences: since issue 29 the mean over
student layers of each one's MSE against its own teacher layer, relative to that layer's mean square (the last
layer's raw MSE, the metric before, is recorded beside it as heldout_last_mse, and the validation ranks by both),
or (finetune) the mean dev score of fine-tuning on SST-2,
MRPC and QNLI samples (QNLI ships only its dev file here: its first 4,000 rows train, the rest
score; the split is written under --work). Parts, each written to the result as soon as a mapping
is scored:
  1. noise: the uniform mapping scored with 3 seeds (data order and dropout of the proxy's general
     distillation and fine-tuning): their scores and standard deviation;
  2. landscape: every strictly increasing mapping of the k student layers onto the 6 teacher layers
     (C(6, k): 20 for k = 3; --non-decreasing: every non-decreasing one, 56), each scored once (the
     first noise seed); spread = best − worst, and spread / noise sd;
  3. search: the genetic algorithm (methods/mapping_search/genetic.py, seeded with the uniform and last mappings)
     replayed on the landscape with --replays seeds: how often it finds the best mapping, the proxy
     runs it used and needed, the generation it found it in, against the exhaustive size. Without
     --non-decreasing the GA makes strictly increasing mappings only (`distinct`), the landscape's.
     search_comparison: the same without the seeds' head start, Optuna's NSGA-II sampler (seeded
     and not) with the same trial budget, and random search with as many proxy runs as the unseeded GA;
  4. validation (--skip-validation: none): the proxy's best three mappings, uniform and last get the
     full general distillation (--full-sequences; 0: all of WikiText-2 valid+test) from the same
     initialisation, then fine-tuning on SST-2, MRPC and QNLI samples (--validation-examples) with
     2 seeds each: per mapping and task mean ± sd, the Spearman correlation of proxy and full scores,
     and best_vs_uniform / best_vs_last (the proxy's best minus each, averaged over the tasks).
  5. separate (--separate-search): the GA itself, not a replay, over pairs of strictly increasing
     mappings, one for the embedding and hidden-state losses and one for the attention loss
     (C(6, k)^2 = 400 pairs for k = 3), seeded with uniform/uniform, last/last and both crossings,
     --population × --separate-generations (4); a pair of equal mappings reuses its landscape score. Reported:
     every pair scored, the best, and its gain over the best single mapping in noise sds.
  --mappings L,L,L ...: only parts 1 and 2, on those mappings (a partial landscape, e.g. for a proxy
     too slow to score all of them).
Writes benchmarks/results/<--result-name>.json (mapping_search; --smoke: mapping_search_smoke; the runs
before issue 29: results/mapping_search_before29.json and mapping_search_etd_mapped_before29.json)
after every scored mapping, so a stopped run still leaves a table. `seconds`: each part's wall time
in this run (a cached proxy score costs nothing); `proxy_seconds` (noise, landscape, separate): the
time its proxy runs took when they were computed. Finished stages are reused from
--work (runs/mapping_search), keyed by a hash of their settings.

    python benchmarks/mapping_search.py                      # the full run
    python benchmarks/mapping_search.py --smoke --work /tmp/ms_smoke   # every part, tiny, minutes

Time on one CPU thread (measured 2026-12-08, the other core running the other init): proxy runs
about 1–2 minutes each (2,000 sequences: 63 steps, then the held-out scoring), so noise 3.5 minutes
and the landscape 23–40; the search replays seconds; validation 24–35 minutes for 4–5 mappings (2–2.5
minutes of general distillation on 4,000 sequences, then six fine-tunings on 1,000 examples each).
About 1–1.2 hours a run.
--smoke: 80 seconds on one core (measured).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import math
import random
import shutil
import statistics
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from scipy.stats import spearmanr

from bertcompress.core.config import to_dict
from bertcompress.core.io import atomic_write_json
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.methods.distill.verb import distill
from bertcompress.methods.finetune.config import FinetuneConfig
from bertcompress.methods.finetune.verb import finetune
from bertcompress.methods.mapping_search.config import GeneticConfig, MappingSearchConfig
from bertcompress.methods.mapping_search.genetic import Genome, genetic_search
from bertcompress.methods.mapping_search.verb import general_config, proxy_score
from bertcompress.models.config import StudentConfig
from bertcompress.models.layer_mapping import resolve_mapping
from bertcompress.train.config import TrainConfig
from common import SHARED_DATA, Stages, environment, print_table, write_result

TEACHER, TEACHER_LAYERS = "all-MiniLM-L6-v2", 6
VALIDATION_TASKS = ("sst2", "mrpc", "qnli")
# flags left unset take these (--smoke: the second set): tiny step counts, every part end to end
DEFAULTS = dict(student_layers=3, student_hidden=384, student_heads=12, student_ffn=768, proxy_sequences=2000,
                heldout_sequences=256, seq_len=64, batch_size=32, task_examples=2000, eval_examples=500,
                validation_examples=2000, full_sequences=0, population=6, generations=5, replays=100,
                max_steps=None, result_name="mapping_search")
SMOKE = dict(student_layers=2, student_hidden=384, student_heads=12, student_ffn=384, proxy_sequences=32,
             heldout_sequences=32, seq_len=32, batch_size=16, task_examples=64, eval_examples=64,
             validation_examples=64, full_sequences=64, population=3, generations=3, replays=10, max_steps=2,
             result_name="mapping_search_smoke")


def qnli_split(work: Path, train_rows: int = 4000) -> Path:
    """QNLI's dev file cut into train (first rows) and dev (the rest), in GLUE layout."""
    folder = work / "qnli-split"
    if not (folder / "dev.tsv").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        lines = (SHARED_DATA / "glue" / "QNLI" / "dev.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / "train.tsv").write_text("".join(lines[:train_rows + 1]), encoding="utf-8")
        (folder / "dev.tsv").write_text("".join(lines[:1] + lines[train_rows + 1:]), encoding="utf-8")
    return folder


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy-init", choices=("etd", "etd_mapped", "random"), default="etd")
    ap.add_argument("--proxy-metric", choices=("heldout_loss", "finetune"), default="heldout_loss")
    ap.add_argument("--student-layers", type=int, help="k: student layers (3; smoke 2)")
    ap.add_argument("--student-hidden", type=int, help="student width (384: heldout_loss needs the teacher's)")
    ap.add_argument("--student-heads", type=int, help="student attention heads (12)")
    ap.add_argument("--student-ffn", type=int, help="student FFN size (768)")
    ap.add_argument("--proxy-sequences", type=int, help="corpus sequences of the proxy general distillation (2000)")
    ap.add_argument("--heldout-sequences", type=int, help="held-out sequences of heldout_loss (256)")
    ap.add_argument("--seq-len", type=int, help="tokens per corpus sequence and task example (64)")
    ap.add_argument("--batch-size", type=int, help="batch of every training run (32)")
    ap.add_argument("--proxy-lr", type=float, default=3e-4, help="general distillation learning rate")
    ap.add_argument("--finetune-lr", type=float, help="fine-tuning learning rate (1e-4 from ETD, 1e-3 from random "
                    "init, which stays at the majority class at lower rates on 2,000 examples)")
    ap.add_argument("--finetune-epochs", type=float, default=3.0)
    ap.add_argument("--task-examples", type=int, help="training examples per task of the finetune proxy (2000)")
    ap.add_argument("--eval-examples", type=int, help="dev examples per task (500)")
    ap.add_argument("--non-decreasing", action="store_true", help="landscape of every non-decreasing mapping")
    ap.add_argument("--mappings", nargs="+", metavar="L,L,L",
                    help="score only these mappings (e.g. 2,4,6 4,5,6): noise and a partial landscape, nothing else")
    ap.add_argument("--noise-seeds", type=int, default=3)
    ap.add_argument("--population", type=int, help="GA population of the replays (6)")
    ap.add_argument("--generations", type=int, help="GA generations of the replays (5)")
    ap.add_argument("--replays", type=int, help="GA replays on the landscape, one seed each (100)")
    ap.add_argument("--full-sequences", type=int, help="validation general distillation sequences (0: all)")
    ap.add_argument("--validation-examples", type=int, help="validation training examples per task (2000)")
    ap.add_argument("--validation-seeds", type=int, default=2)
    ap.add_argument("--skip-validation", action="store_true")
    ap.add_argument("--separate-search", action="store_true",
                    help="5. run the GA over separate hidden-state and attention mappings (C(6,k)^2 pairs)")
    ap.add_argument("--separate-generations", type=int, default=4, help="generations of that GA (population: "
                    "--population)")
    ap.add_argument("--max-steps", type=int, help="cap every training run at this many steps (smoke: 2)")
    ap.add_argument("--smoke", action="store_true", help="every part on tiny settings, in a few minutes")
    ap.add_argument("--result-name", help="benchmarks/results/<name>.json (mapping_search; smoke: "
                    "mapping_search_smoke)")
    ap.add_argument("--work", default="runs/mapping_search")
    args = ap.parse_args()
    for key, value in (SMOKE if args.smoke else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.finetune_lr is None:
        args.finetune_lr = 1e-4 if args.proxy_init.startswith("etd") else 1e-3
    return args


def tasks(args: argparse.Namespace, work: Path, examples: int) -> list[DataConfig]:
    glue = SHARED_DATA / "glue"
    paths = {"sst2": glue / "SST-2", "mrpc": glue / "MRPC", "qnli": qnli_split(work)}
    return [DataConfig(task=t, path=str(paths[t]), max_seq_len=args.seq_len, max_train_examples=examples,
                       max_eval_examples=args.eval_examples) for t in VALIDATION_TASKS]


def train(args: argparse.Namespace, lr: float, epochs: float = 1.0, seed: int = 0) -> TrainConfig:
    return TrainConfig(epochs=epochs, max_steps=args.max_steps, lr=lr, batch_size=args.batch_size, seed=seed)


def digest(settings: Any) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def search_config(args: argparse.Namespace, work: Path) -> MappingSearchConfig:
    """The proxy's settings; its output folder (the ETD init, the score cache) is named by their hash."""
    student = StudentConfig(num_layers=args.student_layers, hidden_size=args.student_hidden,
                            num_heads=args.student_heads, ffn_size=args.student_ffn)
    cfg = MappingSearchConfig(
        teacher=TEACHER, student=student, proxy_init=args.proxy_init, proxy_metric=args.proxy_metric,
        corpus=CorpusConfig(path=str(SHARED_DATA / "corpus" / "wikitext-2"), max_seq_len=args.seq_len),
        proxy_sequences=args.proxy_sequences, heldout_sequences=args.heldout_sequences,
        proxy_general=train(args, args.proxy_lr), tasks=tasks(args, work, args.task_examples),
        proxy_finetune=train(args, args.finetune_lr, args.finetune_epochs), monotone=True)
    # the cache key: what changes a proxy score (`distinct` only steers the search; separate_attention
    # only says how long a genome is, and the score files are named by the genome)
    settings = {k: v for k, v in to_dict(cfg).items()
                if k not in ("output", "distinct", "separate_attention", "final_general", "validate_top")}
    if settings["losses"]["attention_mapping"] is None:  # added later: left out, so earlier caches keep their key
        del settings["losses"]["attention_mapping"]
    if args.proxy_metric == "heldout_loss":  # ignored: not part of the cache key
        settings.pop("tasks"), settings.pop("proxy_finetune")
        settings["heldout_metric"] = "every_layer_relative"  # issue 29: not the last-layer scores cached before
    tag = f"{args.proxy_init}-{args.proxy_metric}-{args.student_layers}x{args.student_hidden}-{digest(settings)}"
    return dataclasses.replace(cfg, output=str(work / tag))


def name(m: Genome) -> str:
    return "[" + ",".join(map(str, m)) + "]"


def with_seed(cfg: MappingSearchConfig, seed: int) -> MappingSearchConfig:
    return dataclasses.replace(cfg, proxy_general=dataclasses.replace(cfg.proxy_general, seed=seed),
                               proxy_finetune=dataclasses.replace(cfg.proxy_finetune, seed=seed))


def cached_score(cfg: MappingSearchConfig, mapping: Genome, seed: int) -> dict[str, Any]:
    """The proxy's record for (mapping, seed), computed once and kept under the search's folder."""
    key = f"{'-'.join(map(str, mapping))}-s{seed}"
    cache = Path(cfg.output) / "scores" / f"{key}.json"
    if not cache.is_file():
        print(f"[mapping_search] proxy {name(mapping)} seed {seed}")
        # resume: a run killed after its last checkpoint continues; without one it starts afresh
        record = proxy_score(with_seed(cfg, seed), mapping, Path(cfg.output) / "candidates" / key, resume=True)
        atomic_write_json(cache, record)
    return json.loads(cache.read_text())


def sd(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) >= 2 else None


def landscape_mappings(k: int, non_decreasing: bool) -> list[Genome]:
    pick = itertools.combinations_with_replacement if non_decreasing else itertools.combinations
    return list(pick(range(1, TEACHER_LAYERS + 1), k))


def run_noise(cfg: MappingSearchConfig, uniform: Genome, seeds: list[int], save: Callable[[], None],
              result: dict[str, Any]) -> dict[str, Any]:
    noise: dict[str, Any] = {"mapping": list(uniform), "seeds": [], "fitness": [], "records": []}
    result["noise"] = noise
    for seed in seeds:
        record = cached_score(cfg, uniform, seed)
        noise["seeds"].append(seed)
        noise["fitness"].append(record["fitness"])
        noise["records"].append(record)
        noise.update(mean=statistics.mean(noise["fitness"]), sd=sd(noise["fitness"]),
                     proxy_seconds=round(sum(r["seconds"] for r in noise["records"]), 1))
        save()
    return noise


def run_landscape(cfg: MappingSearchConfig, mappings: list[Genome], seed: int, noise_sd: float | None,
                  save: Callable[[], None], result: dict[str, Any]) -> dict[Genome, float]:
    fitness: dict[Genome, float] = {}
    land: dict[str, Any] = {"size": len(mappings), "seed": seed, "mappings": {}}
    result["landscape"] = land
    for mapping in mappings:
        record = cached_score(cfg, mapping, seed)
        fitness[mapping] = record["fitness"]
        land["mappings"][name(mapping)] = {k: v for k, v in record.items() if k != "mapping"}
        spread = max(fitness.values()) - min(fitness.values())
        land.update(scored=len(fitness), spread=spread,
                    proxy_seconds=round(sum(r["seconds"] for r in land["mappings"].values()), 1),
                    spread_over_noise_sd=spread / noise_sd if noise_sd else None,
                    ranked=[name(m) for m in sorted(fitness, key=lambda m: -fitness[m])])
        save()
    return fitness


def replay_summary(runs: list[dict[str, Any]], **about: Any) -> dict[str, Any]:
    hits = [r for r in runs if r["found_best"]]
    return {**about, "replays": len(runs), "found_best_rate": len(hits) / len(runs),
            "mean_evaluations": statistics.mean(r["evaluations"] for r in runs),
            "mean_evaluations_to_best": statistics.mean(r["evaluations_to_best"] for r in hits) if hits else None}


def replay_record(seed: int, order: list[Genome], fitness: dict[Genome, float], top: float) -> dict[str, Any]:
    """One replay: the distinct genomes it scored, in order (a repeat costs no proxy run)."""
    to_best = next((i + 1 for i, g in enumerate(order) if fitness[g] == top), None)
    return {"seed": seed, "best": list(max(order, key=fitness.__getitem__)), "found_best": to_best is not None,
            "evaluations": len(order), "evaluations_to_best": to_best}


def run_search(fitness: dict[Genome, float], k: int, heuristics: dict[str, Genome], args: argparse.Namespace,
               monotone_space: bool, seeded: bool = True) -> dict[str, Any]:
    """The GA replayed on the scored landscape, one seed per replay, seeded with the hand-made
    mappings or (seeded=False) starting from random ones."""
    top = max(fitness.values())
    runs = []
    for seed in range(args.replays):
        order: list[Genome] = []
        ga = GeneticConfig(population=args.population, generations=args.generations, elite=1, seed=seed)
        # every genome the GA makes is in the landscape: strictly increasing (distinct) or non-decreasing
        r = genetic_search(fitness.__getitem__, k, 1, TEACHER_LAYERS, ga, monotone=True, distinct=monotone_space,
                           seeds=heuristics.values() if seeded else (), on_scored=lambda g, f: order.append(g))
        found = next((h.generation for h in r.history if h.best_fitness == top), None)
        runs.append({**replay_record(seed, order, fitness, top), "generation_found": found})
    hits = [r for r in runs if r["found_best"]]
    return {**replay_summary(runs, population=args.population, generations=args.generations, elite=1,
                             seeded=seeded, space="non-decreasing" if not monotone_space else "strictly increasing",
                             exhaustive=len(fitness)),
            "mean_generation_found": statistics.mean(r["generation_found"] for r in hits) if hits else None,
            "runs": runs}


def run_optuna(fitness: dict[Genome, float], k: int, heuristics: dict[str, Genome], args: argparse.Namespace,
               monotone_space: bool, seeded: bool) -> dict[str, Any]:
    """Optuna's genetic sampler (NSGA-II, one objective) replayed on the landscape with the GA's
    trial budget (population × generations), the hand-made mappings enqueued when `seeded`. A
    suggestion is repaired into the space as the GA repairs its children; only distinct genomes count
    as evaluations (the proxy is cached)."""
    import optuna

    from bertcompress.methods.mapping_search.genetic import strictly_increasing

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    top = max(fitness.values())
    runs = []
    for seed in range(args.replays):
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.NSGAIISampler(
            population_size=args.population, seed=seed))
        for g in heuristics.values() if seeded else ():
            study.enqueue_trial({f"layer{i}": v for i, v in enumerate(g)})
        order: list[Genome] = []
        for _ in range(args.population * args.generations):
            trial = study.ask()
            genes = [trial.suggest_int(f"layer{i}", 1, TEACHER_LAYERS) for i in range(k)]
            g = strictly_increasing(genes, TEACHER_LAYERS) if monotone_space else tuple(sorted(genes))
            if g not in order:
                order.append(g)
            study.tell(trial, fitness[g])
        runs.append(replay_record(seed, order, fitness, top))
    return replay_summary(runs, sampler=f"optuna {optuna.__version__} NSGAIISampler", seeded=seeded,
                          trials=args.population * args.generations)


def run_random(fitness: dict[Genome, float], args: argparse.Namespace, evaluations: int) -> dict[str, Any]:
    """Random search without repeats, the floor a search has to beat: the landscape in a shuffled
    order, cut after `evaluations` mappings (the unseeded GA's mean, so both spend the same)."""
    top = max(fitness.values())
    runs = []
    for seed in range(args.replays):
        order = sorted(fitness)
        random.Random(seed).shuffle(order)
        runs.append(replay_record(seed, order[:evaluations], fitness, top))
    return replay_summary(runs, evaluations_each=evaluations)


def run_separate(cfg: MappingSearchConfig, fitness: dict[Genome, float], k: int, heuristics: dict[str, Genome],
                 args: argparse.Namespace, seed: int, noise_sd: float | None, save: Callable[[], None],
                 result: dict[str, Any]) -> None:
    """The GA itself (not a replay) over pairs of strictly increasing mappings, one for the
    hidden-state and embedding losses and one for the attention loss: C(6, k)^2 genomes, too many
    to score all. A pair of equal mappings is the landscape's score; the others are new proxy runs."""
    separate_cfg = dataclasses.replace(cfg, separate_attention=True)  # same proxy, same score cache
    part: dict[str, Any] = {"space": len(fitness) ** 2, "population": args.population,
                            "generations": args.separate_generations, "elite": 1, "seed": seed, "scored": {}}
    result["separate"] = part
    same_best = max(fitness, key=fitness.__getitem__)

    def pair(genome: Genome) -> str:
        return f"{name(genome[:k])} attention {name(genome[k:])}"

    def score(genome: Genome) -> float:
        hidden, attention = genome[:k], genome[k:]
        if hidden == attention:
            value = fitness[hidden]
        else:
            record = cached_score(separate_cfg, genome, seed)
            value = record["fitness"]
            part["proxy_seconds"] = round(part.get("proxy_seconds", 0.0) + record["seconds"], 1)
        part["scored"][pair(genome)] = value
        top = max(part["scored"], key=part["scored"].__getitem__)
        gain = part["scored"][top] - fitness[same_best]
        part.update(evaluations=len(part["scored"]), best=top, best_fitness=part["scored"][top],
                    best_vs_same_mapping_best=gain,
                    best_vs_same_mapping_best_in_noise_sd=gain / noise_sd if noise_sd else None)
        save()
        return value

    u, last = heuristics["uniform"], heuristics["last"]
    ga = GeneticConfig(population=args.population, generations=args.separate_generations, elite=1, seed=seed)
    r = genetic_search(score, 2 * k, 1, TEACHER_LAYERS, ga, distinct=True, segments=2,
                       seeds=[u + u, last + last, u + last, last + u])
    part["generations_best"] = [{"generation": h.generation, "best": pair(h.best), "fitness": h.best_fitness,
                                 "scored_so_far": h.scored_so_far} for h in r.history]
    part["same_mapping_best"] = name(same_best)
    save()


def finetune_score(general: Path, task: DataConfig, train_cfg: TrainConfig, cache: Path) -> float:
    """Dev score of fine-tuning `general` on `task`, kept as a small JSON (the model is dropped)."""
    if not cache.is_file():
        out = finetune(FinetuneConfig(model=str(general), data=task, train=train_cfg,
                                      output=str(cache.with_suffix(""))))
        score = json.loads((out / "bertcompress_result.json").read_text())["dev"]["score"]
        atomic_write_json(cache, {"score": score})
        shutil.rmtree(out, ignore_errors=True)
    return json.loads(cache.read_text())["score"]


def run_validation(cfg: MappingSearchConfig, args: argparse.Namespace, work: Path, chosen: list[Genome],
                   fitness: dict[Genome, float], save: Callable[[], None], result: dict[str, Any]) -> None:
    full_train = dataclasses.replace(train(args, args.proxy_lr), save_every=100)  # minutes long: resumable
    task_cfgs = tasks(args, work, args.validation_examples)
    seeds = list(range(args.validation_seeds))
    settings = {"full_sequences": args.full_sequences, "general": to_dict(full_train),
                "tasks": [to_dict(t) for t in task_cfgs], "finetune_lr": args.finetune_lr,
                "finetune_epochs": args.finetune_epochs, "max_steps": args.max_steps}
    folder = Path(cfg.output) / f"validation-{digest(settings)}"
    val: dict[str, Any] = {"settings": settings, "seeds": seeds, "mappings": {}}
    result["validation"] = val
    stages = Stages(folder, tag="mapping_search")  # finished ones reused, killed ones resumed
    for mapping in chosen:
        out = folder / "-".join(map(str, mapping))
        general = stages(f"general {name(mapping)}", distill,
                         general_config(cfg, mapping, out / "general", full_train, args.full_sequences or None))
        per_task = {}
        for task in task_cfgs:
            scores = [finetune_score(general, task, train(args, args.finetune_lr, args.finetune_epochs, seed),
                                     out / f"{task.task}-s{seed}.json") for seed in seeds]
            per_task[task.task] = {"scores": scores, "mean": statistics.mean(scores), "sd": sd(scores)}
        last = result["landscape"]["mappings"].get(name(mapping), {}).get("heldout_last_mse")
        val["mappings"][name(mapping)] = {"proxy": fitness[mapping], "tasks": per_task,
                                          "proxy_last_layer": None if last is None else -last,
                                          "mean": statistics.mean(t["mean"] for t in per_task.values())}
        summarise_validation(val, result["heuristics"], result["proxy_best"])
        save()


def summarise_validation(val: dict[str, Any], heuristics: dict[str, list[int]], best: list[int]) -> None:
    rows = val["mappings"]
    if len(rows) >= 3:
        with warnings.catch_warnings():  # equal full scores: rho is undefined, recorded as null
            warnings.simplefilter("ignore")
            rho = spearmanr([r["proxy"] for r in rows.values()], [r["mean"] for r in rows.values()]).statistic
            val["spearman_proxy_full"] = None if math.isnan(rho) else float(rho)
            # the metric before issue 29 (the last layer's MSE alone), from the same proxy runs
            if all(r.get("proxy_last_layer") is not None for r in rows.values()):
                old = spearmanr([r["proxy_last_layer"] for r in rows.values()],
                                [r["mean"] for r in rows.values()]).statistic
                val["spearman_last_layer_proxy_full"] = None if math.isnan(old) else float(old)

    def versus(other: list[int]) -> float | None:
        a, b = rows.get(name(tuple(best))), rows.get(name(tuple(other)))
        if a is None or b is None:
            return None
        return statistics.mean(a["tasks"][t]["mean"] - b["tasks"][t]["mean"] for t in a["tasks"])

    val["best_vs_uniform"] = versus(heuristics["uniform"])
    val["best_vs_last"] = versus(heuristics["last"])


def print_summary(result: dict[str, Any]) -> None:
    noise, land = result["noise"], result["landscape"]
    print(f"noise: {name(tuple(noise['mapping']))} over seeds {noise['seeds']}: "
          + ", ".join(f"{f:.4f}" for f in noise["fitness"]) + f" (sd {noise['sd']})")
    rows = [{"mapping": m, "fitness": land["mappings"][m]["fitness"],
             "heldout_loss": land["mappings"][m].get("heldout_loss"),
             "last_mse": land["mappings"][m].get("heldout_last_mse"), **land["mappings"][m].get("scores", {}),
             "seconds": land["mappings"][m]["seconds"]} for m in land["ranked"]]
    print_table(rows, ["mapping", "fitness", "heldout_loss", "last_mse", *VALIDATION_TASKS, "seconds"])
    print(f"landscape: {land['size']} mappings, spread {land['spread']:.4f}, spread / noise sd "
          f"{land['spread_over_noise_sd']}")
    if "search" not in result:
        return
    s = result["search"]
    print(f"search: GA found the best in {s['found_best_rate']:.0%} of {s['replays']} replays, "
          f"{s['mean_evaluations']:.1f} proxy runs on average ({s['mean_evaluations_to_best']} to the best, "
          f"generation {s['mean_generation_found']}) against {s['exhaustive']} exhaustive")
    comparison = result.get("search_comparison")
    if comparison:
        print_table([{"searcher": "ga_seeded", **{c: s.get(c) for c in ("found_best_rate", "mean_evaluations",
                                                                         "mean_evaluations_to_best")}}]
                    + [{"searcher": n, **{c: r.get(c) for c in ("found_best_rate", "mean_evaluations",
                                                                 "mean_evaluations_to_best")}}
                       for n, r in comparison.items()],
                    ["searcher", "found_best_rate", "mean_evaluations", "mean_evaluations_to_best"])
    sep = result.get("separate")
    if sep:
        print(f"separate maps: GA scored {sep['evaluations']} of {sep['space']} pairs; best {sep['best']} "
              f"{sep['best_fitness']:.5f}, {sep['best_vs_same_mapping_best']:+.5f} against the best single mapping "
              f"{sep['same_mapping_best']} ({sep['best_vs_same_mapping_best_in_noise_sd']} noise sd)")
    val = result.get("validation")
    if val:
        print_table([{"mapping": m, "proxy": r["proxy"], **{t: f"{v['mean']:.4f}±{v['sd'] or 0:.4f}"
                                                           for t, v in r["tasks"].items()}, "mean": r["mean"]}
                     for m, r in val["mappings"].items()], ["mapping", "proxy", *VALIDATION_TASKS, "mean"])
        print(f"validation: Spearman proxy vs full {val.get('spearman_proxy_full')} (last-layer proxy: "
              f"{val.get('spearman_last_layer_proxy_full')}), best vs uniform "
              f"{val['best_vs_uniform']}, best vs last {val['best_vs_last']}")


def main() -> None:
    args = parse_args()
    work = Path(args.work)
    t_start = time.perf_counter()
    cfg = search_config(args, work)
    k = args.student_layers
    heuristics = {h: tuple(resolve_mapping(h, k, TEACHER_LAYERS)) for h in ("uniform", "last")}
    result: dict[str, Any] = {
        "settings": {"teacher": TEACHER, "smoke": args.smoke, "args": vars(args), "search_output": cfg.output,
                     "proxy": to_dict(cfg)},
        "heuristics": {h: list(m) for h, m in heuristics.items()}, "seconds": {}, "environment": environment()}

    def save() -> None:
        result["wall_seconds_this_run"] = round(time.perf_counter() - t_start, 1)
        write_result(args.result_name, result)

    def timed(part: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = fn()
        result["seconds"][part] = round(time.perf_counter() - t0, 1)
        save()
        return value

    seeds = list(range(args.noise_seeds))
    noise = timed("noise", lambda: run_noise(cfg, heuristics["uniform"], seeds, save, result))
    mappings = [tuple(int(x) for x in m.split(",")) for m in args.mappings] if args.mappings \
        else landscape_mappings(k, args.non_decreasing)
    fitness = timed("landscape", lambda: run_landscape(cfg, mappings, seeds[0], noise["sd"], save, result))
    ranked = sorted(fitness, key=lambda m: -fitness[m])
    result["proxy_best"] = list(ranked[0])
    if args.mappings:  # a partial landscape: no ground truth for a search, no validation of its best
        result["landscape"]["partial"] = True
        save()
        print_summary(result)
        print(f"wrote {write_result(args.result_name, result)}")
        return
    space = not args.non_decreasing
    result["search"] = timed("search", lambda: run_search(fitness, k, heuristics, args, space))
    # the same question without the head start of the seeds, and Optuna's genetic sampler beside it
    def compare() -> dict[str, Any]:
        unseeded = {k_: v for k_, v in run_search(fitness, k, heuristics, args, space, seeded=False).items()
                    if k_ != "runs"}
        return {"ga_unseeded": unseeded,
                "optuna_nsga2_seeded": run_optuna(fitness, k, heuristics, args, space, seeded=True),
                "optuna_nsga2_unseeded": run_optuna(fitness, k, heuristics, args, space, seeded=False),
                "random": run_random(fitness, args, round(unseeded["mean_evaluations"]))}
    result["search_comparison"] = timed("search_comparison", compare)
    if args.separate_search:
        timed("separate", lambda: run_separate(cfg, fitness, k, heuristics, args, seeds[0], noise["sd"], save,
                                               result))
    if not args.skip_validation:
        chosen = list(dict.fromkeys([*ranked[:3], heuristics["uniform"], heuristics["last"]]))
        timed("validation", lambda: run_validation(cfg, args, work, chosen, fitness, save, result))
    save()
    print_summary(result)
    print(f"wrote {write_result(args.result_name, result)}")


if __name__ == "__main__":
    main()
