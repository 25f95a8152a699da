"""Layer-mapping search on real data: does the proxy rank mappings like full runs do, and does the
genetic algorithm find the proxy's best mapping with fewer proxy runs than trying them all?

Teacher all-MiniLM-L6-v2 (6 layers, pre-trained); a small random-init student (2 layers × 192,
12 heads, FFN 768 by default), whose 21 non-decreasing mappings can all be scored here. Proxy:
general distillation on the first --proxy-sequences 64-token WikiText-2 sequences, then
fine-tuning on 2,000 examples each of SST-2, MRPC and QNLI (QNLI ships only its dev file here, so
its first 4,000 rows train and the rest score; the split is written under --work), averaging the
dev scores (500 each). Steps:
  1. `search_mapping` itself (the verb users run): population 6, 3 generations;
  2. the remaining mappings scored with the same proxy: the whole landscape;
  3. the genetic algorithm replayed on that landscape with 50 seeds: how often it finds the best
     mapping, with how many proxy runs;
  4. full runs for --full mappings (uniform, last, the proxy's best, worst and median): general
     distillation on all of WikiText-2, fine-tuning on 3× the data; Spearman correlation of the
     proxy and full scores.
Writes benchmarks/results/mapping_search.json.

    python benchmarks/mapping_search.py [--proxy-sequences 4000]

Scale: on 2 CPU cores one proxy run takes about 2 minutes, and at that size general distillation
does not yet help (measured 2026-11-26: SST-2 fine-tuned from a student distilled on 4,000
sequences 0.692, from one distilled for a single step 0.714), so the landscape is noise. Run it
where the proxy can be 10-100× longer (a GPU), and read the Spearman check before the search.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
import time
from pathlib import Path

from scipy.stats import spearmanr

from bertcompress.config import CorpusConfig, DataConfig, StudentConfig, TrainConfig
from bertcompress.search.config import GeneticConfig, MappingSearchConfig
from bertcompress.search.genetic import genetic_search
from bertcompress.search.layer_mapping import RESULT_FILE, proxy_score, search_mapping
from common import SHARED_DATA, environment, print_table, write_result

TEACHER = "all-MiniLM-L6-v2"


def qnli_split(work: Path, train_rows: int = 4000) -> Path:
    """QNLI's dev file cut into train (first rows) and dev (the rest), in GLUE layout."""
    folder = work / "qnli-split"
    if not (folder / "dev.tsv").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        lines = (SHARED_DATA / "glue" / "QNLI" / "dev.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / "train.tsv").write_text("".join(lines[:train_rows + 1]), encoding="utf-8")
        (folder / "dev.tsv").write_text("".join(lines[:1] + lines[train_rows + 1:]), encoding="utf-8")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--proxy-sequences", type=int, default=4000)
    ap.add_argument("--task-examples", type=int, default=2000)
    ap.add_argument("--full", type=int, default=5, help="mappings to run at full size for the ranking check")
    ap.add_argument("--work", default="runs/mapping_search")
    args = ap.parse_args()
    work = Path(args.work)
    t_start = time.perf_counter()
    glue = SHARED_DATA / "glue"

    def tasks(n: int) -> list[DataConfig]:
        return [DataConfig(task=t, path=str(p), max_seq_len=64, max_train_examples=n, max_eval_examples=500)
                for t, p in (("sst2", glue / "SST-2"), ("mrpc", glue / "MRPC"), ("qnli", qnli_split(work)))]

    student = StudentConfig(num_layers=args.layers, hidden_size=args.hidden, num_heads=12, ffn_size=4 * args.hidden)
    cfg = MappingSearchConfig(
        teacher=TEACHER, student=student,
        corpus=CorpusConfig(path=str(SHARED_DATA / "corpus" / "wikitext-2"), max_seq_len=64),
        proxy_sequences=args.proxy_sequences, tasks=tasks(args.task_examples),
        proxy_general=TrainConfig(epochs=1, lr=5e-4, batch_size=32),
        # a small random-init student stays at the majority class at lr 2e-4-3e-4 on 2,000 examples
        proxy_finetune=TrainConfig(epochs=3, lr=1e-3, batch_size=32),
        search=GeneticConfig(population=6, generations=3, elite=2, seed=0),
        output=str(work / f"search-{args.layers}x{args.hidden}-{args.proxy_sequences}"))

    # 1. the search itself
    t0 = time.perf_counter()
    out = search_mapping(cfg, resume=True)
    search_seconds = time.perf_counter() - t0
    saved = json.loads((out / RESULT_FILE).read_text())
    searched = {tuple(c["mapping"]): c for c in saved["candidates"]}
    n_by_search = len(searched)

    # 2. the whole landscape (cached beside the search, one file per mapping)
    landscape = dict(searched)
    for mapping in itertools.combinations_with_replacement(range(1, 7), args.layers):
        cache = out / "landscape" / ("-".join(map(str, mapping)) + ".json")
        if mapping not in landscape:
            if not cache.is_file():
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps(proxy_score(cfg, mapping, out / "candidates" / cache.stem)))
            landscape[mapping] = json.loads(cache.read_text())
    fitness = {m: c["fitness"] for m, c in landscape.items()}
    ranked = sorted(fitness, key=lambda m: -fitness[m])
    best = ranked[0]

    # 3. the GA replayed on the landscape with other seeds
    replays = []
    for seed in range(50):
        r = genetic_search(fitness.__getitem__, args.layers, 1, 6, dataclasses.replace(cfg.search, seed=seed),
                           seeds=[tuple(saved["heuristics"][h]["mapping"]) for h in saved["heuristics"]])
        replays.append({"found_best": fitness[r.best] == fitness[best], "rank": ranked.index(r.best) + 1,
                        "proxy_runs": len(r.scores)})

    # 4. full runs for a few mappings
    heur = {h: tuple(v["mapping"]) for h, v in saved["heuristics"].items()}
    chosen = list(dict.fromkeys([heur["uniform"], heur.get("last", best), best, ranked[-1],
                                 ranked[len(ranked) // 2], *ranked[1:]]))[:args.full]
    full_cfg = dataclasses.replace(cfg, proxy_sequences=10 ** 9, tasks=tasks(3 * args.task_examples))
    full = {}
    for mapping in chosen:
        cache = work / f"full-{args.layers}x{args.hidden}" / ("-".join(map(str, mapping)) + ".json")
        if not cache.is_file():
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(proxy_score(full_cfg, mapping, cache.parent / cache.stem)))
        full[mapping] = json.loads(cache.read_text())
    rho = spearmanr([fitness[m] for m in chosen], [full[m]["fitness"] for m in chosen]).statistic

    name = lambda m: "[" + ",".join(map(str, m)) + "]"  # noqa: E731
    result = {
        "settings": {"teacher": TEACHER, "student": dataclasses.asdict(student),
                     "proxy_sequences": args.proxy_sequences, "proxy_task_examples": args.task_examples,
                     "eval_examples": 500,
                     "search": dataclasses.asdict(cfg.search), "full_task_examples": 3 * args.task_examples,
                     "full_sequences": "all of WikiText-2 valid+test"},
        "search": {"best": list(saved["best"]["mapping"]), "best_fitness": saved["best"]["fitness"],
                   "proxy_runs": n_by_search, "seconds": round(search_seconds, 1),
                   "rank_of_found_in_landscape": ranked.index(tuple(saved["best"]["mapping"])) + 1},
        "heuristics": {h: {"mapping": list(m), "proxy": fitness[m], "rank": ranked.index(m) + 1}
                       for h, m in heur.items()},
        "landscape": {name(m): landscape[m]["scores"] | {"mean": fitness[m]} for m in ranked},
        "ga_replays": {"seeds": len(replays), "found_best_rate": sum(r["found_best"] for r in replays) / len(replays),
                       "mean_rank": statistics.mean(r["rank"] for r in replays),
                       "mean_proxy_runs": statistics.mean(r["proxy_runs"] for r in replays),
                       "space": len(fitness)},
        "full_runs": {name(m): {"proxy": fitness[m], "full": full[m]["fitness"], "scores": full[m]["scores"]}
                      for m in chosen},
        "spearman_proxy_vs_full": rho,
        "wall_seconds_this_run": round(time.perf_counter() - t_start, 1), "environment": environment()}
    print_table([{"mapping": name(m), "proxy": fitness[m], "full": full[m]["fitness"] if m in full else None,
                  **landscape[m]["scores"]} for m in ranked], ["mapping", "proxy", "full", "sst2", "mrpc", "qnli"])
    print(f"search: {name(saved['best']['mapping'])} after {n_by_search} proxy runs "
          f"(rank {result['search']['rank_of_found_in_landscape']} of {len(fitness)}); GA replays found the best "
          f"in {result['ga_replays']['found_best_rate']:.0%} of 50 seeds; Spearman proxy vs full {rho:.2f}")
    print(f"wrote {write_result('mapping_search', result)}")


if __name__ == "__main__":
    main()
