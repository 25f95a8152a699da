"""KDLSQ: low-bit quantization (LSQ, 2 to 8 bits) trained with TinyBERT distillation.

    quantize_(model, QuantConfig.parse("w4a8"))      fake-quantize a model in place (modules.py)
    quantize(QuantizeTrainConfig(...))               the KDLSQ training verb (train.py)
    save_packed / load_packed                        the small on-disk form (pack.py)
    export_onnx_int8                                 the fast int8 CPU form (onnx_int8.py;
                                                     run it with export.onnx.OnnxClassifier)
    ptq_dynamic_int8(model)                          the post-training baseline (train.py)
"""

from importlib import import_module

from .config import QuantConfig, QuantizeTrainConfig

# Everything else imports torch (and training, onnx): loaded on first use, so that importing the
# configs, as the CLI does to build its parser, stays fast.
_LAZY = {
    "lsq": ("LSQQuantizer", "lsq_quantize"),
    "modules": ("QuantEmbedding", "QuantLinear", "calibrate_", "quantize_"),
    "pack": ("is_packed", "load_packed", "pack_bits", "save_packed", "unpack_bits"),
    "train": ("load_ptq", "ptq_baseline", "ptq_dynamic_int8", "quantize"),
    "onnx_int8": ("export_onnx_int8", "qdq_copy"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(name)


__all__ = ["QuantConfig", "QuantizeTrainConfig", *sorted(_WHERE)]
