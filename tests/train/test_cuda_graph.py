"""CUDA-graph steps: what capture needs is checked on the CPU (no host reads in a step, padding
that changes no loss, clear errors); graphed training equal to eager runs where CUDA exists."""

import os
import subprocess
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import AutoModelForSequenceClassification

from bertcompress.core.errors import UserError
from bertcompress.data.encoding import collate
from bertcompress.methods.distill.config import LossConfig
from bertcompress.methods.distill.objective import DistillationObjective
from bertcompress.models.config import StudentConfig
from bertcompress.models.intermediates import no_mask_skip
from bertcompress.models.student import build_student
from bertcompress.train.config import TrainConfig
from bertcompress.train.cuda_graph import GraphedStep, pad_batch
from bertcompress.train.loop import make_optimizer, train_loop
from conftest import REPO, tiny_config

ALL_LOSSES = {"embedding": 1, "hidden": 1, "attention": 1, "prediction": 1}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class HostReads(TorchDispatchMode):
    """Records operators that copy a device value to the host or size an output by the data:
    on a GPU each is a sync, and inside a CUDA-graph capture an error."""

    READS = {"aten._local_scalar_dense.default", "aten.is_nonzero.default", "aten.nonzero.default",
             "aten.masked_select.default", "aten.item.default"}

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func) in self.READS:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def objective(family: str = "bert", dropout: float = 0.1, seed: int = 0) -> DistillationObjective:
    torch.manual_seed(seed)
    cfg = tiny_config(family, 100, layers=4)
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
        if hasattr(cfg, key):
            setattr(cfg, key, dropout)
    teacher = AutoModelForSequenceClassification.from_config(cfg)
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=24),
                            classifier=True, num_labels=2, seed=seed)
    return DistillationObjective(student, teacher, LossConfig(), ALL_LOSSES)


def padded_batch(lengths: list[int], pad_id: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    feats = [{"input_ids": torch.randint(5, 100, (n,), generator=g).tolist()} for n in lengths]
    return collate(feats, pad_id)


def test_pad_batch_pads_along_the_sequence_only():
    batch = padded_batch([5, 3], pad_id=1)
    batch["labels"] = torch.tensor([0, 1])
    batch["token_labels"] = torch.ones(2, 5, dtype=torch.long)
    out = pad_batch(batch, multiple=4, pad_token_id=1)
    assert out["input_ids"].shape == (2, 8) and out["attention_mask"].shape == (2, 8)
    assert out["input_ids"][:, 5:].eq(1).all() and out["attention_mask"][:, 5:].eq(0).all()
    assert torch.equal(out["input_ids"][:, :5], batch["input_ids"])
    assert torch.equal(out["labels"], batch["labels"])  # (B,): untouched
    assert out["token_labels"][:, 5:].eq(0).all()
    assert pad_batch(batch, multiple=4, max_len=6)["input_ids"].shape == (2, 6)  # never past the data
    assert pad_batch(batch, multiple=5) is batch  # already a multiple


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_padding_changes_no_loss(family):
    obj = objective(family, dropout=0.0).eval()
    pad_id = obj.student.config.pad_token_id
    batch = padded_batch([9, 6, 3], pad_id=pad_id)
    loss, logs = obj(batch)
    loss_p, logs_p = obj(pad_batch(batch, multiple=16, pad_token_id=pad_id))
    assert torch.allclose(loss, loss_p, rtol=1e-5, atol=1e-6)
    for k in logs:
        assert torch.allclose(logs[k], logs_p[k], rtol=1e-5, atol=1e-6), k


@pytest.mark.parametrize("family", ["bert", "roberta", "mpnet", "distilbert", "electra"])
def test_a_training_step_reads_nothing_on_the_host(family):
    obj = objective(family)
    batch = padded_batch([7, 4])
    with no_mask_skip(), HostReads() as reads:
        loss, _ = obj(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(obj.parameters()), 1.0)
    assert reads.seen == []


def test_without_no_mask_skip_the_teacher_mask_reads_the_host():
    """Proves the detector above: transformers' SDPA mask asks `mask.all()` to skip itself."""
    obj = objective("bert")
    with HostReads() as reads:
        obj(padded_batch([7, 7]))
    assert reads.seen


def test_no_mask_skip_is_undone():
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS as masks

    before = (masks["sdpa"], masks["eager"])
    with no_mask_skip():
        assert masks["sdpa"] is not before[0]
    assert (masks["sdpa"], masks["eager"]) == before


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="grad_accum 1"):
        TrainConfig(cuda_graphs=True, grad_accum=2)
    feats = [{"input_ids": [5, 6, 7]}] * 4
    with pytest.raises(UserError, match="one CUDA device"):
        train_loop(objective(), feats, lambda f: collate(f, 0), TrainConfig(cuda_graphs=True, device="cpu"),
                   work_dir=tmp_path)
    with pytest.raises(ValueError, match="capturable"):
        obj = objective()
        GraphedStep(obj, make_optimizer(obj, 1e-3, 0.0, torch.device("cpu")))


