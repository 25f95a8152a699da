"""BERT-of-Theseus: replacement draws, curriculum, equivalences, freezing, resume, end to end."""

import copy
import json
import math

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from bertcompress.cli import main
from bertcompress.core.config import from_dict, load_config, read_saved_config, save_config, to_dict
from bertcompress.core.errors import UserError
from bertcompress.methods.theseus.config import TheseusConfig
from bertcompress.methods.theseus.verb import (
    TheseusObjective,
    build_successor,
    replace_mask,
    replace_rate,
    successor_init_layers,
    task_loss,
    theseus,
)
from bertcompress.models.inputs import model_inputs
from bertcompress.train.config import TrainConfig
from bertcompress.train.loop import train_loop
from conftest import tiny_config

FAMILIES = ["bert", "roberta", "xlm-roberta", "electra", "distilbert", "mpnet", "deberta-v2"]
DROPOUTS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout",
            "seq_classif_dropout")


def teacher_model(model_type="bert", layers=4, dropout=False):
    """A tiny random classifier; without dropout, train-mode forwards are deterministic."""
    torch.manual_seed(0)
    config = tiny_config(model_type, 100, layers=layers)
    if not dropout:
        for name in DROPOUTS:
            if hasattr(config, name):
                setattr(config, name, 0.0)
    return AutoModelForSequenceClassification.from_config(config).float()


def batch(n=4, width=7):
    g = torch.Generator().manual_seed(3)
    b = {"input_ids": torch.randint(5, 100, (n, width), generator=g),
         "attention_mask": torch.ones(n, width, dtype=torch.long), "labels": torch.arange(n) % 2}
    b["attention_mask"][0, width - 2:] = 0  # some padding
    return b


def features(n=16):
    g = torch.Generator().manual_seed(5)
    return [{"input_ids": torch.randint(5, 100, (int(torch.randint(4, 9, (1,), generator=g)),),
                                        generator=g).tolist(), "labels": i % 2} for i in range(n)]


