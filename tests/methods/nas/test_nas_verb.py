
"""`nas` end to end on a tiny teacher: a family of NAS-BERT encoders, one per budget, that load
through transformers' Auto classes and score as the selection says."""

import json

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoModel

import bertcompress.models.nasbert.modeling  # noqa: F401 - registers the Auto classes
from bertcompress.cli import main
from bertcompress.core.config import from_dict, to_dict
from bertcompress.core.errors import UserError
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.evaluation.evaluator import evaluate
from bertcompress.methods.nas import verb as nas_verbs
from bertcompress.methods.nas.assemble import assemble
from bertcompress.methods.nas.config import LatencyConfig, NasConfig, SpacePruningConfig
from bertcompress.methods.nas.saved_search import SearchResult, search_settings
from bertcompress.methods.nas.space import block_candidates
from bertcompress.methods.nas.supernet import BlockwiseObjective, Supernet
from bertcompress.models.nasbert.arch import NasArch
from bertcompress.train.config import TrainConfig


@pytest.fixture
def corpus(tmp_path):
    words = ["good", "bad", "fine", "dull", "long", "short", "odd", "calm"]
    text = "\n\n".join(f"the {a} film was {b} and the {c} plot was {d}" for a in words for b in words
                       for c in words[:2] for d in words[2:4])
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path


def _config(teacher, corpus, out, **changes):
    settings = dict(teacher=str(teacher), corpus=CorpusConfig(path=str(corpus), max_seq_len=16, max_sequences=64),
                    num_blocks=2, hiddens=[16, 32], embedding_sizes=[16, 32], ops=["mha", "ffn", "conv3", "identity"],
                    train=TrainConfig(max_steps=6, batch_size=4, lr=1e-3, device="cpu"),
                    prune=SpacePruningConfig(warmup_steps=2, every=2, param_bins=2, latency_bins=2, keep_per_bin=2,
                                      heldout_batches=2),
                    latency=LatencyConfig(repeats=2, warmup=0, seq_len=16), budgets=["1.2x", "3x"], rerank_top=2,
                    rerank_sequences=8, output=str(out))
    return NasConfig(**{**settings, **changes})


def test_nas_writes_one_loadable_model_per_budget(tmp_path, tiny_bert_dir, corpus, sentiment_tsv, said):
    torch.set_num_threads(1)
    out = nas_verbs.nas(_config(tiny_bert_dir, corpus, tmp_path / "nas"))
    report = json.loads((out / "nas.json").read_text())
    # a latency table far off on the models it measured is a warning, and only then
    warned = any(r.levelname == "WARNING" and "nas: the latency table" in r.getMessage() for r in said.records)
    assert warned == (report["latency_mape"] > nas_verbs.LATENCY_WARN_MAPE)
    assert [b["name"] for b in report["budgets"]] == ["1.2x", "3x"]
    space = report["space"]
    assert (space["num_blocks"], space["slots"], space["candidates_per_block"]) == (2, 4, 2 * (81 + 27 + 9 + 3 + 1))
    # pruning ran at steps 2 and 4 (finish_at 0.8 of 6 steps) and finished: 2 per bin of 2 x 2 bins at most,
    # besides the never-pruned cheapest candidates (the fastest with each of 4 ops, the fastest, the smallest)
    alive = [[h[f"eval_alive_block{b}"] for h in report["pruning_history"]] for b in (1, 2)]
    assert all(len(a) == 3 and a[0] > a[1] == a[2] and 2 * 4 <= a[1] <= 2 * 4 + 6 for a in alive)
    assert report["pruning_points"] == [2, 4] and report["pruning_finished"]
    assert report["alive_after_pruning"] == [a[-1] for a in alive]
    assert report["latency_checked_models"] >= 1 and report["latency_mape"] >= 0 and report["latency_mape_raw"] >= 0
    calibration = report["latency_calibration"]  # fitted on whole models spanning the space's range
    assert len(calibration["models"]) == 8 and calibration["scale"] > 0
    raw = [m["predicted_raw_ms"] for m in calibration["models"]]
    assert raw == sorted(raw) and raw[0] < raw[-1]
    for c in report["candidates"]:
        assert c["predicted_latency_ms"] == pytest.approx(calibration["scale"] * c["predicted_raw_ms"]
                                                          + calibration["offset_ms"])
    assert report["budgets"][0]["arch"] is not None  # 1.2x the teacher's speed fits in this space
    for budget in report["budgets"]:
        if budget["arch"] is None:  # nothing in the space is that fast: said, not faked
            assert budget["fits"] is False
            continue
        arch = NasArch.parse(budget["arch"])
        limit = report["teacher_latency_ms"] / float(budget["name"][:-1])
        assert budget["predicted_latency_ms"] <= limit + 1e-9  # the budget holds for the predicted latency
        assert budget["fits_measured"] == (budget["latency_ms"] <= limit)  # and is checked on the measured one
        folder = out / "models" / budget["name"].replace(".", "_")
        model = AutoModel.from_pretrained(folder).eval()
        assert model.config.nas_arch.to_string() == arch.to_string()
        assert sum(p.numel() for p in model.parameters()) == budget["params"]
        assert (folder / "tokenizer_config.json").is_file() and (folder / "bertcompress_config.yaml").is_file()
        card = ModelCard.load(folder / "README.md")
        assert card.data.to_dict()["library_name"] == "bertcompress" and arch.to_string() in card.text
    assert (out / "report" / "family.png").is_file() and not (tmp_path / ".nas.checkpoints").exists()
    # a NAS model goes on like any student: fine-tuned on a task, then evaluated (ONNX included)
    first = out / "models" / "1_2x"
    assert main(["finetune", "--model", str(first), "--task", "sst2", "--data", str(sentiment_tsv),
                 "--set", "train.max_steps=2", "--set", "train.batch_size=4", "-o", str(tmp_path / "ft")]) == 0
    (record,) = evaluate([str(tmp_path / "ft")], DataConfig(task="sst2", path=str(sentiment_tsv)), latency=False)
    assert record["examples"] == 10 and record["onnx"]["prediction_agreement"] == 1.0


