"""Cross-View Training against BERT taggers on Brown part-of-speech tagging (universal tags).

Systems, on the same train/dev/test split of Brown (a seeded 80/10/10 shuffle of its sentences) and,
at each labelled budget, the same labelled sentences:

- `bilstm`: the CVT tagger trained on the labels only (`unlabelled.weight 0`: same model, no cross-view loss);
- `cvt`: the same tagger with Cross-View Training on unlabelled text: Brown's other train sentences
  (tags stripped) and NLTK's webtext, abc, state_union and inaugural; the joint schedule (one
  labelled and one unlabelled minibatch summed in each update; the default until issue 29) and five
  auxiliary modules (the reference's fifth, the full view, since issue 29);
- `cvt_alternate`: the same with the reference's schedule (the default since issue 29), a labelled
  and an unlabelled minibatch in alternate updates: `cvt` loops twice the steps of the same train
  settings, as many minibatches of each kind as `cvt`;
- `teacher`: all-MiniLM-L6-v2 fine-tuned as a tagger (`finetune`, task brown-pos);
- `student`: a 3-layer student (the teacher's width, started from its layers) by task distillation
  from that teacher (`distill --stage task`: intermediate, then prediction layer);
- `general_student`: the task-agnostic use of the same unlabelled text: general distillation of the
  student from the pre-trained MiniLM on exactly CVT's unlabelled sentences, then the same task
  distillation.

A domain setting: labelled sentences from the news genre only, tested on the fiction genres
(fiction, mystery, science_fiction, adventure, romance); the unlabelled text (CVT and the student's
general distillation) is the fiction genres' own train part, never their test part.

Reported per system and budget: token accuracy on the test split (every system on the same
sentences), training wall and CPU seconds, energy and CO2 (codecarbon's OfflineEmissionsTracker),
parameters used to tag, and latency per 1,000 words in PyTorch and ONNX Runtime (one thread, the same
length-sorted batches of test sentences). A system's training cost includes the stages it needs
(the distilled students: the teacher's fine-tuning too). Then the seed's targets, checked.

    python benchmarks/cvt_tagging.py                                      # full scale: hours
    OMP_NUM_THREADS=1 python benchmarks/cvt_tagging.py --budgets 1000 --lstm-steps 300 \\
        --teacher-steps 60 --student-steps 60 --general-steps 60 --test-limit 1000   # CPU-sized
Writes benchmarks/results/cvt_tagging.json (contract: `systems` maps a system to {budget: {accuracy,
train_seconds, energy_kwh, params, latency_ms_per_1k_tokens: {pytorch, onnxruntime}, ...}}; `domain`
the same for the domain setting; `targets`).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from common import SHARED_DATA, environment, load_json, print_table, write_result

TEACHER = "all-MiniLM-L6-v2"
NLTK = SHARED_DATA / "corpus" / "nltk"
BROWN = NLTK / "brown.zip"
OTHER_CORPORA = ("webtext.zip", "abc.zip", "state_union.zip", "inaugural.zip")
SYSTEMS = ("bilstm", "cvt", "cvt_alternate", "teacher", "student", "general_student")
LSTM_SYSTEMS = ("bilstm", "cvt", "cvt_alternate")
CVT_TAG = "v5"  # in the CVT folders' names: five auxiliary modules (issue 29); the runs before had four
SOURCE_GENRES = ["news"]
TARGET_GENRES = ["fiction", "mystery", "science_fiction", "adventure", "romance"]
# one split for every system; CVT's labelled budget is the toolkit's max_train_examples sample
# (data.loaders.subset_indices), so both families get the same labelled sentences (checked below)
SPLIT_SEED = 1
STRONG_GAP = 0.01  # "clearly ahead": at least one accuracy point


# ---------------------------------------------------------------- energy and time of a stage

class Meter:
    """Wall seconds, process CPU seconds and codecarbon's energy and CO2 of one stage."""

    def __init__(self, country: str, enabled: bool = True):
        self.country, self.said, self.error = country, [], None
        self.available = enabled
        if enabled:
            try:
                import codecarbon  # noqa: F401
            except ImportError:
                self.available, self.error = False, "codecarbon is not installed (pip install -e \".[bench]\")"

    def measure(self, fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
        tracker = self._tracker()
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            out = fn()
        finally:
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            energy = self._stop(tracker)
        return out, {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), **energy}

    def _tracker(self):
        if not self.available:
            return None
        from codecarbon import OfflineEmissionsTracker

        handler = _Collect()
        log = logging.getLogger("codecarbon")
        log.addHandler(handler)
        try:
            tracker = OfflineEmissionsTracker(country_iso_code=self.country, save_to_file=False, log_level="warning",
                                              tracking_mode="process", measure_power_secs=10,
                                              allow_multiple_runs=True)
            tracker.start()
        finally:
            log.removeHandler(handler)
        for message in handler.messages:
            if message not in self.said:
                self.said.append(message)
        return tracker

    @staticmethod
    def _stop(tracker) -> dict[str, Any]:
        if tracker is None:
            return {"energy_kwh": None, "co2_kg": None}
        co2 = tracker.stop()
        d = tracker.final_emissions_data
        return {"energy_kwh": d.energy_consumed, "cpu_energy_kwh": d.cpu_energy, "ram_energy_kwh": d.ram_energy,
                "co2_kg": co2, "cpu_power_w": round(d.cpu_power, 2), "ram_power_w": round(d.ram_power, 2)}

    def assumptions(self) -> dict[str, Any]:
        if not self.available:
            return {"tool": None, "note": self.error or "off (--no-energy)"}
        import codecarbon

        return {"tool": f"codecarbon {codecarbon.__version__} OfflineEmissionsTracker",
                "country_iso_code": self.country,
                "tracking_mode": "process (this process's share of CPU load; RAM by its estimate)",
                "grid_intensity": f"codecarbon's built-in average for {self.country}",
                "pue": 1.0, "codecarbon_said": self.said,
                "note": "without RAPL (no /sys/class/powercap) codecarbon estimates CPU power from a TDP table, or "
                        "a default per thread for an unknown CPU, scaled by load; RAM power is its own estimate, "
                        "not a measurement. Compare systems by ratios, not absolute kWh."}


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(" ".join(record.getMessage().split()))


