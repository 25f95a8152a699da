"""The primary tagger as an ONNX graph, and PyTorch against ONNX Runtime: accuracy and latency.

The graph takes int64 `input_ids` (batch, words), `chars` (batch, words, characters) and
`attention_mask` (batch, words) and returns `logits` (batch, words, tags); the auxiliary modules
are left out. Encoding a sentence needs only the folder's JSON files (`vocab.ENCODING`, also written
into cvt_config.json), so ONNX Runtime can serve it with no bertcompress code. Exported with the
TorchScript exporter, as export/onnx.py explains.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bertcompress.core.io import atomic_write
from bertcompress.data.tagging import TaggedSentence
from bertcompress.evaluation.profile import machine_load, time_call, torch_threads
from bertcompress.evaluation.tagging_metrics import tagging_metrics
from bertcompress.export.onnx import OPSET, onnx_session
from bertcompress.methods.cvt.model import CvtTagger
from bertcompress.methods.cvt.predict import PREDICT_BATCH, length_batches
from bertcompress.methods.cvt.vocab import CvtCollator

ONNX_INPUTS = ("input_ids", "chars", "attention_mask")


class _PrimaryPath(nn.Module):
    def __init__(self, tagger: CvtTagger):
        super().__init__()
        self.tagger = tagger

    def forward(self, input_ids: torch.Tensor, chars: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.tagger(input_ids, chars, attention_mask)


def _trace_batch(tagger: CvtTagger) -> tuple[torch.Tensor, ...]:
    """Two sentences, the second shorter (padding in the graph), made of real vocabulary entries."""
    words = [["The", "cat", "sat", "on", "the", "mat", "."], ["It", "ran", "."]]
    batch = CvtCollator(tagger.min_chars)([tagger.vocab.encode(w) for w in words])
    return tuple(batch[k] for k in ONNX_INPUTS)


@torch.no_grad()
def export_cvt_onnx(tagger: CvtTagger, path: str | Path) -> Path:
    """Write the primary tagger (a CPU copy) to `path` atomically, with dynamic batch, word and
    character axes."""
    wrapper = _PrimaryPath(copy.deepcopy(tagger).cpu().eval())
    axes = {"input_ids": {0: "batch", 1: "words"}, "chars": {0: "batch", 1: "words", 2: "characters"},
            "attention_mask": {0: "batch", 1: "words"}, "logits": {0: "batch", 1: "words"}}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings on shape arithmetic; the tests compare outputs
            torch.onnx.export(wrapper, _trace_batch(tagger), str(tmp), input_names=list(ONNX_INPUTS),
                              output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)

    return atomic_write(path, write)


def _batches(tagger: CvtTagger, sentences: list[TaggedSentence], batch_size: int) -> list[tuple[list[int], dict]]:
    collate = CvtCollator(tagger.min_chars)
    return [(chunk, collate([tagger.vocab.encode(sentences[i].tokens) for i in chunk]))
            for chunk in length_batches([len(s.tokens) for s in sentences], batch_size)]


def compare_runtimes(tagger: CvtTagger, onnx_path: str | Path, sentences: list[TaggedSentence], *,
                     batch_size: int = PREDICT_BATCH, threads: int = 1, repeats: int = 3) -> dict[str, Any]:
    """Tag `sentences` with the tagger in PyTorch (CPU) and its ONNX export in ONNX Runtime, on the
    same batches and thread count: each runtime's token accuracy and milliseconds per 1,000 tokens (words)
    (median of `repeats` timed passes over all sentences, after one untimed pass), and the share of
    tokens on which the two agree."""
    model = copy.deepcopy(tagger).cpu().eval()
    batches = _batches(model, sentences, batch_size)
    words = sum(len(s.tokens) for s in sentences)
    session = onnx_session(onnx_path, threads)

    def run_torch() -> list[np.ndarray]:
        with torch.no_grad():
            return [model(*(b[k] for k in ONNX_INPUTS)).argmax(-1).numpy() for _, b in batches]

    def run_onnx() -> list[np.ndarray]:
        return [session.run(["logits"], {k: b[k].numpy() for k in ONNX_INPUTS})[0].argmax(-1) for _, b in batches]

    report: dict[str, Any] = {"sentences": len(sentences), "tokens": words, "batch_size": batch_size,
                              "threads": threads}
    predictions = {}
    for name, run in (("pytorch", run_torch), ("onnxruntime", run_onnx)):
        with torch_threads(threads):
            timing = time_call(run, warmup=1, repeats=repeats)
            predictions[name] = _tags(run(), batches, sentences, tagger.vocab.tags)
        scores = tagging_metrics([s.tags for s in sentences], predictions[name], tagger.vocab.tags)
        report[name] = {"accuracy": scores["accuracy"], "score": scores["score"],
                        "ms_per_1000_tokens": timing["median_ms"] * 1000.0 / words}
    same = sum(a == b for x, y in zip(predictions["pytorch"], predictions["onnxruntime"]) for a, b in zip(x, y))
    report["agreement"] = same / words
    return report | machine_load()


def _tags(best: list[np.ndarray], batches, sentences: list[TaggedSentence], names: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in sentences]
    for ids, (chunk, _) in zip(best, batches):
        for row, i in enumerate(chunk):
            out[i] = [names[j] for j in ids[row, :len(sentences[i].tokens)]]
    return out
