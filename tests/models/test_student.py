import pytest
import torch
from transformers import AutoModel

from bertcompress.core.errors import UserError
from bertcompress.methods.distill.config import LossConfig
from bertcompress.methods.distill.objective import DistillationObjective
from bertcompress.models.architecture import describe
from bertcompress.models.config import StudentConfig
from bertcompress.models.student import build_student
from conftest import tiny_config

FAMILIES = ["bert", "roberta", "xlm-roberta", "mpnet", "distilbert", "electra", "deberta-v2", "modernbert", "albert"]


@pytest.mark.parametrize("family", FAMILIES)
def test_student_of_each_family_distils(family):
    torch.manual_seed(0)
    teacher = AutoModel.from_config(tiny_config(family, 100, layers=4))
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=24),
                            classifier=False)
    assert type(student) is type(teacher)
    view = describe(student)
    assert (view.num_layers, view.hidden_size, view.num_heads) == (2, 16, 4)
    obj = DistillationObjective(student, teacher, LossConfig(), {"embedding": 1, "hidden": 1, "attention": 1})
    ids = torch.randint(5, 100, (2, 6))
    loss, logs = obj({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    loss.backward()
    assert loss.item() > 0 and set(logs) == {"embedding", "hidden", "attention"}
    assert student.get_input_embeddings().weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_a_student_of_all_teacher_layers_is_the_teacher(family, tmp_path):
    """init teacher_layers with every layer copies everything the layers share too (MPNet's position
    bias, DeBERTa's relative embeddings, ALBERT's embedding projection, ModernBERT's final norm): the
    student computes the teacher's function, and `transformers` reloads it as saved."""
    torch.manual_seed(0)
    teacher = AutoModel.from_config(tiny_config(family, 100, layers=3)).eval()
    student = build_student(teacher, StudentConfig(num_layers=3, hidden_size=None, num_heads=None, ffn_size=None,
                                                   init="teacher_layers", init_layers=[1, 2, 3]), seed=1).eval()
    ids = torch.randint(5, 100, (2, 7))
    with torch.no_grad():
        expected = teacher(input_ids=ids).last_hidden_state
        torch.testing.assert_close(student(input_ids=ids).last_hidden_state, expected)
    student.save_pretrained(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(AutoModel.from_pretrained(tmp_path).eval()(input_ids=ids).last_hidden_state,
                                   expected)


def test_shallower_modernbert_student_keeps_its_layer_pattern(tmp_path):
    teacher = AutoModel.from_config(tiny_config("modernbert", 100, layers=4))
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=24))
    assert student.config.layer_types == teacher.config.layer_types[:2] == ["full_attention", "sliding_attention"]
    student.save_pretrained(tmp_path)
    assert AutoModel.from_pretrained(tmp_path).config.num_hidden_layers == 2


def test_albert_student_keeps_its_factorised_embeddings():
    teacher = AutoModel.from_config(tiny_config("albert", 100, layers=4))  # embeddings 16 wide, layers 32
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=24, num_heads=4, ffn_size=24))
    assert (student.config.embedding_size, student.config.hidden_size, describe(student).num_layers) == (16, 24, 2)


def test_copy_teacher_layers_is_exact():
    torch.manual_seed(0)
    teacher = AutoModel.from_config(tiny_config("bert", 100, layers=4)).eval()
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=32, num_heads=4, ffn_size=64,
                                                   init="teacher_layers", init_layers=[2, 4]), classifier=False)
    for a, b in zip(student.encoder.layer[1].parameters(), teacher.encoder.layer[3].parameters()):
        assert torch.equal(a, b)
    assert torch.equal(student.embeddings.word_embeddings.weight, teacher.embeddings.word_embeddings.weight)


def test_copy_teacher_layers_needs_equal_width():
    teacher = AutoModel.from_config(tiny_config("bert", 100, layers=4))
    with pytest.raises(UserError, match="equal the teacher's"):
        build_student(teacher, StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=64,
                                             init="teacher_layers", init_layers=[2, 4]), classifier=False)


def test_head_count_mismatch_is_an_error_unless_a_rule_is_set():
    teacher = AutoModel.from_config(tiny_config("bert", 100, layers=2, heads=4))
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=16, num_heads=2, ffn_size=24),
                            classifier=False)
    with pytest.raises(UserError, match="equal head counts"):
        DistillationObjective(student, teacher, LossConfig(), {"attention": 1})
    obj = DistillationObjective(student, teacher, LossConfig(head_rule="mean"), {"attention": 1})
    ids = torch.randint(5, 100, (1, 5))
    assert obj({"input_ids": ids, "attention_mask": torch.ones_like(ids)})[0].item() > 0


def test_out_of_range_mapping_is_an_error():
    teacher = AutoModel.from_config(tiny_config("bert", 100, layers=2))
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=24),
                            classifier=False)
    with pytest.raises(UserError, match="out of range 1..2"):
        DistillationObjective(student, teacher, LossConfig(layer_mapping=[1, 3]), {"hidden": 1})


