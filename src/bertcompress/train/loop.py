"""The one training loop every method uses.

A method hands in a module whose `forward(batch)` returns `(loss, logs)`: a distillation
objective, a task model with a cross-entropy, a quantized student... The loop owns everything
else: AdamW with warm-up and linear decay, gradient accumulation, bf16 autocast on CUDA, DDP,
evaluation and checkpoints on a schedule, exact resume, NaN detection and a progress bar, and
(opt-in) `torch.compile` or whole steps replayed from CUDA graphs (train/cuda_graph.py),
(opt-in, `keep_best`) ending with the weights of the best evaluation instead of the last, and
(opt-in) early stopping: `patience` evaluations without improvement, or `max_minutes`.

Data order is a pure function of (seed, epoch): resuming at step s replays the same batches an
uninterrupted run would have seen, and the saved RNG state makes dropout identical too.

No per-step host sync: losses and logs stay on the device until a log, evaluation or checkpoint
point reads them at once (on a GPU, `.item()` every step would stall the launch queue each time),
and a non-finite loss found there is still reported with its exact step before anything is saved.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from bertcompress.core.errors import TrainingDiverged, UserError
from bertcompress.core.log import progress_bar
from bertcompress.train.checkpoint import load_checkpoint, save_checkpoint
from bertcompress.train.config import REPORTING, TrainConfig
from bertcompress.train.cuda_graph import GraphedStep
from bertcompress.train.distributed import any_rank, barrier, init_distributed, pick_device
from bertcompress.train.interrupt import Interrupted
from bertcompress.train.tracking import Tracking

Batch = dict[str, torch.Tensor]
EvalFn = Callable[[nn.Module], dict[str, float]]


@dataclass
class TrainResult:
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    final_eval: dict[str, float] | None = None
    seconds: float = 0.0
    step_seconds: float = 0.0  # `seconds` less evaluations and checkpoints: the training steps alone
    best_step: int | None = None  # keep_best: the step whose weights the module ends with
    stopped: str = "planned steps"  # or "patience", "max_minutes": why training ended


def seed_run(seed: int) -> None:
    """Seed torch's global generator as a verb starts: what it builds at random before its loop
    (a fresh task head on a pre-trained encoder, hidden-state projections) is then fixed by the
    config alone, as the loop's own dropout and batch order are."""
    torch.manual_seed(seed)


def make_optimizer(module: nn.Module, lr: float, weight_decay: float, device: torch.device,
                   capturable: bool = False) -> torch.optim.AdamW:
    """AdamW without decay on biases and LayerNorms, fused: one kernel for the whole update
    instead of several per parameter tensor (on one CPU thread, 4× faster for a 14 M-parameter
    student, whose 9.5 M-entry word-embedding table gets a dense update every step).

    `capturable` (CUDA graphs): step count and learning rate live on the device, each group with
    its own lr tensor, which the scheduler fills in place."""
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if capturable:
        for g in groups:
            g["lr"] = torch.tensor(lr, dtype=torch.float32, device=device)
    return torch.optim.AdamW(groups, lr=lr, fused=device.type in ("cpu", "cuda"), capturable=capturable)


