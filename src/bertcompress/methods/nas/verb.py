"""`nas`: NAS-BERT end to end. Train one block-wise supernet against the teacher (pruning its
search space as it trains), then pick one model per budget and save each as a model folder.

    1. latency table: every module alone on the target device (cached for --resume)
    2. supernet: block-wise distillation with the shared loop; at every `prune.every` steps after
       `prune.warmup_steps`, each bin of each block loses its worst candidates by held-out loss, paced
       to finish by `prune.finish_at` of training (the loop's evaluation hook; the alive masks live in
       the checkpoint)
    3. selection: every survivor scored again on the re-rank set (`rerank_sequences`, held out
       apart from pruning's, so the picks are not the winners of pruning's noise); per budget, the
       best `rerank_top` architectures by summed block losses under the budget's predicted latency
       or parameters, re-ranked by the whole model's loss on that set (each block reading its
       predecessor's output, not the teacher's); the best is kept
    4. optionally (`final_general`), each chosen model continues with whole-model distillation
       against the teacher at every block boundary (`final_layers`, final_stage.py)

Output folder: models/<budget>/ (NAS-BERT encoders with the teacher's tokenizer; load them after
`import bertcompress.models.nasbert.modeling`), nas.json, report/family.png, bertcompress_config.yaml,
and supernet/ (the search, kept so that `--resume` picks new budgets from it: saved_search.py).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bertcompress.core.config import save_config, to_dict
from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_dir, atomic_write_json, writes_output
from bertcompress.core.log import log
from bertcompress.data.corpus import chunk_corpus, load_corpus
from bertcompress.data.encoding import Collator
from bertcompress.methods.nas.assemble import assemble, assembled_parameters
from bertcompress.methods.nas.config import NasConfig
from bertcompress.methods.nas.final_stage import FinalObjective, whole_loss
from bertcompress.methods.nas.latency import (
    LatencyCalibration,
    LatencyTable,
    block_ms,
    measure_model_ms,
    measure_table,
    predict_ms,
)
from bertcompress.methods.nas.saved_search import KEPT_SEARCH, SearchResult, link_or_copy, search_settings
from bertcompress.methods.nas.selection import parse_budget, select
from bertcompress.methods.nas.space import (
    block_candidates,
    block_parameters,
    block_slots,
    default_hiddens,
    default_num_blocks,
)
from bertcompress.methods.nas.space_pruning import (
    PruningSchedule,
    bin_candidates,
    cheapest_per_op,
    is_finished,
    paced_drops,
    prune_step,
    sample_per_bin,
)
from bertcompress.methods.nas.supernet import (
    Batch,
    BlockwiseObjective,
    Supernet,
    heldout_block_losses,
    heldout_embedding_losses,
)
from bertcompress.models.architecture import describe
from bertcompress.models.card import CardFacts, describe_shape, write_model_card
from bertcompress.models.loading import load_model, load_tokenizer, transformers_bars_off
from bertcompress.models.nasbert.arch import BlockArch, NasArch
from bertcompress.models.saving import checkpoint_dir, drop_checkpoints
from bertcompress.train.distributed import refuse_ddp
from bertcompress.train.loop import planned_steps, seed_run, train_loop

DEFAULT_RERANK = 256  # re-rank sequences when rerank_sequences is null (a corpus of 1,024 or more)
LATENCY_WARN_MAPE = 0.2  # a table this far off on the models it measured misleads the selection: say so


@writes_output
def nas(cfg: NasConfig, *, resume: bool = False) -> Path:
    """Run NAS-BERT for `cfg.budgets`; write the model family to `cfg.output`. With `resume`, a killed
    run continues from its checkpoints, and a finished output's kept supernet serves new budgets
    without training again."""
    refuse_ddp("nas is not supported under torchrun (DDP) yet: its pruning runs on one process")
    for name, train in (("train", cfg.train), ("final_general", cfg.final_general)):  # before anything is written
        if train is not None and train.search is not None:
            raise UserError(f"nas {name}.search (choosing lr and epochs) is only for fine-tuning")
    if cfg.final_general is not None and cfg.final_general.keep_best:
        raise UserError("nas final_general.keep_best needs an evaluation, and the final stage has none")
    seed_run(cfg.train.seed)
    tokenizer = load_tokenizer(cfg.teacher)
    teacher = load_model(cfg.teacher, "base").eval()
    view = describe(teacher)
    width, layers = teacher.config.hidden_size, view.num_layers
    head_size = width // teacher.config.num_attention_heads
    num_blocks = cfg.num_blocks or default_num_blocks(layers)
    slots = block_slots(layers, num_blocks)
    hiddens = cfg.hiddens or default_hiddens(width, head_size)
    embedding_sizes = cfg.embedding_sizes or sorted({min(hiddens), width})
    candidates = block_candidates(hiddens, slots, cfg.ops, head_size)
    space = {"num_blocks": num_blocks, "slots": slots, "hiddens": hiddens, "embedding_sizes": embedding_sizes,
             "ops": cfg.ops, "candidates_per_block": len(candidates), "teacher_layers": layers,
             "teacher_width": width, "head_size": head_size}
    log.info(f"nas: {num_blocks} blocks x {slots} slots, widths {hiddens}, embeddings "
             f"{embedding_sizes}: {len(candidates):,} candidates per block")

    train_features, pruning, rerank = _corpus_split(cfg, tokenizer)
    supernet = Supernet.from_teacher(teacher, num_blocks=num_blocks, slots=slots, hidden_sizes=hiddens,
                                     embedding_sizes=embedding_sizes, ops=cfg.ops)
    objective = BlockwiseObjective(supernet, teacher, [candidates] * num_blocks)
    kept = Path(cfg.output) / KEPT_SEARCH
    search = SearchResult.load(kept, search_settings(cfg), objective) if resume else None
    if search is None:
        collate = Collator(tokenizer.pad_token_id or 0)
        search = _search(cfg, objective, teacher, candidates, space, train_features, collate, pruning, rerank,
                         resume)
    else:
        log.info(f"nas: picking from the supernet kept in {kept} (no training)")
    chosen = _choose(cfg, objective, teacher, search, space, rerank)
    if not any(chosen.values()):  # nothing to write: the earlier output (if any) stays as it was
        attention = f" with {cfg.min_attention} attention slot(s) (min_attention)" if cfg.min_attention else ""
        raise UserError(f"nas: no architecture of the search space fits any budget ({', '.join(cfg.budgets)})"
                        f"{attention}; nothing was written to {cfg.output}. The search is kept: --resume with looser "
                        "budgets picks from it without training again")
    return _publish(cfg, tokenizer, objective, train_features, rerank, chosen, search, space,
                    reused=kept if search.reused else None)


def _search(cfg: NasConfig, objective: BlockwiseObjective, teacher: nn.Module, candidates: list, space: dict,
            train_features: list[dict], collate: Collator, pruning, rerank, resume: bool) -> SearchResult:
    """Latency table, supernet training with progressive pruning (scored on `pruning`), then every
    survivor scored on `rerank`."""
    num_blocks, embedding_sizes = space["num_blocks"], space["embedding_sizes"]
    work = checkpoint_dir(cfg.output, "nas")
    table, calibration, teacher_ms = _latency(cfg, work, space, teacher, objective.supernet, candidates)
    params = np.array([block_parameters(c) for c in candidates], dtype=float)
    latency = np.array([block_ms(table, c) for c in candidates])
    bins = bin_candidates(params, latency, cfg.prune.param_bins, cfg.prune.latency_bins)
    # pruning never touches these, and they do not count towards their bins' keep_per_bin
    kept = (cheapest_per_op([c.ops for c in candidates], latency, params) if cfg.prune.keep_cheapest
            else np.zeros(len(candidates), dtype=bool))
    train_cfg = replace(cfg.train, eval_every=cfg.prune.every, keep_best=False)
    total_steps = planned_steps(train_cfg, math.ceil(len(train_features) / train_cfg.batch_size))
    schedule = PruningSchedule(cfg.prune.warmup_steps, cfg.prune.every, total_steps, cfg.prune.finish_at)

    def prune_point(module: BlockwiseObjective) -> dict[str, float]:
        step = int(module.forwards) // train_cfg.grad_accum
        if schedule.is_point(step):
            rng = np.random.default_rng([cfg.train.seed, step])  # the same sample after a resume
            for b in range(num_blocks):
                alive = _alive_mask(module, b)
                prunable = alive & ~kept
                drops, sample = _point_plan(cfg, prunable, bins, schedule.points_left(step))
                scored = sample_per_bin(prunable, bins, sample, rng)
                losses = _block_losses(module, pruning, b, scored)
                survivors = prune_step(prunable, bins, losses, cfg.prune.keep_per_bin, scored, drops)
                module.set_alive(b, survivors | (alive & kept))
        return {f"alive_block{b + 1}": float(len(module.alive(b))) for b in range(num_blocks)}

    t0 = time.perf_counter()
    result = train_loop(objective, train_features, collate, train_cfg,
                        config=cfg, work_dir=work / "supernet", resume=resume, evaluate=prune_point,
                        desc="nas supernet", settings={"space": space, "prune": to_dict(cfg.prune)})
    supernet_seconds = round(time.perf_counter() - t0, 1)

    block_losses, finished = [], []
    for b in range(num_blocks):
        alive = _alive_mask(objective, b)
        finished.append(is_finished(alive & ~kept, bins, cfg.prune.keep_per_bin))
        if not finished[-1]:
            log.warning(f"nas: block {b + 1} still has {int(alive.sum())} candidates (pruning "
                        "did not finish: more steps, prune.finish_at, or a shorter prune.every); all of them are "
                        "scored now")
        block_losses.append(_block_losses(objective, rerank, b, alive, desc=f"nas scoring block {b + 1}"))
    pruning = {"pruning_points": schedule.points(), "pruning_finished": all(finished),
               "alive_after_pruning": [len(objective.alive(b)) for b in range(num_blocks)],
               "pruning_history": [h for h in result.history if any(k.startswith("eval_alive") for k in h)]}
    return SearchResult(block_losses=block_losses,
                        embedding_losses=heldout_embedding_losses(objective, rerank, embedding_sizes),
                        table=table, calibration=calibration, teacher_ms=teacher_ms, pruning=pruning,
                        supernet_seconds=supernet_seconds, checked={})


def _choose(cfg: NasConfig, objective: BlockwiseObjective, teacher: nn.Module, search: SearchResult, space: dict,
            rerank) -> dict[str, dict[str, Any] | None]:
    """Per budget: the best `rerank_top` by summed block losses under it, re-ranked whole; the
    models measured here are added to `search.checked`."""
    width, config = space["teacher_width"], teacher.config
    vocab, positions = config.vocab_size, config.max_position_embeddings
    types = getattr(config, "type_vocab_size", 0) or 0
    per_block = [(objective.candidates[b], losses, _alive_mask(objective, b))
                 for b, losses in enumerate(search.block_losses)]

    def cost_of(arch: NasArch) -> tuple[float, int]:
        return (search.calibration(predict_ms(search.table, arch)),
                assembled_parameters(arch, width, vocab, positions, types))

    chosen, checked = {}, search.checked
    for text in cfg.budgets:
        budget = parse_budget(text)
        top = select(per_block, (space["embedding_sizes"], search.embedding_losses), cost_of, budget,
                     cfg.rerank_top, teacher_latency_ms=search.teacher_ms, min_attention=cfg.min_attention)
        if not top:
            chosen[text] = None
            attention = f" with {cfg.min_attention} attention slot(s) (min_attention)" if cfg.min_attention else ""
            log.info(f"nas: no architecture of the search space fits budget {text}{attention}")
            continue
        ranked = []
        for arch, approx in top:
            key = arch.to_string()
            if key not in checked:
                model = assemble(objective.supernet, arch)
                predicted_ms, params = cost_of(arch)
                checked[key] = {"arch": key, "approx_loss": float(approx),
                                "whole_loss": whole_loss(model, objective, rerank),
                                "params": params, "predicted_latency_ms": predicted_ms,
                                "predicted_raw_ms": predict_ms(search.table, arch), "latency_ms": _measure(cfg, model)}
            ranked.append(checked[key])
        # the measured latency has the last word: a prediction that was short must not break the budget
        limit = budget.limit(search.teacher_ms)
        fitting = [r for r in ranked if budget.kind == "params" or r["latency_ms"] <= limit]
        chosen[text] = {**min(fitting or ranked, key=lambda r: r["whole_loss"]), "fits_measured": bool(fitting)}
        if not fitting:
            log.warning(f"nas: budget {text}: none of the {len(ranked)} re-ranked models measures under "
                        f"{limit:.2f} ms (predicted under it); kept the best, {chosen[text]['latency_ms']:.2f} ms")
    return chosen


def _alive_mask(objective: BlockwiseObjective, block: int) -> np.ndarray:
    alive = np.zeros(len(objective.candidates[block]), dtype=bool)
    alive[objective.alive(block)] = True
    return alive


def _corpus_split(cfg: NasConfig, tokenizer) -> tuple[list[dict], list[Batch], list[Batch]]:
    """Training sequences and two held-out sets (seeded samples, never trained on, disjoint): the
    pruning points' batches and the re-rank set that scores the survivors and the whole models."""
    sequences = chunk_corpus(tokenizer, load_corpus(cfg.corpus), cfg.corpus.max_seq_len, cfg.corpus.max_sequences)
    pruning = cfg.prune.heldout_batches * cfg.train.batch_size
    rerank = cfg.rerank_sequences or max(1, min(DEFAULT_RERANK, len(sequences) // 4))
    size = pruning + rerank
    if len(sequences) < 2 * size:
        raise UserError(f"nas: the corpus gives {len(sequences)} sequences; it needs at least {2 * size} "
                        f"(prune.heldout_batches x train.batch_size and rerank_sequences held out, as many to train)")
    order = torch.randperm(len(sequences), generator=torch.Generator().manual_seed(cfg.train.seed)).tolist()
    held = set(order[:size])
    collate = Collator(tokenizer.pad_token_id or 0)

    def batches(indices: list[int]) -> list[Batch]:
        chosen = [sequences[i] for i in indices]
        return [collate(chosen[i:i + cfg.train.batch_size]) for i in range(0, len(chosen), cfg.train.batch_size)]

    return ([s for i, s in enumerate(sequences) if i not in held], batches(order[:pruning]),
            batches(order[pruning:size]))


def _point_plan(cfg: NasConfig, alive: np.ndarray, bins: np.ndarray,
                points_left: int) -> tuple[dict[int, int] | None, int | None | dict[int, int]]:
    """What one pruning point of one block drops per bin (None: the worse half of what it scores) and
    how many candidates of each bin it scores (see SpacePruningConfig)."""
    prune = cfg.prune
    if prune.finish_at is None:
        return None, prune.scored_per_bin
    drops = paced_drops(alive, bins, prune.keep_per_bin, points_left)
    floor = prune.scored_per_bin or len(alive)
    return drops, {b: max(floor, 2 * d) for b, d in drops.items() if d > 0}


def _latency(cfg: NasConfig, work: Path, space: dict, teacher: nn.Module, supernet: Supernet,
             candidates: list) -> tuple[LatencyTable, LatencyCalibration, float]:
    """The lookup table, its calibration and the teacher's measured latency, measured once (kept
    for --resume)."""
    hiddens, embedding_sizes, num_blocks = space["hiddens"], space["embedding_sizes"], space["num_blocks"]
    path = work / "latency.json"
    settings = {"latency": to_dict(cfg.latency), "hiddens": hiddens, "embedding_sizes": embedding_sizes,
                "ops": cfg.ops, "num_blocks": num_blocks}
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved["settings"] == settings:
            return (LatencyTable.from_dict(saved["table"]), LatencyCalibration.from_dict(saved["calibration"]),
                    saved["teacher_ms"])
    lat = cfg.latency
    log.info("nas: measuring the latency table")
    table = measure_table(hiddens, embedding_sizes, space["teacher_width"], cfg.ops, head_size=space["head_size"],
                          vocab_size=teacher.config.vocab_size,
                          type_vocab_size=getattr(teacher.config, "type_vocab_size", 0) or 0,
                          device=lat.device, threads=lat.threads, batch_size=lat.batch_size, seq_len=lat.seq_len,
                          repeats=lat.repeats, warmup=lat.warmup)
    teacher_ms = _measure(cfg, teacher)
    calibration = _calibrate(cfg, table, supernet, candidates, embedding_sizes, num_blocks)
    atomic_write_json(path, {"settings": settings, "table": table.to_dict(), "calibration": calibration.to_dict(),
                             "teacher_ms": teacher_ms})
    return table, calibration, teacher_ms


def _calibrate(cfg: NasConfig, table: LatencyTable, supernet: Supernet, candidates: list,
               embedding_sizes: list[int], num_blocks: int) -> LatencyCalibration:
    """Measure `latency.calibration_models` whole models whose raw predictions span the space's range
    (evenly spaced quantiles of a seeded random sample) and fit the table's calibration on them.
    Latency does not depend on the weights: the untrained supernet serves."""
    count = cfg.latency.calibration_models
    if count == 0:
        return LatencyCalibration()
    rng = np.random.default_rng(cfg.train.seed)
    pool = {}
    for _ in range(50 * count):
        blocks = [candidates[int(rng.integers(len(candidates)))] for _ in range(num_blocks)]
        arch = NasArch([BlockArch(b.hidden, list(b.ops)) for b in blocks], int(rng.choice(embedding_sizes)))
        pool.setdefault(arch.to_string(), (predict_ms(table, arch), arch))
    ordered = sorted(pool.values(), key=lambda t: t[0])
    picks = [ordered[i] for i in sorted({round(q) for q in np.linspace(0, len(ordered) - 1, count)})]
    measured = [_measure(cfg, assemble(supernet, arch)) for _, arch in picks]
    calibration = LatencyCalibration.fit([raw for raw, _ in picks], measured, [a.to_string() for _, a in picks])
    log.info(f"nas: latency calibration on {len(picks)} measured models: "
             f"measured ~ {calibration.scale:.3f} x table sum + {calibration.offset_ms:.3f} ms")
    return calibration


def _measure(cfg: NasConfig, model: nn.Module) -> float:
    lat = cfg.latency
    return measure_model_ms(model, device=lat.device, threads=lat.threads, batch_size=lat.batch_size,
                            seq_len=lat.seq_len, repeats=lat.repeats, warmup=lat.warmup)


def _block_losses(objective: BlockwiseObjective, heldout, block: int, alive: np.ndarray,
                  desc: str | None = None) -> np.ndarray:
    """Held-out loss of every alive candidate of `block`; NaN for the pruned ones."""
    losses = np.full(len(alive), np.nan)
    indices = np.flatnonzero(alive).tolist()
    losses[indices] = heldout_block_losses(objective, heldout, block, indices, desc)
    return losses


def _card_facts(cfg: NasConfig, model, folder: Path, entry: dict[str, Any]) -> CardFacts:
    """A NAS-BERT pick's card: task-agnostic (no scores), its architecture and measured cost."""
    facts = CardFacts(name=folder.name, command="nas", model_kind="base", shape=describe_shape(model),
                      base_model=cfg.teacher, library="bertcompress")
    facts.notes.append(f"Budget {entry['name']}: architecture `{entry['arch']}`, {entry['params']:,} parameters, "
                       f"{entry['latency_ms']:.2f} ms measured ({cfg.latency.device}). A task-agnostic encoder: "
                       "distil or fine-tune it on a task next.\n")
    facts.load = ("import bertcompress.models.nasbert.modeling  # registers the nasbert classes with transformers\n"
                  "from transformers import AutoModel, AutoTokenizer\n\n"
                  f"model = AutoModel.from_pretrained(\"path/to/{folder.name}\")\n"
                  f"tokenizer = AutoTokenizer.from_pretrained(\"path/to/{folder.name}\")")
    return facts


def _publish(cfg: NasConfig, tokenizer, objective: BlockwiseObjective, train_features, rerank,
             chosen: dict[str, dict[str, Any] | None], search: SearchResult, space: dict,
             reused: Path | None) -> Path:
    """Write the output folder in one go: a model per budget, nas.json, the plot, the config and (with
    keep_supernet) the search. A budget picked again with the same architecture and final stage as in
    the output's earlier run keeps its model (`reused`: the kept search this run picked from)."""
    collate = Collator(tokenizer.pad_token_id or 0)
    # the final stage's settings, its losses among them: a model is reused only if made the same way
    final = {**to_dict(cfg.final_general), "layers": cfg.final_layers} if cfg.final_general is not None else None
    earlier = _earlier_budgets(cfg.output) if reused else {}
    budgets = []
    with atomic_dir(cfg.output) as tmp:
        for text, pick in chosen.items():
            if pick is None:
                budgets.append({"name": text, "arch": None, "fits": False})
                continue
            folder = tmp / "models" / _folder_name(text)
            same = earlier.get(text, {})
            if same.get("arch") == pick["arch"] and same.get("final_general") == final:
                shutil.copytree(Path(cfg.output) / "models" / _folder_name(text), folder, copy_function=link_or_copy)
                save_config(cfg, folder)
                budgets.append(same)
                continue
            model = assemble(objective.supernet, pick["arch"])
            entry = {"name": text, **pick, "final_general": final}
            if cfg.final_general is not None:
                entry.update(_continue(cfg, model, objective, train_features, collate, text))
                entry["whole_loss_after_final_general"] = whole_loss(model, objective, rerank)
            with transformers_bars_off():
                model.save_pretrained(folder, safe_serialization=True)
            tokenizer.save_pretrained(folder)
            save_config(cfg, folder)
            write_model_card(folder, _card_facts(cfg, model, folder, entry))
            budgets.append(entry)
        checked = list(search.checked.values())
        mape, raw = (float(np.mean([abs(c[key] - c["latency_ms"]) / c["latency_ms"] for c in checked])) if checked
                     else None for key in ("predicted_latency_ms", "predicted_raw_ms"))
        report = {"budgets": budgets, "teacher_latency_ms": search.teacher_ms, "latency_mape": mape,
                  "latency_mape_raw": raw, "latency_checked_models": len(checked),
                  "latency_calibration": search.calibration.to_dict(), "candidates": checked,
                  "space": space, "supernet_seconds": search.supernet_seconds,
                  "heldout_sequences": {"pruning": cfg.prune.heldout_batches * cfg.train.batch_size,
                                        "rerank": sum(len(b["input_ids"]) for b in rerank)},
                  "embedding_losses": dict(zip(map(str, space["embedding_sizes"]), search.embedding_losses.tolist())),
                  **search.pruning, "latency_table": search.table.to_dict(),
                  "supernet_kept": f"{KEPT_SEARCH}/" if cfg.keep_supernet else None}
        atomic_write_json(tmp / "nas.json", report)
        _plot(checked, budgets, search.teacher_ms, tmp / "report")
        if cfg.keep_supernet:
            search.save(tmp / KEPT_SEARCH, search_settings(cfg), objective, weights_from=reused)
        save_config(cfg, tmp)
    drop_checkpoints(cfg.output)
    written = len([b for b in budgets if b.get("arch")])
    log.info(f"nas: wrote {written} models to {cfg.output}/models"
          + (f"; latency table error {mape:.1%} over {len(checked)} measured models" if checked else ""))
    if mape is not None and mape > LATENCY_WARN_MAPE:
        log.warning(f"nas: the latency table was {mape:.0%} off on the models it measured, so it "
                    "ranked candidates poorly (each pick was still checked on measured latency); measure on an idle "
                    "machine or raise latency.repeats and latency.calibration_models")
    return Path(cfg.output)


def _earlier_budgets(output: str) -> dict[str, dict[str, Any]]:
    """The budgets of the nas.json already in `output`, by name (none when it is unreadable)."""
    try:
        return {b["name"]: b for b in json.loads((Path(output) / "nas.json").read_text())["budgets"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _continue(cfg: NasConfig, model: nn.Module, objective: BlockwiseObjective, features, collate,
              name: str) -> dict[str, Any]:
    """Whole-model distillation of a chosen model (the `final_general` stage)."""
    model.train()
    run = train_loop(FinalObjective(model, objective, model.config.nas_arch, cfg.final_layers), features, collate,
                     cfg.final_general,
                     config=cfg, work_dir=checkpoint_dir(cfg.output, "nas") / f"final_{_folder_name(name)}",
                     desc=f"nas final {name}")
    model.eval()
    last = next((h for h in reversed(run.history) if "loss" in h), {})
    return {"final_general_seconds": round(run.seconds, 1),
            "final_general_last_losses": {k: v for k, v in last.items() if k not in ("step", "lr")}}


def _folder_name(budget: str) -> str:
    return budget.replace(".", "_").replace(" ", "")


def _plot(candidates: list[dict], budgets: list[dict], teacher_ms: float, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "latency_ms", "measured latency (ms)"), (axes[1], "params", "parameters")):
        ax.scatter([c[key] for c in candidates], [c["whole_loss"] for c in candidates], s=12, c="0.6",
                   label="re-ranked candidates")
        picked = [b for b in budgets if b.get("arch")]
        ax.scatter([b[key] for b in picked], [b["whole_loss"] for b in picked], s=30, c="C0", label="chosen")
        for b in picked:
            ax.annotate(b["name"], (b[key], b["whole_loss"]), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("held-out loss against the teacher")
    axes[0].axvline(teacher_ms, ls="--", c="C3", label="teacher")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "family.png", dpi=120)
    plt.close(fig)
