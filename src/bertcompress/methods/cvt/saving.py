"""A CVT tagger's folder: model.safetensors, cvt_config.json (the architecture and how words are
looked up), words.json, chars.json and tags.json (the vocabularies, index = id). `load_cvt`
rebuilds the tagger from these files alone."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import load_file, save_file

from bertcompress.core.config import from_dict
from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_write_json
from bertcompress.methods.cvt.config import CvtModelConfig
from bertcompress.methods.cvt.model import CvtTagger
from bertcompress.methods.cvt.vocab import ENCODING, CvtVocab

FORMAT, VERSION = "bertcompress-cvt", 1
ARCH_FILE, WEIGHTS_FILE = "cvt_config.json", "model.safetensors"


def save_tagger(tagger: CvtTagger, folder: str | Path) -> Path:
    """Write the tagger's files into `folder` (called inside the verb's atomic output folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in tagger.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": FORMAT})
    atomic_write_json(folder / ARCH_FILE, {
        "format": FORMAT, "version": VERSION, "model": asdict(tagger.cfg), "views": tagger.views,
        "lowercase": tagger.vocab.lowercase, "max_word_length": tagger.vocab.max_word_length,
        "num_words": len(tagger.vocab.words), "num_chars": len(tagger.vocab.chars),
        "num_tags": len(tagger.vocab.tags), "encoding": ENCODING})
    tagger.vocab.save(folder)
    return folder


def load_cvt(folder: str | Path) -> CvtTagger:
    """The tagger saved in `folder`, on the CPU, ready for inference."""
    folder = Path(folder)
    arch_path = folder / ARCH_FILE
    if not arch_path.is_file():
        raise UserError(f"{folder} is not a CVT tagger folder: no {ARCH_FILE}")
    try:
        arch = json.loads(arch_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{arch_path} is not valid JSON: {e}") from None
    if not isinstance(arch, dict) or arch.get("format") != FORMAT:
        raise UserError(f"{arch_path} does not describe a CVT tagger (format {FORMAT!r})")
    if arch.get("version") != VERSION:
        raise UserError(f"{arch_path} is version {arch.get('version')}; this bertcompress reads version {VERSION}")
    cfg = from_dict(CvtModelConfig, arch["model"], "model")
    vocab = CvtVocab.load(folder, arch["lowercase"], arch["max_word_length"])
    sizes = {"num_words": len(vocab.words), "num_chars": len(vocab.chars), "num_tags": len(vocab.tags)}
    wrong = [k for k, n in sizes.items() if arch.get(k) != n]
    if wrong:
        raise UserError(f"{folder}: the vocabulary files do not match {ARCH_FILE} ({wrong[0]})")
    tagger = CvtTagger(cfg, vocab, arch["views"])
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise UserError(f"{folder} is not a CVT tagger folder: {WEIGHTS_FILE} is missing")
    try:
        state = load_file(str(weights))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error type for a bad file
        raise UserError(f"cannot read {weights}: {str(e).strip().splitlines()[0]}") from None
    try:
        tagger.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{weights} does not fit {ARCH_FILE}: {str(e).splitlines()[0]}") from None
    return tagger.eval()
