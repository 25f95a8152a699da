import math

import numpy as np
import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.evaluation.loyalty import (
    jensen_shannon_distance,
    label_loyalty,
    loyalty,
    probability_loyalty,
    regression_loyalty,
)


def test_identical_outputs_are_fully_loyal():
    logits = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    out = loyalty(logits, logits.clone(), regression=False)
    assert out["label_loyalty"] == 1.0
    assert out["probability_loyalty"] == pytest.approx(1.0, abs=1e-7)
    assert out["output_correlation"] is None
    assert not np.isnan(jensen_shannon_distance(np.full((4, 2), 0.5), np.full((4, 2), 0.5))).any()


def test_probability_loyalty_by_hand():
    # p = [1, 0], q = [0.5, 0.5], m = [0.75, 0.25]
    # KL(p||m) = log2(1/0.75); KL(q||m) = 0.5 log2(0.5/0.75) + 0.5 log2(0.5/0.25)
    jsd = 0.5 * math.log2(1 / 0.75) + 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25))
    assert jsd == pytest.approx(0.3112781245)
    expected = 1 - math.sqrt(jsd)  # 0.442084...
    assert probability_loyalty([[1.0, 0.0]], [[0.5, 0.5]]) == pytest.approx(expected, abs=1e-12)
    # disjoint supports are as far apart as it gets; the mean runs over examples
    assert probability_loyalty([[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.5, 0.5]]) == pytest.approx(expected / 2)


def test_probability_loyalty_matches_scipy():
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(4), 8), rng.dirichlet(np.ones(4), 8)
    expected = np.mean(1 - jensenshannon(p, q, base=2, axis=1))
    assert probability_loyalty(p, q) == pytest.approx(expected)


def test_label_loyalty_by_hand():
    teacher = [[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.2, 0.1]]
    student = [[5.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.3, 0.1]]  # agrees on rows 0 and 3
    assert label_loyalty(teacher, student) == 0.5
    out = loyalty(torch.tensor(teacher), torch.tensor(student), regression=False, temperature=2.0)
    assert out["label_loyalty"] == 0.5 and 0 < out["probability_loyalty"] < 1


def test_regression_loyalty_is_output_correlation():
    teacher = np.array([0.1, 1.5, 2.0, 3.7, 4.2])
    assert regression_loyalty(teacher, 2 * teacher + 1) == pytest.approx(1.0)
    assert regression_loyalty(teacher, -teacher) == pytest.approx(-1.0)
    out = loyalty(teacher.reshape(-1, 1), (teacher + np.array([0.3, -0.2, 0.1, 0.0, -0.1])).reshape(-1, 1),
                  regression=True)
    assert out["label_loyalty"] is None and out["probability_loyalty"] is None
    assert 0.9 < out["output_correlation"] < 1.0
    assert regression_loyalty([1.0, 1.0, 1.0], [0.0, 1.0, 2.0]) is None  # undefined, not a number


def test_bad_inputs():
    with pytest.raises(UserError):
        label_loyalty(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(UserError):
        label_loyalty(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(UserError):
        loyalty(np.zeros((3, 2)), np.zeros((3, 2)), regression=False, temperature=0)


def test_near_identical_rows_are_fully_loyal_and_nan_stays_nan():
    # rows 1e-9 apart: the divergence rounds to about -1e-17, which must read as 0, not NaN
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 3))
    p = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    q = np.exp(x + 1e-9 * rng.normal(size=x.shape))
    q /= q.sum(-1, keepdims=True)
    d = jensen_shannon_distance(p, q)
    assert np.isfinite(d).all() and d.max() < 1e-4
    assert probability_loyalty(p, q) == pytest.approx(1.0, abs=1e-4)
    # a student that diverged to NaN is not reported as loyal
    assert math.isnan(loyalty(np.zeros((2, 2)), np.full((2, 2), np.nan), regression=False)["probability_loyalty"])
