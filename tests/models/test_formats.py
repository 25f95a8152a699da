"""Model-folder formats: the registry finds pruned and packed folders by itself, any format with a
truncated weights file is a one-line UserError, and has_mlm_head reads tensor names only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.models import formats
from bertcompress.models.formats import format_of
from bertcompress.models.loading import has_mlm_head, load_model
from conftest import tiny_config


def _pruned_dir(folder: Path) -> Path:
    """A tiny classifier with heads pruned unevenly: only our loader reads it."""
    from transformers import AutoModelForSequenceClassification

    from bertcompress.models.pruned import prune_units, record_sizes

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config("bert", 100, layers=2))
    prune_units(model, heads=[[0, 2], [1]])
    record_sizes(model)
    model.save_pretrained(folder)
    return folder


def _packed_dir(folder: Path, tiny_bert_dir: Path) -> Path:
    from transformers import AutoModelForSequenceClassification

    from bertcompress.models.quantized.config import QuantConfig
    from bertcompress.models.quantized.modules import calibrate_, quantize_
    from bertcompress.models.quantized.packed import save_packed

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).eval()
    quant = QuantConfig.parse("w4a8")
    quantize_(model, quant)
    calibrate_(model, {"input_ids": torch.randint(5, 80, (2, 9)), "attention_mask": torch.ones(2, 9, dtype=torch.long)})
    return save_packed(folder, model, quant)


def _plain_dir(folder: Path, tiny_bert_dir: Path) -> Path:
    shutil.copytree(tiny_bert_dir, folder)  # a copy: the session fixture must stay intact
    return folder


def _make(fmt: str, folder: Path, tiny_bert_dir: Path) -> tuple[Path, str]:
    """A folder of the format and its weights file."""
    if fmt == "pruned":
        return _pruned_dir(folder), "model.safetensors"
    if fmt == "packed-quantized":
        return _packed_dir(folder, tiny_bert_dir), "quantized.safetensors"
    return _plain_dir(folder, tiny_bert_dir), "model.safetensors"


@pytest.mark.parametrize("fmt", ["transformers", "pruned", "packed-quantized"])
def test_format_of_and_load_model(fmt, tmp_path, tiny_bert_dir):
    folder, _ = _make(fmt, tmp_path / "m", tiny_bert_dir)
    found = format_of(folder)
    assert (found.name if found else "transformers") == fmt
    model = load_model(str(folder))
    assert type(model).__name__ == "BertForSequenceClassification"


def test_builtin_formats_load_before_anything_imports_them(tmp_path):
    """load_model finds the pruned loader in a fresh process that never imported methods/prune/."""
    folder = _pruned_dir(tmp_path / "pruned")
    code = ("import sys; from bertcompress.models.loading import load_model; "
            "assert not [m for m in sys.modules if m.startswith('bertcompress.methods')]; "
            f"m = load_model({str(folder)!r}); print(m.bert.encoder.layer[1].attention.self.query.out_features)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "8"  # one head of 8 dimensions left in layer 2


def test_a_registered_format_is_used_and_overlaps_are_refused(tmp_path, tiny_bert_dir, monkeypatch):
    sentinel = torch.nn.Linear(1, 1)
    marker = formats.ModelFormat("test-marker", lambda folder: (folder / "marker").is_file(),
                                 lambda folder, kind, num_labels: sentinel)
    real = formats.registered_formats
    monkeypatch.setattr(formats, "registered_formats", lambda: [*real(), marker])

    folder = _plain_dir(tmp_path / "m", tiny_bert_dir)
    (folder / "marker").touch()
    assert load_model(str(folder), "base") is sentinel
    (folder / "quantization.json").write_text("{}")  # now the packed format claims it too
    with pytest.raises(UserError, match="more than one format"):
        load_model(str(folder))


@pytest.mark.parametrize("cut", ["header", "tail"])
@pytest.mark.parametrize("fmt", ["transformers", "pruned", "packed-quantized"])
def test_truncated_weights_are_a_user_error(fmt, cut, tmp_path, tiny_bert_dir):
    folder, weights = _make(fmt, tmp_path / "m", tiny_bert_dir)
    data = (folder / weights).read_bytes()
    (folder / weights).write_bytes(data[:10] if cut == "header" else data[:-100])
    with pytest.raises(UserError, match=f"cannot load a model from {folder}"):
        load_model(str(folder))


def test_truncated_weights_through_the_cli(tmp_path, tiny_bert_dir, sentiment_tsv, capsys):
    from bertcompress.cli import main

    folder = _plain_dir(tmp_path / "m", tiny_bert_dir)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert main(["evaluate", str(folder), "--task", "sst2", "--data", str(sentiment_tsv), "--no-latency",
                 "--no-onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bertcompress: error: cannot load a model from {folder}") and "\n" not in err


def _save(cls_name: str, folder: Path, **kw) -> str:
    import transformers

    torch.manual_seed(0)
    getattr(transformers, cls_name).from_config(tiny_config("bert", 100, layers=2)).save_pretrained(folder, **kw)
    return str(folder)


def test_has_mlm_head_reads_tensor_names(tmp_path, monkeypatch):
    import transformers

    def no_loading(*args, **kwargs):
        raise AssertionError("has_mlm_head must not load the weights")

    mlm = _save("AutoModelForMaskedLM", tmp_path / "mlm")
    base = _save("AutoModel", tmp_path / "base")
    classifier = _save("AutoModelForSequenceClassification", tmp_path / "cls")
    sharded = _save("AutoModelForMaskedLM", tmp_path / "sharded", max_shard_size="20KB")
    assert (Path(sharded) / "model.safetensors.index.json").is_file()
    monkeypatch.setattr(transformers.AutoModelForMaskedLM, "from_pretrained", no_loading)
    assert has_mlm_head(mlm) and has_mlm_head(sharded)
    assert not has_mlm_head(base) and not has_mlm_head(classifier)


def test_has_mlm_head_without_a_full_head(tmp_path):
    """A checkpoint with the head's transform but not its output bias is not a trained head."""
    from safetensors.torch import load_file, save_file

    mlm = Path(_save("AutoModelForMaskedLM", tmp_path / "mlm"))
    tensors = load_file(mlm / "model.safetensors")
    assert "cls.predictions.bias" in tensors
    del tensors["cls.predictions.bias"]
    save_file(tensors, mlm / "model.safetensors", metadata={"format": "pt"})
    assert not has_mlm_head(str(mlm))
    (mlm / "model.safetensors").write_bytes(b"broken")  # unreadable: no usable head either
    assert not has_mlm_head(str(mlm))
    index = {"weight_map": {k: "model.safetensors" for k in tensors} | {"cls.predictions.bias": "x"}}
    (mlm / "model.safetensors.index.json").write_text(json.dumps(index))
    assert has_mlm_head(str(mlm))  # the index alone names the tensors
