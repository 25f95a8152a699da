"""train.keep_best: the loop ends with the weights of its best evaluation, also across --resume."""

import math

import pytest
import torch
from test_train_loop import CFG, Regressor, collate, features

from bertcompress.core.errors import UserError
from bertcompress.train import loop
from bertcompress.train.checkpoint import load_checkpoint
from bertcompress.train.config import TrainConfig
from bertcompress.train.distributed import DistContext
from bertcompress.train.loop import train_loop

BEST = dict(CFG, keep_best=True)  # 15 steps; eval_every 0 with keep_best: every 15 // 5 = 3 steps
SCORES = {3: 0.1, 6: 0.5, 9: 0.9, 12: 0.3, 15: 0.2}


class Toy(Regressor):
    """Counts its steps in a buffer: saved and resumed with the weights, so an evaluation can
    script its score by step."""

    def __init__(self, crash_at=None):
        super().__init__(crash_at)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, batch):
        out = super().forward(batch)
        self.steps += 1
        return out


def scripted(scores, snapshots=None):
    def evaluate(m):
        step = int(m.steps)
        if snapshots is not None:
            snapshots[step] = {k: v.clone() for k, v in m.state_dict().items()}
        return {"score": scores[step], "loss": float(step)}
    return evaluate


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("scores,best", [(SCORES, 9), ({**SCORES, 3: math.nan, 9: math.nan}, 6)])
def test_ends_with_the_weights_of_the_best_eval(tmp_path, scores, best):
    snapshots, model = {}, Toy()
    storage = [p.data_ptr() for p in model.parameters()]
    res = train_loop(model, features(), collate, TrainConfig(**BEST), work_dir=tmp_path,
                     evaluate=scripted(scores, snapshots))
    assert sorted(snapshots) == [3, 6, 9, 12, 15]
    assert res.best_step == best and res.final_eval == {"score": scores[best], "loss": float(best)}
    assert same_weights(model.state_dict(), snapshots[best])
    assert not same_weights(model.state_dict(), snapshots[15])
    assert [p.data_ptr() for p in model.parameters()] == storage  # copied in place: CUDA graphs keep theirs
    assert len([h for h in res.history if "eval_score" in h]) == 5  # every eval is still recorded


def test_without_keep_best_the_last_weights_stay(tmp_path):
    snapshots, model = {}, Toy()
    res = train_loop(model, features(), collate, TrainConfig(**{**CFG, "eval_every": 3}), work_dir=tmp_path,
                     evaluate=scripted(SCORES, snapshots))
    assert res.best_step is None and res.final_eval["score"] == SCORES[15]
    assert same_weights(model.state_dict(), snapshots[15])


@pytest.mark.parametrize("crash_at", [8, 11])  # checkpoints at 6 (before the best, 9) and 10 (after it)
def test_resume_ends_with_the_same_best_weights(tmp_path, crash_at):
    full = Toy()
    res = train_loop(full, features(), collate, TrainConfig(**BEST), work_dir=tmp_path / "a", evaluate=scripted(SCORES))

    with pytest.raises(KeyboardInterrupt):
        train_loop(Toy(crash_at), features(), collate, TrainConfig(**BEST), work_dir=tmp_path / "b",
                   evaluate=scripted(SCORES))
    state = load_checkpoint(tmp_path / "b")
    assert state["best"]["step"] == (6 if crash_at == 8 else 9)
    resumed = Toy()
    res2 = train_loop(resumed, features(), collate, TrainConfig(**BEST), work_dir=tmp_path / "b", resume=True,
                      evaluate=scripted(SCORES))
    assert res2.steps == 15 - state["step"]
    assert (res2.best_step, res2.final_eval) == (res.best_step, res.final_eval) == (9, {"score": 0.9, "loss": 9.0})
    assert same_weights(resumed.state_dict(), full.state_dict())

    # a finished run resumed: no step to take, and still the best weights
    again = Toy()
    res3 = train_loop(again, features(), collate, TrainConfig(**BEST), work_dir=tmp_path / "a", resume=True,
                      evaluate=scripted(SCORES))
    assert res3.steps == 0 and res3.best_step == 9
    assert same_weights(again.state_dict(), full.state_dict())


def test_refusals_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="needs an evaluation, and this phase has none"):
        train_loop(Toy(), features(), collate, TrainConfig(**BEST), work_dir=tmp_path / "a")
    with pytest.raises(UserError, match="need an evaluation with a 'score'"):
        train_loop(Toy(), features(), collate, TrainConfig(**BEST), work_dir=tmp_path / "b",
                   evaluate=lambda m: {"accuracy": 1.0})
    monkeypatch.setattr(loop, "init_distributed", lambda device: DistContext(rank=0, world_size=2))
    with pytest.raises(UserError, match="keep_best, patience and max_minutes are not supported under DDP"):
        train_loop(Toy(), features(), collate, TrainConfig(**BEST), work_dir=tmp_path / "c", evaluate=scripted(SCORES))
