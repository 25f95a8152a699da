"""A model card (README.md) in every model folder we write, as the Hugging Face Hub reads it.

YAML metadata first: `library_name`, `pipeline_tag`, `base_model` (a Hub id only: a local folder
means nothing there), `datasets`, `metrics`, `tags` and a `model-index` with the scores. Then a short
body: how the model was made (the command, its base or teacher, its shape), its scores, how it
compares with its teacher when that was measured (`run` adds it: `add_comparison`), and how to load
it. The folder is
a standard one, so `huggingface-cli upload` (or `hf upload`) publishes it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bertcompress.core.io import CONFIG_FILENAME, OUTPUT_COMMANDS, RESULT_FILENAME, atomic_write_text
from bertcompress.models.loading import count_parameters

CARD_FILENAME = "README.md"
PIPELINE_TAGS = {"classifier": "text-classification", "token_classifier": "token-classification",
                 "base": "feature-extraction", "masked_lm": "fill-mask"}
AUTO_CLASSES = {"classifier": "AutoModelForSequenceClassification", "token_classifier":
                "AutoModelForTokenClassification", "base": "AutoModel", "masked_lm": "AutoModelForMaskedLM"}
GLUE = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli")


@dataclass
class CardFacts:
    """What a card says. `scores`: metric -> value on `split`; `notes`: paragraphs of its own."""

    name: str
    command: str  # e.g. "finetune": `bertcompress finetune` made it
    model_kind: str  # models.loading kind: classifier, token_classifier, base, masked_lm
    shape: str  # e.g. "4 layers x 312 hidden, 14.5M parameters (bert)"
    base_model: str | None = None  # the model it started from or learned from
    base_relation: str | None = None  # the Hub's base_model_relation: finetune, quantized
    task: str | None = None
    dataset: str | None = None  # a Hub dataset id, when the data has one
    split: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    library: str = "transformers"  # "bertcompress" when plain transformers cannot load it
    load: str | None = None  # a loading snippet; default: the transformers Auto class
    notes: list[str] = field(default_factory=list)


def is_hub_id(name: str | None) -> bool:
    """`owner/name` or a bare name, not a local path."""
    return bool(name) and not Path(name).expanduser().exists() and not name.startswith((".", "/", "~")) \
        and name.count("/") <= 1


def metadata(facts: CardFacts) -> dict[str, Any]:
    pipeline = PIPELINE_TAGS.get(facts.model_kind, "feature-extraction")
    meta: dict[str, Any] = {"library_name": facts.library, "pipeline_tag": pipeline,
                            "tags": ["bertcompress", facts.command]}
    if is_hub_id(facts.base_model):
        meta["base_model"] = facts.base_model
        if facts.base_relation:
            meta["base_model_relation"] = facts.base_relation
    if facts.dataset:
        meta["datasets"] = [facts.dataset]
    metrics = [k for k in facts.scores if k != "score"]
    if metrics:
        meta["metrics"] = metrics
        meta["model-index"] = [{"name": facts.name, "results": [{
            "task": {"type": pipeline},
            "dataset": {"name": facts.task or "task", "type": facts.dataset or facts.task or "task",
                        **({"split": facts.split} if facts.split else {})},
            "metrics": [{"type": k, "value": round(float(facts.scores[k]), 4)} for k in metrics]}]}]
    return meta


def model_card(facts: CardFacts) -> str:
    made_from = f" from `{facts.base_model}`" if facts.base_model else ""
    lines = ["---", yaml.safe_dump(metadata(facts), sort_keys=False).rstrip(), "---", "",
             f"# {facts.name}", "",
             f"{facts.shape}, made by `bertcompress {facts.command}`{made_from}.", ""]
    if facts.task:
        lines += [f"Task: {facts.task}" + (f" ({facts.dataset})" if facts.dataset else "") + ".", ""]
    if facts.scores:
        lines += [f"## Scores ({facts.split or 'eval'} split)", "", "| metric | value |", "| --- | --- |",
                  *[f"| {k} | {float(v):.4f} |" for k, v in facts.scores.items() if k != "score"], ""]
    lines += ["## How it was made", "",
              f"`{CONFIG_FILENAME}` beside this card holds every setting it ran with: "
              f"`bertcompress {facts.command} --config {CONFIG_FILENAME}` runs it again; "
              f"`{RESULT_FILENAME}` holds its training history and scores.", "",
              *facts.notes, "## How to load it", "", "```python", facts.load or default_load(facts), "```", ""]
    return "\n".join(lines)


def default_load(facts: CardFacts) -> str:
    auto = AUTO_CLASSES.get(facts.model_kind, "AutoModel")
    return (f"from transformers import AutoTokenizer, {auto}\n\n"
            f"tokenizer = AutoTokenizer.from_pretrained(\"path/to/{facts.name}\")\n"
            f"model = {auto}.from_pretrained(\"path/to/{facts.name}\")")


def write_model_card(folder: str | Path, facts: CardFacts) -> Path:
    return atomic_write_text(Path(folder) / CARD_FILENAME, model_card(facts))


def describe_shape(model: Any) -> str:
    """'A bert model: 4 layers x 312 hidden, 14.5M parameters', from the model and its config."""
    c = model.config
    layers = getattr(c, "num_hidden_layers", None) or getattr(c, "n_layers", None)
    hidden = getattr(c, "hidden_size", None) or getattr(c, "dim", None)
    params = count_parameters(model)
    size = f"{layers} layers x {hidden} hidden, " if layers and hidden else ""
    return f"A {c.model_type} model: {size}{params / 1e6:.1f}M parameters"


def model_kind_of(model: Any) -> str:
    """The models.loading kind of a model, from its class name."""
    name = type(model).__name__
    for ending, kind in (("ForSequenceClassification", "classifier"), ("ForTokenClassification", "token_classifier"),
                         ("ForMaskedLM", "masked_lm")):
        if name.endswith(ending):
            return kind
    return "base"


def facts_from_run(folder: Path, model: Any, config: Any, result: dict[str, Any]) -> CardFacts:
    """A card's facts from what a verb saves: its model, config and result record."""
    command = OUTPUT_COMMANDS.get(type(config).__name__, type(config).__name__)
    # what it came from: the model fine-tuned, quantized or pruned, else the teacher it learned from
    base = next((getattr(config, k) for k in ("model", "student", "teacher")
                 if isinstance(getattr(config, k, None), str)), None)
    data = getattr(config, "data", None)
    task = result.get("task") or getattr(data, "task", None)
    dataset = None
    if task in GLUE:
        dataset = "nyu-mll/glue"
    elif data is not None and is_hub_id(getattr(data, "path", None)):
        dataset = data.path
    scores = {k: v for k, v in (result.get("dev") or {}).items() if isinstance(v, (int, float))}
    relation = {"finetune": "finetune", "quantize": "quantized"}.get(command)
    return CardFacts(name=folder.name, command=command, model_kind=model_kind_of(model), shape=describe_shape(model),
                     base_model=base, base_relation=relation, task=task, dataset=dataset,
                     split=result.get("eval_split"), scores=scores)


def add_comparison(folder: str | Path, lines: list[str]) -> Path:
    """Add (or replace) the "Against the teacher" section of a card written earlier: what `run`
    measured after the student was saved."""
    path = Path(folder) / CARD_FILENAME
    text = path.read_text(encoding="utf-8")
    start = text.find("## Against the teacher")
    if start >= 0:  # a resumed run measures again
        end = text.find("## ", start + 3)
        text = text[:start] + text[end:]
    at = text.find("## How it was made")
    section = "\n".join(["## Against the teacher", "", *[f"- {line}" for line in lines], "", ""])
    return atomic_write_text(path, text[:at] + section + text[at:])