def test_unset_sizes_are_the_teachers():
    teacher = AutoModel.from_config(tiny_config("bert", 100, layers=4))
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=None, num_heads=None, ffn_size=None,
                                                   init="teacher_layers"), classifier=False, init_layers=[2, 4])
    t, s = teacher.config, student.config
    assert (s.num_hidden_layers, s.hidden_size, s.num_attention_heads, s.intermediate_size) == \
        (2, t.hidden_size, t.num_attention_heads, t.intermediate_size)
    for a, b in zip(student.encoder.layer[0].parameters(), teacher.encoder.layer[1].parameters()):
        assert torch.equal(a, b)


def test_student_heads_must_divide_the_teachers_width_when_only_heads_are_set():
    teacher = AutoModel.from_config(tiny_config("bert", 100, layers=4))  # hidden 32
    with pytest.raises(UserError, match="not a multiple"):
        build_student(teacher, StudentConfig(num_layers=2, hidden_size=None, num_heads=5, ffn_size=None),
                      classifier=False)


def test_a_bf16_teacher_runs_outside_autocast():
    """distill.teacher_precision: a bf16 teacher gives nearly the fp32 teacher's losses, and its
    LayerNorms run in bf16 (under autocast they would return fp32)."""
    from bertcompress.methods.distill.config import DistillConfig
    from bertcompress.train.config import TrainConfig

    torch.manual_seed(0)
    teacher = AutoModel.from_config(tiny_config("bert", 100, layers=4)).eval()
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=24),
                            classifier=False)
    obj = DistillationObjective(student, teacher, LossConfig(), {"embedding": 1, "hidden": 1, "attention": 1})
    ids = torch.randint(5, 100, (2, 6))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss_fp32, _ = obj(batch)
        teacher.to(torch.bfloat16)
        seen = []
        hook = teacher.encoder.layer[0].output.LayerNorm.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        loss_bf16, _ = obj(batch)
        hook.remove()
    assert seen == [torch.bfloat16]
    assert loss_bf16.item() == pytest.approx(loss_fp32.item(), rel=0.03)

    assert DistillConfig().teacher_in_bf16("cuda") and not DistillConfig().teacher_in_bf16("cpu")
    assert DistillConfig(train=TrainConfig(precision="bf16")).teacher_in_bf16("cpu")
    assert not DistillConfig(train=TrainConfig(precision="fp32")).teacher_in_bf16("cuda")
    assert DistillConfig(teacher_precision="bf16").teacher_in_bf16("cpu")
    with pytest.raises(UserError, match="teacher_precision"):
        DistillConfig(teacher_precision="fp16")


def test_attention_mapping_moves_only_the_attention_loss():
    """The attention loss with its own mapping equals the attention loss of a plain mapping onto
    those layers; the hidden-state loss keeps layer_mapping's layers; an out-of-range one is refused."""
    torch.manual_seed(0)
    teacher = AutoModel.from_config(tiny_config("bert", 100, layers=4)).eval()
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=32, num_heads=4, ffn_size=24),
                            classifier=False).eval()
    ids = torch.randint(5, 100, (2, 6))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    weights = {"hidden": 1, "attention": 1}

    def logs(**losses):
        obj = DistillationObjective(student, teacher, LossConfig(**losses), weights)
        return obj(batch)[1], obj.mapping_record()

    separate, record = logs(layer_mapping=[1, 2], attention_mapping=[3, 4])
    hidden_only, plain_record = logs(layer_mapping=[1, 2])
    attention_only, _ = logs(layer_mapping=[3, 4])
    assert separate["attention"] == pytest.approx(attention_only["attention"].item(), rel=1e-6)
    assert separate["hidden"] == pytest.approx(hidden_only["hidden"].item(), rel=1e-6)
    assert separate["attention"] != pytest.approx(hidden_only["attention"].item(), rel=1e-3)
    assert record == {"mapping": [1, 2], "attention_mapping": [3, 4]} and plain_record == {"mapping": [1, 2]}
    with pytest.raises(UserError, match="losses.attention_mapping: .*out of range 1..4"):
        DistillationObjective(student, teacher, LossConfig(attention_mapping=[1, 5]), weights)
    with pytest.raises(UserError, match="attention_mapping must be 'uniform', 'last'"):
        LossConfig(attention_mapping="first")


def test_modernbert_student_from_chosen_layers_takes_their_kinds():
    torch.manual_seed(0)
    teacher = AutoModel.from_config(tiny_config("modernbert", 100, layers=4))  # full, local, full, local
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=None, num_heads=None, ffn_size=None,
                                                   init="teacher_layers", init_layers=[2, 3]))
    assert student.config.layer_types == ["sliding_attention", "full_attention"]
    # the first layer has no attention norm: teacher layer 2's stays behind, the rest is copied
    assert torch.equal(student.layers[0].attn.Wqkv.weight, teacher.layers[1].attn.Wqkv.weight)
    assert torch.equal(student.layers[1].attn_norm.weight, teacher.layers[2].attn_norm.weight)
