"""Training to convergence: `patience` stops after that many evaluations without improvement,
`max_minutes` stops on time; both end on the best checkpoint and resume as finished."""

import pytest
from test_keep_best import BEST, Toy, same_weights, scripted
from test_train_loop import collate, features

from bertcompress.core.errors import UserError
from bertcompress.train.config import TrainConfig
from bertcompress.train.loop import train_loop

# evaluations every 3 steps of 15: the score peaks at step 6, then 2 evaluations without improvement
SCORES = {3: 0.1, 6: 0.5, 9: 0.4, 12: 0.45, 15: 0.9}


def test_patience_stops_after_evaluations_without_improvement(tmp_path):
    snapshots, model = {}, Toy()
    res = train_loop(model, features(), collate, TrainConfig(**BEST, patience=2), work_dir=tmp_path,
                     evaluate=scripted(SCORES, snapshots))
    assert sorted(snapshots) == [3, 6, 9, 12] and res.steps == 12  # never reaches 15, whose 0.9 it misses
    assert res.stopped == "patience" and res.best_step == 6 and res.final_eval["score"] == 0.5
    assert same_weights(model.state_dict(), snapshots[6])
    again = train_loop(Toy(), features(), collate, TrainConfig(**BEST, patience=2), work_dir=tmp_path,
                       evaluate=scripted(SCORES), resume=True)  # a stopped run resumes as finished
    assert again.steps == 0 and again.stopped == "patience" and again.best_step == 6


def test_patience_three_trains_on(tmp_path):
    res = train_loop(Toy(), features(), collate, TrainConfig(**BEST, patience=3), work_dir=tmp_path,
                     evaluate=scripted(SCORES))
    assert res.steps == 15 and res.stopped == "planned steps" and res.best_step == 15


def test_max_minutes_stops_on_time_and_evaluates_where_it_stopped(tmp_path):
    snapshots = {}
    res = train_loop(Toy(), features(), collate, TrainConfig(**BEST, max_minutes=1e-9), work_dir=tmp_path,
                     evaluate=scripted(SCORES | {1: 0.05}, snapshots))
    assert res.steps == 1 and res.stopped == "max_minutes" and sorted(snapshots) == [1]


def test_patience_needs_an_evaluation(tmp_path):
    with pytest.raises(UserError, match="patience needs an evaluation"):
        train_loop(Toy(), features(), collate, TrainConfig(**dict(BEST, keep_best=False), patience=2),
                   work_dir=tmp_path)
    with pytest.raises(UserError, match="patience must be >= 0"):
        TrainConfig(patience=-1)
