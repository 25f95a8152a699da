"""Scoring models the same way: task metrics, size, latency, loyalty, robustness, reports."""
