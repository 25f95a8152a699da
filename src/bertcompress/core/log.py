"""Messages and progress bars, through `logging` (logger "bertcompress").

Verbs say what they do with `log.info` and what looks wrong with `log.warning`. The CLI shows
both on stderr as `[bertcompress] ...` lines, and `--quiet` keeps the warnings and errors only
and turns the progress bars off. The Python API follows the logging convention: warnings show
(logging's last-resort handler), progress messages show once you ask for them:
`show_messages()` as the CLI shows them, or your own `logging` set-up.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, Iterator

log = logging.getLogger("bertcompress")
_progress = {"enabled": True}


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        warning = "WARNING: " if record.levelno == logging.WARNING else ""
        return f"[bertcompress] {warning}{record.getMessage()}"


def show_messages(quiet: bool = False) -> None:
    """Show bertcompress's messages as the CLI does: `[bertcompress] ...` lines on stderr, info and up
    (with `quiet`: warnings and errors only, and no progress bars). For scripts, e.g. benchmarks."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format())
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
    _progress["enabled"] = not quiet


@contextlib.contextmanager
def cli_logging(quiet: bool = False) -> Iterator[None]:
    """`show_messages` while the `bertcompress` command runs, restored afterwards (tests call the
    CLI's `main` many times in one process)."""
    saved = log.handlers[:], log.level, log.propagate, _progress["enabled"]
    show_messages(quiet)
    try:
        yield
    finally:
        log.handlers[:], log.level, log.propagate, _progress["enabled"] = saved


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar, unless progress bars are off (`--quiet`) or the caller disables it."""
    from tqdm.auto import tqdm

    kwargs["disable"] = kwargs.get("disable", False) or not _progress["enabled"]
    return tqdm(iterable, **kwargs)
