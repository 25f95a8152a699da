"""Safe outputs: written atomically (complete or absent, never half-written), claimed by one run
at a time, never put in place of something bertcompress did not write, and a full disk said in
one line."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import UserError

# Every output folder holds the config it ran with; its presence marks a folder as ours.
CONFIG_FILENAME = "bertcompress_config.yaml"


@contextlib.contextmanager
def explain_write_errors(path: str | Path) -> Iterator[None]:
    """Turn a failed write into one line naming `path`; a full disk says so."""
    try:
        yield
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - OSError, torch's RuntimeError, safetensors' own error
        if not _is_write_failure(e):
            raise
        if _disk_full(e, Path(path)):
            raise UserError(f"no space left on device while writing {path}") from None
        raise UserError(f"cannot write {path}: {_first_line(e)}") from None


def _is_write_failure(e: Exception) -> bool:
    text = str(e)
    return (isinstance(e, OSError) or "inline_container" in text  # torch.save's failed write
            or "os error" in text or "No space left" in text)  # safetensors' serialisation


def _disk_full(e: Exception, path: Path) -> bool:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if "No space left" in str(e) or "os error 28" in str(e):
        return True
    # torch.save reports a short write as "unexpected pos", without the errno: look at the disk
    folder = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    return shutil.disk_usage(folder).free < 1 << 20


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """`write(tmp)` a sibling temporary file, then rename it over `path` in one step: a kill or a
    full disk mid-write leaves the previous file intact and no temporary file behind."""
    path = Path(path)
    with explain_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            write(Path(tmp))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return atomic_write(path, write)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy / torch scalars
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------- output folders

def is_output(folder: str | Path) -> bool:
    """A finished output of ours: it holds the config it ran with."""
    return (Path(folder) / CONFIG_FILENAME).is_file()


def check_output(path: str | Path) -> Path:
    """Refuse an output path that holds something bertcompress did not write: a file, or a folder
    that is neither empty nor one of our outputs (it would be replaced, and its contents lost)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise UserError(f"output {path} exists and is not a folder; choose another output path")
    if path.is_dir() and not is_output(path) and any(path.iterdir()):
        raise UserError(f"output {path} is a folder bertcompress did not write (no {CONFIG_FILENAME} in it); "
                        "choose another output path")
    return path


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `path` in one rename.

    If the body raises, the temporary folder is removed and whatever was at `path` is untouched.
    """
    path = check_output(path)
    with explain_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        with explain_write_errors(path):
            yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    check_output(path)  # again: something may have appeared there while we wrote
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _lock_path(output: Path) -> Path:
    return output.parent / f".{output.name}.lock"


@contextlib.contextmanager
def claim_output(output: str | Path) -> Iterator[Path]:
    """Hold `output` for this run: refuse a path that is not ours, and a second run on the same
    path while this one writes it (an advisory lock beside it, released when the process ends)."""
    output = check_output(output)
    from .train.distributed import is_main_process  # here: it imports torch, which --help avoids

    if not is_main_process():  # under torchrun rank 0 holds the claim for all ranks
        yield output
        return
    lock = _lock_path(output)
    with explain_write_errors(lock):
        lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Path(lock).read_text(encoding="utf-8", errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"output {output} is being written by another run ({holder}); wait for it to "
                            "finish or choose another output path") from None
        try:  # the file may have been removed by its last holder after we opened it
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv[:4])}".encode())
        yield output
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def writes_output(verb: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a verb whose config has an `output`: the run claims it first (`claim_output`)."""
    @functools.wraps(verb)
    def claimed(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        with claim_output(cfg.output):
            return verb(cfg, *args, **kwargs)
    return claimed
