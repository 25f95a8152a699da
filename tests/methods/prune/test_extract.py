"""Extract Then Distill: exact when nothing is removed, true teacher slices, importance picks the
important units, configs validate, and the `extract` verb writes a loadable student."""

from __future__ import annotations

import json

import pytest
import torch

from bertcompress.core.config import from_dict, load_config, to_dict
from bertcompress.core.errors import UserError
from bertcompress.methods.prune.config import ExtractConfig
from bertcompress.methods.prune.extract import apply_plan, extract_student, plan_extraction
from bertcompress.methods.prune.importance import compute_importance, magnitude_importance, taylor_importance
from bertcompress.models.units import encoder
from conftest import tiny_config

FAMILIES = ["bert", "roberta", "xlm-roberta", "electra", "distilbert", "mpnet", "deberta-v2"]
VOCAB = 120


def tiny(family: str = "bert", auto: str = "AutoModelForSequenceClassification", seed: int = 0):
    import transformers

    torch.manual_seed(seed)
    return getattr(transformers, auto).from_config(tiny_config(family, VOCAB)).eval()


def batch(n: int = 4, length: int = 10, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (n, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, length - 3:] = 0  # one padded row
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.arange(n) % 2}


def run(model, b: dict) -> torch.Tensor:
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], output_hidden_states=True)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("strategy", ["impt", "rand"])
def test_extracting_the_full_shape_is_exact(family, strategy):
    teacher, b = tiny(family), batch()
    student = extract_student(teacher, ExtractConfig(num_layers=4, strategy=strategy), batches=[b])
    assert student.config.to_dict() == teacher.config.to_dict()
    torch.testing.assert_close(run(student, b), run(teacher, b), rtol=0, atol=1e-6)


def _weights(model, layer: int) -> dict:
    p = encoder(model).parts[layer]
    return {k: p[k] for k in ("query", "key", "value", "out", "ffn_in", "ffn_out")}


@pytest.mark.parametrize("heads", [2, None])  # 2 whole heads, or all 4 heads with half their dimensions
def test_student_weights_are_the_teachers_slices(heads):
    teacher = tiny("bert")
    cfg = ExtractConfig(num_layers=2, hidden_size=16, num_heads=heads, ffn_size=20, strategy="rand", seed=3)
    plan = plan_extraction(teacher, cfg)
    student = apply_plan(teacher, plan)
    assert (student.config.num_hidden_layers, student.config.hidden_size, student.config.num_attention_heads,
            student.config.intermediate_size) == (2, 16, heads or 4, 20)
    assert plan.layers == [1, 3]  # uniform ⌈m·4/2⌉ - 1
    h = torch.tensor(plan.hidden)
    t_emb, s_emb = teacher.bert.embeddings, student.bert.embeddings
    assert torch.equal(s_emb.word_embeddings.weight, t_emb.word_embeddings.weight[:, h])
    assert torch.equal(s_emb.LayerNorm.weight, t_emb.LayerNorm.weight[h])
    for j, t in enumerate(plan.layers):
        s, w = _weights(student, j), _weights(teacher, t)
        units, ffn = torch.tensor(plan.units[j]), torch.tensor(plan.ffn[j])
        assert len(units) == 16 and len(ffn) == 20
        for name in ("query", "key", "value"):
            assert torch.equal(s[name].weight, w[name].weight[units][:, h])
            assert torch.equal(s[name].bias, w[name].bias[units])
        assert torch.equal(s["out"].weight, w["out"].weight[h][:, units])
        assert torch.equal(s["ffn_in"].weight, w["ffn_in"].weight[ffn][:, h])
        assert torch.equal(s["ffn_out"].weight, w["ffn_out"].weight[h][:, ffn])
        # index by index, too: row r of the student's query is teacher row units[r], column c is h[c]
        assert s["query"].weight[5, 7] == w["query"].weight[plan.units[j][5], plan.hidden[7]]
        if heads == 2:  # whole heads: 8 consecutive teacher rows per head
            assert plan.units[j] == [x for head in plan.heads[j] for x in range(head * 8, head * 8 + 8)]
    assert torch.equal(student.bert.pooler.dense.weight, teacher.bert.pooler.dense.weight[h][:, h])
    assert torch.equal(student.classifier.weight, teacher.classifier.weight[:, h])
    assert run(student, batch()).shape == (4, 2)