# ---------------------------------------------------------------- data

def data_config(categories: list[str] | None, budget: int | None, dev_limit: int | None, max_seq_len: int = 128):
    from bertcompress.data.config import DataConfig, TaggingConfig

    return DataConfig(task="brown-pos", path=str(BROWN), max_seq_len=max_seq_len, max_train_examples=budget,
                      max_eval_examples=dev_limit,
                      tagging=TaggingConfig(brown_categories=categories, split_seed=SPLIT_SEED))


def test_sentences(categories: list[str] | None, limit: int | None):
    """The test split of these genres (a seeded sample of `limit`, the toolkit's own sampling)."""
    from bertcompress.data.kinds import load_examples

    cfg = replace(data_config(categories, None, limit), eval_split="test")
    return load_examples(cfg, "test", allow_tagging=True)


def check_same_split(cvt_data, categories: list[str] | None, budget: int | None) -> dict[str, bool]:
    """Whether CVT and the toolkit read the same labelled sentences and the same test split."""
    from bertcompress.data.kinds import load_examples

    cfg = data_config(categories, budget, None)
    train = load_examples(cfg, "train", allow_tagging=True)[1]
    test = load_examples(replace(cfg, eval_split="test"), "test", allow_tagging=True)[1]
    return {"same_labelled_sentences": [s.tokens for s in train] == [s.tokens for s in cvt_data.train],
            "same_test_split": [s.tokens for s in test] == [s.tokens for s in cvt_data.test]}


def write_lines(path: Path, sentences: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(" ".join(s) + "\n" for s in sentences), encoding="utf-8")
    tmp.replace(path)
    return path


def fiction_pool(work: Path) -> Path:
    """The fiction genres' train part as one sentence a line (their dev and test parts left out)."""
    from bertcompress.data.brown import brown_plain_sentences
    from bertcompress.data.tagging import seeded_split

    path = work / "domain" / "fiction_train_unlabelled.txt"
    if not path.is_file():
        write_lines(path, seeded_split(brown_plain_sentences(BROWN, TARGET_GENRES), (0.8, 0.1, 0.1),
                                       SPLIT_SEED)["train"])
    return path


# ---------------------------------------------------------------- scoring and latency

def length_batches(lengths: list[int], size: int) -> list[list[int]]:
    from bertcompress.methods.cvt.predict import length_batches as batches

    return batches(lengths, size)


def latency_sample(sentences: list, n: int) -> list:
    if n >= len(sentences):
        return sentences
    return [sentences[i] for i in sorted(random.Random(0).sample(range(len(sentences)), n))]


def cvt_accuracy(folder: Path, sentences: list) -> dict[str, Any]:
    from bertcompress.methods.cvt.predict import score_tagger
    from bertcompress.methods.cvt.saving import load_cvt

    s = score_tagger(load_cvt(folder), sentences)
    return {"accuracy": s["accuracy"], "words": s.get("words")}


