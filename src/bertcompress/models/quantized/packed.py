"""Packed low-bit export: what a quantized model costs on disk, and a loader that rebuilds it.

A packed folder holds
    quantized.safetensors  every quantized weight as its integer codes packed to their bit width
                           (`<weight>.codes`, uint8) and its steps (`<weight>.step`, fp32, one per
                           tensor or per row); each activation quantizer's step
                           (`<layer>.act_quant.step`); every other tensor (LayerNorm, biases,
                           token-type embeddings, a float task head) in fp32, so
                           the rebuilt model reproduces the fake-quantized one bit for bit
    quantization.json      format, QuantConfig, per tensor: bits, signed, shape, per-channel
    model.safetensors      the same weights dequantized (codes × step, fp32) in the standard
                           `transformers` layout, so `AutoModelFor...from_pretrained(folder)` loads
                           the folder without bertcompress (activations then run in float)
    config.json, tokenizer, bertcompress_config.yaml, bertcompress_result.json
    onnx/model.onnx        optional: the int8 ONNX Runtime model (export/onnx_int8.py)
    README.md              which file is which and how to load each
"Bytes on disk" is the size of quantized.safetensors (evaluation/profile.py counts only it in a
packed folder). Float tensors stay fp32 (not fp16): they are a small share at BERT sizes and fp32
keeps the reload exact. `load_packed` reads only quantized.safetensors: model.safetensors may be
deleted to ship the small form alone.

Bit layout: codes are stored offset to unsigned (c + Q_N, in [0, 2^b)) and laid end to end as a
little-endian bit stream: code i occupies stream bits [i·b, (i+1)·b), byte k holds stream bits
[8k, 8k+8). So four 2-bit codes share a byte (the first in the low bits), two 4-bit codes, eight
3-bit codes fill three bytes, and so on for every width 2 to 8.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bertcompress.core.config import CONFIG_FILENAME, from_dict, save_config, to_dict
from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_dir, atomic_write_json
from bertcompress.models.card import facts_from_run, model_card
from bertcompress.models.quantized.config import QuantConfig
from bertcompress.models.quantized.lsq import LSQQuantizer
from bertcompress.models.quantized.modules import QuantEmbedding, QuantLinear, quantize_
from bertcompress.models.saving import RESULT_FILENAME

WEIGHTS_FILE = "quantized.safetensors"
DESCRIPTION_FILE = "quantization.json"
STANDARD_WEIGHTS_FILE = "model.safetensors"  # the dequantized copy, for plain `from_pretrained`
ONNX_FILE = "onnx/model.onnx"
README_FILE = "README.md"
FORMAT = "bertcompress-packed-lsq"
VERSION = 2  # 2 records QuantConfig.quantize_positions; version 1 folders are still read
_CHUNK = 1 << 20  # groups of 8 codes per step: bounds the int64 scratch memory


def pack_bits(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned integers in [0, 2^bits) -> uint8 bytes, `bits` bits each (layout: module doc)."""
    if not 1 <= bits <= 8:
        raise ValueError(f"pack_bits takes 1 to 8 bits, got {bits}")
    v = values.flatten().to(torch.int64)
    if v.numel() and (int(v.min()) < 0 or int(v.max()) >= 1 << bits):
        raise ValueError(f"values outside [0, {1 << bits}) cannot be packed in {bits} bits")
    if bits == 8:
        return v.to(torch.uint8)
    n = v.numel()
    v = torch.nn.functional.pad(v, (0, (-n) % 8)).view(-1, 8)  # 8 codes = `bits` whole bytes
    code_shift = torch.arange(8, dtype=torch.int64) * bits
    byte_shift = torch.arange(bits, dtype=torch.int64) * 8
    out = []
    for chunk in v.split(_CHUNK):
        word = (chunk << code_shift).sum(1, keepdim=True)  # ≤ 56 bits: no overflow
        out.append(((word >> byte_shift) & 0xFF).to(torch.uint8).flatten())
    packed = torch.cat(out) if out else torch.empty(0, dtype=torch.uint8)
    return packed[:(n * bits + 7) // 8]


def unpack_bits(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """Inverse of pack_bits: the first `count` values, as int64."""
    if bits == 8:
        return packed[:count].to(torch.int64)
    groups = (count + 7) // 8
    p = torch.nn.functional.pad(packed.to(torch.int64), (0, groups * bits - packed.numel())).view(groups, bits)
    code_shift = torch.arange(8, dtype=torch.int64) * bits
    byte_shift = torch.arange(bits, dtype=torch.int64) * 8
    out = []
    for chunk in p.split(_CHUNK):
        word = (chunk << byte_shift).sum(1, keepdim=True)
        out.append(((word >> code_shift) & ((1 << bits) - 1)).flatten())
    return (torch.cat(out) if out else torch.empty(0, dtype=torch.int64))[:count]


def _quantized_weights(model: nn.Module) -> dict[str, tuple[nn.Module, LSQQuantizer]]:
    """`<module>.weight` -> (module, its weight quantizer), for every quantized weight."""
    return {f"{name}.weight": (m, m.weight_quant) for name, m in model.named_modules()
            if isinstance(m, (QuantLinear, QuantEmbedding)) and m.weight_quant is not None}


def pack_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of quantized.safetensors and the per-tensor part of quantization.json."""
    tensors: dict[str, torch.Tensor] = {}
    described: dict[str, Any] = {}
    qweights = _quantized_weights(model)
    for key, (module, wq) in qweights.items():
        codes = wq.codes(module.weight.detach()).cpu() + wq.q_n  # offset to unsigned
        tensors[f"{key}.codes"] = pack_bits(codes, wq.bits)
        tensors[f"{key}.step"] = wq.step.detach().cpu().float().clone()
        described[key] = {"bits": wq.bits, "signed": wq.signed, "shape": list(module.weight.shape),
                          "per_channel": wq.per_channel}
    for name, m in model.named_modules():
        if isinstance(m, QuantLinear) and m.act_quant is not None:
            tensors[f"{name}.act_quant.step"] = m.act_quant.step.detach().cpu().float().clone()
            described[f"{name}.act_quant"] = {"bits": m.act_quant.bits, "signed": m.act_quant.signed}
    for key, value in model.state_dict().items():
        if key in qweights or ".weight_quant." in key or ".act_quant." in key:
            continue  # packed above, or a quantizer's own state
        tensors[key] = value.detach().cpu().clone()  # clone: safetensors refuses shared storage
    return tensors, described


def _times_step(codes: torch.Tensor, step: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """Dequantized values: integer codes (as float) × their step, one per row when per_channel."""
    return codes * (step.view(-1, *[1] * (codes.dim() - 1)) if per_channel else step)


def dequantized_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The plain `transformers` state dict of a fake-quantized model: every quantized weight as
    codes × step (the values `load_packed` rebuilds), no quantizer state, so the model class of
    its config loads it with `from_pretrained`."""
    qweights = _quantized_weights(model)
    state = {}
    for key, value in model.state_dict().items():
        if ".weight_quant." in key or ".act_quant." in key:
            continue
        if key in qweights:
            module, wq = qweights[key]
            value = _times_step(wq.codes(module.weight.detach()).cpu().float(), wq.step.detach().cpu().float(),
                                wq.per_channel)
        state[key] = value.detach().cpu().clone()  # clone: safetensors refuses shared storage
    return state


def _files_table(model: nn.Module, quant: QuantConfig, model_kind: str, packed_bytes: int, standard_bytes: int,
            onnx: bool, records: list[str]) -> str:
    """The folder's README.md: which file is which and how to load each."""
    auto = "AutoModelForTokenClassification" if model_kind == "token_classifier" else \
        "AutoModelForSequenceClassification"
    rows = [
        f"| `{WEIGHTS_FILE}` + `{DESCRIPTION_FILE}` | the packed low-bit model: integer codes at their bit "
        f"width with their steps, float LayerNorms, biases and the rest; {packed_bytes:,} bytes, the size "
        "bertcompress reports | `bertcompress.models.quantized.packed.load_packed(folder)`, or any bertcompress "
        "command given this folder: exactly the quantized model, activations quantized as in training |",
        f"| `{STANDARD_WEIGHTS_FILE}` + `config.json` + tokenizer files | the same weights dequantized "
        f"(codes × step) in fp32, standard `transformers` layout; {standard_bytes:,} bytes | "
        f"`transformers.{auto}.from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`, no "
        "bertcompress needed; activations run in float there, so its logits differ slightly from the "
        "quantized model's |"]
    if onnx:
        rows.append(f"| `{ONNX_FILE}` | the int8 ONNX model (QDQ: integer matmuls in ONNX Runtime), the fast "
                    "CPU form; activations quantized as in training | `s = onnxruntime.InferenceSession("
                    f"\"<folder>/{ONNX_FILE}\")`; `enc = tokenizer(texts, padding=True, return_tensors=\"np\")`; "
                    "`s.run([\"logits\"], {i.name: enc[i.name] for i in s.get_inputs()})` |")
    if records:
        rows.append(f"| {', '.join(f'`{r}`' for r in records)} | the settings it was made with, its scores | |")
    return "\n".join([
        "## Its files", "", "| files | what | load with |", "| --- | --- | --- |", *rows, "",
        f"bertcompress loads the model from `{WEIGHTS_FILE}` alone: delete `{STANDARD_WEIGHTS_FILE}` to ship "
        f"the small form (`{WEIGHTS_FILE}`, `{DESCRIPTION_FILE}`, `config.json`, tokenizer files).", ""])


def save_packed(output: str | Path, model: nn.Module, quant: QuantConfig, *, tokenizer=None,
                config: Any = None, result: dict[str, Any] | None = None,
                write_onnx: Callable[[nn.Module, Path], Any] | None = None,
                model_kind: str = "classifier") -> Path:
    """Write a packed folder atomically; returns its path. Beside the packed file it writes the
    dequantized weights in the standard layout (model.safetensors) and a README.md saying which
    file is which. `write_onnx(model, path)` adds onnx/model.onnx, the int8 ONNX Runtime model
    (export/onnx_int8.py `export_onnx_int8`).
    `model_kind`: "classifier" or "token_classifier" (a tagger), what `load_packed` rebuilds."""
    output = Path(output)
    tensors, described = pack_state(model)
    with atomic_dir(output) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        save_file(dequantized_state(model), str(tmp / STANDARD_WEIGHTS_FILE), metadata={"format": "pt"})
        atomic_write_json(tmp / DESCRIPTION_FILE, {
            "format": FORMAT, "version": VERSION, "model_kind": model_kind, "quant": to_dict(quant),
            "float_dtype": "float32", "tensors": described})
        model.config.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if config is not None:
            save_config(config, tmp)
        if write_onnx is not None:
            write_onnx(model, tmp / ONNX_FILE)
        packed_bytes = (tmp / WEIGHTS_FILE).stat().st_size
        if result is not None:
            atomic_write_json(tmp / RESULT_FILENAME, {**result, "bytes_on_disk": packed_bytes})
        records = [name for name in (CONFIG_FILENAME, RESULT_FILENAME) if (tmp / name).is_file()]
        files = _files_table(model, quant, model_kind, (tmp / WEIGHTS_FILE).stat().st_size,
                        (tmp / STANDARD_WEIGHTS_FILE).stat().st_size, write_onnx is not None, records)
        if config is not None and result is not None:  # a model card around the table of files
            facts = facts_from_run(output, model, config, {**result, "bytes_on_disk": packed_bytes})
            facts.shape += f", quantized {quant.spec()} ({packed_bytes / 1e6:.1f} MB packed)"
            facts.notes.append(files)
            readme = model_card(facts)
        else:
            readme = f"# A {quant.spec()} quantized {model.config.model_type} model, written by bertcompress\n\n{files}"
        (tmp / README_FILE).write_text(readme, encoding="utf-8")
    return output


def is_packed(folder: str | Path) -> bool:
    return (Path(folder) / DESCRIPTION_FILE).is_file()


def load_packed(folder: str | Path, *, keep_weight_quantizers: bool = False) -> nn.Module:
    """Rebuild a working `transformers` model from a packed folder.

    The integer codes × steps are dequantized into ordinary fp32 weights: the result is a standard
    fp32 model whose weights hold exactly the quantized values, with the activation quantizers
    restored inside its linear layers (QuantLinear with only `act_quant`), so its predictions are
    the fake-quantized model's, bit for bit. `keep_weight_quantizers=True` also keeps the weight
    quantizers (a no-op on these weights), for further quantization-aware training or the ONNX
    int8 export."""
    from transformers import AutoConfig

    from bertcompress.models.loading import auto_class

    folder = Path(folder)
    if not is_packed(folder):
        raise UserError(f"{folder} is not a packed quantized model: no {DESCRIPTION_FILE} in it")
    desc = json.loads((folder / DESCRIPTION_FILE).read_text(encoding="utf-8"))
    if desc.get("format") != FORMAT or desc.get("version") not in (1, VERSION):
        raise UserError(f"{folder}: unknown packed format {desc.get('format')!r} version {desc.get('version')!r}")
    if desc["version"] == 1:  # no quantize_positions key: the tensor list says
        desc["quant"].setdefault("quantize_positions", any(k.endswith("position_embeddings.weight")
                                                            for k in desc["tensors"]))
    quant = from_dict(QuantConfig, desc["quant"], "quant")
    kind = desc.get("model_kind", "classifier")
    if kind not in ("classifier", "token_classifier"):
        raise UserError(f"{folder}: unknown model kind {kind!r} in {DESCRIPTION_FILE}")
    model = auto_class(kind).from_config(AutoConfig.from_pretrained(folder)).float()
    quantize_(model, quant)
    tensors = load_file(str(folder / WEIGHTS_FILE))
    qweights = _quantized_weights(model)
    if sorted(qweights) != sorted(k for k in desc["tensors"] if k.endswith(".weight")):
        raise UserError(f"{folder}: the quantized layers in {DESCRIPTION_FILE} do not match the model's")
    state = {k: v for k, v in tensors.items() if not k.endswith((".codes", ".step"))}
    for key, (module, wq) in qweights.items():
        info, step = desc["tensors"][key], tensors[f"{key}.step"]
        codes = unpack_bits(tensors[f"{key}.codes"], info["bits"], module.weight.numel()) - wq.q_n
        codes = codes.view(info["shape"]).float()
        state[key] = _times_step(codes, step, wq.per_channel)
        state[f"{key.removesuffix('.weight')}.weight_quant.step"] = step
    for key, value in tensors.items():
        if key.endswith(".act_quant.step"):
            state[key] = value
    expected = [k for k in model.state_dict() if not k.endswith(".initialized")]
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if missing or unexpected:
        what = f"lacks {sorted(missing)[0]}" if missing else f"has an unknown tensor {sorted(unexpected)[0]}"
        raise UserError(f"{folder}: {WEIGHTS_FILE} {what}")
    model.load_state_dict(state, strict=False)
    for q in (m for m in model.modules() if isinstance(m, LSQQuantizer)):
        q.initialized.fill_(True)
    if not keep_weight_quantizers:
        _drop_weight_quantizers(model)
    return model.eval()


def load_packed_as(folder: Path, kind: str, num_labels: int | None) -> nn.Module:
    return load_packed(folder)  # always the saved classifier: its head is part of what was quantized


def _drop_weight_quantizers(model: nn.Module) -> None:
    """Weights already hold codes × step: QuantLinear keeps only its activation quantizer, and
    QuantEmbedding becomes a plain nn.Embedding."""
    for name, m in list(model.named_modules()):
        if isinstance(m, QuantLinear):
            m.weight_quant = None
        elif isinstance(m, QuantEmbedding):
            plain = nn.Embedding(m.num_embeddings, m.embedding_dim, m.padding_idx)
            plain.weight = m.weight
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, plain)
