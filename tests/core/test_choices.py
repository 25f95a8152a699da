"""Choices are checked in one place (`@config`): on every construction, and by their whole key path
when they come from a file, a flag or --set."""

from __future__ import annotations

import dataclasses

import pytest

from bertcompress.cli import main
from bertcompress.commands import COMMANDS
from bertcompress.core.config import config, load_config, setting
from bertcompress.core.errors import UserError
from bertcompress.core.lazy import resolve
from bertcompress.methods.distill.config import DistillConfig, LossConfig


def test_a_python_construction_is_checked():
    with pytest.raises(UserError, match=r"^bad config: head_rule must be one of strict, mean, got 'max'$"):
        LossConfig(head_rule="max")


def test_a_nested_key_is_named_by_its_path(capsys):
    assert main(["distill", "--set", "losses.head_rule=max", "--print-config"]) == 2
    assert capsys.readouterr().err == ("bertcompress: error: bad config: losses.head_rule must be one of strict, "
                                       "mean, got 'max'\n")


def test_own_checks_still_run_after_the_choices():
    @config
    class Toy:
        mode: str = setting("a", "", choices=("a", "b"))
        n: int = 1

        def __post_init__(self) -> None:
            if self.n < 0:
                raise UserError("bad config: n must be >= 0")

    assert Toy(mode="b").mode == "b"
    with pytest.raises(UserError, match="mode must be one of a, b"):
        Toy(mode="c")
    with pytest.raises(UserError, match="n must be >= 0"):
        Toy(n=-1)


def every_field(cls: type, prefix: str = ""):
    """(dotted key, field) of a config and of its sections, at any depth."""
    for f in dataclasses.fields(cls):
        yield f"{prefix}{f.name}", f
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            yield from every_field(type(default), f"{prefix}{f.name}.")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_choice_refuses_a_value_outside_it(command):
    """Each field declared with choices refuses another value, from any command's config."""
    cls = resolve(command.config)
    for key, f in every_field(cls):
        if "choices" in f.metadata:
            listed = "list[" in str(f.type)  # a list field (or null): each item is one of the choices
            with pytest.raises(UserError, match=f"{key} must be one of"):
                load_config(cls, overrides=[f"{key}=[not-a-choice]" if listed else f"{key}=not-a-choice"])


def test_distill_stage_is_a_choice():
    assert [f for f in dataclasses.fields(DistillConfig) if f.name == "stage"][0].metadata["choices"] == (
        "general", "task")