def bert_accuracy(folder: Path, data, split: str = "test") -> dict[str, Any]:
    from bertcompress.evaluation.evaluator import evaluate

    r = evaluate([str(folder)], data, split=split, latency=False, onnx=False)[0]
    return {"accuracy": r["accuracy"], "words": r.get("words"), "truncated_words": r.get("truncated_words")}


def cvt_params(folder: Path) -> int:
    from bertcompress.methods.cvt.model import primary_parameters
    from bertcompress.methods.cvt.saving import load_cvt

    return primary_parameters(load_cvt(folder))


def cvt_latency(folder: Path, sentences: list, batch: int, repeats: int) -> dict[str, Any]:
    from bertcompress.methods.cvt.onnx_tagger import compare_runtimes
    from bertcompress.methods.cvt.saving import load_cvt

    r = compare_runtimes(load_cvt(folder), folder / "model.onnx", sentences, batch_size=batch, threads=1,
                         repeats=repeats)
    return {"pytorch": round(r["pytorch"]["ms_per_1000_tokens"], 2),
            "onnxruntime": round(r["onnxruntime"]["ms_per_1000_tokens"], 2),
            "agreement": r["agreement"], "load_1min": r.get("load_1min")}


def bert_latency(folder: Path, task, sentences: list, onnx_path: Path, batch: int, repeats: int) -> dict[str, Any]:
    """As compare_runtimes does for CVT: the same length-sorted batches of these sentences in PyTorch
    (eager, fp32) and ONNX Runtime, one thread, ms per 1,000 words (median of `repeats` passes)."""
    import numpy as np
    import torch

    from bertcompress.data.kinds import kind_of
    from bertcompress.data.tagging import IGNORE
    from bertcompress.evaluation.profile import machine_load, parameter_counts, time_call, torch_threads
    from bertcompress.export.onnx import export_onnx, onnx_logits, onnx_session
    from bertcompress.models.loading import load_model, load_tokenizer

    kind = kind_of(task)
    tokenizer = load_tokenizer(str(folder))
    model = load_model(str(folder), kind.model_kind, num_labels=task.num_labels).eval()
    features = kind.encode(tokenizer, sentences, task, 512)
    collate = kind.collator(tokenizer.pad_token_id or 0)
    batches = [collate([features[i] for i in chunk])
               for chunk in length_batches([len(f["input_ids"]) for f in features], batch)]
    inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in batches[0]]
    words = sum(f["word_count"] for f in features)
    export_onnx(model, onnx_path)
    session = onnx_session(onnx_path, 1)

    def run_torch():
        with torch.no_grad():
            return [model(**{k: b[k] for k in inputs}).logits.argmax(-1).numpy() for b in batches]

    def run_onnx():
        return [onnx_logits(session, {k: b[k] for k in inputs}).argmax(-1) for b in batches]

    out: dict[str, Any] = {}
    predictions = {}
    for name, fn in (("pytorch", run_torch), ("onnxruntime", run_onnx)):
        with torch_threads(1):
            out[name] = round(time_call(fn, warmup=1, repeats=repeats)["median_ms"] * 1000.0 / words, 2)
            predictions[name] = fn()
    same = total = 0
    for b, p, o in zip(batches, predictions["pytorch"], predictions["onnxruntime"]):
        keep = b["labels"].numpy() != IGNORE
        same, total = same + int((p[keep] == o[keep]).sum()), total + int(keep.sum())
    out["agreement"] = same / max(total, 1)
    out["params"] = parameter_counts(model)["parameters"]
    return out | {"load_1min": machine_load().get("load_1min")} | {"words": int(np.int64(words))}


# ---------------------------------------------------------------- the benchmark

def vector_width(path: str) -> int:
    """The width of a word2vec/GloVe text file: its first vector's numbers."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2:
                return len(parts) - 1
    raise SystemExit(f"--word-vectors {path}: no vector found")


def loop_seconds(folder: Path) -> float:
    """The training loop's own seconds, as the verb recorded them (task distillation: both phases)."""
    r = json.loads((folder / "bertcompress_result.json").read_text())
    if "train_seconds" in r:
        return r["train_seconds"]
    return sum(r[phase]["train_seconds"] for phase in ("intermediate", "prediction") if phase in r)


def train_cfg(steps: int | None, epochs: float | None, **kw):
    from bertcompress.train.config import TrainConfig

    if steps:
        return TrainConfig(max_steps=steps, **kw)
    return TrainConfig(epochs=epochs, **kw)


def spec(steps: int | None, epochs: float | None) -> str:
    return f"s{steps}" if steps else f"e{epochs:g}"


