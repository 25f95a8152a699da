"""AdvGLUE (`dev_ann.json`): adversarial versions of GLUE dev examples, for the tasks it covers.

Its labels are the Hugging Face GLUE class indices; they are mapped to our label order through the
label names, so a model trained on the official GLUE files is scored on the same classes.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .examples import Example, TaskSpec

# our task -> (AdvGLUE key, its text fields, the label names of its class indices)
_LAYOUT = {
    "sst2": ("sst2", ("sentence", None), ("0", "1")),
    "qqp": ("qqp", ("question1", "question2"), ("0", "1")),
    "mnli": ("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction")),
    "mnli-mm": ("mnli-mm", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction")),
    "qnli": ("qnli", ("question", "sentence"), ("entailment", "not_entailment")),
    "rte": ("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment")),
}


def load_advglue(path: str | Path, task: TaskSpec, *, mismatched: bool = False) -> list[Example]:
    """The AdvGLUE examples of `task` (MNLI: matched, or mismatched with `mismatched`)."""
    name = "mnli-mm" if task.name == "mnli" and mismatched else task.name
    if name not in _LAYOUT:
        raise UserError(f"AdvGLUE has no {task.name} (it covers {', '.join(_LAYOUT)})")
    path = Path(path)
    if path.is_dir():
        path = path / "dev_ann.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"AdvGLUE file {path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"AdvGLUE file {path} is not valid JSON ({e})") from None
    key, (field_a, field_b), names = _LAYOUT[name]
    rows = data.get(key) if isinstance(data, dict) else None
    if not rows:
        raise UserError(f"AdvGLUE file {path} has no {key!r} examples")
    ours = {label: i for i, label in enumerate(task.labels or ())}
    out = []
    for i, row in enumerate(rows):
        try:
            label = ours[names[int(row["label"])]]
            out.append(Example(row[field_a], row[field_b] if field_b else None, label))
        except (KeyError, IndexError, ValueError, TypeError):
            raise UserError(f"AdvGLUE {key} row {i} is malformed: {str(row)[:80]}") from None
    return out