def collate(items):
    width = max(len(f["input_ids"]) for f in items)
    ids = torch.zeros(len(items), width, dtype=torch.long)
    mask = torch.zeros(len(items), width, dtype=torch.long)
    for i, f in enumerate(items):
        ids[i, :len(f["input_ids"])] = torch.tensor(f["input_ids"])
        mask[i, :len(f["input_ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([f["labels"] for f in items])}


# ------------------------------------------------------------------ draws and curriculum

def test_replacement_happens_with_the_configured_probability():
    p, draws, groups = 0.3, 2000, 3
    masks = torch.tensor([replace_mask(42, d, groups, p) for d in range(draws)], dtype=torch.float)
    tol = 4 * math.sqrt(p * (1 - p) / draws)  # 4 binomial standard deviations
    for g in range(groups):  # each group on its own
        assert abs(masks[:, g].mean().item() - p) < tol
    assert masks[:, 0].tolist() != masks[:, 1].tolist()  # groups draw independently
    assert masks.tolist() == [replace_mask(42, d, groups, p) for d in range(draws)]  # reproducible
    assert masks.tolist() != [replace_mask(43, d, groups, p) for d in range(draws)]  # seed matters


def test_objective_runs_the_layers_its_draws_pick():
    successor, predecessor = build_successor(teacher_model(), 2)
    obj = TheseusObjective(successor, predecessor, lambda t: 0.3, seed=7).train()
    calls = {"scc": [0, 0], "prd": [0] * 4}
    for kind, layers in (("scc", successor.bert.encoder.layer), ("prd", predecessor)):
        for i, layer in enumerate(layers):
            layer.register_forward_hook(lambda *_, kind=kind, i=i: calls[kind].__setitem__(i, calls[kind][i] + 1))
    with torch.no_grad():
        for _ in range(24):
            obj(batch())
    expected = torch.tensor([replace_mask(7, d, 2, 0.3) for d in range(24)], dtype=torch.long)
    assert calls["scc"] == expected.sum(0).tolist() and 0 < sum(calls["scc"]) < 48
    assert calls["prd"] == [24 - calls["scc"][0]] * 2 + [24 - calls["scc"][1]] * 2
    assert obj.draws == 24 and obj.state_dict()["_extra_state"] == {"draws": 24}


def test_curriculum_follows_the_formula():
    linear = TheseusConfig(curriculum="linear", curriculum_k=0.01, curriculum_b=0.3)
    assert [replace_rate(linear, t) for t in (0, 10, 50, 70, 500)] == pytest.approx([0.3, 0.4, 0.8, 1.0, 1.0])
    constant = TheseusConfig(curriculum="constant", replace_prob=0.7)
    assert {replace_rate(constant, t) for t in (0, 10, 10_000)} == {0.7}
    defaults = TheseusConfig()  # the reference code's k and b
    assert (defaults.curriculum_k, defaults.curriculum_b) == (0.0006, 0.3)

    # inside the module t counts optimizer steps: two accumulated micro-batches share one t
    successor, predecessor = build_successor(teacher_model(), 2)
    seen = []
    obj = TheseusObjective(successor, predecessor, lambda t: seen.append(t) or 0.5, seed=0, grad_accum=2).train()
    with torch.no_grad():
        logs = [obj(batch())[1] for _ in range(5)]
    assert seen == [0, 0, 1, 1, 2] and logs[0]["replace_rate"] == 0.5


# ------------------------------------------------------------------ equivalences and freezing

@pytest.mark.parametrize("family", FAMILIES)
def test_p1_is_the_successor_and_p0_the_predecessor(family, tmp_path):
    teacher = teacher_model(family)
    reference = copy.deepcopy(teacher).train()
    successor, predecessor = build_successor(teacher, 2, "group_last")
    b = batch()
    with torch.no_grad():
        always = TheseusObjective(successor, predecessor, lambda t: 1.0, seed=0).train()
        alone = successor(**model_inputs(b, successor)).logits
        assert torch.equal(always(b)[0], task_loss(alone, b["labels"], False))
        never = TheseusObjective(successor, predecessor, lambda t: 0.0, seed=0).train()
        full = reference(**model_inputs(b, reference)).logits
        assert torch.equal(never(b)[0], task_loss(full, b["labels"], False))
        torch.testing.assert_close(never.logits(b, [False, False]), full, rtol=0, atol=0)
    assert not torch.equal(alone, full)  # the two really differ, so the checks above mean something

    # the successor is a plain model of the family: it saves and reloads as one
    successor.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(teacher) and reloaded.config.num_hidden_layers == 2
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**model_inputs(b, reloaded)).logits,
                                   successor.eval()(**model_inputs(b, successor)).logits, rtol=0, atol=0)


def test_successor_starts_from_the_chosen_teacher_layers():
    assert successor_init_layers(12, 6, "first") == [0, 1, 2, 3, 4, 5]
    assert successor_init_layers(12, 4, "group_first") == [0, 3, 6, 9]
    assert successor_init_layers(12, 4, "group_last") == [2, 5, 8, 11]
    teacher = teacher_model()
    successor, predecessor = build_successor(teacher, 2, "group_last")
    for s_layer, t_index in zip(successor.bert.encoder.layer, [1, 3]):
        for a, b in zip(s_layer.state_dict().values(), predecessor[t_index].state_dict().values()):
            assert torch.equal(a, b)
    assert successor.bert.encoder.layer[0] is not predecessor[1]  # a copy, trained on its own
    with pytest.raises(UserError, match="must divide"):
        build_successor(teacher, 3)


def _replacing_run(tmp_path, objective_cls=TheseusObjective, sub="a", resume=False, rate=0.5):
    successor, predecessor = build_successor(teacher_model(dropout=True), 2)
    for p in list(successor.parameters()) + list(predecessor.parameters()):
        p.requires_grad_(False)
    for p in successor.bert.encoder.layer.parameters():
        p.requires_grad_(True)
    obj = objective_cls(successor, predecessor, lambda t: rate, seed=1)
    cfg = TrainConfig(max_steps=6, batch_size=4, lr=1e-2, save_every=2, warmup_ratio=0.0)
    train_loop(obj, features(), collate, cfg, work_dir=tmp_path / sub, resume=resume)
    return obj


def test_replacing_trains_only_the_successor_layers(tmp_path):
    successor, predecessor = build_successor(teacher_model(dropout=True), 2)
    before_successor = copy.deepcopy(successor.state_dict())
    before_predecessor = copy.deepcopy(predecessor.state_dict())
    obj = _replacing_run(tmp_path)
    for k, v in obj.predecessor.state_dict().items():  # .cpu(): the loop may have moved them to a GPU
        assert torch.equal(v.cpu(), before_predecessor[k]), k
    changed = {k for k, v in obj.successor.state_dict().items() if not torch.equal(v.cpu(), before_successor[k])}
    assert changed and all(k.startswith("bert.encoder.layer.") for k in changed)  # embeddings, head frozen
    assert obj.draws == 6

    # a pass where every group keeps its teacher layers trains nothing (no gradient, AdamW skips
    # the successor, weight decay included), and backward still runs
    never = _replacing_run(tmp_path, sub="never", rate=0.0)
    for k, v in never.successor.state_dict().items():
        assert torch.equal(v, before_successor[k]), k
    assert never.anchor.item() == 0.0


def test_resumed_replacing_continues_the_same_draws(tmp_path):
    class Crashing(TheseusObjective):
        def forward(self, b):
            if self.draws == 5:
                raise KeyboardInterrupt  # killed during step 6; the last checkpoint is step 4
            return super().forward(b)

    full = _replacing_run(tmp_path, sub="full")
    with pytest.raises(KeyboardInterrupt):
        _replacing_run(tmp_path, Crashing, sub="b")
    resumed = _replacing_run(tmp_path, sub="b", resume=True)
    assert resumed.draws == 6
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert a == b if k == "_extra_state" else torch.equal(a, b), k


# ------------------------------------------------------------------ end to end and config

def _cli(argv):
    return main(argv)


def test_end_to_end_successor_loads_with_plain_transformers(tmp_path, tiny_bert_dir, sentiment_tsv,
                                                            monkeypatch):
    import bertcompress.models.saving as mod

    saved, original = {}, mod.save_model_folder

    def capture(output, model, *args):  # keep the in-memory successor to compare with the saved one
        saved["model"] = copy.deepcopy(model)
        return original(output, model, *args)

    monkeypatch.setattr(mod, "save_model_folder", capture)
    out = tmp_path / "theseus"
    steps = ["--set", "replacing.max_steps=3", "--set", "finetune.max_steps=2", "--set", "replacing.batch_size=8",
             "--set", "finetune.batch_size=8", "--set", "replacing.lr=0.001"]
    assert _cli(["theseus", "--teacher", str(tiny_bert_dir), "--data", str(sentiment_tsv), "--task", "sst2",
                 "--layers", "2", "-o", str(out)] + steps) == 0

    result = json.loads((out / "bertcompress_result.json").read_text())
    assert result["init_layers"] == [1, 2] and result["layers_per_group"] == 2
    assert result["replacing"]["final_replace_rate"] == pytest.approx(0.3 + 3 * 0.0006)
    assert all("replaced" in h for h in result["replacing"]["history"] if "loss" in h)
    assert 0.0 <= result["dev"]["accuracy"] <= 1.0
    assert read_saved_config(TheseusConfig, out).successor_layers == 2
    assert not any(p.name.startswith(".theseus.checkpoints") for p in tmp_path.iterdir())

    model = AutoModelForSequenceClassification.from_pretrained(out).eval()  # none of our code
    tok = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "BertForSequenceClassification" and model.config.num_hidden_layers == 2
    enc = tok(["a great movie", "an awful film"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**enc).logits, saved["model"].eval()(**enc).logits, rtol=0, atol=0)


@pytest.mark.parametrize("override, message", [
    ("successor_layers=0", "successor_layers must be >= 1"),
    ("replace_prob=0", "replace_prob must be in"),
    ("replace_prob=1.5", "replace_prob must be in"),
    ("curriculum=cosine", "curriculum must be"),
    ("curriculum_b=0", "curriculum_b must be in"),
    ("curriculum_k=-1", "curriculum_k must be"),
    ("successor_init=middle", "successor_init must be"),
    ("replacing.lr=0", "train.lr must be > 0"),
    ("nope=1", "unknown key nope"),
])
def test_bad_config_is_a_user_error(override, message):
    with pytest.raises(UserError, match=message):
        load_config(TheseusConfig, overrides=[override])


def test_config_round_trips_through_yaml(tmp_path):
    cfg = load_config(TheseusConfig, overrides=["curriculum=constant", "replace_prob=0.7", "successor_layers=6",
                                                 "finetune.epochs=1", "data.task=sst2"])
    save_config(cfg, tmp_path)
    assert read_saved_config(TheseusConfig, tmp_path) == cfg
    assert from_dict(TheseusConfig, to_dict(cfg)) == cfg


def test_bad_teachers_are_user_errors(tmp_path, tiny_bert_dir, sentiment_tsv, tiny_tokenizer):
    data = {"task": "sst2", "path": str(sentiment_tsv)}
    with pytest.raises(UserError, match="must divide"):
        theseus(from_dict(TheseusConfig, {"teacher": str(tiny_bert_dir), "data": data, "successor_layers": 3,
                                          "output": str(tmp_path / "o")}))
    bare = tmp_path / "bare"  # a pre-trained encoder, no fine-tuned classifier head
    AutoModel.from_config(tiny_config("bert", len(tiny_tokenizer))).save_pretrained(bare)
    tiny_tokenizer.save_pretrained(bare)
    with pytest.raises(UserError, match="no trained classification head .* `bertcompress finetune`"):
        theseus(from_dict(TheseusConfig, {"teacher": str(bare), "data": data, "output": str(tmp_path / "o")}))
    assert not (tmp_path / "o").exists()


def test_cli_flags_reach_the_config(monkeypatch, capsys):
    import bertcompress.methods.theseus.verb as mod

    seen = []
    monkeypatch.setattr(mod, "theseus", lambda cfg, resume: seen.append((cfg, resume)) or "out")
    assert _cli(["theseus", "--teacher", "t", "--layers", "6", "--replace-prob", "0.7", "--resume"]) == 0
    assert _cli(["theseus", "--replace-prob", "0.7", "--curriculum", "linear", "--set", "curriculum_k=0.01"]) == 0
    (a, resume), (b, _) = seen
    assert (a.teacher, a.successor_layers, a.curriculum, a.replace_prob, resume) == ("t", 6, "constant", 0.7, True)
    assert (b.curriculum, b.curriculum_k) == ("linear", 0.01)  # an explicit --curriculum wins
    assert "wrote out" in capsys.readouterr().out


@pytest.mark.parametrize("family, reason", [("modernbert", "bound to their depth"), ("albert", "share one set")])
def test_families_whose_layers_cannot_move_are_refused_in_one_line(family, reason):
    from transformers import AutoModelForSequenceClassification

    teacher = AutoModelForSequenceClassification.from_config(tiny_config(family, 100, layers=4))
    with pytest.raises(UserError, match=f"module replacing .* cannot move .* {reason}.*supported families: "
                                        r"BERT .*DeBERTa-v2/v3 \(deberta-v2\)$"):
        build_successor(teacher, 2)
