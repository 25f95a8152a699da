"""The `bertcompress quantize` subcommand: a thin shell over `quantize` / `ptq_baseline`.

cli.py registers it with `add_parser(subparsers)` and dispatches `run(args)`. The cli helpers are
imported inside the functions because cli.py imports this module while it is being built.
"""

from __future__ import annotations

import argparse

from ..config import load_config
from .config import QuantConfig, QuantizeTrainConfig

DESCRIPTION = ("KDLSQ: fake-quantize a full-precision student with LSQ (2 to 8 bits, learned steps) and train "
               "it with the TinyBERT losses against a full-precision teacher (default: the student's own "
               "unquantized copy). Writes a packed low-bit folder (quantized.safetensors + quantization.json); "
               "--onnx adds an int8 ONNX Runtime model. --no-kd: LSQ on the labels alone; --ptq: "
               "post-training dynamic int8, no training.")


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..cli import EPILOG, _common, _data_flags

    p = subparsers.add_parser("quantize", help="KDLSQ low-bit quantization (or the LSQ / dynamic-int8 baselines)",
                              description=DESCRIPTION, epilog=EPILOG)
    _common(p)
    _data_flags(p)
    p.add_argument("--student", metavar="DIR", help="full-precision model to quantize (e.g. the distilled student)")
    p.add_argument("--teacher", metavar="DIR", help="full-precision teacher (default: the student itself)")
    p.add_argument("--bits", metavar="wWaA", help="bit widths: w4a8, w2a8, w8a8, w2a8e4 (4-bit embeddings), "
                                                 "w4a32 (float activations); default w4a8")
    p.add_argument("--no-kd", action="store_true", help="LSQ on the labels alone (cross-entropy), the baseline")
    p.add_argument("--ptq", action="store_true", help="post-training dynamic int8 (torch), the no-training baseline")
    p.add_argument("--onnx", action="store_true", help="also write onnx/model.onnx for ONNX Runtime (needs a8)")
    return p


def config_from_args(args: argparse.Namespace) -> QuantizeTrainConfig:
    """Defaults < --config < flags < --set."""
    from ..cli import _flag_overrides

    overrides = []
    if args.bits:
        q = QuantConfig.parse(args.bits)
        overrides += [f"quant.weight_bits={q.weight_bits}", f"quant.act_bits={q.act_bits or 'null'}",
                      f"quant.embedding_bits={q.embedding_bits or 'null'}"]
    if args.no_kd:
        overrides.append("kd=false")
    overrides += _flag_overrides(args, {"task": "data.task", "data": "data.path", "student": "student",
                                        "teacher": "teacher", "onnx": "onnx", "output": "output"})
    return load_config(QuantizeTrainConfig, args.config, overrides)


def run(args: argparse.Namespace) -> int:
    import json

    from .train import ptq_baseline, quantize

    cfg = config_from_args(args)
    folder = ptq_baseline(cfg) if args.ptq else quantize(cfg, resume=args.resume)
    result = folder / "bertcompress_result.json"
    if result.is_file():  # absent on non-zero ranks under torchrun
        r = json.loads(result.read_text(encoding="utf-8"))
        ratio = r["fp_bytes_on_disk"] / r["bytes_on_disk"] if r.get("fp_bytes_on_disk") else None
        print(f"[bertcompress] {r['method']}: dev {r['dev']} (full precision {r['fp_dev']}); "
              f"{r['bytes_on_disk']:,} bytes" + (f", {ratio:.1f}x smaller" if ratio else ""))
    print(f"[bertcompress] wrote {folder}")
    return 0
