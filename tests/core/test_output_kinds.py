"""An output is only replaced by an output of its own kind (or with --overwrite); --resume with
nothing to resume says so; every command checks its inputs before it writes anything, and a run
that produces nothing leaves the earlier output as it was; outputs get the modes the umask gives."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest

from bertcompress.cli import main
from bertcompress.core.config import load_config, read_saved_config, save_config
from bertcompress.core.errors import UserError
from bertcompress.core.io import (
    CONFIG_FILENAME,
    atomic_write_text,
    check_resumable,
    output_kind,
    prepare_output_folder,
    strict_resume,
    writes_output,
)
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.methods.distill.config import LossConfig
from bertcompress.methods.finetune.config import FinetuneConfig
from bertcompress.models.config import StudentConfig
from bertcompress.train.config import TrainConfig


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("bertcompress: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _finetune_args(tiny_bert_dir, sentiment_tsv, output, *extra):
    return ["finetune", "--model", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
            "--set", "train.max_steps=2", "--set", "train.batch_size=4", "-o", str(output), *extra]


@pytest.fixture
def teacher_output(tmp_path, tiny_bert_dir, sentiment_tsv, capsys):
    """A finished `finetune` output: a fine-tuned teacher folder."""
    out = tmp_path / "teacher"
    assert main(_finetune_args(tiny_bert_dir, sentiment_tsv, out)) == 0
    capsys.readouterr()
    return out


# ---------------------------------------------------------------- 7: kinds

def test_the_saved_config_records_its_kind_and_loads_back(tmp_path):
    cfg = FinetuneConfig(model="m", output=str(tmp_path))
    save_config(cfg, tmp_path)
    assert (tmp_path / CONFIG_FILENAME).read_text().startswith("kind: FinetuneConfig\n")
    assert output_kind(tmp_path) == "FinetuneConfig"
    assert read_saved_config(FinetuneConfig, tmp_path) == cfg
    assert load_config(FinetuneConfig, tmp_path / CONFIG_FILENAME) == cfg
    from bertcompress.methods.distill.config import DistillConfig

    with pytest.raises(UserError, match="holds a FinetuneConfig, not a DistillConfig"):
        read_saved_config(DistillConfig, tmp_path)


def test_another_commands_output_is_refused_unless_overwrite(capsys, tmp_path, tiny_bert_dir, sentiment_tsv,
                                                            teacher_output):
    before = _snapshot(teacher_output)
    distill = ["distill", "--stage", "task", "--teacher", str(teacher_output), "--task", "sst2", "--data",
               str(sentiment_tsv), "-o", str(teacher_output)]
    assert main(distill) == 2
    line = _one_error_line(capsys)
    assert "holds a finetune output (FinetuneConfig)" in line and "a distill output (DistillConfig)" in line
    assert "--overwrite" in line
    assert _snapshot(teacher_output) == before
    # extract too (a verb that cannot resume), and from Python: the keyword
    assert main(["extract", "--teacher", str(tiny_bert_dir), "--num-layers", "2", "-o", str(teacher_output)]) == 2
    assert "holds a finetune output" in _one_error_line(capsys)
    from bertcompress.methods.prune.config import ExtractConfig
    from bertcompress.methods.prune.verb import extract

    cfg = ExtractConfig(teacher=str(tiny_bert_dir), num_layers=2, strategy="rand", output=str(teacher_output))
    with pytest.raises(UserError, match="holds a finetune output"):
        extract(cfg)
    assert _snapshot(teacher_output) == before
    # the same kind replaces it as before; --overwrite replaces another kind
    assert main(["extract", "--teacher", str(tiny_bert_dir), "--num-layers", "2", "--strategy", "rand",
                 "-o", str(teacher_output), "--overwrite"]) == 0
    assert output_kind(teacher_output) == "ExtractConfig"
    extract(cfg)
    assert output_kind(teacher_output) == "ExtractConfig"


@pytest.mark.parametrize("command", [["cvt"], ["nas"], ["search-mapping"], ["distill", "--stage", "general"]])
def test_resume_on_another_commands_output_is_refused(command, capsys, teacher_output):
    before = _snapshot(teacher_output)
    assert main([*command, "-o", str(teacher_output), "--resume"]) == 2
    line = _one_error_line(capsys)
    assert "holds a finetune output (FinetuneConfig)" in line and "--overwrite" in line, line
    assert _snapshot(teacher_output) == before


def test_an_output_recording_no_kind_needs_overwrite(capsys, tmp_path, tiny_bert_dir, sentiment_tsv):
    old = tmp_path / "old"
    old.mkdir()
    (old / CONFIG_FILENAME).write_text("model: m\n")  # hand-made: no kind
    (old / "weights.bin").write_bytes(b"w")
    assert main(_finetune_args(tiny_bert_dir, sentiment_tsv, old)) == 2
    assert "records no kind" in _one_error_line(capsys)
    assert (old / "weights.bin").is_file()
    assert main(_finetune_args(tiny_bert_dir, sentiment_tsv, old, "--overwrite")) == 0
    assert output_kind(old) == "FinetuneConfig" and not (old / "weights.bin").exists()


@pytest.mark.parametrize("command", [["run"], ["cvt"], ["nas"], ["search-mapping"], ["finetune"], ["theseus"],
                                     ["quantize"], ["distill", "--stage", "general"]])
def test_resume_with_nothing_to_resume_says_so(command, capsys, tmp_path):
    out = tmp_path / "fresh"
    assert main([*command, "-o", str(out), "--resume"]) == 2
    line = _one_error_line(capsys)
    assert f"--resume: nothing to resume in {out}" in line and "run without --resume" in line
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_resume_finds_a_checkpoint_or_an_output_of_its_kind(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(UserError, match="nothing to resume"):
        check_resumable(out, "FinetuneConfig")
    (tmp_path / ".o.checkpoints" / "finetune").mkdir(parents=True)
    with pytest.raises(UserError, match="nothing to resume"):  # an empty folder is no checkpoint
        check_resumable(out, "FinetuneConfig")
    (tmp_path / ".o.checkpoints" / "finetune" / "checkpoint.pt").write_bytes(b"state")
    check_resumable(out, "FinetuneConfig")
    other = tmp_path / "p"
    save_config(FinetuneConfig(output=str(other)), other)
    check_resumable(other, "FinetuneConfig")
    with pytest.raises(UserError, match=r"no earlier distill output \(DistillConfig\); it holds a finetune"):
        check_resumable(other, "DistillConfig")


# Two toy verbs, like `run` and its stages: the outer one writes in place and calls the inner one.
@dataclasses.dataclass
class StageConfig:
    output: str = ""


@dataclasses.dataclass
class JobConfig:
    output: str = ""
    fail: bool = False


@writes_output
def _stage(cfg: StageConfig, *, resume: bool = False) -> Path:
    from bertcompress.core.io import atomic_dir

    with atomic_dir(cfg.output) as tmp:
        save_config(cfg, tmp)
    return Path(cfg.output)


@writes_output
def _job(cfg: JobConfig, *, resume: bool = False) -> Path:
    if cfg.fail:
        raise UserError("bad input")  # found before anything is written
    out = prepare_output_folder(cfg.output, type(cfg).__name__)
    save_config(cfg, out)
    stage = out / "stage"
    if not (resume and (stage / CONFIG_FILENAME).is_file()):
        _stage(StageConfig(output=str(stage)), resume=resume)
    return out


def test_strict_resume_binds_the_called_verb_only_and_overwrite_clears_an_in_place_output(tmp_path):
    out = tmp_path / "job"
    with strict_resume(), pytest.raises(UserError, match="nothing to resume"):
        _job(JobConfig(output=str(out)), resume=True)
    _job(JobConfig(output=str(out)), resume=True)  # from Python: what there is, else afresh
    (out / "stage" / CONFIG_FILENAME).unlink()
    (out / "stage").rmdir()
    with strict_resume():  # the job has its output; its unfinished stage starts afresh, not an error
        _job(JobConfig(output=str(out)), resume=True)
    assert output_kind(out / "stage") == "StageConfig"
    # an output of another kind is only replaced with overwrite, and never mixed with the new one
    with pytest.raises(UserError, match="holds a StageConfig output, and a JobConfig output would replace it"):
        _job(JobConfig(output=str(out / "stage")))
    with pytest.raises(UserError, match="bad input"):
        _job(JobConfig(output=str(out / "stage"), fail=True), overwrite=True)
    assert output_kind(out / "stage") == "StageConfig"  # a bad input leaves it as it was
    (out / "stage" / "extra.txt").write_text("the stage's own file")
    _job(JobConfig(output=str(out / "stage")), overwrite=True)
    assert output_kind(out / "stage") == "JobConfig" and not (out / "stage" / "extra.txt").exists()


# ---------------------------------------------------------------- 8: validate before writing

@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(f"the {w} movie was {v} and i loved it" for w in ("good", "bad", "fine")
                                for v in ("great", "awful", "fun")), encoding="utf-8")
    return path


def _search(tiny_bert_dir, sentiment_tsv, text, out, **extra):
    from bertcompress.methods.mapping_search.config import GeneticConfig, MappingSearchConfig

    steps = TrainConfig(max_steps=1, batch_size=8)
    settings = dict(
        teacher=str(tiny_bert_dir), student=StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=32),
        corpus=CorpusConfig(path=str(text), max_seq_len=16), proxy_sequences=16, proxy_general=steps,
        tasks=[DataConfig(task="sst2", path=str(sentiment_tsv), max_seq_len=16)], proxy_finetune=steps,
        search=GeneticConfig(population=2, generations=1, elite=1, seed=0), output=str(out))
    return MappingSearchConfig(**{**settings, **extra})


def test_search_mapping_checks_every_input_before_it_touches_the_output(tmp_path, tiny_bert_dir, sentiment_tsv,
                                                                         corpus):
    from bertcompress.methods.mapping_search.verb import search_mapping

    out = tmp_path / "search"
    earlier = _search(tiny_bert_dir, sentiment_tsv, corpus, out, proxy_sequences=8)
    save_config(earlier, out)  # an earlier search's output, killed before its first score
    before = _snapshot(out)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    bad = {
        "holds no text": {"corpus": CorpusConfig(path=str(empty), max_seq_len=16)},
        "not found": {"corpus": CorpusConfig(path=str(tmp_path / "nope.txt"), max_seq_len=16)},
        r"losses.attention_mapping: bad layer mapping \[1, 9\]": {"losses": LossConfig(attention_mapping=[1, 9])},
        "nope": {"tasks": [DataConfig(task="sst2", path=str(tmp_path / "nope"))]},
        "no sequences after the proxy's first 16": {"proxy_metric": "heldout_loss", "tasks": [],
                                                    "student": StudentConfig(num_layers=2, hidden_size=32,
                                                                             num_heads=4, ffn_size=32)},
        "keep_best needs an evaluation": {"proxy_general": TrainConfig(max_steps=1, keep_best=True)},
    }
    for match, change in bad.items():
        with pytest.raises(UserError, match=match):
            search_mapping(_search(tiny_bert_dir, sentiment_tsv, corpus, out, **change))
        assert _snapshot(out) == before, match  # the earlier config is not rewritten, nothing is added
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["SST-2", "corpus.txt", "empty.txt", "search"])


def test_run_checks_its_inputs_before_it_writes(capsys, tmp_path, tiny_bert_dir, sentiment_tsv):
    out = tmp_path / "run"
    base = ["run", "--teacher", str(tiny_bert_dir), "--task", "sst2", "-o", str(out)]
    cases = {
        "not found": ["--data", str(tmp_path / "nope")],
        "out of range 1..4": ["--data", str(sentiment_tsv), "--set", "losses.layer_mapping=[1, 9, 2]"],
        "corpus file or folder not found": ["--data", str(sentiment_tsv), "--corpus", str(tmp_path / "none.txt")],
        "general.keep_best needs an evaluation": ["--data", str(sentiment_tsv), "--set", "general.keep_best=true"],
    }
    for match, extra in cases.items():
        assert main(base + extra) == 2
        assert match in _one_error_line(capsys)
        assert not out.exists(), match


def test_evaluate_checks_where_it_writes_before_it_scores(tmp_path, tiny_bert_dir, sentiment_tsv):
    from bertcompress.evaluation.config import EvaluateConfig
    from bertcompress.evaluation.verb import evaluate_models

    records, blocker = tmp_path / "records.json", tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = DataConfig(task="sst2", path=str(sentiment_tsv))
    for change, match in (({"report": str(blocker)}, "report .* exists and is not a folder"),
                          ({"json": str(tmp_path)}, "is a folder"),
                          ({"models": [str(tiny_bert_dir), str(tmp_path / "gone")]}, "gone")):
        cfg = EvaluateConfig(**{"models": [str(tiny_bert_dir)], "data": data, "latency": False, "onnx": False,
                                "json": str(records), **change})
        with pytest.raises(UserError, match=match):
            evaluate_models(cfg)
        assert not records.exists()  # not written before the error (nor anything scored)


def test_nas_with_no_budget_met_fails_and_keeps_the_earlier_output(tmp_path, tiny_bert_dir):
    from bertcompress.methods.nas import verb as nas_verbs
    from bertcompress.methods.nas.config import LatencyConfig, NasConfig, SpacePruningConfig

    words = ["good", "bad", "fine", "dull", "long", "short"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"the {a} film was {b} and the plot was {c}" for a in words for b in words
                                   for c in words[:2]), encoding="utf-8")
    out = tmp_path / "nas"
    cfg = NasConfig(teacher=str(tiny_bert_dir), corpus=CorpusConfig(path=str(corpus), max_seq_len=16, max_sequences=32),
                    num_blocks=2, hiddens=[16, 32], embedding_sizes=[16, 32], ops=["ffn", "identity"],
                    train=TrainConfig(max_steps=2, batch_size=4, lr=1e-3, device="cpu"),
                    prune=SpacePruningConfig(warmup_steps=1, every=1, param_bins=1, latency_bins=1, keep_per_bin=2,
                                      heldout_batches=1),
                    latency=LatencyConfig(repeats=1, warmup=0, seq_len=8, calibration_models=0),
                    budgets=["10000x"], rerank_top=1, min_attention=0, output=str(out))
    save_config(dataclasses.replace(cfg, budgets=["2x"]), out)  # the earlier output of a nas run
    (out / "nas.json").write_text('{"budgets": []}')
    before = _snapshot(out)
    with pytest.raises(UserError, match=r"no architecture of the search space fits any budget \(10000x\)") as e:
        nas_verbs.nas(cfg)
    assert "\n" not in str(e.value) and "--resume" in str(e.value)
    assert _snapshot(out) == before
    assert (tmp_path / ".nas.checkpoints").is_dir()  # the trained supernet is kept for --resume


# ---------------------------------------------------------------- 9: file modes

@contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _modes(folder: Path) -> tuple[set[int], set[int]]:
    files = {stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}
    folders = {stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")] if p.is_dir()}
    return files, folders


@pytest.mark.parametrize("mask,file_mode,folder_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_outputs_get_the_modes_the_umask_gives(mask, file_mode, folder_mode, tmp_path, tiny_bert_dir,
                                              sentiment_tsv, capsys):
    with _umask(mask):
        path = atomic_write_text(tmp_path / "notes" / "a.txt", "x")
        assert stat.S_IMODE(path.stat().st_mode) == file_mode
        out = tmp_path / "teacher"
        assert main(_finetune_args(tiny_bert_dir, sentiment_tsv, out)) == 0
        assert (out / CONFIG_FILENAME).is_file() and (out / "model.safetensors").is_file()
        assert _modes(out) == ({file_mode}, {folder_mode})
        result = json.loads((out / "bertcompress_result.json").read_text())
        assert result["task"] == "sst2"
