"""Safe outputs: written atomically (complete or absent, never half-written), claimed by one run
at a time, never put in place of something bertcompress did not write nor of another command's
output (unless `overwrite`), readable by others as the umask says, and a full disk said in one
line."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import functools
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from bertcompress.core.errors import UserError

# Every output folder holds the config it ran with; its presence marks a folder as ours.
CONFIG_FILENAME = "bertcompress_config.yaml"
RESULT_FILENAME = "bertcompress_result.json"


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


def umask() -> int:
    """The process's umask, read without changing it where Linux says it (/proc), else by the
    usual set-and-restore."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    """The mode `open` gives a new file: 0o666 less the umask (tempfile.mkstemp gives 0o600)."""
    return 0o666 & ~umask()


def folder_mode() -> int:
    """The mode `mkdir` gives a new folder: 0o777 less the umask (tempfile.mkdtemp gives 0o700)."""
    return 0o777 & ~umask()


def normal_modes(root: Path) -> None:
    """Give `root` and everything under it the modes `mkdir` and `open` would have: our temporary
    folders (mkdtemp) are 0o700, and some writers make 0o600 files (safetensors writes a temporary
    file and renames it), so a serving process of another user could not read the output."""
    folders, files = folder_mode(), file_mode()
    for p in (root, *root.rglob("*")):
        if p.is_symlink():
            continue
        mode = stat.S_IMODE(p.lstat().st_mode)
        wanted = folders if p.is_dir() or mode & 0o111 else files  # an executable file keeps its x bits
        if mode != wanted:
            os.chmod(p, wanted)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """`write(tmp)` a sibling temporary file, then rename it over `path` in one step: a kill or a
    full disk mid-write leaves the previous file intact and no temporary file behind. The file
    gets the mode a plain `open` would give it (others can read it where the umask lets them)."""
    path = Path(path)
    with explain_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            write(Path(tmp))
            os.chmod(tmp, file_mode())
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


def output_kind(folder: str | Path) -> str | None:
    """The kind of output of ours `folder` holds: the config class its bertcompress_config.yaml
    records under `kind` (FinetuneConfig, DistillConfig, ...). None when it records none (a
    hand-made or damaged file: every bertcompress version has written the key) or cannot be read."""
    import yaml

    try:
        loaded = yaml.safe_load((Path(folder) / CONFIG_FILENAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    kind = loaded.get("kind") if isinstance(loaded, dict) else None
    return kind if isinstance(kind, str) and kind else None


# config class name -> the command that writes it; the command table (commands.py, above this
# layer) fills it in when the package is imported
OUTPUT_COMMANDS: dict[str, str] = {}


def describe_kind(kind: str) -> str:
    """'a finetune output (FinetuneConfig)': the command that writes a kind."""
    name = OUTPUT_COMMANDS.get(kind)
    return f"a {name} output ({kind})" if name else f"a {kind} output"


def check_output(path: str | Path, kind: str | None = None, overwrite: bool = False) -> Path:
    """Refuse an output path that holds something bertcompress did not write: a file, or a folder
    that is neither empty nor one of our outputs (it would be replaced, and its contents lost).
    With `kind` (the config class of the run that will write it), refuse also an output of ours of
    another kind, or of no recorded kind, unless `overwrite`: an output is only ever replaced by
    one of its own kind."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise UserError(f"output {path} exists and is not a folder; choose another output path")
    if path.is_dir() and not is_output(path) and any(path.iterdir()):
        raise UserError(f"output {path} is a folder bertcompress did not write (no {CONFIG_FILENAME} in it); "
                        "choose another output path")
    if kind is not None and not overwrite and is_output(path):
        found = output_kind(path)
        if found is None:
            raise UserError(f"output {path} holds a {CONFIG_FILENAME} that records no kind (hand-made or "
                            f"damaged), and {describe_kind(kind)} would replace it: pass --overwrite "
                            "(overwrite=True) to replace it, or choose another output path")
        if found != kind:
            raise UserError(f"output {path} holds {describe_kind(found)}, and {describe_kind(kind)} would replace "
                            "it: pass --overwrite (overwrite=True) to replace it, or choose another output path")
    return path


def checkpoints_folder(output: str | Path) -> Path:
    """Where a run keeps its resumable state: beside its output, never inside it."""
    output = Path(output)
    return output.parent / f".{output.name}.checkpoints"


