"""The shared loop: exact resume, NaN stop, accumulation, and the schedule."""

import pytest
import torch
from torch import nn

from bertcompress.core.errors import TrainingDiverged, UserError
from bertcompress.train.checkpoint import load_checkpoint
from bertcompress.train.config import TrainConfig
from bertcompress.train.loop import train_loop


class Regressor(nn.Module):
    """y = w·x with dropout, so resume must restore the RNG to match."""

    def __init__(self, crash_at: int | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 1)
        self.drop = nn.Dropout(0.3)
        self.calls, self.crash_at = 0, crash_at

    def forward(self, batch):
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise KeyboardInterrupt  # a kill in the middle of training
        pred = self.lin(self.drop(batch["x"])).squeeze(-1)
        return ((pred - batch["y"]) ** 2).mean(), {"mse": 0.0}


def features(n=24):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    return [{"x": x[i], "y": y[i]} for i in range(n)]


def collate(items):
    return {"x": torch.stack([i["x"] for i in items]), "y": torch.stack([i["y"] for i in items]),
            "attention_mask": torch.ones(len(items), 1)}


CFG = dict(epochs=3, batch_size=5, lr=0.05, save_every=2, log_every=1, warmup_ratio=0.2)


def test_resume_reaches_the_same_weights(tmp_path):
    full = Regressor()
    res = train_loop(full, features(), collate, TrainConfig(**CFG), work_dir=tmp_path / "a")
    assert res.steps == 15  # ceil(24 / 5) = 5 steps per epoch, 3 epochs
    assert res.history[-1]["loss"] < res.history[0]["loss"]

    crashed = Regressor(crash_at=8)
    with pytest.raises(KeyboardInterrupt):
        train_loop(crashed, features(), collate, TrainConfig(**CFG), work_dir=tmp_path / "b")
    assert load_checkpoint(tmp_path / "b")["step"] == 6  # last save before the crash at step 8

    resumed = Regressor()
    res2 = train_loop(resumed, features(), collate, TrainConfig(**CFG), work_dir=tmp_path / "b", resume=True)
    assert res2.steps == 9
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_refuses_other_settings(tmp_path):
    train_loop(Regressor(), features(), collate, TrainConfig(**CFG), work_dir=tmp_path)
    with pytest.raises(UserError, match="other settings"):
        train_loop(Regressor(), features(), collate, TrainConfig(**{**CFG, "lr": 0.1}), work_dir=tmp_path,
                   resume=True)


def test_resume_refuses_other_method_settings(tmp_path):
    # e.g. a Theseus curriculum or KDLSQ bit widths changed between the crash and the resume
    train_loop(Regressor(), features(), collate, TrainConfig(**CFG), work_dir=tmp_path, settings={"bits": 4})
    with pytest.raises(UserError, match="other settings"):
        train_loop(Regressor(), features(), collate, TrainConfig(**CFG), work_dir=tmp_path, resume=True,
                   settings={"bits": 2})
    res = train_loop(Regressor(), features(), collate, TrainConfig(**CFG), work_dir=tmp_path, resume=True,
                     settings={"bits": 4})
    assert res.steps == 0  # same settings: the finished run is taken as finished


def test_nan_loss_stops_and_keeps_checkpoint(tmp_path):
    class Exploding(Regressor):
        def forward(self, batch):
            loss, logs = super().forward(batch)
            return (loss * float("nan") if self.calls >= 5 else loss), logs

    with pytest.raises(TrainingDiverged, match="loss became nan at step 5"):
        train_loop(Exploding(), features(), collate, TrainConfig(**CFG), work_dir=tmp_path)
    state = load_checkpoint(tmp_path)
    assert state["step"] == 4 and all(torch.isfinite(v).all() for v in state["module"].values())


def test_grad_accumulation_equals_big_batch(tmp_path):
    """Two accumulated micro-batches of 6 = one batch of 12 (same loss scale, no dropout)."""
    def run(batch_size, accum, sub):
        m = Regressor()
        m.drop.p = 0.0
        cfg = TrainConfig(max_steps=3, batch_size=batch_size, grad_accum=accum, lr=0.05, warmup_ratio=0.0)
        train_loop(m, features(), collate, cfg, work_dir=tmp_path / sub)
        return m.lin.weight.detach().clone()

    # the data order depends only on (seed, epoch): micro-batches 0 and 1 of size 6 are exactly
    # batch 0 of size 12, so the updates must agree
    torch.testing.assert_close(run(6, 2, "a"), run(12, 1, "b"))
    assert not torch.allclose(run(6, 1, "c"), run(12, 1, "d"))


def test_schedule_warmup_then_decay(tmp_path):
    # transformers' linear schedule: 2 warm-up steps of 10, then a linear decay to 0
    cfg = TrainConfig(max_steps=10, batch_size=4, lr=0.1, warmup_ratio=0.2, log_every=1)
    result = train_loop(Regressor(), features(), collate, cfg, work_dir=tmp_path)
    lrs = [h["lr"] for h in result.history if "lr" in h]
    assert lrs == pytest.approx([0.05, 0.1, 0.0875, 0.075, 0.0625, 0.05, 0.0375, 0.025, 0.0125, 0.0])


