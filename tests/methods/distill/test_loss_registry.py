"""Losses chosen by name: `losses.weights` checked against the registry, merged like a section, and
a new loss being one function and one registry line."""

from __future__ import annotations

import inspect

import pytest
import torch

from bertcompress.cli import main
from bertcompress.core.config import load_config
from bertcompress.core.errors import UserError
from bertcompress.methods.distill import loss_registry, losses
from bertcompress.methods.distill.config import DEFAULT_LOSS_WEIGHTS, DistillConfig, LossConfig
from bertcompress.methods.distill.loss_registry import LOSSES, is_layer_loss, loss_function, task_weights
from bertcompress.methods.distill.objective import DistillationObjective
from bertcompress.models.config import StudentConfig
from bertcompress.models.student import build_student


def test_every_registered_loss_is_a_function_of_losses_py():
    for name in LOSSES:
        fn = loss_function(name)
        assert inspect.getmodule(fn) is losses and list(inspect.signature(fn).parameters) == ["s", "t", "ctx"]
    assert [n for n in LOSSES if is_layer_loss(n)] == ["embedding", "hidden", "attention"]


def test_a_file_or_override_changes_the_weights_it_names_and_keeps_the_others(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("losses:\n  weights: {attention: 0}\n", encoding="utf-8")
    cfg = load_config(DistillConfig, path, overrides=["losses.weights.prediction=0.5"])
    assert cfg.losses.weights == {**DEFAULT_LOSS_WEIGHTS, "attention": 0.0, "prediction": 0.5}
    assert DistillConfig().losses.weights == DEFAULT_LOSS_WEIGHTS  # the default is not shared and changed


@pytest.mark.parametrize("override, message", [
    ("losses.weights.hiddn=1", "losses.weights: unknown loss 'hiddn' (known: embedding, hidden, attention, "
                               "prediction, token_prediction)"),
    ("losses.weights.hidden=-1", "losses.weights.hidden must be >= 0, got -1.0"),
    ("losses.weights.hidden=lots", "losses.weights.hidden must be float, got 'lots'"),
    ("losses.weights=3", "losses.weights must be a mapping (name: value), got 3"),
])
def test_a_bad_weight_is_one_line(override, message, capsys):
    assert main(["distill", "--set", override, "--print-config"]) == 2
    assert capsys.readouterr().err == f"bertcompress: error: bad config: {message}\n"


def test_task_weights_split_the_phases_and_name_the_kinds_prediction_term():
    weights = {"embedding": 1.0, "hidden": 2.0, "prediction": 0.5}
    assert task_weights(weights, layers=True) == {"embedding": 1.0, "hidden": 2.0}
    assert task_weights(weights, "token_prediction", layers=False) == {"token_prediction": 0.5}
    assert task_weights(weights, "token_prediction") == {"embedding": 1.0, "hidden": 2.0, "token_prediction": 0.5}


def test_a_new_loss_is_one_function_and_one_registry_line(monkeypatch, tiny_bert_dir):
    """Register a loss (the last layer's mean hidden state, matched to the teacher's) and distil
    with it by name alone."""
    from bertcompress.models.loading import load_model

    def mean_state_loss(s, t, ctx):
        return (s.hidden_states[-1].mean() - t.hidden_states[-1].mean()).pow(2)

    monkeypatch.setattr(losses, "mean_state_loss", mean_state_loss, raising=False)
    monkeypatch.setitem(LOSSES, "mean_state", loss_registry.Loss("methods.distill.losses:mean_state_loss",
                                                                 reads_layers=True))
    cfg = LossConfig(weights={"mean_state": 2.0})
    teacher = load_model(str(tiny_bert_dir), "base")
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=None, num_heads=None,
                                                   ffn_size=None, init="teacher_layers"), init_layers=[1, 2]).eval()
    objective = DistillationObjective(student, teacher, cfg, task_weights(cfg.weights, layers=True))
    batch = {"input_ids": torch.tensor([[2, 7, 9, 3]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    loss, logs = objective(batch)
    with torch.no_grad():
        s = student(**batch, output_hidden_states=True).hidden_states[-1].mean()
        t = teacher(**batch, output_hidden_states=True).hidden_states[-1].mean()
    assert set(logs) == {"mean_state"} and float(loss.detach()) == pytest.approx(2 * float((s - t) ** 2), rel=1e-4)
    with pytest.raises(UserError, match="unknown loss 'nope'"):
        LossConfig(weights={"nope": 1.0})
