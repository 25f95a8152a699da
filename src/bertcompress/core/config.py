"""Typed configs: dataclasses whose fields carry their help text, loaded from YAML/JSON and
`key.path=value` overrides, validated, and saved beside every output.

A config is a dataclass made with `@config`, each field a `setting(default, "help")`: the CLI builds
its flags and `--help` from them. `load_config(DistillConfig, "x.yaml", overrides=["train.lr=1e-4"])`
builds one, `save_config(cfg, folder)` writes it as `bertcompress_config.yaml`, so a run can be
reproduced from its output folder alone.

Every value given lands on the defaults of the config it belongs to: `train.lr=1e-4` on a
`DistillConfig` changes that one number and keeps the rest of `DistillConfig().train` (epochs 3,
...), not the bare `TrainConfig()` defaults. A mapping field (`losses.weights`) merges the same way.
A section that defaults to None starts from the `template` in its field's metadata; an item of a
list of configs from the list's first default.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from bertcompress.core.errors import UserError
from bertcompress.core.io import CONFIG_FILENAME, atomic_write_text

T = TypeVar("T")


# ---------------------------------------------------------------- defining a config

DEFAULT_SEED = 42


def seed_setting(what: str) -> Any:
    return setting(None, f"seed of {what} (null: the command's `seed`)")


def fill_own_seeds(cfg: Any) -> None:
    """A nested config's unset seeds, until a top-level config derives them (`derive_seeds`)."""
    for f in dataclasses.fields(cfg):
        if f.name.endswith("seed") and getattr(cfg, f.name) is None:
            setattr(cfg, f.name, DerivedSeed(DEFAULT_SEED))


def derive_seeds(cfg: Any) -> None:
    """Every unset seed inside the top-level config `cfg` (at any depth) takes `cfg.seed`: one
    number reproduces a whole run, and each seed stays overridable on its own."""
    def walk(node: Any) -> None:
        for f in dataclasses.fields(node):
            v = getattr(node, f.name)
            if node is not cfg and f.name.endswith("seed") and (v is None or isinstance(v, DerivedSeed)):
                setattr(node, f.name, DerivedSeed(cfg.seed))
            for item in v if isinstance(v, list) else [v]:
                if dataclasses.is_dataclass(item) and not isinstance(item, type):
                    walk(item)
    walk(cfg)


def top_seed_setting() -> Any:
    return setting(DEFAULT_SEED, "the command's seed: every seed below left null (data split, validation slice, "
                   "data order, dropout, new weights, augmentation, search) derives from it")


def setting(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
            template: Callable[[], Any] | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its help text. `factory`: a default built per instance; `template`: what
    a section that defaults to None starts from when a file or override sets one of its keys."""
    metadata: dict[str, Any] = {"help": help}
    if choices:
        metadata["choices"] = choices
    if template is not None:
        metadata["template"] = template
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise UserError(f"bad config: {msg}")


def check_choice(value: str, choices: tuple[str, ...], name: str) -> None:
    check(value in choices, f"{name} must be one of {', '.join(choices)}, got {value!r}")


def check_choices(cfg: Any, values: dict[str, Any] | None = None, where: str = "") -> None:
    """Every `setting(..., choices=...)` field of `cfg` (or, given `values`, those about to be set)
    holds one of its choices: the one place choices are checked."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name) if values is None else values.get(f.name)
        if "choices" in f.metadata:  # a text, or a list of them (each one of the choices)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    check_choice(item, f.metadata["choices"], f"{where}.{f.name}" if where else f.name)


def config(cls: type[T]) -> type[T]:
    """`@config` makes a config class: a dataclass whose choices are checked on every construction
    (from a file, an override, a flag or Python) before its own `__post_init__` checks the rest."""
    cls = dataclasses.dataclass(cls)
    own = getattr(cls, "__post_init__", None)

    def __post_init__(self: Any) -> None:
        check_choices(self)
        if own is not None:
            own(self)

    cls.__post_init__ = __post_init__
    return cls


# ---------------------------------------------------------------- to and from plain data, files and overrides

class DerivedSeed(int):
    """A seed nobody set (null): the command's top-level `seed` (config.derive_seeds). An int
    wherever it is used; `to_dict` writes it as null, so a saved config whose top-level seed is
    changed moves it too. A seed given explicitly is a plain int and wins."""


yaml.SafeDumper.add_representer(DerivedSeed, yaml.representer.SafeRepresenter.represent_int)  # a number elsewhere


def to_dict(cfg: Any) -> dict[str, Any]:
    return _unset_derived(dataclasses.asdict(cfg))


def _unset_derived(v: Any) -> Any:
    if isinstance(v, DerivedSeed):
        return None
    if isinstance(v, dict):
        return {k: _unset_derived(x) for k, x in v.items()}
    return [_unset_derived(x) for x in v] if isinstance(v, list) else v


def from_dict(cls: type[T], data: Any, where: str = "", base: T | None = None) -> T:
    """`base` (default: `cls()`) with the keys of `data` replaced; nested sections merge the same
    way. Unknown keys and bad types are one-line `UserError`s."""
    if not isinstance(data, dict):
        got = _yaml_type(data) + ("" if data is None else f" {_yaml_text(data)}")
        raise UserError(f"bad config: {where or 'top level'} must be a mapping (a section of keys), got {got}")
    base = copy.deepcopy(base) if base is not None else cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    odd_keys = [k for k in data if not isinstance(k, str)]
    if odd_keys:  # YAML reads `1:`, `yes:`, `on:`, `~:` as a number, a boolean, null
        odd = odd_keys[0]
        raise UserError(f"bad config: key {_yaml_text(odd)} {'in ' + where if where else 'at the top level'} is not "
                        f"a name (YAML read it as {_yaml_type(odd)}; quote it if you meant the text) "
                        f"(known: {', '.join(sorted(fields))})")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"bad config: unknown key {where + '.' if where else ''}{unknown[0]} "
                        f"(known: {', '.join(sorted(fields))})")
    changes = {k: _convert(hints[k], v, f"{where}.{k}" if where else k, _base_of(fields[k], getattr(base, k)))
               for k, v in data.items()}
    check_choices(base, changes, where)  # here too, to name the key by its whole path
    return dataclasses.replace(base, **changes)  # runs __post_init__: cross-field checks see the result