def test_capturable_optimizer_keeps_lr_on_the_device_per_group():
    obj = objective()
    opt = make_optimizer(obj, 1e-3, 0.01, torch.device("cpu"), capturable=False)
    assert all(isinstance(g["lr"], float) for g in opt.param_groups)
    if torch.cuda.is_available():
        opt = make_optimizer(obj.cuda(), 1e-3, 0.01, torch.device("cuda"), capturable=True)
        lrs = [g["lr"] for g in opt.param_groups]
        assert all(lr.is_cuda for lr in lrs) and lrs[0] is not lrs[1]


# ------------------------------------------------------------------ on a CUDA device

@cuda
def test_graphed_steps_equal_eager_steps():
    eager, graphed_obj = objective(dropout=0.0).cuda(), objective(dropout=0.0).cuda()
    opt_e = make_optimizer(eager, 1e-3, 0.01, torch.device("cuda"))
    opt_g = make_optimizer(graphed_obj, 1e-3, 0.01, torch.device("cuda"), capturable=True)
    step = GraphedStep(graphed_obj, opt_g, max_grad_norm=1.0, bf16=False, warmup=2, multiple=8)
    for i, lengths in enumerate([[9, 4], [12, 3], [7, 7], [16, 2], [5, 5], [10, 9], [3, 3]]):
        batch = {k: v.cuda() for k, v in padded_batch(lengths, seed=i).items()}
        opt_e.zero_grad()
        loss_e, _ = eager(batch)
        loss_e.backward()
        torch.nn.utils.clip_grad_norm_(eager.parameters(), 1.0)
        opt_e.step()
        loss_g, logs_g = step(batch)
        assert torch.allclose(loss_e.detach(), loss_g, rtol=1e-4, atol=1e-5), (i, loss_e, loss_g)
    assert step.num_graphs == 2  # lengths padded to 8 and 16
    for a, b in zip(eager.parameters(), graphed_obj.parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@cuda
def test_loop_with_cuda_graphs_trains_like_the_eager_loop(tmp_path):
    g = torch.Generator().manual_seed(0)
    feats = [{"input_ids": torch.randint(5, 100, (int(n),), generator=g).tolist()}
             for n in torch.randint(3, 30, (40,), generator=g)]
    cfg = dict(epochs=2, batch_size=8, lr=1e-3, precision="fp32", device="cuda", log_every=1)
    runs = []
    for graphs in (False, True):
        obj = objective(dropout=0.0)
        res = train_loop(obj, feats, lambda f: collate(f, 0), TrainConfig(cuda_graphs=graphs, **cfg),
                         work_dir=tmp_path / str(graphs))
        runs.append((obj, [h["loss"] for h in res.history if "loss" in h], [h["lr"] for h in res.history if "lr" in h]))
    (eager, loss_e, lr_e), (graphed, loss_g, lr_g) = runs
    assert lr_e == pytest.approx(lr_g)  # the scheduler drives the device-side lr
    assert loss_e == pytest.approx(loss_g, rel=1e-3)
    for a, b in zip(eager.parameters(), graphed.parameters()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4)


@cuda
def test_bf16_graphed_step_runs_on_the_benchmark_shape_family():
    obj = objective().cuda()
    step = GraphedStep(obj, make_optimizer(obj, 1e-3, 0.01, torch.device("cuda"), capturable=True))
    batch = {k: v.cuda() for k, v in padded_batch([32] * 4).items()}
    losses = [step(batch)[0] for _ in range(6)]
    assert all(torch.isfinite(x) for x in losses) and step.num_graphs == 1


class ReadsTheHost(torch.nn.Module):
    """A model whose forward asks a device value on the host: it cannot be captured."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def forward(self, batch):
        loss = (self.lin(batch["input_ids"].float()[:, :4]) ** 2).mean()
        if loss > 1e9:  # `if tensor`: a host read
            raise AssertionError
        return loss, {}


def capture_a_model_that_reads_the_host() -> None:
    model = ReadsTheHost().cuda()
    step = GraphedStep(model, make_optimizer(model, 1e-2, 0.0, torch.device("cuda"), capturable=True),
                       bf16=False, warmup=1)
    batch = {"input_ids": torch.arange(16, device="cuda").view(2, 8), "attention_mask": torch.ones(2, 8, device="cuda")}
    step(batch)  # eager warm-up
    step(batch)  # the capture


@cuda
def test_a_model_that_cannot_be_captured_is_a_one_line_error():
    """In a child process: a failed capture leaves CUDA's random generator unusable there."""
    code = "import test_cuda_graph as t; t.capture_a_model_that_reads_the_host()"
    paths = [str(REPO / "src"), str(REPO / "tests"), str(REPO / "tests" / "train"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "UserError: train.cuda_graphs: this model's step cannot be captured" in run.stderr