def _kill_units(model, heads=(1,), neurons=(3, 7, 11), hidden=(2, 5)):
    """Make some units useless: their weights (and so activations and gradients) are zero."""
    enc = encoder(model)
    d = enc.head_dim
    with torch.no_grad():
        for p in enc.parts:
            for head in heads:
                rows = slice(head * d, head * d + d)
                for name in ("query", "key", "value"):
                    p[name].weight[rows] = 0
                    p[name].bias[rows] = 0
                p["out"].weight[:, rows] = 0
            for n in neurons:
                p["ffn_in"].weight[n] = 0
                p["ffn_in"].bias[n] = 0
                p["ffn_out"].weight[:, n] = 0
        for m in model.modules():  # every LayerNorm on the residual stream outputs 0 there
            if isinstance(m, torch.nn.LayerNorm):
                m.weight[list(hidden)] = 0
                m.bias[list(hidden)] = 0


@pytest.mark.parametrize("method", ["taylor", "magnitude"])
def test_etd_impt_keeps_the_important_units(method):
    teacher = tiny("bert")
    _kill_units(teacher)
    imp = compute_importance(teacher, method, [batch(), batch(seed=1)])
    assert all(h[1] == 0 for h in imp.heads) and all((f[[3, 7, 11]] == 0).all() for f in imp.ffn)
    assert (imp.hidden[[2, 5]] == 0).all() and (imp.hidden > 0).sum() == 30
    plan = plan_extraction(teacher, ExtractConfig(num_layers=4, hidden_size=24, num_heads=3, ffn_size=61), imp)
    assert all(h == [0, 2, 3] for h in plan.heads)
    assert all(not {3, 7, 11} & set(f) for f in plan.ffn)
    assert not {2, 5} & set(plan.hidden)


def test_layers_by_importance_drop_the_useless_layer():
    teacher = tiny("bert")
    p = encoder(teacher).parts[1]
    with torch.no_grad():  # layer 2 adds nothing: its attention and FFN outputs are zero
        p["out"].weight.zero_()
        p["ffn_out"].weight.zero_()
    imp = taylor_importance(teacher, [batch()])
    plan = plan_extraction(teacher, ExtractConfig(num_layers=3, layers="importance"), imp)
    assert plan.layers == [0, 2, 3]
    assert plan_extraction(teacher, ExtractConfig(num_layers=3, layers=[1, 2, 4]), imp).layers == [0, 1, 3]
    assert plan_extraction(teacher, ExtractConfig(num_layers=2, layers="uniform"), imp).layers == [1, 3]


def test_taylor_scores_equal_the_gradient_of_a_unit_mask():
    """Per example, a unit's score is |∂L/∂m| for a mask m multiplying it; summed over examples."""
    model, b = tiny("bert"), batch()
    imp = taylor_importance(model, [b])
    enc = encoder(model)
    masks = {}

    def mask_input(name, groups):  # one mask entry per group of `x.shape[-1] // groups` features
        def hook(module, args):
            x = args[0]
            masks[name] = torch.ones(x.shape[0], 1, groups, 1, requires_grad=True)
            return ((x.view(*x.shape[:2], groups, -1) * masks[name]).reshape(x.shape),)
        return hook

    layer = enc.parts[2]
    handles = [layer["ffn_out"].register_forward_pre_hook(mask_input("ffn", 64)),
               layer["out"].register_forward_pre_hook(mask_input("heads", 4))]
    model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss.backward()
    for h in handles:
        h.remove()
    torch.testing.assert_close(imp.ffn[2], masks["ffn"].grad.abs().sum((0, 1)).reshape(-1))
    torch.testing.assert_close(imp.heads[2], masks["heads"].grad.abs().sum((0, 1)).reshape(-1))


@pytest.mark.parametrize("family", ["bert", "mpnet"])
def test_taylor_scoring_keeps_no_activation_alive(family):
    """Every hooked activation is freed once its batch is scored (a hook holding its own tensor
    leaked 0.9 GB a batch on a 110M teacher)."""
    import gc
    import weakref

    model = tiny(family)
    enc = encoder(model)
    alive = []
    handles = [p[k].register_forward_pre_hook(lambda _m, args: alive.append(weakref.ref(args[0])))
               for p in enc.parts for k in ("out", "ffn_out")]
    handles += [layer.register_forward_hook(lambda _m, _a, out: alive.append(
        weakref.ref(out[0] if isinstance(out, tuple) else out))) for layer in enc.layers]
    taylor_importance(model, [batch(seed=0), batch(seed=1)])
    for h in handles:
        h.remove()
    gc.collect()
    assert len(alive) == 2 * 3 * enc.num_layers and all(r() is None for r in alive)


