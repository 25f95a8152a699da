"""The `bertcompress` command, built from the table in commands.py.

Each subcommand is its config's flags over its Python verb, as `transformers.HfArgumentParser`
builds flags from `TrainingArguments`: a flag's type, help and default come from the config field it
sets. Settings resolve as defaults < --config FILE < shortcut flags < field flags < --set, each
landing on the defaults of the section it belongs to.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import types
import typing
from typing import Any

from bertcompress import __version__
from bertcompress.commands import BY_NAME, COMMANDS, Command
from bertcompress.core.config import config_to_yaml, load_config
from bertcompress.core.errors import UserError
from bertcompress.core.io import strict_resume
from bertcompress.core.lazy import resolve
from bertcompress.core.log import cli_logging
from bertcompress.train.interrupt import Interrupted

EPILOG = ("Every setting can be given by --config FILE (YAML, keys as in the saved bertcompress_config.yaml) "
          "and --set key.path=value (repeatable); --print-config shows the result. Every output folder holds "
          "the bertcompress_config.yaml it ran with.")


def _field_at(defaults: Any, key: str) -> tuple[dataclasses.Field, Any, Any]:
    """The field at dotted `key` of a config (the command's defaults), its type, and its value."""
    obj = defaults
    for part in key.split("."):
        hints = typing.get_type_hints(type(obj))
        f = next(f for f in dataclasses.fields(obj) if f.name == part)
        tp, obj = hints[part], getattr(obj, part)
    return f, tp, obj


def _base_type(tp: Any) -> Any:
    """int | None -> int; list[int] -> list[int]; str | list[int] -> str."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _list_value(item: type):
    def parse(text: str) -> list:
        try:
            return [item(x.strip()) for x in text.replace("[", "").replace("]", "").split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {item.__name__} values, got {text!r}")
    return parse


def _add_field_flag(p: argparse.ArgumentParser, flag: str, key: str, defaults: Any) -> None:
    f, tp, default = _field_at(defaults, key)
    help_text = f.metadata.get("help", "")
    option = "--" + flag.replace("_", "-")
    names = [option, "-o"] if key == "output" else [option]
    base = _base_type(tp)
    if base is bool:
        if default:
            p.add_argument("--no-" + flag.replace("_", "-"), dest=flag, action="store_const", const=False,
                           default=None, help=f"turn off: {help_text} (config key {key})")
        else:
            p.add_argument(*names, dest=flag, action="store_const", const=True, default=None,
                           help=f"{help_text} (config key {key})")
        return
    kwargs: dict[str, Any] = {"dest": flag, "default": None, "metavar": flag.upper()}
    if typing.get_origin(base) is list:  # comma-separated, and repeatable: --budget 10ms --budget 20MB
        kwargs.update(type=_list_value(typing.get_args(base)[0]), action="extend")
        shown = ",".join(str(x) for x in default) if default else default
    else:
        kwargs["type"] = base if base in (int, float) else str
        shown = default
    if "choices" in f.metadata and typing.get_origin(base) is not list:  # a list's items: the config checks them
        kwargs.update(choices=f.metadata["choices"], metavar=None)
    default_text = "" if shown is None else f"default: {shown}; "
    p.add_argument(*names, help=f"{help_text} ({default_text}config key {key})", **kwargs)


def _add_quiet(p: argparse.ArgumentParser) -> None:
    # before or after the command; SUPPRESS: a subcommand's unset flag must not reset the main one's
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="warnings and errors only: no progress messages or bars (results still print)")


def _add_command(sub, cmd: Command) -> None:
    cls = resolve(cmd.config)
    defaults = cls()  # one instance: every flag reads its default from it
    p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description or cmd.help, epilog=EPILOG)
    if cmd.positional:
        f, _, _ = _field_at(defaults, cmd.positional)
        p.add_argument(cmd.positional, nargs="*", metavar=cmd.positional.upper().rstrip("S"),
                       help=f.metadata.get("help", ""))
    p.add_argument("--config", metavar="FILE", help="YAML config file (keys as in the saved bertcompress_config.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set train.lr=1e-4 (repeatable)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    _add_quiet(p)
    if any(f.name == "output" for f in dataclasses.fields(cls)):
        _add_field_flag(p, "output", "output", defaults)
        p.add_argument("--overwrite", action="store_true",
                       help="replace an output that another command wrote (an output is otherwise only replaced by "
                            "one of its own kind)")
    if cmd.resumable:
        p.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from its last checkpoint (finished stages are reused)")
    for s in cmd.shortcuts:
        option = "--" + s.flag.replace("_", "-")
        if s.takes is None:
            p.add_argument(option, dest=s.flag, action="store_true", help=s.help)
        else:
            p.add_argument(option, dest=s.flag, type=s.takes, metavar=s.metavar, help=s.help)
    for flag, key in cmd.flags.items():
        _add_field_flag(p, flag, key, defaults)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a bad command line is our one line (`bertcompress: error: ...`, exit 2)
    instead of its usage block and `bertcompress cvt: error:`. Subparsers are of this class too."""

    def error(self, message: str) -> typing.NoReturn:
        raise UserError(f"{message} (see `{self.prog} --help`)")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        args, extras = self.parse_known_args(args, namespace)
        if extras:  # name the subcommand whose flags these are not
            prog = f"{self.prog} {args.command}" if getattr(args, "command", None) else self.prog
            raise UserError(f"unrecognized arguments: {' '.join(extras)} (see `{prog} --help`)")
        return args


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with `only` the flags of that one command alone (the others
    listed by name and help): what `main` builds, importing one config."""
    parser = _Parser(prog="bertcompress", description="Compress BERT-family encoders into small, "
                     "fast students that keep their accuracy.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"bertcompress {__version__}")
    _add_quiet(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        if only is None or cmd.name == only:
            _add_command(sub, cmd)
        else:
            sub.add_parser(cmd.name, help=cmd.help)
    return parser


def _command_named(argv: list[str]) -> str | None:
    """The command an argument list names (its first argument that is a command), if any."""
    return next((a for a in argv if a in BY_NAME), None)


def _yaml_value(v: Any) -> str:
    return json.dumps(v)  # JSON is YAML: strings quoted, lists and numbers as they are


def resolve_config(cmd: Command, args: argparse.Namespace) -> Any:
    """Defaults < --config < shortcuts < field flags < --set."""
    overrides: list[str] = []
    for s in cmd.shortcuts:
        value = getattr(args, s.flag, None)
        if value not in (None, False):
            overrides += s.overrides(value)
    if cmd.positional and getattr(args, cmd.positional):
        overrides.append(f"{cmd.positional}={_yaml_value(getattr(args, cmd.positional))}")
    flags = {**cmd.flags, "output": "output"}
    for flag, key in flags.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={_yaml_value(value)}")
    return load_config(resolve(cmd.config), args.config, overrides + list(args.overrides))


def main(argv: list[str] | None = None) -> int:
    started = False
    try:
        # inside the try: a bad command line is one line, as is Ctrl-C while starting
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser(only=_command_named(argv) or "").parse_args(argv)
        started = True
        return _dispatch(args)
    except UserError as e:
        print(f"bertcompress: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        where = str(e) if isinstance(e, Interrupted) else "interrupted" if started else "interrupted while starting"
        print(f"bertcompress: {where}", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    cmd = BY_NAME[args.command]
    cfg = resolve_config(cmd, args)
    if args.print_config:
        print(config_to_yaml(cfg), end="")
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    verb = resolve(cmd.verb)
    kwargs = {"resume": args.resume} if cmd.resumable else {}
    if getattr(args, "overwrite", False):
        kwargs["overwrite"] = True
    with cli_logging(quiet=getattr(args, "quiet", False)):
        with strict_resume():  # --resume with nothing to resume is an error, not a fresh start
            result = verb(cfg, **kwargs)
        status = 0
        if cmd.show:  # a show function may return the exit status (run: a missed budget)
            status = resolve(cmd.show)(cfg, result) or 0
        elif result is not None:
            print(f"[bertcompress] wrote {result}")
    return status


if __name__ == "__main__":
    sys.exit(main())