def epoch_batches(n: int, seed: int, epoch: int, global_batch: int, lengths: list[int] | None = None,
                  drop_last: bool = False) -> list[list[int]]:
    """This epoch's global batches, a pure function of (seed, epoch).

    With `lengths`, examples of similar length share a batch (sorted inside windows of 50
    batches, then the batches shuffled), so dynamic padding wastes little compute on short
    texts; batch order stays random.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    if lengths is not None:
        window = global_batch * 50
        perm = [i for w in range(0, n, window)
                for i in sorted(perm[w:w + window], key=lambda j: lengths[j], reverse=True)]
    batches = [perm[i:i + global_batch] for i in range(0, n, global_batch)]
    if drop_last and batches and len(batches[-1]) < global_batch:
        batches.pop()
    if lengths is not None:
        order = torch.randperm(len(batches), generator=g).tolist()
        batches = [batches[i] for i in order]
    return batches


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _to_floats(logs: dict[str, torch.Tensor | float]) -> dict[str, float]:
    """Device tensors and floats -> floats, with a single host sync."""
    names = [k for k, v in logs.items() if isinstance(v, torch.Tensor)]
    values = torch.stack([logs[k].float() for k in names]).tolist() if names else []
    return {k: float(v) for k, v in logs.items()} | dict(zip(names, values))


def _cpu_copy(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _improves(scores: dict[str, float], best: dict[str, Any] | None) -> bool:
    return best is None or _score(scores) > best["score"]


def _score(scores: dict[str, float]) -> float:
    s = float(scores["score"])
    return -math.inf if math.isnan(s) else s  # a NaN score (constant predictions) is the worst


def planned_steps(cfg: TrainConfig, batches_per_epoch: int) -> int:
    """Optimizer steps a run of `cfg` takes when an epoch holds `batches_per_epoch` (micro-)batches."""
    steps_per_epoch = math.ceil(batches_per_epoch / cfg.grad_accum)
    return cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch), cfg.min_steps)


def train_loop(module: nn.Module, features: list[dict], collate: Callable[[list[dict]], Batch],
               cfg: TrainConfig, *, work_dir: str | Path, resume: bool = False,
               evaluate: EvalFn | None = None, desc: str = "train",
               settings: dict[str, Any] | None = None, config: Any = None) -> TrainResult:
    """Train `module` in place on `features`; return its history. Checkpoints go to `work_dir`.

    `settings`: the method's own settings (loss weights, bit widths, a curriculum...); like `cfg`
    and the data size they must match for `resume` to continue a checkpoint. `config`: the command's
    whole config, which `train.report_to` records with the run (train/tracking.py)."""
    if not features:
        raise UserError(f"{desc}: no training examples")
    if cfg.search is not None:  # train/hyperparameter_search.py runs this loop once per trial, with search unset
        raise UserError(f"{desc}: train.search (choosing lr and epochs) is only for fine-tuning: the finetune "
                        "command and run's finetune stage")
    work_dir = Path(work_dir)
    device = pick_device(cfg.device)
    ctx = init_distributed(device)
    if (cfg.keep_best or cfg.patience or cfg.max_minutes) and ctx.world_size > 1:  # the ranks would diverge
        raise UserError("train.keep_best, patience and max_minutes are not supported under DDP yet")
    if cfg.keep_best and evaluate is None:
        raise UserError(f"{desc}: train.keep_best needs an evaluation, and this phase has none")
    torch.manual_seed(cfg.seed + ctx.rank)
    module.to(device)
    model: nn.Module = module
    if ctx.world_size > 1:
        model = nn.parallel.DistributedDataParallel(
            # unused parameters happen: the pooler is not touched by intermediate losses
            module, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
    use_bf16 = cfg.uses_bf16(device.type)

    if cfg.torch_compile and ctx.world_size > 1:
        raise UserError("train.torch_compile is not supported under DDP yet (untested); run without it")
    if cfg.cuda_graphs and (device.type != "cuda" or ctx.world_size > 1):
        raise UserError(f"train.cuda_graphs needs one CUDA device and one process (device {device}, "
                        f"{ctx.world_size} processes)")
    optimizer = make_optimizer(module, cfg.lr, cfg.weight_decay, device, capturable=cfg.cuda_graphs)
    # Under DDP the ragged last batch is dropped so every rank takes the same number of steps
    # (a rank with a missing step would hang the others).
    global_batch, drop_last = cfg.batch_size * ctx.world_size, ctx.world_size > 1
    lengths = [len(f["input_ids"]) for f in features] if cfg.group_by_length and "input_ids" in features[0] else None
    micro_per_epoch = len(features) // global_batch if drop_last else math.ceil(len(features) / global_batch)
    batches_of_epoch = functools.lru_cache(maxsize=2)(
        lambda e: epoch_batches(len(features), cfg.seed, e, global_batch, lengths, drop_last))
    if micro_per_epoch == 0:
        raise UserError(f"{desc}: {len(features)} examples are fewer than one batch per process")
    total_steps = planned_steps(cfg, micro_per_epoch)
    eval_every = cfg.eval_every or (max(1, total_steps // 5) if cfg.keep_best or cfg.patience else 0)
    if cfg.patience and evaluate is None:
        raise UserError(f"{desc}: train.patience needs an evaluation, and this phase has none")
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    compiled = torch.compile(model) if cfg.torch_compile else None  # compiles at its first call
    graphed = None
    if cfg.cuda_graphs:
        longest = max(len(f["input_ids"]) for f in features) if "input_ids" in features[0] else None
        pad_id = next((m.config.pad_token_id for m in module.modules()
                       if getattr(getattr(m, "config", None), "pad_token_id", None) is not None), 0)
        graphed = GraphedStep(module, optimizer, max_grad_norm=cfg.max_grad_norm, bf16=use_bf16,
                              max_len=longest, pad_token_id=pad_id)

    step, history = 0, []
    best: dict[str, Any] | None = None  # keep_best: {"score", "step", "eval", "module" (a CPU copy)}
    # early stopping: the best score so far, evaluations since it improved, training seconds so far
    progress: dict[str, Any] = {"best_score": -math.inf, "stale": 0, "seconds": 0.0, "stopped": None}
    trains = {k: v for k, v in asdict(cfg).items() if k not in REPORTING}  # where it reports may change
    fingerprint = json.dumps({**trains, "n": len(features), "world": ctx.world_size,
                              "method": settings or {}}, sort_keys=True, default=str)
    if resume and (state := load_checkpoint(work_dir)) is not None:
        if state["fingerprint"] != fingerprint:
            raise UserError(f"cannot resume from {work_dir}: it was written with other settings or data")
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        step, history = int(state["step"]), json.loads(state["history"])
        best = state.get("best")
        progress = json.loads(state.get("progress", json.dumps(progress)))
    saved_step = step or None  # step is 0 unless a checkpoint was resumed

    def checkpoint() -> None:
        nonlocal saved_step
        check_finite()  # never save weights that a non-finite loss has already updated
        if ctx.is_main:
            state = {"module": module.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "step": step, "rng": torch.get_rng_state(),
                     "fingerprint": fingerprint, "history": json.dumps(history),
                     "progress": json.dumps({**progress, "seconds": elapsed()})}
            if best is not None:
                state["best"] = best
            if device.type == "cuda":
                state["cuda_rng"] = torch.cuda.get_rng_state(device)
            save_checkpoint(work_dir, state)
        saved_step = step
        barrier(ctx)

    unchecked: list[tuple[int, torch.Tensor]] = []  # (step, loss) not yet checked to be finite

    def check_finite() -> None:
        if not unchecked:
            return
        losses = torch.stack([loss for _, loss in unchecked]).float()
        bad = ~torch.isfinite(losses)
        if any_rank(bad.any(), ctx):  # one host sync for all of them
            bar.close()
            where = "non-finite on another process"
            if bad.any():
                at = int(bad.nonzero()[0])
                where = f"{float(losses[at])} at step {unchecked[at][0]}"
            raise TrainingDiverged(f"{desc}: loss became {where}; the last good checkpoint is kept in {work_dir}")
        unchecked.clear()

    tracking = Tracking(cfg, work_dir, config, settings, main=ctx.is_main)
    module.train()
    bar = progress_bar(total=total_steps, initial=step, desc=desc, disable=not ctx.is_main, dynamic_ncols=True)
    start, tokens, t0 = step, 0, time.perf_counter()
    seconds_before = float(progress["seconds"])  # of the runs this one resumes
    elapsed = lambda: seconds_before + time.perf_counter() - t0  # noqa: E731
    final_eval = None
    overhead = 0.0  # seconds of evaluations and checkpoints

    def run_evaluation() -> None:
        nonlocal overhead
        t_eval = time.perf_counter()
        _evaluation()
        overhead += time.perf_counter() - t_eval

    def timed_checkpoint() -> None:
        nonlocal overhead
        t_save = time.perf_counter()
        checkpoint()
        overhead += time.perf_counter() - t_save

    def _evaluation() -> None:
        nonlocal final_eval, best
        module.eval()
        final_eval = evaluate(module)
        module.train()
        history.append({"step": step, **{f"eval_{k}": v for k, v in final_eval.items()}})
        tracking.log(step, history[-1])
        if (cfg.keep_best or cfg.patience) and "score" not in final_eval:
            raise UserError(f"{desc}: train.keep_best and train.patience need an evaluation with a 'score', "
                            f"got {sorted(final_eval)}")
        if cfg.keep_best and _improves(final_eval, best):
            # plain types and tensors only: checkpoints load with weights_only=True
            best = {"score": _score(final_eval), "step": step, "eval": json.dumps(final_eval),
                    "module": _cpu_copy(module)}
        if cfg.patience:
            improved = _score(final_eval) > progress["best_score"]
            progress["best_score"] = max(progress["best_score"], _score(final_eval))
            progress["stale"] = 0 if improved else progress["stale"] + 1
            if progress["stale"] >= cfg.patience:
                progress["stopped"] = "patience"

    try:
        while step < total_steps and progress["stopped"] is None:
            logs_sum: dict[str, torch.Tensor | float] = {}
            if graphed is None:
                optimizer.zero_grad(set_to_none=True)
            for a in range(cfg.grad_accum):
                micro = step * cfg.grad_accum + a
                epoch, within = divmod(micro, micro_per_epoch)
                idx = batches_of_epoch(epoch)[within][ctx.rank * cfg.batch_size:(ctx.rank + 1) * cfg.batch_size]
                cpu_batch = collate([features[i] for i in idx])
                tokens += int(cpu_batch["attention_mask"].sum()) * ctx.world_size  # counted before the copy: no sync
                batch = _to_device(cpu_batch, device)
                if graphed is not None:  # forward, backward, clipping and the update in one replay
                    loss, logs = graphed(batch)
                else:
                    sync = a == cfg.grad_accum - 1 or ctx.world_size == 1
                    forward = compiled if compiled is not None and step > start else model
                    with (model.no_sync() if not sync else contextlib.nullcontext()), \
                            torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                        loss, logs = forward(batch)
                    loss = loss / cfg.grad_accum
                    loss.backward()
                unchecked.append((step + 1, loss.detach()))
                for k, v in {"loss": loss.detach(), **{k: v / cfg.grad_accum for k, v in logs.items()}}.items():
                    logs_sum[k] = logs_sum.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v)
            if graphed is None:
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.max_grad_norm)
                optimizer.step()
            scheduler.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == total_steps:
                check_finite()
                logged = _to_floats(logs_sum)
                rate = tokens / max(1e-9, time.perf_counter() - t0)
                history.append({"step": step, "lr": float(scheduler.get_last_lr()[0]), **logged})
                tracking.log(step, history[-1], tok_s=rate)
                bar.set_postfix(loss=f"{logged['loss']:.4f}", tok_s=f"{rate:,.0f}")
            if cfg.max_minutes is not None and elapsed() >= cfg.max_minutes * 60 and step < total_steps:
                progress["stopped"] = "max_minutes"
            if evaluate is not None and ctx.is_main and ((eval_every and step % eval_every == 0) or step == total_steps
                                                         or progress["stopped"] == "max_minutes"):
                run_evaluation()
            if cfg.save_every and step % cfg.save_every == 0 and step < total_steps:
                timed_checkpoint()
    except KeyboardInterrupt:
        bar.close()
        tracking.abort()
        raise Interrupted(desc, step, total_steps, saved_step, work_dir) from None
    except BaseException:
        tracking.abort()
        raise
    bar.close()
    if step > start:
        timed_checkpoint()  # a finished run resumes as finished: later phases can restart alone
    if best is not None:
        # copy_ into the existing tensors: the optimizer's and a CUDA graph's references stay valid
        module.load_state_dict(best["module"])
        final_eval = json.loads(best["eval"])
    module.eval()
    seconds = time.perf_counter() - t0
    result = TrainResult(steps=step - start, history=history, final_eval=final_eval, seconds=seconds,
                         step_seconds=seconds - overhead, best_step=best["step"] if best else None,
                         stopped=progress["stopped"] or "planned steps")
    tracking.finish(result)
    return result
