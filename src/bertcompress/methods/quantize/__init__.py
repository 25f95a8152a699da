"""KDLSQ (docs/methods.md, "KDLSQ quantization"): LSQ low-bit quantization (2 to 8 bits) trained with TinyBERT
distillation; the quantized modules and the packed format live in models/quantized/."""