def checkpoints_owner(folder: str | Path) -> tuple[Path, str] | None:
    """(output, phase) of a folder inside an output's `checkpoints_folder` (phase: its path there,
    e.g. "finetune" or "finetune/trial3"); None for any other folder."""
    folder = Path(folder)
    for parent in (folder, *folder.parents):
        name = parent.name
        if name.startswith(".") and name.endswith(".checkpoints") and len(name) > len("..checkpoints"):
            return parent.parent / name[1:-len(".checkpoints")], folder.relative_to(parent).as_posix()
    return None


def check_resumable(output: str | Path, kind: str) -> None:
    """`--resume` needs something to resume: a checkpoint of an interrupted run beside `output`, or
    an output of this kind (which keeps its own state: run's finished stages, search-mapping's
    scores, nas's supernet). Else say so, rather than silently starting afresh (`strict_resume`)."""
    output = Path(output)
    checkpoints = checkpoints_folder(output)
    if checkpoints.is_dir() and any(p.is_file() for p in checkpoints.rglob("*")):
        return
    if is_output(output) and output_kind(output) == kind:
        return
    found = (f"; it holds {describe_kind(k)}" if is_output(output) and (k := output_kind(output)) else
             "; the folder does not exist" if not output.exists() else "")
    raise UserError(f"--resume: nothing to resume in {output}: no checkpoint of an interrupted run ({checkpoints}) "
                    f"and no earlier {describe_kind(kind).removeprefix('a ')}{found}; run without --resume to start "
                    "afresh")


def prepare_output_folder(path: str | Path, kind: str) -> Path:
    """For a verb that writes its output in place (not with `atomic_dir`), once its inputs are
    checked: the folder, created if needed; an output of another kind there (the claim let it
    through: overwrite) is removed first, so the two are never mixed."""
    path = Path(path)
    if is_output(path) and output_kind(path) != kind:
        shutil.rmtree(path)
    with explain_write_errors(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `path` in one rename, with the
    modes `mkdir` and `open` give (`normal_modes`).

    If the body raises, the temporary folder is removed and whatever was at `path` is untouched.
    """
    path = check_output(path)
    with explain_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        with explain_write_errors(path):
            yield tmp
            normal_modes(tmp)
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
def claim_output(output: str | Path, kind: str | None = None, overwrite: bool = False) -> Iterator[Path]:
    """Hold `output` for this run: refuse a path that is not ours (or, with `kind`, an output of
    another kind unless `overwrite`: `check_output`), and a second run on the same path while this
    one writes it (an advisory lock beside it, released when the process ends)."""
    output = check_output(output, kind, overwrite)
    from bertcompress.core.ranks import is_main_process  # here: it imports torch, which --help avoids

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


# Set by the CLI for the verb it calls: `--resume` there must find something to resume. The verbs
# that one calls (run's stages, search-mapping's candidates) get it unset, as Python callers do.
_strict_resume: contextvars.ContextVar[bool] = contextvars.ContextVar("bertcompress_strict_resume", default=False)


@contextlib.contextmanager
def strict_resume() -> Iterator[None]:
    """Within it, the next verb called with `resume=True` refuses an output with nothing to resume
    (`check_resumable`), once its claim holds; the CLI's `--resume`."""
    token = _strict_resume.set(True)
    try:
        yield
    finally:
        _strict_resume.reset(token)


def writes_output(verb: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a verb whose config has an `output`: the run claims it first (`claim_output`, with
    the config's class as the output's kind), and takes `overwrite=True` to replace an output of
    another kind. Under `strict_resume` (the CLI), `resume=True` with nothing to resume is an error;
    called from Python, it continues what there is and otherwise starts afresh."""
    @functools.wraps(verb)
    def claimed(cfg: Any, *args: Any, overwrite: bool = False, **kwargs: Any) -> Any:
        kind = type(cfg).__name__
        strict = _strict_resume.get()
        with claim_output(cfg.output, kind, overwrite):
            if strict and kwargs.get("resume"):
                check_resumable(cfg.output, kind)
            token = _strict_resume.set(False)  # for the verbs this one calls
            try:
                return verb(cfg, *args, **kwargs)
            finally:
                _strict_resume.reset(token)
    return claimed
