"""Deployable forms of a trained model (ONNX for ONNX Runtime)."""
