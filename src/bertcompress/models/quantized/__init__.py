"""Quantized models: LSQ quantizers, the fake-quantized modules (`quantize_`) and the packed
low-bit folder format."""
