"""`run`: the main job. Fine-tune the teacher, general distillation, task distillation, then
evaluate teacher and student side by side (accuracy, loyalty, size, PyTorch and ONNX Runtime
latency) and write a report. Sentence and tagging tasks alike (`run --task brown-pos`): the
stages ask the task's kind (data/kinds.py) for what differs.

A student may start from a pre-trained model instead (`student.init: all-MiniLM-L6-v2`), of any
family and vocabulary: as it is when the asked sizes are its own, else cut to them by ETD first
(`extract`). It is already a general model, so general distillation is skipped unless asked for
(`general_distillation: run`, which needs the teacher's vocabulary).

Layout of the output folder:
    teacher/           the fine-tuned teacher          (save_pretrained)
    extracted_student/ a pre-trained init model cut to the student's shape (ETD), when it is cut
    general_student/   the task-agnostic student       (save_pretrained, bare encoder), when run
    student/           the task student                (save_pretrained, sequence or token classifier)
    quantized/         with a budget whose pick ships quantized: the KDLSQ packed folder (+ onnx/model.onnx)
    budget.json        with a budget: the candidates measured before training and the pick
    report.md, report.json, bertcompress_config.yaml     the summary
    report/           report.html (+ report.md, plots): every metric, trade-off plots
Each stage folder is written atomically; with `resume=True` finished stages are reused and an
interrupted stage continues from its last checkpoint.

With a budget (`budget.targets`, `--budget 10ms`), the student's shape, start and format are picked
before anything trains, and the result is re-measured at the end (pipeline/budget/).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bertcompress.core.config import save_config, to_dict
from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_write_json, atomic_write_text, is_output, prepare_output_folder, writes_output
from bertcompress.core.log import log
from bertcompress.core.ranks import is_main_process
from bertcompress.data.config import CorpusConfig
from bertcompress.data.kinds import kind_of, load_examples
from bertcompress.data.tasks import get_task
from bertcompress.evaluation.budget import result_line, show_cost
from bertcompress.evaluation.evaluator import compare, evaluate, records_markdown
from bertcompress.evaluation.report import report as html_report
from bertcompress.methods.distill.config import DistillConfig
from bertcompress.methods.distill.loss_registry import task_weights
from bertcompress.methods.distill.objective import check_head_counts
from bertcompress.methods.distill.verb import distill
from bertcompress.methods.finetune.config import FinetuneConfig
from bertcompress.methods.finetune.verb import finetune
from bertcompress.methods.prune.config import ExtractConfig
from bertcompress.methods.prune.verb import extract
from bertcompress.methods.quantize.config import QuantizeTrainConfig
from bertcompress.methods.quantize.verb import quantize
from bertcompress.models.card import add_comparison
from bertcompress.models.family import family_of
from bertcompress.models.loading import model_config
from bertcompress.models.quantized.config import QuantConfig
from bertcompress.pipeline.budget import plan
from bertcompress.pipeline.budget.check import export_student_onnx, final_check
from bertcompress.pipeline.budget.grid import candidate_table
from bertcompress.pipeline.config import PipelineConfig

BUDGET_MISSED = 3  # the CLI's exit status when the built model misses a budget (0 with budget.soft)


@writes_output
def run(cfg: PipelineConfig, *, resume: bool = False) -> dict[str, Any]:
    out = Path(cfg.output)
    _check_inputs(cfg)  # what a later stage would refuse, before anything is written or trained
    decision = None
    if cfg.budget.targets:  # measure and pick the student before anything trains
        decision = plan.decide(cfg, out, resume)
        if cfg.budget.dry_run:
            return plan.dry_run_result(decision)
        cfg = plan.apply(cfg, decision)
        _check_student(cfg)
    general_corpus, corpus_text = _general_corpus(cfg, out)
    teacher_dir, general_dir, student_dir = out / "teacher", out / "general_student", out / "student"
    quantized_dir = out / "quantized"
    start, extraction = pretrained_start(cfg, out) if cfg.student.pretrained else (None, None)
    stages: list[tuple[str, Any, Any]] = [  # built (and so checked) before anything is written
        ("teacher", finetune, FinetuneConfig(model=cfg.teacher, data=cfg.data, train=cfg.finetune,
                                             output=str(teacher_dir), seed=cfg.seed))]
    if extraction is not None:
        stages.append(("extracted_student", lambda c, resume: extract(c), extraction))
    if cfg.runs_general:
        stages.append(("general_student", distill, DistillConfig(
            stage="general", teacher=cfg.teacher, student=cfg.student, student_path=start, losses=cfg.losses,
            train=cfg.general, corpus=general_corpus, output=str(general_dir), seed=cfg.seed)))
        start = str(general_dir)
    stages.append(("student", distill, DistillConfig(
        stage="task", teacher=str(teacher_dir), student=cfg.student, student_path=start, losses=cfg.losses,
        train=cfg.task_intermediate, prediction_train=cfg.task_prediction, data=cfg.data, augment=cfg.augment,
        teacher_cache=cfg.teacher_cache, output=str(student_dir), seed=cfg.seed)))
    if decision is not None and decision.bits:  # KDLSQ from the student's own full-precision copy
        stages.append(("quantized", quantize, QuantizeTrainConfig(
            student=str(student_dir), quant=QuantConfig.parse(decision.bits), losses=cfg.losses, train=cfg.quantize,
            data=cfg.data, onnx=True, output=str(quantized_dir), seed=cfg.seed)))
    prepare_output_folder(out, type(cfg).__name__)
    save_config(cfg, out)
    if decision is not None:
        atomic_write_json(out / plan.BUDGET_FILE, decision.to_dict())
    if corpus_text is not None:
        atomic_write_text(general_corpus.path, corpus_text)
    seconds: dict[str, float] = {}

    for name, fn, stage_cfg in stages:
        folder = Path(stage_cfg.output)
        if resume and is_output(folder):
            log.info(f"{name}: reusing {folder}")
            continue
        t0 = time.perf_counter()
        fn(stage_cfg, resume=resume)
        seconds[name] = round(time.perf_counter() - t0, 1)

    if not is_main_process():
        return {}  # under torchrun, rank 0 alone evaluates and writes the report
    t0 = time.perf_counter()
    kind = kind_of(get_task(cfg.data.task)).model_kind
    if decision is not None and decision.pick.format == "onnx":
        export_student_onnx(student_dir, kind)
    quantized = decision is not None and decision.bits is not None
    records = evaluate([str(teacher_dir), str(student_dir)] + ([str(quantized_dir)] if quantized else []), cfg.data,
                       latency=cfg.latency, onnx=cfg.latency, seq_len=128, loyalty_to=str(teacher_dir))
    teacher_rec, student_rec = records[:2]
    for record, name in zip(records, ("teacher", "student", "quantized")):
        record["model"] = name
    seconds["evaluate"] = round(time.perf_counter() - t0, 1)
    budget = None
    if decision is not None:
        t0 = time.perf_counter()
        final = final_check(decision, teacher_dir, student_dir, quantized_dir, kind)
        budget = {**decision.to_dict(), "final": {**final, "score": records[-1]["score"],
                                                  "retention": records[-1]["ratios"]["retention"]},
                  "met": final["met"], "soft": cfg.budget.soft}
        seconds["budget_decision"] = decision.seconds
        seconds["budget_check"] = round(time.perf_counter() - t0, 1)
    html_report(records, out / "report", budget=budget)
    if not teacher_rec["learned"]:
        log.warning(f"{_not_learned(teacher_rec)}")
    chosen_on = json.loads((teacher_dir / "bertcompress_result.json").read_text()).get("chosen_on")
    report = {"task": teacher_rec["task"], "split": teacher_rec["split"], "chosen_on": chosen_on,
              "teacher_learned": teacher_rec["learned"],
              "teacher": teacher_rec, "student": student_rec, "ratios": compare(teacher_rec, student_rec),
              "stage_seconds": seconds, "config": to_dict(cfg)}
    if quantized:
        report["quantized"] = records[2]
    if budget is not None:
        report["budget"] = budget
        if not budget["met"]:
            log.warning(f"budget missed by the final model: {_missed(budget)}" + ("" if cfg.budget.soft else
                        f" (the CLI exits with status {BUDGET_MISSED}; --budget-soft makes this a warning only)"))
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", report_markdown(report))
    add_comparison(out / "student", comparison_lines(report))
    return report


def comparison_lines(report: dict[str, Any]) -> list[str]:
    """The student's card's lines against its teacher, from the report."""
    r, teacher, student = report["ratios"], report["teacher"], report["student"]
    lines = [f"teacher `{report['config']['teacher']}`: {teacher['metric']} {teacher['score']:.4f}, this student "
             f"{student['score']:.4f} on {report['split']}"]
    if r["retention"] is not None:
        lines.append(f"retention (student score / teacher score): {r['retention']:.3f}")
    lines.append(_loyalty_line(student).removeprefix("- "))
    lines.append(f"{r['size_ratio']:.2f}x fewer parameters, {r['disk_ratio']:.2f}x smaller on disk")
    lines += [f"CPU latency, {k.removeprefix('latency_ratio_')} x 128 tokens: {v:.2f}x faster (same run, same machine)"
              for k, v in r.items() if k.startswith("latency_ratio_")]
    return lines


def pretrained_start(cfg: PipelineConfig, out: Path) -> tuple[str, ExtractConfig | None]:
    """Where a student started from a pre-trained model (`student.init`) begins: the model itself
    when the asked sizes are its own (a size left null is), else its ETD cut, made by an extract
    stage into out/extracted_student, scored on the corpus."""
    name, student = cfg.student.pretrained, cfg.student
    try:
        config = model_config(name)
    except UserError as e:
        raise UserError(f"student.init: {e}") from None
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"student.init: cannot read the config of model {name}: "
                        f"{str(e).strip().splitlines()[0]}") from None
    own = [getattr(config, f) for f in family_of(config).size_fields]
    asked = [student.num_layers, student.hidden_size, student.num_heads, student.ffn_size]
    if all(a is None or a == o for a, o in zip(asked, own)):
        return name, None
    layers, hidden, heads, ffn = (o if a is None else a for a, o in zip(asked, own))
    return str(out / "extracted_student"), ExtractConfig(
        teacher=name, output=str(out / "extracted_student"), num_layers=layers, hidden_size=hidden,
        num_heads=heads, ffn_size=ffn, strategy=student.extract, corpus=cfg.corpus, seed=cfg.seed)


def _check_inputs(cfg: PipelineConfig) -> None:
    """The teacher, the task's data, the corpus, the student's shape and layer mappings against the
    teacher (with a budget: once the student is picked), and the stages' training settings: every
    input a stage would otherwise refuse only after the stages before it had trained (and written)
    for hours."""

    from bertcompress.data.corpus import load_corpus

    if not cfg.budget.targets:
        _check_student(cfg)
    for name in ("general", "task_intermediate", "task_prediction", "quantize"):
        train = getattr(cfg, name)
        if train.search is not None:
            raise UserError(f"{name}.search (choosing lr and epochs) is only for fine-tuning: the finetune stage")
        if name == "quantize":
            continue
        runs = name == "general" or (name == "task_intermediate" and any(
            w > 0 for w in task_weights(cfg.losses.weights, layers=True).values()))
        if train.keep_best and runs:  # of the distillation phases, only task_prediction evaluates
            raise UserError(f"{name}.keep_best needs an evaluation, and this stage has none")
    for split in dict.fromkeys((cfg.data.train_split, cfg.data.eval_split)):
        load_examples(cfg.data, split, allow_tagging=True)
    if cfg.corpus.path is not None:
        load_corpus(cfg.corpus)


def _check_student(cfg: PipelineConfig) -> None:
    """The student's shape and layer mappings against the teacher, and one vocabulary where general
    distillation needs it."""
    from bertcompress.models.student import check_student

    try:
        teacher = model_config(cfg.teacher)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read the config of teacher {cfg.teacher}: {str(e).strip().splitlines()[0]}") from None
    check_student(teacher, cfg.student, {"losses.layer_mapping": cfg.losses.layer_mapping,
                                         "losses.attention_mapping": cfg.losses.attention_mapping})
    if cfg.student.pretrained is None and cfg.losses.weights.get("attention", 0) > 0:  # else its init model's heads
        heads_field = family_of(teacher).size_fields[2]
        check_head_counts(cfg.student.num_heads or getattr(teacher, heads_field), getattr(teacher, heads_field),
                          cfg.losses.head_rule)
    if cfg.student.pretrained is not None and cfg.runs_general:
        from bertcompress.models.loading import check_same_vocab, load_tokenizer

        check_same_vocab(load_tokenizer(cfg.teacher), load_tokenizer(cfg.student.pretrained), cfg.teacher,
                         cfg.student.pretrained)  # general distillation reads one tokenization


def _general_corpus(cfg: PipelineConfig, out: Path) -> tuple[CorpusConfig, str | None]:
    """The general stage's text: the configured corpus; for a tagging task given none, the words of
    the task's own train split (all of it: unlabelled use needs no labels budget), to be written to
    out/general_corpus.txt (the text is returned; the caller writes it), so the student learns the
    language of the task's domain rather than the embedded default's."""
    if cfg.corpus.path is not None or get_task(cfg.data.task).kind != "tagging":
        return cfg.corpus, None
    _, sentences = load_examples(replace(cfg.data, max_train_examples=None), "train", allow_tagging=True)
    lines = [" ".join(s.tokens) for s in sentences]
    path = out / "general_corpus.txt"
    log.info(f"general distillation reads the {len(lines):,} train sentences of {cfg.data.task} "
             f"({path}); pass --corpus for other text")
    # documents of 16 sentences: the corpus reader packs a document's lines into sequences
    text = "\n\n".join("\n".join(lines[i:i + 16]) for i in range(0, len(lines), 16)) + "\n"
    return replace(cfg.corpus, path=str(path)), text


def show_report(cfg: PipelineConfig, report: dict[str, Any]) -> int:
    """The CLI's summary; returns the exit status: BUDGET_MISSED when the model misses a budget
    (unless budget.soft), else 0."""
    if report.get("dry_run"):
        print("\n".join(budget_lines(report["budget"])))
        print("[bertcompress] dry run: nothing trained or written")
        return 0
    if report:  # empty on the non-zero ranks under torchrun
        print(report_markdown(report))
        print(f"[bertcompress] wrote {cfg.output}/report.md, report.json and the student in {cfg.output}/student")
    budget = report.get("budget")
    if budget is not None and not budget["met"] and not budget["soft"]:
        print(f"bertcompress: budget missed: {_missed(budget)} (--budget-soft: exit 0)", file=sys.stderr)
        return BUDGET_MISSED
    return 0


def _missed(budget: dict[str, Any]) -> str:
    return "; ".join(result_line(r) for r in budget["final"]["results"] if not r["met"])


def budget_lines(budget: dict[str, Any]) -> list[str]:
    """The budget's part of report.md (and of the dry run's output): the setting, the candidates,
    the pick and why, and, once built, each budget met or missed by the final model."""
    s = budget["setting"]
    lines = ["## Budget", "",
             f"Budgets {', '.join(budget['targets'])}, measured on {s['device']} with {s['threads']} threads, batch "
             f"{s['batch_size']} x {s['seq_len']} tokens; every latency the least of {s['rounds']} interleaved rounds "
             f"(median of {s['repeats']} calls each) beside the teacher ({s['teacher_runtime']}: "
             f"{budget['teacher_ms']:.1f} ms, untrained weights); {s['margin']:.0%} safety margin on latency. "
             f"Shapes from {budget['source']}. Decided in {budget['decision_seconds']:.0f} s.", "",
             candidate_table(budget["candidates"], budget["teacher_ms"]), "",
             f"Picked {budget['pick']['why']}.", ""]
    final = budget.get("final")
    if final is not None:
        lines += [f"The final model ({final['model']}, {final['format']}), re-measured beside the fine-tuned teacher "
                  f"({show_cost('latency', final['teacher_ms'])}): {show_cost('latency', final['latency_ms'])} "
                  f"(speed-up {final['speedup']:.2f}x), {show_cost('bytes', final['bytes'])} on disk, "
                  f"{show_cost('params', final['parameters'])}, score {final['score']:.4f}.", ""]
        lines += [f"- {result_line(r)}" for r in final["results"]]
        if not budget["met"]:
            lines += ["", "> **WARNING: the final model misses a budget" + (" (budget.soft: a warning only)**"
                                                                            if budget["soft"] else "**")]
    return lines


def report_markdown(report: dict[str, Any]) -> str:
    r, teacher = report["ratios"], report["teacher"]
    words = f", {teacher['words']} words" if "words" in teacher else ""  # a tagging task's scored words
    size = f"{teacher['examples']} {teacher.get('unit', 'examples')}{words}"
    lines = [f"# bertcompress report: {report['task']}, split {report['split']}, {size}", ""]
    if report.get("chosen_on"):
        lines += [f"Checkpoints were chosen on {report['chosen_on']}; every score below is on {report['split']}, "
                  "which chose nothing.", ""]
    if not report["teacher_learned"]:
        lines += [f"> **WARNING: {_not_learned(teacher)}**", ""]
    retention = (f"{r['retention']:.3f}" if r["retention"] is not None
                 else "not meaningful (the teacher did not learn the task)")
    lines += [records_markdown([teacher, report["student"]] + ([report["quantized"]] if "quantized" in report else [])),
              "",
              f"- trivial baseline ({teacher['trivial_predictor']}): {teacher['trivial_score']:.3f}",
              f"- retention (student score / teacher score): {retention}",
              _loyalty_line(report["student"]),
              f"- parameters: {r['size_ratio']:.2f}× fewer; bytes on disk: {r['disk_ratio']:.2f}× smaller"]
    for k, v in r.items():
        if k.startswith("latency_ratio_"):
            lines.append(f"- CPU latency, {k.removeprefix('latency_ratio_')} × 128 tokens: {v:.2f}× faster")
    if report["stage_seconds"]:
        lines.append("- stage wall time (s): " + ", ".join(f"{k} {v}" for k, v in report["stage_seconds"].items()))
    if report.get("budget"):
        lines += [""] + budget_lines(report["budget"])
    return "\n".join(lines) + "\n"


def _not_learned(teacher: dict[str, Any]) -> str:
    return (f"the teacher did not learn the task: {teacher['metric']} {teacher['score']:.3f} is not clearly above "
            f"the trivial baseline ({teacher['trivial_predictor']}: {teacher['trivial_score']:.3f}); the student's "
            "scores and retention say nothing. Train the teacher longer or at another learning rate "
            "(--set finetune.epochs=..., finetune.lr=...)")


def _loyalty_line(student: dict[str, Any]) -> str:
    if student.get("label_loyalty") is None:  # regression: correlation with the teacher's outputs
        return f"- correlation with the teacher's outputs: {student['output_correlation']:.3f}"
    return (f"- loyalty to the teacher: label {student['label_loyalty']:.3f}, "
            f"probability {student['probability_loyalty']:.3f}")
