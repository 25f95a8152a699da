"""AdvGLUE (`dev_ann.json`): adversarial versions of GLUE dev examples, for the tasks it covers.

Its labels are the Hugging Face GLUE class indices; they are mapped to our label order through the
label names, so a model trained on the official GLUE files is scored on the same classes.
"""

from __future__ import annotations

import json
from pathlib import Path

from bertcompress.core.errors import UserError
from bertcompress.data.examples import Example, TaskSpec

# our task -> (AdvGLUE key, its text fields, the label names of its class indices)
_LAYOUT = {
    "sst2": ("sst2", ("sentence", None), ("0", "1")),
    "qqp": ("qqp", ("question1", "question2"), ("0", "1")),
    "mnli": ("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction")),
    "mnli-mm": ("mnli-mm", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction")),
    "qnli": ("qnli", ("question", "sentence"), ("entailment", "not_entailment")),
    "rte": ("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment")),
}


def advglue_sets(path: str | Path, task: TaskSpec) -> dict[str, list[Example]]:
    """Every AdvGLUE set of `task`, by AdvGLUE's name: MNLI has two, matched (`mnli`) and
    mismatched (`mnli-mm`); one of them missing from the file is left out."""
    if task.name != "mnli":
        return {task.name: load_advglue(path, task)}
    data = _read(path)
    present = [n for n in ("mnli", "mnli-mm") if isinstance(data, dict) and data.get(n)] or ["mnli"]
    return {n: _examples(data, path, task, n) for n in present}


def load_advglue(path: str | Path, task: TaskSpec, *, mismatched: bool = False) -> list[Example]:
    """The AdvGLUE examples of `task` (MNLI: matched, or mismatched with `mismatched`)."""
    name = "mnli-mm" if task.name == "mnli" and mismatched else task.name
    if name not in _LAYOUT:
        raise UserError(f"AdvGLUE has no {task.name} (it covers {', '.join(_LAYOUT)})")
    return _examples(_read(path), path, task, name)


def _read(path: str | Path):
    path = Path(path)
    if path.is_dir():
        path = path / "dev_ann.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"AdvGLUE file {path} not found") from None
    except OSError as e:
        raise UserError(f"cannot read AdvGLUE file {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"AdvGLUE file {path} is not valid JSON ({e})") from None


def _examples(data, path: str | Path, task: TaskSpec, name: str) -> list[Example]:
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
