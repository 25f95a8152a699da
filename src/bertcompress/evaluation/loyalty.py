"""Loyalty: how faithfully a student reproduces its teacher, beyond matching its accuracy.

Two students with the teacher's accuracy can disagree with it on many examples (right where it
is wrong and wrong where it is right); loyalty measures that agreement directly (docs/methods.md,
"Evaluation: loyalty, robustness, size, latency"):

- label loyalty: the share of examples on which the student predicts the teacher's label;
- probability loyalty: 1 − √JSD(P_teacher ‖ P_student) averaged over examples, the
  Jensen-Shannon divergence taken with log base 2 so that it, and the loyalty, lie in [0, 1].

For a tagging task both are taken per token: over every labelled word position (each word's
first piece) of the split, whose outputs `predict_logits` returns one row each, so the same
functions apply (label loyalty: the share of words the student tags as the teacher does).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import rel_entr, softmax
from scipy.stats import pearsonr

from bertcompress.core.errors import UserError


def _array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def _pair(teacher: Any, student: Any) -> tuple[np.ndarray, np.ndarray]:
    t, s = _array(teacher), _array(student)
    if t.shape != s.shape:
        raise UserError(f"teacher outputs {t.shape} and student outputs {s.shape} differ in shape")
    if t.shape[0] == 0:
        raise UserError("no examples to compare teacher and student on")
    return t, s


def label_loyalty(teacher_logits: Any, student_logits: Any) -> float:
    """Share of examples whose student argmax equals the teacher argmax. Inputs: (N, C)."""
    t, s = _pair(teacher_logits, student_logits)
    return float(np.mean(t.argmax(-1) == s.argmax(-1)))


def jensen_shannon_distance(p: Any, q: Any) -> np.ndarray:
    """√JSD (base 2) per row of two (N, C) probability arrays; zeros are safe (0·log 0 = 0).
    Ours, not scipy's `jensenshannon(base=2)` (same values and speed): scipy takes the root before
    the divergence can be clipped at 0, so near-identical rows, whose sum rounds to -1e-17, come
    back NaN (most rows 1e-9 apart); mapping NaN to 0 afterwards would also hide NaN inputs."""
    p, q = _pair(p, q)
    p = p / p.sum(-1, keepdims=True)
    q = q / q.sum(-1, keepdims=True)
    m = (p + q) / 2
    jsd = (rel_entr(p, m).sum(-1) + rel_entr(q, m).sum(-1)) / (2 * np.log(2))
    return np.sqrt(np.clip(jsd, 0.0, 1.0))


def probability_loyalty(teacher_probs: Any, student_probs: Any) -> float:
    """Mean over examples of 1 − √JSD(p_teacher, p_student), JSD in base 2: 1 for identical
    distributions, 0 for distributions with disjoint support."""
    return float(np.mean(1.0 - jensen_shannon_distance(teacher_probs, student_probs)))


def regression_loyalty(teacher_outputs: Any, student_outputs: Any) -> float | None:
    """Pearson correlation of student and teacher outputs (one number per example).

    A regressor has no label to agree on and no distribution to compare, so the analogue of
    loyalty is how well the student's scores track the teacher's. None where undefined (fewer
    than 2 examples or a constant output), rather than a made-up number.
    """
    t, s = _pair(teacher_outputs, student_outputs)
    t, s = t.reshape(-1), s.reshape(-1)
    if len(t) < 2 or np.ptp(t) == 0 or np.ptp(s) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(pearsonr(s, t)[0])


def loyalty(teacher_logits: Any, student_logits: Any, regression: bool,
            temperature: float = 1.0) -> dict[str, float | None]:
    """All loyalty numbers for one student, with the same three keys for every task so tables
    line up: classification fills label_loyalty and probability_loyalty (probabilities are
    softmax(logits / temperature)); regression fills only output_correlation (see
    `regression_loyalty`), the other two being None."""
    if regression:
        return {"label_loyalty": None, "probability_loyalty": None,
                "output_correlation": regression_loyalty(teacher_logits, student_logits)}
    if temperature <= 0:
        raise UserError(f"temperature must be > 0, got {temperature}")
    t, s = _pair(teacher_logits, student_logits)
    return {"label_loyalty": label_loyalty(t, s),
            "probability_loyalty": probability_loyalty(softmax(t / temperature, -1), softmax(s / temperature, -1)),
            "output_correlation": None}