def per_budget(values: list[int] | None, budgets: list[str], flag: str):
    """The step count of each budget: one value for all, or one per budget in --budgets order (a
    budget not listed there, e.g. the domain budget, takes the first)."""
    if values and len(values) not in (1, len(budgets)):
        raise SystemExit(f"{flag}: give one value, or one per budget ({len(budgets)})")
    table = dict(zip(budgets, values)) if values and len(values) > 1 else {}
    return lambda budget: table.get(budget, values[0]) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="runs/cvt_tagging")
    ap.add_argument("--budgets", nargs="+", default=["1000", "5000", "all"],
                    help="labelled train sentences (all: the whole train split)")
    ap.add_argument("--bert-budgets", nargs="+", default=None,
                    help="budgets for the BERT systems (default: --budgets); e.g. only 1000 on a CPU")
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--lstm-steps", type=int, nargs="+", default=None,
                    help="BiLSTM and CVT optimizer steps (batch 32); one value, or one per budget")
    ap.add_argument("--lstm-epochs", type=float, default=30.0, help="BiLSTM and CVT epochs over the labelled "
                    "budget (used when --lstm-steps is not given)")
    ap.add_argument("--teacher-steps", type=int, nargs="+", default=None, help="one value, or one per budget")
    ap.add_argument("--teacher-epochs", type=float, default=3.0)
    ap.add_argument("--student-steps", type=int, nargs="+", default=None,
                    help="steps of each task-distillation phase; one value, or one per budget")
    ap.add_argument("--student-epochs", type=float, default=3.0, help="epochs of each task-distillation phase")
    ap.add_argument("--general-steps", type=int, nargs="+", default=[2000],
                    help="general-distillation steps (batch 32 x 128); one value, or one per budget")
    ap.add_argument("--student-layers", type=int, default=3, help="student layers, at the teacher's width, "
                    "started from its layers")
    ap.add_argument("--unlabelled-limit", type=int, default=None, help="at most this many unlabelled sentences "
                    "(a seeded sample; the same ones for CVT and for general distillation)")
    ap.add_argument("--test-limit", type=int, default=None, help="score on a seeded sample of this many test "
                    "sentences (the same for every system)")
    ap.add_argument("--dev-limit", type=int, default=None, help="BERT systems: dev sentences scored while training")
    ap.add_argument("--latency-sentences", type=int, default=500, help="test sentences timed per runtime")
    ap.add_argument("--latency-batch", type=int, default=64)
    ap.add_argument("--latency-repeats", type=int, default=3)
    ap.add_argument("--skip-domain", action="store_true", help="skip the news -> fiction setting")
    ap.add_argument("--domain-budget", default="1000", help="labelled news sentences of the domain setting")
    ap.add_argument("--country", default="USA", help="codecarbon country_iso_code (grid carbon intensity)")
    ap.add_argument("--no-energy", action="store_true", help="do not run codecarbon")
    ap.add_argument("--result-name", default="cvt_tagging", help="results/NAME.json (side experiments: another name; "
                    "the run before issue 29: results/cvt_tagging_before29.json)")
    ap.add_argument("--word-vectors", help="a word2vec/GloVe text file that starts the BiLSTM and CVT word embeddings "
                    "(model.word_vectors; its width sets model.word_dim)")
    args = ap.parse_args()

    from bertcompress.data.config import CorpusConfig
    from bertcompress.methods.cvt.config import CvtConfig, CvtDataConfig, CvtUnlabelledConfig
    from bertcompress.methods.cvt.sentences import labelled_data, unlabelled_sentences
    from bertcompress.methods.cvt.verb import cvt
    from bertcompress.methods.distill.config import DistillConfig
    from bertcompress.methods.distill.verb import distill
    from bertcompress.methods.finetune.config import FinetuneConfig
    from bertcompress.methods.finetune.verb import finetune
    from bertcompress.models.config import StudentConfig

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    meter = Meter(args.country, enabled=not args.no_energy)
    stages: dict[str, dict] = load_json(work / "stages.json")
    bert_budgets = args.bert_budgets or args.budgets
    student = StudentConfig(num_layers=args.student_layers, hidden_size=None, num_heads=None, ffn_size=None,
                            init="teacher_layers")
    lstm_steps = per_budget(args.lstm_steps, args.budgets, "--lstm-steps")
    teacher_steps = per_budget(args.teacher_steps, args.budgets, "--teacher-steps")
    student_steps = per_budget(args.student_steps, args.budgets, "--student-steps")
    general_steps = per_budget(args.general_steps, args.budgets, "--general-steps")
    ulimit = f"u{args.unlabelled_limit}" if args.unlabelled_limit else "uall"

    outputs: dict[str, Path] = {}

    def timed(name: str, fn, cfg) -> Path:
        """Run a stage unless its output is finished (then its earlier measurements stand)."""
        out = Path(cfg.output)
        outputs[name] = out
        if (out / "bertcompress_config.yaml").is_file():
            if name not in stages:
                print(f"[cvt_tagging] {name}: reused {out}, but its measurements are lost", flush=True)
            return out
        print(f"[cvt_tagging] {name} -> {out}", flush=True)
        resume = (out.parent / f".{out.name}.checkpoints").is_dir()
        _, m = meter.measure(lambda: fn(cfg, resume=resume))
        stages[name] = {**m, "output": str(out), "resumed": resume}
        (work / "stages.json").write_text(json.dumps(stages, indent=1))
        return out

    def run_setting(setting: str, categories: list[str] | None, budgets: list[str],
                    test_genres: list[str] | None) -> tuple[dict, dict]:
        """Train every system at every budget of one setting; return ({system: {budget: row}}, info)."""
        root = work / setting
        test_task, test = test_sentences(test_genres, args.test_limit)
        timing = latency_sample(test, args.latency_sentences)
        test_data = replace(data_config(test_genres, None, args.test_limit, max_seq_len=512), eval_split="test")
        scores = load_json(root / "scores.json")
        rows: dict[str, dict] = {s: {} for s in args.systems}
        info: dict[str, Any] = {"test_sentences": len(test), "test_words": sum(len(s.tokens) for s in test),
                                "latency_sentences": len(timing), "checks": {}, "unlabelled_sentences": {}}
        pending: list[tuple[str, str, str, Path]] = []  # (system, budget, family, folder): timed at the end
        for budget in budgets:
            limit = None if budget == "all" else int(budget)
            base = root / f"b{budget}"
            # ---- the CVT family: labels only, and with the unlabelled text
            cvt_data = CvtDataConfig(path=str(BROWN), categories=categories, split_seed=SPLIT_SEED,
                                     labelled_limit=limit)
            if setting == "main":
                unlabelled = CvtUnlabelledConfig(paths=[str(NLTK / n) for n in OTHER_CORPORA], text_format="raw",
                                                 rest_of_train=True, limit=args.unlabelled_limit)
            else:
                unlabelled = CvtUnlabelledConfig(paths=[str(fiction_pool(work))], text_format="lines",
                                                 rest_of_train=False, limit=args.unlabelled_limit)
            lstm_spec = spec(lstm_steps(budget), args.lstm_epochs)
            teacher_spec = spec(teacher_steps(budget), args.teacher_epochs)
            student_spec = spec(student_steps(budget), args.student_epochs)
            general_spec = f"s{general_steps(budget)}"
            length = {"max_steps": lstm_steps(budget)} if lstm_steps(budget) else {"epochs": args.lstm_epochs}
            lstm_train = replace(CvtConfig().train, device="cpu", log_every=25, **length)
            model = CvtConfig().model if args.word_vectors is None else replace(
                CvtConfig().model, word_vectors=args.word_vectors, word_dim=vector_width(args.word_vectors))
            tag = CVT_TAG + ("-wv" if args.word_vectors else "")
            labelled = labelled_data(cvt_data)
            info["checks"][budget] = check_same_split(labelled, categories, limit)
            corpus_file = base / f"unlabelled-{ulimit}.txt"
            if not corpus_file.is_file():
                sentences = unlabelled_sentences(unlabelled, labelled.rest, cvt_data)
                write_lines(corpus_file, sentences)
            info["unlabelled_sentences"][budget] = sum(1 for _ in corpus_file.open(encoding="utf-8"))
            folders: dict[str, Path] = {}
            if "bilstm" in args.systems:
                # the labels-only tagger reads no view: the runs before issue 29 stand (without word vectors)
                folders["bilstm"] = timed(f"{setting} {budget} bilstm", cvt, CvtConfig(
                    data=cvt_data, unlabelled=replace(unlabelled, weight=0.0, paths=[]), train=lstm_train,
                    model=model, output=str(base / (f"bilstm-{lstm_spec}" + ("-wv" if args.word_vectors else "")))))
            if "cvt" in args.systems:
                folders["cvt"] = timed(f"{setting} {budget} cvt", cvt, CvtConfig(
                    data=cvt_data, unlabelled=replace(unlabelled, schedule="joint"), train=lstm_train, model=model,
                    output=str(base / f"cvt-{tag}-{lstm_spec}-{ulimit}")))
            if "cvt_alternate" in args.systems:
                folders["cvt_alternate"] = timed(f"{setting} {budget} cvt_alternate", cvt, CvtConfig(
                    data=cvt_data, unlabelled=replace(unlabelled, schedule="alternate"), train=lstm_train,
                    model=model, output=str(base / f"cvt-alternate-{tag}-{lstm_spec}-{ulimit}")))
            # ---- the BERT family
            bert = [s for s in ("teacher", "student", "general_student") if s in args.systems]
            if bert and budget in bert_budgets:
                data = data_config(categories, limit, args.dev_limit)
                teacher_dir = timed(f"{setting} {budget} teacher", finetune, FinetuneConfig(
                    model=TEACHER, data=data, output=str(base / f"teacher-{teacher_spec}"),
                    train=train_cfg(teacher_steps(budget), args.teacher_epochs, lr=1e-4, batch_size=32,
                                    log_every=10)))
                folders["teacher"] = teacher_dir
                task_kd = dict(stage="task", teacher=str(teacher_dir), data=data,
                               train=train_cfg(student_steps(budget), args.student_epochs, lr=3e-4, batch_size=32,
                                               log_every=10),
                               prediction_train=train_cfg(student_steps(budget), args.student_epochs, lr=1e-4,
                                                          batch_size=32, log_every=10))
                if "student" in args.systems:
                    folders["student"] = timed(f"{setting} {budget} student", distill, DistillConfig(
                        student=student, output=str(base / f"student-{teacher_spec}-{student_spec}"), **task_kd))
                if "general_student" in args.systems:
                    general = timed(f"{setting} {budget} general", distill, DistillConfig(
                        stage="general", teacher=TEACHER, student=student,
                        corpus=CorpusConfig(path=str(corpus_file), max_seq_len=128),
                        train=train_cfg(general_steps(budget), None, lr=3e-4, batch_size=32, log_every=10),
                        output=str(base / f"general-{general_spec}-{ulimit}")))
                    folders["general_student"] = timed(f"{setting} {budget} general_student", distill, DistillConfig(
                        student_path=str(general),
                        output=str(base / f"general_student-{general_spec}-{ulimit}-{teacher_spec}-"
                                          f"{student_spec}"), **task_kd))
            needs = {"bilstm": ["bilstm"], "cvt": ["cvt"], "cvt_alternate": ["cvt_alternate"], "teacher": ["teacher"],
                     "student": ["teacher", "student"],
                     "general_student": ["general", "teacher", "general_student"]}
            for system, folder in folders.items():
                names = [f"{setting} {budget} {n}" for n in needs[system]]
                measured = [stages.get(n) for n in names]
                own = stages.get(names[-1]) or {}

                def total(key: str, measured=measured):
                    values = [m.get(key) if m else None for m in measured]
                    return round(sum(values), 8) if all(v is not None for v in values) else None

                key = f"{folder}|test|{args.test_limit}"
                if key not in scores:
                    scores[key] = (cvt_accuracy(folder, test) if system in LSTM_SYSTEMS else
                                   bert_accuracy(folder, test_data))
                    (root / "scores.json").write_text(json.dumps(scores, indent=1))
                row = {"accuracy": scores[key]["accuracy"], "train_seconds": total("wall_seconds"),
                       "cpu_seconds": total("cpu_seconds"), "energy_kwh": total("energy_kwh"),
                       "co2_kg": total("co2_kg"), "own_train_seconds": own.get("wall_seconds"),
                       "own_cpu_seconds": own.get("cpu_seconds"), "own_energy_kwh": own.get("energy_kwh"),
                       "loop_seconds": round(sum(loop_seconds(outputs[n]) for n in names), 1),
                       "stages": names, "test_words_scored": scores[key].get("words"), "model": str(folder)}
                result = json.loads((folder / "bertcompress_result.json").read_text())
                if system in LSTM_SYSTEMS:
                    row["params"] = cvt_params(folder)
                    row["params_with_auxiliary_modules"] = result["parameters"]["total"]
                    row["steps"] = result["steps"]
                    row["dev_accuracy_own_split"] = result["dev"]["accuracy"]  # news dev in the domain setting
                    if setting != "main" and result.get("test"):
                        row["source_test_accuracy"] = result["test"]["accuracy"]
                    row["unlabelled_sentences"] = result["data"]["unlabelled"]
                rows[system][budget] = row
                pending.append((system, budget, "lstm" if system in LSTM_SYSTEMS else "bert", folder))
        # ---- one timing phase: every model of the setting, the same sentences, one thread
        for system, budget, family, folder in pending:
            print(f"[cvt_tagging] timing {setting} {budget} {system}", flush=True)
            if family == "lstm":
                lat = cvt_latency(folder, timing, args.latency_batch, args.latency_repeats)
            else:
                lat = bert_latency(folder, test_task, timing, work / "onnx" / f"{setting}-{budget}-{system}.onnx",
                                   args.latency_batch, args.latency_repeats)
                rows[system][budget]["params"] = lat.pop("params")
            rows[system][budget]["latency_ms_per_1k_tokens"] = {k: lat[k] for k in ("pytorch", "onnxruntime")}
            rows[system][budget]["onnx_agreement"] = lat["agreement"]
            rows[system][budget]["load_1min_after_timing"] = lat.get("load_1min")
        return {s: r for s, r in rows.items() if r}, info

    systems, main_info = run_setting("main", None, args.budgets, None)
    domain, domain_info = ({}, None) if args.skip_domain else run_setting(
        "domain", SOURCE_GENRES, [args.domain_budget], TARGET_GENRES)

    result = {"systems": systems, "domain": domain, "targets": targets(systems, args.budgets),
              "settings": {
                  "data": f"Brown ({BROWN.name}), universal tags (12); one seeded 80/10/10 split of the sentences "
                          f"(seed {SPLIT_SEED}) for every system; at each budget the same labelled sentences",
                  "test": main_info, "budgets": args.budgets, "bert_budgets": bert_budgets,
                  "unlabelled": {"main": "Brown's other train sentences (tags stripped) + NLTK " +
                                 ", ".join(OTHER_CORPORA) + " (raw text split into sentences and words)",
                                 "domain": f"the train part of Brown {', '.join(TARGET_GENRES)} (tags stripped)",
                                 "limit": args.unlabelled_limit,
                                 "general_distillation": "exactly CVT's unlabelled sentences, one a line"},
                  "domain": None if args.skip_domain else {
                      "labelled": f"Brown {', '.join(SOURCE_GENRES)}, budget {args.domain_budget}",
                      "test": f"the test split of Brown {', '.join(TARGET_GENRES)}", **domain_info},
                  "lstm": {"steps": {b: lstm_steps(b) for b in args.budgets},
                           "cvt_alternate_steps": "twice the steps (or epochs): as many labelled and unlabelled "
                                                  "minibatches as cvt, in twice the updates",
                           "auxiliary_modules": CvtConfig().unlabelled.views, "word_vectors": args.word_vectors,
                           "epochs": None if args.lstm_steps else args.lstm_epochs,
                           "model": "CvtModelConfig defaults (word 100, char CNN 3x50, BiLSTM 200 + 100, "
                                    "projection 100)", "batch_size": 32, "lr": 2e-3, "ema": 0.998},
                  "teacher": {"model": TEACHER, "steps": {b: teacher_steps(b) for b in bert_budgets},
                              "epochs": None if args.teacher_steps else args.teacher_epochs, "lr": 1e-4,
                              "batch_size": 32, "max_seq_len": 128},
                  "student": {"shape": f"{args.student_layers} layers x the teacher's width (384, 12 heads, FFN "
                                       "1536), started from the teacher's layers (uniform mapping)",
                              "task_distillation": {"steps_per_phase": {b: student_steps(b) for b in bert_budgets},
                                                    "epochs_per_phase": None if args.student_steps
                                                    else args.student_epochs,
                                                    "intermediate_lr": 3e-4, "prediction_lr": 1e-4},
                              "general_distillation": {"steps": {b: general_steps(b) for b in bert_budgets},
                                                       "batch_size": 32,
                                                       "seq_len": 128, "lr": 3e-4, "teacher": TEACHER}},
                  "dev_limit": args.dev_limit,
                  "latency": {"threads": 1, "batch_size": args.latency_batch, "repeats": args.latency_repeats,
                              "unit": "ms per 1,000 words (median pass over the timed test sentences, "
                                      "length-sorted batches); BERT: fp32 eager and its ONNX export"},
                  "train_cost": "train_seconds, cpu_seconds, energy_kwh, co2_kg: wall and process CPU seconds and "
                                "codecarbon's estimate of each stage call (data loading, training, the end-of-"
                                "training dev score (CVT: all of dev and test; BERT: dev_limit sentences), saving, "
                                "CVT's ONNX export); loop_seconds: the training loops alone, as the verbs record "
                                "them. A system's cost sums the stages it needs (students: the teacher's "
                                "fine-tuning too; own_*: its last stage alone); the teacher's pre-training is not "
                                "counted",
                  "energy": meter.assumptions()},
              "stages": stages, "wall_seconds_this_run": round(time.perf_counter() - t_start, 1),
              "environment": environment()}
    table = [{"setting": setting, "system": system, "budget": budget, "accuracy": r["accuracy"],
              "train_s": r["train_seconds"], "cpu_s": r["cpu_seconds"],
              "energy_Wh": None if r["energy_kwh"] is None else r["energy_kwh"] * 1000, "params": r.get("params"),
              "ms/1k pt": r["latency_ms_per_1k_tokens"]["pytorch"],
              "ms/1k ort": r["latency_ms_per_1k_tokens"]["onnxruntime"]}
             for setting, block in (("main", systems), ("domain", domain))
             for system, by_budget in block.items() for budget, r in by_budget.items()]
    if table:
        print_table(table, list(table[0]))
    for name, t in result["targets"].items():
        print(f"{name}: {t['verdict']}")
    print(f"wrote {write_result(args.result_name, result)}")