def test_empty_features(tmp_path):
    with pytest.raises(UserError, match="no training examples"):
        train_loop(Regressor(), [], collate, TrainConfig(), work_dir=tmp_path)


def test_epoch_batches_group_by_length():
    from bertcompress.train.loop import epoch_batches

    lengths = [i % 37 + 1 for i in range(1000)]
    plain = epoch_batches(1000, 0, 0, 10)
    grouped = epoch_batches(1000, 0, 0, 10, lengths)
    assert sorted(i for b in grouped for i in b) == list(range(1000))  # every example once
    assert grouped == epoch_batches(1000, 0, 0, 10, lengths)  # deterministic
    assert grouped != epoch_batches(1000, 0, 1, 10, lengths)  # reshuffled each epoch

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert padding(grouped) < 0.1 * padding(plain)
    assert len(epoch_batches(1005, 0, 0, 10, drop_last=True)) == 100


def test_bf16_autocast_on_cpu_trains_fp32_weights(tmp_path):
    """train.precision=bf16 on a CPU: matmuls run in bf16 (autocast), weights and updates stay fp32."""
    seen = []

    class Probe(Regressor):
        def forward(self, batch):
            seen.append(self.lin(batch["x"]).dtype)
            return super().forward(batch)

    model = Probe()
    res = train_loop(model, features(), collate, TrainConfig(**{**CFG, "precision": "bf16"}), work_dir=tmp_path)
    assert seen and all(d == torch.bfloat16 for d in seen)
    assert model.lin.weight.dtype == torch.float32
    assert res.history[-1]["loss"] < res.history[0]["loss"]


def test_nan_found_at_a_checkpoint_between_log_points(tmp_path):
    """Losses are checked in batches (no per-step sync); a checkpoint still checks first, so the
    NaN at step 5 is reported exactly and the step-6 checkpoint is never written."""
    class Exploding(Regressor):
        def forward(self, batch):
            loss, logs = super().forward(batch)
            return (loss * float("inf") if self.calls >= 5 else loss), logs

    with pytest.raises(TrainingDiverged, match="loss became inf at step 5"):
        train_loop(Exploding(), features(), collate, TrainConfig(**{**CFG, "log_every": 100}), work_dir=tmp_path)
    assert load_checkpoint(tmp_path)["step"] == 4


def test_logs_from_device_tensors_and_floats(tmp_path):
    class Logging(Regressor):
        def forward(self, batch):
            loss, _ = super().forward(batch)
            return loss, {"as_tensor": loss.detach() * 2, "as_float": 1.5}

    cfg = TrainConfig(**{**CFG, "log_every": 5, "grad_accum": 1})
    res = train_loop(Logging(), features(), collate, cfg, work_dir=tmp_path)
    assert [h["step"] for h in res.history] == [5, 10, 15]
    for h in res.history:
        assert isinstance(h["as_tensor"], float) and h["as_float"] == 1.5
        assert h["as_tensor"] == pytest.approx(2 * h["loss"])


def test_more_processes_than_gpus_is_a_one_line_error(monkeypatch):
    from bertcompress.train.distributed import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "1")
    for name in ("auto", "cuda"):
        with pytest.raises(UserError, match="needs GPU 1, but 1 GPU"):
            pick_device(name)
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert pick_device("auto") == torch.device("cuda:0")


def test_min_steps_runs_more_epochs_of_a_small_data_set(tmp_path):
    from bertcompress.train.loop import epoch_batches

    seen = []

    class Recording(Regressor):
        def forward(self, batch):
            seen.append(batch["x"])
            return super().forward(batch)

    feats = features()
    res = train_loop(Recording(), feats, collate, TrainConfig(**{**CFG, "epochs": 1, "min_steps": 12}),
                     work_dir=tmp_path / "a")
    assert res.steps == 12 and res.history[-1]["step"] == 12
    assert res.history[-1]["lr"] == 0.0  # the schedule spans all 12 steps
    # 5 steps an epoch: epochs 0 and 1 whole, then 2 batches of epoch 2, in the seeded order
    expected = [b for e in range(3) for b in epoch_batches(len(feats), TrainConfig().seed, e, 5)][:12]
    assert len(seen) == 12
    for x, b in zip(seen, expected):
        assert torch.equal(x, torch.stack([feats[i]["x"] for i in b]))
    assert train_loop(Regressor(), feats, collate, TrainConfig(**{**CFG, "min_steps": 12}),
                      work_dir=tmp_path / "b").steps == 15  # 3 epochs are more already
    assert train_loop(Regressor(), feats, collate, TrainConfig(**{**CFG, "max_steps": 4, "min_steps": 12}),
                      work_dir=tmp_path / "c").steps == 4  # max_steps decides alone
    with pytest.raises(UserError, match="min_steps must be >= 0"):
        TrainConfig(min_steps=-1)