def _yaml_text(v: Any) -> str:
    """`v` as YAML writes it (true, null, [1, 2]), for messages."""
    try:
        return yaml.safe_dump(v, default_flow_style=True, width=1 << 16).removesuffix("\n...\n").strip()
    except yaml.YAMLError:  # not plain data (a Python caller's object)
        return repr(v)


def _yaml_type(v: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", type(None): "null", str: "text", list: "a list",
            tuple: "a list", dict: "a mapping"}.get(type(v), type(v).__name__)


def _base_of(f: dataclasses.Field, current: Any) -> Any:
    if current is None and "template" in f.metadata:
        return f.metadata["template"]()
    return current


def _convert(tp: Any, v: Any, where: str, base: Any = None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if v is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, v, where, base)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0] if errors else f"bad config: {where} has a bad value {v!r}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, v, where, base if isinstance(base, tp) else None)
    if origin is dict:  # name -> value, merged onto the default mapping as a section is
        _, item = typing.get_args(tp)
        if not isinstance(v, dict):
            raise UserError(f"bad config: {where} must be a mapping (name: value), got {v!r}")
        merged = dict(base) if isinstance(base, dict) else {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise UserError(f"bad config: key {_yaml_text(k)} in {where} is not a name")
            merged[k] = _convert(item, x, f"{where}.{k}")
        return merged
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(v, list):
            raise UserError(f"bad config: {where} must be a list, got {v!r}")
        first = base[0] if isinstance(base, list) and base else None
        return [_convert(item, x, f"{where}[{i}]", first) for i, x in enumerate(v)]
    if tp is bool:
        if isinstance(v, bool):
            return v
    elif tp is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    elif tp is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(v)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(v, str):
            return v
    else:  # pragma: no cover
        return v
    raise UserError(f"bad config: {where} must be {getattr(tp, '__name__', tp)}, got {v!r}")


def apply_overrides(overrides: list[str]) -> dict[str, Any]:
    """`a.b.c=value` overrides (value parsed as YAML) as nested plain data."""
    data: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise UserError(f"bad override {item!r}: expected key.path=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UserError(f"bad override {item!r}: {p} is not a section")
        node[parts[-1]] = value
    return data


def read_yaml_config(cls: type, path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML/JSON config file, checked to hold a `cls` if it says what it holds."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}")
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"cannot read config file {p}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UserError(f"config file {p} is not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise UserError(f"config file {p} is not valid YAML: {_yaml_problem(e)}") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise UserError(f"config file {p} must hold a mapping (key: value lines) at the top level, "
                        f"not {_yaml_type(loaded)}")
    kind = loaded.pop("kind", None)  # written by save_config: which config the file holds
    if kind is not None and kind != cls.__name__:
        raise UserError(f"config file {p} holds a {kind}, not a {cls.__name__}")
    return loaded


def _yaml_problem(e: yaml.YAMLError) -> str:
    """What PyYAML found wrong, and where (its own message spans several lines)."""
    found = [t for t in (getattr(e, "context", None), getattr(e, "problem", None)) if t]
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    text = ", ".join(found) or (str(e).strip().splitlines() or [type(e).__name__])[0]
    return f"{text} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else text


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                base: T | None = None) -> T:
    """Defaults (`cls()`, or `base`) < YAML/JSON file < overrides, each merged key by key."""
    data = read_yaml_config(cls, path) if path is not None else {}
    _deep_merge(data, apply_overrides(overrides or []))
    return from_dict(cls, data, base=base)


def _deep_merge(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_merge(dst[k], v)
        else:
            dst[k] = v


def config_to_yaml(cfg: Any) -> str:
    return yaml.safe_dump({"kind": type(cfg).__name__, **to_dict(cfg)}, sort_keys=False)


def save_config(cfg: Any, folder: str | Path) -> Path:
    path = Path(folder) / CONFIG_FILENAME
    atomic_write_text(path, config_to_yaml(cfg))
    return path


def read_saved_config(cls: type[T], folder: str | Path) -> T:
    return load_config(cls, Path(folder) / CONFIG_FILENAME)