def targets(systems: dict, budgets: list[str]) -> dict[str, Any]:
    """The seed's targets, as measured (or why not)."""
    out: dict[str, Any] = {}
    cvt, teacher, bilstm = systems.get("cvt", {}), systems.get("teacher", {}), systems.get("bilstm", {})
    shared = [b for b in budgets if b in cvt and b in teacher]
    if shared:
        budget = "all" if "all" in shared else shared[-1]
        c, t = cvt[budget], teacher[budget]
        gap = (t["accuracy"] - c["accuracy"]) * 100

        def ratio(a, b):
            return round(a / b, 2) if a is not None and b else None

        compute = ratio(t["cpu_seconds"], c["cpu_seconds"])
        loops = ratio(t["loop_seconds"], c["loop_seconds"])
        energy = ratio(t["energy_kwh"], c["energy_kwh"])
        lat = {k: ratio(t["latency_ms_per_1k_tokens"][k], c["latency_ms_per_1k_tokens"][k])
               for k in ("pytorch", "onnxruntime")}
        met = {"accuracy_within_1_point": gap <= 1.0, "compute_5x_less": compute is not None and compute >= 5,
               "inference_10x_faster": all(v is not None and v >= 10 for v in lat.values())}
        caveat = "" if budget == "all" else " (NOT all labels: the all-labels target is not measured in this run)"
        out["cvt_vs_finetuned_teacher"] = {
            "budget": budget, "all_labels": budget == "all", "cvt_accuracy": c["accuracy"],
            "teacher_accuracy": t["accuracy"], "teacher_minus_cvt_points": round(gap, 2),
            "train_cpu_seconds_ratio_teacher_over_cvt": compute,
            "training_loop_seconds_ratio_teacher_over_cvt": loops, "energy_ratio_teacher_over_cvt": energy,
            "latency_ratio_teacher_over_cvt": lat, "met": met,
            "verdict": (f"budget {budget}{caveat}: teacher - CVT = {gap:+.2f} points "
                        f"({'met' if met['accuracy_within_1_point'] else 'NOT met'}, target <= 1); training CPU "
                        f"seconds teacher / CVT = {compute}x ({'met' if met['compute_5x_less'] else 'NOT met'}, target "
                        f">= 5x); latency teacher / CVT = {lat['pytorch']}x (PyTorch), {lat['onnxruntime']}x (ORT) "
                        f"({'met' if met['inference_10x_faster'] else 'NOT met'}, target >= 10x)")}
    alternate = systems.get("cvt_alternate", {})
    if "1000" in cvt and "1000" in alternate:
        gap = (alternate["1000"]["accuracy"] - cvt["1000"]["accuracy"]) * 100
        out["alternate_vs_joint_1000"] = {
            "joint_accuracy": cvt["1000"]["accuracy"], "alternate_accuracy": alternate["1000"]["accuracy"],
            "alternate_minus_joint_points": round(gap, 2), "not_worse": gap >= 0,
            "verdict": f"1,000 labels: alternate - joint = {gap:+.2f} points (issue 29: alternate becomes the "
                       f"default if not worse: {'yes' if gap >= 0 else 'no'})"}
    if "1000" in cvt and "1000" in bilstm:
        gap = (cvt["1000"]["accuracy"] - bilstm["1000"]["accuracy"]) * 100
        ok = gap >= STRONG_GAP * 100
        out["cvt_vs_label_only_bilstm_1000"] = {
            "cvt_accuracy": cvt["1000"]["accuracy"], "bilstm_accuracy": bilstm["1000"]["accuracy"],
            "cvt_minus_bilstm_points": round(gap, 2), "threshold_points": STRONG_GAP * 100, "met": ok,
            "verdict": f"1,000 labels: CVT - BiLSTM = {gap:+.2f} points ({'met' if ok else 'NOT met'}: "
                       f"'clearly ahead' taken as >= {STRONG_GAP * 100:g} point)"}
    return out


if __name__ == "__main__":
    main()
