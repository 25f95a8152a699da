"""Throughput of ONE full TinyBERT distillation step, three ways, on the same inputs.

One step = teacher forward (no grad) + student forward and backward with all four TinyBERT
losses (embedding, hidden, attention, prediction) + an AdamW step. Teacher: BERT-base-sized
BertForSequenceClassification from a config (12 layers, 768 hidden, 12 heads, FFN 3072, vocab
30522, random weights, 2 labels); student: 4 layers × 312 (12 heads, FFN 1200) from `build_student`.

  ours        bertcompress DistillationObjective, as the training loop runs it by default
              (student scores from its own attention, teacher on SDPA with Q/K hooks, fused AdamW;
              in bf16 workloads the teacher stored and run in bf16: distill.teacher_precision auto)
  ours_cuda_graph  the same step replayed from a CUDA graph (`train.cuda_graphs: true`; CUDA only)
  ours_compiled    the same step with the objective under torch.compile (`train.torch_compile: true`)
  ours_compiled_cuda_graph  with --experimental only (CUDA; not a loop setting yet): the compiled
              objective's kernels, compiled during the eager warm-up, captured in the CUDA graph.
              Its own run and file (distill_step_experimental.json): a failed capture leaves CUDA's
              random generator mid-capture, which would spoil every later row of the run
  naive       the obvious Hugging Face version: eager attention, output_hidden_states and
              output_attentions, MSE on the returned (post-softmax) attention maps
  textbrewer  TextBrewer's GeneralDistiller (TinyBERT-style intermediate matches + KD loss),
              one `train_on_batch` + backward + AdamW step; null with the reason if it cannot run

Workloads: CPU batch 32 × 128 in fp32, and the same in bf16 autocast (`cpu_bf16`: what
`train.precision=bf16` does on a CPU); CUDA (if present) batch 128 × 128 in bf16 autocast, plus
model FLOPs utilisation against a measured 8192³ bf16 matmul peak. Reports tokens/s =
batch·seq / median step time; timed steps go round-robin over the implementations, together with
the teacher's forward alone (`teacher_forward_s`): the part of a step no implementation can
skip. Results are merged into benchmarks/results/distill_step.json (a device this run did not
measure keeps its earlier entry).

    python benchmarks/distill_step.py [--device cpu|cuda|all] [--steps N] [--quick] [--profile] [--experimental]

`--quick` (batch 4 × 32, one warm-up and one timed step) only prints; it never writes the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, ContextManager

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from bertcompress.core.io import atomic_write_json  # noqa: E402
from bertcompress.methods.distill.config import LossConfig  # noqa: E402
from bertcompress.methods.distill.objective import DistillationObjective  # noqa: E402
from bertcompress.models.config import StudentConfig
from bertcompress.models.student import build_student  # noqa: E402
from bertcompress.train.cuda_graph import GraphedStep  # noqa: E402
from bertcompress.train.loop import make_optimizer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "distill_step.json"
EXPERIMENTAL_RESULTS = RESULTS.with_name("distill_step_experimental.json")
WEIGHTS = {"embedding": 1.0, "hidden": 1.0, "attention": 1.0, "prediction": 1.0}
LR = 1e-4
TEACHER = dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
               vocab_size=30522)
STUDENT = StudentConfig(num_layers=4, hidden_size=312, num_heads=12, ffn_size=1200)
WORKLOADS = {  # name -> (device, batch, seq_len, warm-up steps, timed steps, dtype)
    "cpu": ("cpu", 32, 128, 1, 3, "fp32"),
    # bf16 autocast on the CPU: what `train.precision=bf16` does there (fast on CPUs with AMX/AVX512-BF16)
    "cpu_bf16": ("cpu", 32, 128, 1, 3, "bf16-autocast"),
    "cuda": ("cuda", 128, 128, 5, 20, "bf16-autocast"),
}
IMPLS = ("ours", "ours_cuda_graph", "ours_compiled", "ours_compiled_cuda_graph", "naive", "textbrewer")

Batch = dict[str, torch.Tensor]
# -> (loss, unweighted loss terms), all left on the device: a host sync per step would be timed too
Step = Callable[[Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


# ------------------------------------------------------------------ models and inputs

def build_models(attn: str, device: str, teacher_sizes: dict[str, int] = TEACHER,
                 student_cfg: StudentConfig = STUDENT, num_labels: int = 2,
                 teacher_dtype: torch.dtype = torch.float32) -> tuple[nn.Module, nn.Module]:
    """(teacher, student) using attention implementation `attn`; same seed, same weights."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(**teacher_sizes, num_labels=num_labels, attn_implementation=attn)
    torch.manual_seed(0)
    teacher = BertForSequenceClassification(config)
    student = build_student(teacher, student_cfg, classifier=True, num_labels=num_labels)  # inherits `attn`
    return teacher.to(device, teacher_dtype).eval().requires_grad_(False), student.to(device).train()