def test_importance_loss_follows_the_model():
    b = batch()
    assert taylor_importance(tiny(), [b]).loss == "task"
    mlm = taylor_importance(tiny(auto="AutoModelForMaskedLM"), [b], mask_token_id=4)
    assert mlm.loss == "mlm" and all(f.sum() > 0 for f in mlm.ffn)
    base = taylor_importance(tiny(auto="AutoModel"), [b])
    assert base.loss == "hidden_norm" and base.hidden.sum() > 0
    assert magnitude_importance(tiny()).loss is None


@pytest.mark.parametrize("family", ["bert", "electra", "deberta-v2"])
def test_extracted_student_saves_and_loads_with_plain_transformers(tmp_path, family):
    from transformers import AutoModel, AutoModelForSequenceClassification

    teacher, b = tiny(family), batch()
    student = extract_student(teacher, ExtractConfig(num_layers=2, hidden_size=16, ffn_size=24), batches=[b])
    student.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(run(loaded, b), run(student, b))
    assert AutoModel.from_pretrained(tmp_path).config.hidden_size == 16


def test_bad_configs_are_one_line_user_errors():
    for bad in ({"num_layers": 0}, {"hidden_size": 30, "num_heads": 4}, {"strategy": "best"},
                {"layers": "middle"}, {"layers": [1, 2]}, {"ffn_size": 0}, {"importance": "fisher"},
                {"samples": 0}):
        with pytest.raises(UserError, match="^bad config: "):
            ExtractConfig(**bad)
    teacher = tiny()
    for cfg, msg in ((ExtractConfig(num_layers=5), "num_layers 5: the teacher has only 4"),
                     (ExtractConfig(hidden_size=64), "hidden_size 64"),
                     (ExtractConfig(ffn_size=65), "ffn_size 65"),
                     (ExtractConfig(hidden_size=30), "not a multiple of num_heads 4"),
                     (ExtractConfig(num_heads=2), "head dimension 16, more than the teacher's 8"),
                     (ExtractConfig(num_layers=2, layers=[1, 9]), "teacher layer 9 is out of range 1..4")):
        with pytest.raises(UserError, match=msg):
            extract_student(teacher, cfg, importance=magnitude_importance(teacher))
    with pytest.raises(UserError, match="needs a data sample"):
        extract_student(teacher, ExtractConfig())


def test_config_round_trips_through_dict_and_yaml(tmp_path):
    cfg = ExtractConfig(num_layers=2, hidden_size=16, layers=[2, 4], strategy="rand")
    assert from_dict(ExtractConfig, to_dict(cfg)) == cfg
    (tmp_path / "x.yaml").write_text("num_layers: 2\nlayers: [1, 3]\nhidden_size: 16\n", encoding="utf-8")
    loaded = load_config(ExtractConfig, tmp_path / "x.yaml", overrides=["importance=magnitude"])
    assert (loaded.layers, loaded.hidden_size, loaded.importance) == ([1, 3], 16, "magnitude")


def test_extract_command_writes_a_student(tmp_path, tiny_bert_dir, sentiment_tsv):
    from transformers import AutoModelForSequenceClassification

    from bertcompress.cli import main
    from bertcompress.models.loading import load_model

    out = tmp_path / "etd"
    assert main(["extract", "--teacher", str(tiny_bert_dir), "--task", "sst2", "--data", str(sentiment_tsv),
                 "--num-layers", "2", "--hidden", "16", "--samples", "8", "-o", str(out)]) == 0
    student = AutoModelForSequenceClassification.from_pretrained(out)
    assert (student.config.num_hidden_layers, student.config.hidden_size) == (2, 16)
    result = json.loads((out / "bertcompress_result.json").read_text())
    assert result["importance_loss"] == "task" and result["layers"] == [2, 4]
    assert (out / "bertcompress_config.yaml").is_file() and (out / "tokenizer_config.json").is_file()
    assert load_model(str(out), "base").config.hidden_size == 16  # as DistillConfig.student_path loads it


@pytest.mark.parametrize("family, reason", [("modernbert", "fused QKV"), ("albert", "share one set of weights")])
def test_families_extraction_cannot_cut_are_refused_in_one_line(family, reason):
    with pytest.raises(UserError, match=f"extraction and pruning cannot cut .*{reason}.*supported families: "
                                        "BERT .*DeBERTa-v2/v3 \\(deberta-v2\\)$") as e:
        extract_student(tiny(family), ExtractConfig(num_layers=2, strategy="rand"))
    assert "\n" not in str(e.value)