def test_nas_resume_reuses_the_latency_table(tmp_path, tiny_bert_dir, corpus, monkeypatch):
    calls = []
    real = nas_verbs.measure_table
    monkeypatch.setattr(nas_verbs, "measure_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    # 1M parameters: a budget that always fits (whether 2x does depends on the measured latencies), so the run
    # writes a family; one where no budget fits is an error that writes nothing
    cfg = _config(tiny_bert_dir, corpus, tmp_path / "nas", budgets=["2x", "1M"])

    def killed(*a, **k):
        raise RuntimeError("killed")
    monkeypatch.setattr(nas_verbs, "select", killed)  # the process dies after the supernet finished
    with pytest.raises(RuntimeError, match="killed"):
        nas_verbs.nas(cfg)
    monkeypatch.undo()
    monkeypatch.setattr(nas_verbs, "measure_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    trained = []
    real_loop = nas_verbs.train_loop
    monkeypatch.setattr(nas_verbs, "train_loop", lambda *a, **k: trained.append(real_loop(*a, **k)) or trained[-1])
    nas_verbs.nas(cfg, resume=True)
    assert calls == [1]  # measured once, reused by the resumed run
    assert trained[0].steps == 0  # the finished supernet is reused: no step is trained again
    assert json.loads((tmp_path / "nas" / "nas.json").read_text())["budgets"][0]["name"] == "2x"


def test_a_kept_supernet_serves_new_budgets_without_training(tmp_path, tiny_bert_dir, corpus, monkeypatch):
    # parameter budgets: on models this tiny a speed-up budget can be out of reach by timing noise alone
    out = tmp_path / "nas"
    cfg = _config(tiny_bert_dir, corpus, out, budgets=["1M"])
    nas_verbs.nas(cfg)
    first = json.loads((out / "nas.json").read_text())
    weights = (out / "models" / "1M" / "model.safetensors").read_bytes()
    assert first["supernet_kept"] == "supernet/" and (out / "supernet" / "model.safetensors").is_file()

    def no_training(*a, **k):
        raise AssertionError("the kept supernet must not be trained again")
    monkeypatch.setattr(nas_verbs, "train_loop", no_training)
    monkeypatch.setattr(nas_verbs, "measure_table", no_training)
    nas_verbs.nas(_config(tiny_bert_dir, corpus, out, budgets=["1M", "500K"]), resume=True)
    again = json.loads((out / "nas.json").read_text())
    assert [b["name"] for b in again["budgets"]] == ["1M", "500K"]
    assert again["budgets"][0] == first["budgets"][0]  # the same pick, its model kept as it was
    assert (out / "models" / "1M" / "model.safetensors").read_bytes() == weights
    assert again["supernet_seconds"] == first["supernet_seconds"] and (out / "supernet" / "search.json").is_file()
    for key in ("pruning_history", "latency_table", "embedding_losses"):
        assert again[key] == first[key]
    # the kept weights are the trained supernet's: assembled again, the pick equals the saved model
    teacher = AutoModel.from_pretrained(tiny_bert_dir).eval()
    space = again["space"]
    supernet = Supernet.from_teacher(teacher, num_blocks=space["num_blocks"], slots=space["slots"],
                                     hidden_sizes=space["hiddens"], embedding_sizes=space["embedding_sizes"],
                                     ops=space["ops"])
    candidates = block_candidates(space["hiddens"], space["slots"], space["ops"], space["head_size"])
    objective = BlockwiseObjective(supernet, teacher, [candidates] * space["num_blocks"])
    kept = SearchResult.load(out / "supernet", search_settings(cfg), objective)
    assert kept.reused and [len(objective.alive(b)) for b in range(2)] == first["alive_after_pruning"]
    ids = torch.tensor([[2, 7, 8, 9, 3]])
    with torch.no_grad():
        saved = AutoModel.from_pretrained(out / "models" / "1M").eval()(input_ids=ids).last_hidden_state
        assert torch.equal(assemble(supernet, first["budgets"][0]["arch"]).eval()(input_ids=ids).last_hidden_state,
                           saved)
    # a kept search made with other settings is not silently replaced
    other = _config(tiny_bert_dir, corpus, out, train=TrainConfig(max_steps=4, batch_size=4, lr=1e-3, device="cpu"))
    with pytest.raises(UserError, match=r"made with other train;") as raised:
        nas_verbs.nas(other, resume=True)
    assert "\n" not in str(raised.value) and (out / "supernet").is_dir()


def test_nas_config_round_trips_and_refuses_bad_budgets(capsys, tmp_path):
    cfg = NasConfig(budgets=["2x", "12ms", "5M"])
    assert from_dict(NasConfig, to_dict(cfg)) == cfg
    with pytest.raises(UserError, match="bad NAS budget"):
        NasConfig(budgets=["fast"])
    assert main(["nas", "--set", "budgets=[fast]", "-o", str(tmp_path / "n")]) == 2
    assert "bad NAS budget" in capsys.readouterr().err