def make_batch(batch: int, seq_len: int, vocab: int, device: str) -> Batch:
    """Random token ids, no padding (every position is a real token)."""
    ids = torch.randint(min(1000, vocab // 2), vocab, (batch, seq_len), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "token_type_ids": torch.zeros_like(ids).to(device)}


def uniform_mapping(student: nn.Module, teacher: nn.Module) -> list[int]:
    """1-based teacher layer for each student layer, g(m) = m·N/M."""
    n_s, n_t = student.config.num_hidden_layers, teacher.config.num_hidden_layers
    return [m * n_t // n_s for m in range(1, n_s + 1)]


def autocast_for(device: str, dtype: str) -> Callable[[], ContextManager]:
    if dtype == "bf16-autocast":
        return lambda: torch.autocast(device, dtype=torch.bfloat16)
    return contextlib.nullcontext


def _update(loss: torch.Tensor, opt: torch.optim.Optimizer) -> torch.Tensor:
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


# ------------------------------------------------------------------ the three implementations

def make_ours(teacher: nn.Module, student: nn.Module, device: str, dtype: str,
              cuda_graph: bool = False, compiled: bool = False) -> tuple[Step, DistillationObjective]:
    objective = DistillationObjective(student, teacher, LossConfig(), WEIGHTS).to(device)
    # the training loop's optimizer
    opt = make_optimizer(objective, LR, 0.01, torch.device(device), capturable=cuda_graph)
    forward = _compiled_from_second_call(objective) if compiled else objective
    if cuda_graph:  # what the loop does with train.cuda_graphs: true
        return GraphedStep(objective, opt, bf16=dtype == "bf16-autocast", forward=forward), objective
    autocast = autocast_for(device, dtype)

    def step(batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with autocast():
            loss, logs = forward(batch)
        return _update(loss, opt), logs
    return step, objective


def _compiled_from_second_call(objective: nn.Module) -> Callable:
    """The objective eager at its first call (transformers installs its hooks there, which breaks
    the graph), compiled from the second on: as the loop does with train.torch_compile."""
    compiled, calls = torch.compile(objective), [0]

    def forward(batch: Batch):
        calls[0] += 1
        return (objective if calls[0] == 1 else compiled)(batch)
    return forward


def make_naive(teacher: nn.Module, student: nn.Module, device: str, dtype: str) -> Step:
    """Needs models built with attn="eager": HF returns attention maps only from the eager path."""
    d_s, d_t = student.config.hidden_size, teacher.config.hidden_size
    proj = nn.ModuleDict({"embedding": nn.Linear(d_s, d_t), "hidden": nn.Linear(d_s, d_t)}).to(device)
    mapping = uniform_mapping(student, teacher)
    opt = torch.optim.AdamW([*student.parameters(), *proj.parameters()], lr=LR)
    autocast = autocast_for(device, dtype)

    def step(batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with autocast():
            with torch.no_grad():
                t = teacher(**batch, output_hidden_states=True, output_attentions=True)
            s = student(**batch, output_hidden_states=True, output_attentions=True)
            terms = {
                "embedding": F.mse_loss(proj["embedding"](s.hidden_states[0]), t.hidden_states[0]),
                "hidden": sum(F.mse_loss(proj["hidden"](s.hidden_states[m]), t.hidden_states[n])
                              for m, n in enumerate(mapping, 1)),
                "attention": sum(F.mse_loss(s.attentions[m - 1], t.attentions[n - 1])
                                 for m, n in enumerate(mapping, 1)),
                "prediction": -(F.softmax(t.logits.float(), -1) * F.log_softmax(s.logits.float(), -1)).sum(-1).mean(),
            }
            loss = sum(terms.values())
        return _update(loss, opt), {k: v.detach() for k, v in terms.items()}
    return step


def make_textbrewer(teacher: nn.Module, student: nn.Module, device: str, dtype: str) -> Step:
    """TextBrewer's TinyBERT recipe on eager models: hidden_mse (linear 312→768) on the embeddings
    and each mapped layer, attention_mse on the mapped layers' HF attention maps, CE KD on logits."""
    from textbrewer import DistillationConfig, GeneralDistiller, TrainingConfig

    d_s, d_t = student.config.hidden_size, teacher.config.hidden_size
    matches = [{"layer_T": 0, "layer_S": 0, "feature": "hidden", "loss": "hidden_mse", "weight": 1,
                "proj": ["linear", d_s, d_t]}]
    for m, n in enumerate(uniform_mapping(student, teacher), 1):
        matches.append({"layer_T": n, "layer_S": m, "feature": "hidden", "loss": "hidden_mse", "weight": 1,
                        "proj": ["linear", d_s, d_t]})
        matches.append({"layer_T": n - 1, "layer_S": m - 1, "feature": "attention", "loss": "attention_mse",
                        "weight": 1})

    def adaptor(batch: Batch, out: Any) -> dict[str, Any]:
        return {"logits": out.logits, "hidden": out.hidden_states, "attention": out.attentions,
                "inputs_mask": batch["attention_mask"]}

    train_cfg = TrainingConfig(device=device, output_dir=tempfile.mkdtemp(prefix="textbrewer-"), log_dir=None)
    distill_cfg = DistillationConfig(temperature=1, kd_loss_type="ce", intermediate_matches=matches)
    distiller = GeneralDistiller(train_cfg, distill_cfg, teacher, student, adaptor, adaptor)
    # adds the projections' parameters to the optimizer, as TextBrewer's own train() does
    opt, _, _ = distiller.initialize_training(torch.optim.AdamW(student.parameters(), lr=LR), None, None, None)
    args = {"output_hidden_states": True, "output_attentions": True}
    autocast = autocast_for(device, dtype)

    def step(batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with autocast():
            loss, terms = distiller.train_on_batch(batch, args)
        return _update(loss, opt), {k: v.detach() for k, v in terms.items()}
    return step


# ------------------------------------------------------------------ timing and FLOPs

def time_steps(steps: dict[str, Step], batch: Batch, warmup: int, timed: int, device: str) -> dict[str, float]:
    """Median seconds of one step per implementation. Timed steps go round-robin, so a change in
    machine load (shared CPUs) hits every implementation alike."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for step in steps.values():
        for _ in range(warmup):
            step(batch)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(timed):
        for name, step in steps.items():
            sync()
            t0 = time.perf_counter()
            step(batch)
            sync()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


_MATMULS = {"mm", "addmm", "bmm", "baddbmm", "_scaled_dot_product_flash_attention",
            "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_efficient_attention",
            "_scaled_dot_product_cudnn_attention"}
_METADATA_ONLY = {"view", "_unsafe_view", "_reshape_alias", "t", "transpose", "permute", "expand", "unsqueeze",
                  "squeeze", "slice", "select", "as_strided", "alias", "detach", "split", "unbind"}


def memory_traffic(step: Step, batch: Batch) -> tuple[int, int]:
    """(bytes, operators) read and written by one eager step's operators outside matrix products
    and attention kernels, counted at the dispatcher (so the same on any device): the memory-bound
    work a GPU step spends its non-matmul time on. Whole tensors count (an embedding lookup counts
    its table), so read it as an upper bound to compare implementations by."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Count(TorchDispatchMode):
        bytes = ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = func.overloadpacket.__name__
            if name not in _MATMULS and name not in _METADATA_ONLY:
                tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
                Count.bytes += sum(t.numel() * t.element_size() for t in tensors)
                Count.ops += 1
            return out

    with Count():
        step(batch)
    return Count.bytes, Count.ops


def profile_steps(steps: dict[str, Step], batch: Batch, device: str, out: Path, rows: int = 25) -> None:
    """Where one step's time goes, per implementation: torch.profiler over 3 steps (after one
    warm-up), the top `rows` operators by self time on the device, written to `out`; for eager
    implementations also their `memory_traffic`."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    key = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    sections = []
    for name, step in steps.items():
        step(batch)
        with profile(activities=activities) as prof:
            t0 = time.perf_counter()
            for _ in range(3):
                step(batch)
            if device == "cuda":
                torch.cuda.synchronize()
            wall_ms = (time.perf_counter() - t0) * 1e3
        events = prof.key_averages()
        head = f"== {name}: 3 steps, {wall_ms:.1f} ms wall (with profiler overhead)"
        if device == "cuda":  # a GPU busy for much less than the wall time is waiting on the host
            # kernels only: an operator's self device time is its kernels' time counted again
            busy = sum(e.self_device_time_total for e in events
                       if e.device_type == torch.autograd.DeviceType.CUDA) / 1e3
            head += f", GPU kernels busy {busy:.1f} ms ({busy / wall_ms:.0%})"
        if name in ("ours", "naive", "textbrewer"):  # eager: a replayed graph or compiled code bypasses the count
            traffic, ops = memory_traffic(step, batch)
            head += f"; outside matmuls and attention kernels: {traffic / 1e9:.2f} GB read+written by {ops} operators"
        sections.append(f"{head}\n{events.table(sort_by=key, row_limit=rows)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(sections))
    print(f"wrote {out}")


def nonembedding_params(model: nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if ".embeddings." not in n)


def step_flops(teacher: nn.Module, student: nn.Module, batch: int, seq_len: int) -> float:
    """Model FLOPs of one step (a multiply-add is 2 FLOPs; only the models' useful work counts):
        T = batch·seq_len tokens; P = non-embedding params (layers, pooler, classifier); L layers; d width
        teacher forward:          2·P_t·T + 4·L_t·T·seq_len·d_t      (QKᵀ and A·V: 2·seq_len·d per token each)
        student forward+backward: 3·(2·P_s·T + 4·L_s·T·seq_len·d_s)   (backward = 2 × forward)
        projections fwd+bwd:      3·2·(1 + L_s)·d_s·d_t·T            (W_e, and W_h on each mapped layer)
    """
    t_cfg, s_cfg = teacher.config, student.config
    tokens = batch * seq_len
    teacher_fwd = 2 * nonembedding_params(teacher) * tokens \
        + 4 * t_cfg.num_hidden_layers * tokens * seq_len * t_cfg.hidden_size
    student_fwd = 2 * nonembedding_params(student) * tokens \
        + 4 * s_cfg.num_hidden_layers * tokens * seq_len * s_cfg.hidden_size
    proj_fwd = 2 * (1 + s_cfg.num_hidden_layers) * s_cfg.hidden_size * t_cfg.hidden_size * tokens
    return float(teacher_fwd + 3 * student_fwd + 3 * proj_fwd)


def matmul_peak_tflops(n: int = 8192, reps: int = 10) -> float:
    """Measured bf16 matmul throughput on this GPU: an n³ matmul, `reps` times."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e12


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "cpu"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------ one device

def bench_device(device: str, batch: int, seq_len: int, warmup: int, timed: int, dtype: str,
                 profile_to: Path | None = None, experimental: bool = False) -> dict[str, Any]:
    inputs = make_batch(batch, seq_len, TEACHER["vocab_size"], device)
    # the loop's default (distill.teacher_precision auto): a bf16 teacher wherever it trains in bf16
    teacher_dtype = torch.bfloat16 if dtype == "bf16-autocast" else torch.float32
    teacher, student = build_models("sdpa", device, teacher_dtype=teacher_dtype)
    eager_teacher, eager_student = build_models("eager", device)
    steps: dict[str, Step] = {"ours": make_ours(teacher, student, device, dtype)[0],
                              "naive": make_naive(eager_teacher, eager_student, device, dtype)}
    why: dict[str, str] = {}

    def optional(name: str, make: Callable[[], Step], first_calls: int, hint: str = "") -> float | None:
        """Add step `name` after `first_calls` untimed calls (warm-up, capture, compilation: all
        before any timing or profiling); any failure is recorded in `why`, not fatal. -> seconds
        the first calls took."""
        try:
            step, t0 = make(), time.perf_counter()
            for _ in range(first_calls):
                step(inputs)
            steps[name] = step
            return time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001
            why[name] = f"{type(e).__name__}: {e}" + (f"; {hint}" if isinstance(e, ImportError) and hint else "")
        return None

    def ours_variant(**kw) -> Step:
        return make_ours(*build_models("sdpa", device, teacher_dtype=teacher_dtype), device, dtype, **kw)[0]

    if device == "cuda":  # 3 eager warm-up steps, then the capture
        optional("ours_cuda_graph", lambda: ours_variant(cuda_graph=True), first_calls=4)
    else:
        why["ours_cuda_graph"] = "CUDA graphs need a CUDA device"
    if experimental:  # a run of its own, beside ours, ours_cuda_graph and naive (see --experimental)
        compile_s = optional("ours_compiled_cuda_graph", lambda: ours_variant(cuda_graph=True, compiled=True),
                             first_calls=4)
        why["ours_compiled"] = why["textbrewer"] = "not in the --experimental run"
    else:
        why["ours_compiled_cuda_graph"] = "measured only with --experimental on CUDA"
        # one eager step, then the compilation
        compile_s = optional("ours_compiled", lambda: ours_variant(compiled=True), first_calls=2)
        optional("textbrewer", lambda: make_textbrewer(eager_teacher, build_models("eager", device)[1], device,
                                                       dtype),
                 first_calls=1, hint="install with: pip install --no-deps textbrewer tensorboardX")

    if profile_to is not None:
        profile_steps(steps, inputs, device, profile_to)

    # not a step: the frozen teacher's forward alone, as `ours` runs it. Every implementation runs
    # it; the rest of a step is the student's side (forward, backward, losses, update)
    teacher_autocast = autocast_for(device, dtype) if teacher_dtype == torch.float32 else contextlib.nullcontext

    def teacher_forward(batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.no_grad(), teacher_autocast():
            return teacher(**batch, output_hidden_states=True).logits, {}

    measured = time_steps({**steps, "teacher_forward": teacher_forward}, inputs, warmup, timed, device)
    seconds = {k: measured.get(k) for k in IMPLS}
    tps = {k: (batch * seq_len / s if s else None) for k, s in seconds.items()}
    result: dict[str, Any] = {
        "tokens_per_s": tps,
        "ratios": {"ours_vs_naive": tps["ours"] / tps["naive"],
                   "ours_cuda_graph_vs_naive": _ratio(tps["ours_cuda_graph"], tps["naive"]),
                   "ours_compiled_vs_naive": _ratio(tps["ours_compiled"], tps["naive"]),
                   "ours_compiled_cuda_graph_vs_naive": _ratio(tps["ours_compiled_cuda_graph"], tps["naive"]),
                   "ours_vs_textbrewer": _ratio(tps["ours"], tps["textbrewer"])},
        "batch": batch, "seq_len": seq_len, "dtype": dtype,
        "step_time_s": seconds, "teacher_forward_s": measured["teacher_forward"],
        "warmup_steps": warmup, "timed_steps": timed,
        "compile_and_first_steps_s": compile_s,
        "device_name": device_name(device), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "transformers": _version("transformers"),
        "textbrewer_version": _version("textbrewer"), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if why:
        result["why"] = why
    if device == "cuda":
        flops = step_flops(eager_teacher, eager_student, batch, seq_len)
        peak = matmul_peak_tflops()
        result["step_tflop"] = flops / 1e12
        result["peak_bf16_tflops"] = peak
        result["mfu"] = {k: (flops / s / 1e12 / peak if s else None) for k, s in seconds.items()}
    return result


def print_table(name: str, r: dict[str, Any]) -> None:
    print(f"\n{name}: {r['device_name']}, {r['threads']} threads, batch {r['batch']} x {r['seq_len']}, "
          f"{r['dtype']}, median of {r['timed_steps']} steps")
    print(f"  {'impl':<26} {'step s':>8} {'tokens/s':>10} {'ours/this':>10}" + ("    MFU" if "mfu" in r else ""))
    for k, tps in r["tokens_per_s"].items():
        if tps is None:
            print(f"  {k:<26} {'-':>8} {'-':>10} {'-':>10}  ({r['why'][k]})")
            continue
        mfu = f"  {r['mfu'][k]:5.1%}" if "mfu" in r else ""
        print(f"  {k:<26} {r['step_time_s'][k]:>8.3f} {tps:>10.0f} {r['tokens_per_s']['ours'] / tps:>10.2f}{mfu}")
    if r.get("teacher_forward_s"):
        print(f"  the teacher's forward alone: {r['teacher_forward_s']:.3f} s "
              f"({r['teacher_forward_s'] / r['step_time_s']['ours']:.0%} of ours' step)")
    if "peak_bf16_tflops" in r:
        print(f"  step {r['step_tflop']:.2f} TFLOP; measured bf16 matmul peak {r['peak_bf16_tflops']:.0f} TFLOP/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 3 on CPU, 20 on CUDA)")
    ap.add_argument("--quick", action="store_true", help="batch 4 x 32, 1 warm-up + 1 timed step; writes nothing")
    ap.add_argument("--profile", action="store_true",
                    help="also write each workload's top operators per implementation to "
                         "benchmarks/results/distill_step_profile_<workload>.txt")
    ap.add_argument("--experimental", action="store_true",
                    help="CUDA only: add the ours_compiled_cuda_graph row, in a run of its own that writes "
                         "benchmarks/results/distill_step_experimental.json")
    args = ap.parse_args()
    results = EXPERIMENTAL_RESULTS if args.experimental else RESULTS
    if args.experimental and not torch.cuda.is_available():
        raise SystemExit("distill_step: --experimental needs a CUDA device")

    old = json.loads(results.read_text()) if results.is_file() else {}
    out: dict[str, Any] = {}
    for name, (device, batch, seq_len, warmup, timed, dtype) in WORKLOADS.items():
        if args.experimental and device != "cuda":
            continue
        if args.quick:
            batch, seq_len, warmup, timed = 4, 32, 1, 1
        timed = args.steps or timed
        if args.device not in (device, "all"):
            why = f"not measured in this run (--device {args.device})"
        elif device == "cuda" and not torch.cuda.is_available():
            why = "no CUDA device in this run"
        else:
            profile_to = results.with_name(f"{results.stem}_profile_{name}.txt") if args.profile else None
            out[name] = bench_device(device, batch, seq_len, warmup, timed, dtype, profile_to, args.experimental)
            print_table(name, out[name])
            continue
        out[name] = old.get(name)  # keep an earlier measurement; null if there never was one
        if out[name] is None:
            out[f"{name}_why"] = why
    if args.quick:
        print("\n--quick: results not written")
        return
    atomic_write_json(results, out)
    print(f"\nwrote {results}")


if __name__ == "__main__":
    main()
