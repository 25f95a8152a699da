"""NAS-BERT architectures and models: ops, padding, arch forms, save/load, ONNX, heads."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from bertcompress.core.errors import UserError
from bertcompress.models.nasbert.arch import OPS, NasArch
from bertcompress.models.nasbert.modeling import (
    NasBertConfig,
    NasBertForSequenceClassification,
    NasBertForTokenClassification,
    NasBertModel,
    register_auto_classes,
)
from bertcompress.models.nasbert.ops import make_op

VOCAB, HEAD = 60, 8
MIXED = "e16/32:mha,ffn,conv3|24:conv5,ffn,identity|32:conv7,mha,ffn"


def tiny_config(arch: str = MIXED, **kwargs) -> NasBertConfig:
    return NasBertConfig(arch=arch, vocab_size=VOCAB, max_position_embeddings=32, head_size=HEAD, **kwargs)


def tiny_model(cls=NasBertForSequenceClassification, arch: str = MIXED, **kwargs):
    torch.manual_seed(0)
    return cls(tiny_config(arch, **kwargs)).eval()


def batch(rows: int = 2, length: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(rows, length, dtype=torch.long)
    mask[-1, length - 2:] = 0  # one row already padded
    return {"input_ids": torch.randint(5, VOCAB, (rows, length), generator=g), "attention_mask": mask,
            "token_type_ids": torch.randint(0, 2, (rows, length), generator=g)}


def padded(b: dict[str, torch.Tensor], extra: int = 4) -> dict[str, torch.Tensor]:
    """`b` with `extra` more positions of mask 0 holding real (non-pad) token ids: only the mask may hide them."""
    g = torch.Generator().manual_seed(2)
    rows = b["input_ids"].shape[0]
    return {"input_ids": torch.cat([b["input_ids"], torch.randint(5, VOCAB, (rows, extra), generator=g)], 1),
            "attention_mask": torch.cat([b["attention_mask"], torch.zeros(rows, extra, dtype=torch.long)], 1),
            "token_type_ids": torch.cat([b["token_type_ids"], torch.ones(rows, extra, dtype=torch.long)], 1)}


@pytest.mark.parametrize("name", OPS)
def test_op_shape_and_padding_invariance(name):
    torch.manual_seed(0)
    op = make_op(name, 16, HEAD, dropout=0.1, layer_norm_eps=1e-12).eval()
    x = torch.randn(2, 5, 16)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    y = op(x, mask)
    assert y.shape == x.shape
    x_long = torch.cat([x, 10 * torch.randn(2, 3, 16)], 1)  # loud garbage at the padded positions
    y_long = op(x_long, torch.cat([mask, torch.zeros(2, 3, dtype=torch.long)], 1))
    real = mask.bool()
    torch.testing.assert_close(y_long[:, :5][real], y[real], atol=1e-5, rtol=0)
    if name == "identity":
        assert y is x and not list(op.parameters())


def test_model_padding_invariance():
    model = tiny_model()
    b, b_long = batch(), padded(batch())
    with torch.no_grad():
        out, out_long = model(**b, output_hidden_states=True), model(**b_long, output_hidden_states=True)
    real = b["attention_mask"].bool()
    for h, h_long in zip(out.hidden_states, out_long.hidden_states):
        torch.testing.assert_close(h_long[:, :6][real], h[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(out_long.logits, out.logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("text, message", [
    ("32:mha,identity,ffn", "block 1: 'identity' may only fill the end of a block"),
    ("32:mha|24:identity,conv3", "block 2: 'identity' may only fill the end"),
    ("32:mha,attention", "unknown op 'attention'"),
    ("32:", "block 1 has no ops"),
    ("32:mha||24:ffn", "each block must look like"),
    ("mha,ffn", "each block must look like"),
    ("x16/32:mha", "embedding prefix must look like 'e128/'"),
    ("e0/32:mha", "embedding size must be a positive integer"),
    ("0:ffn", "hidden size must be a positive integer"),
])
def test_bad_arch_strings(text, message):
    with pytest.raises(UserError, match=message) as err:
        NasArch.parse(text)
    assert "\n" not in str(err.value)


def test_bad_archs_in_other_forms():
    with pytest.raises(UserError, match="no blocks"):
        NasArch(blocks=[])
    with pytest.raises(UserError, match="must look like"):
        NasArch.from_dict({"hidden": 32})
    with pytest.raises(UserError, match="list of op names"):
        NasArch.from_dict({"blocks": [{"hidden": 32, "ops": "mha"}]})
    with pytest.raises(UserError, match="block 2: hidden size 20 is not a multiple of the head size 8"):
        NasArch.parse("32:mha|20:mha").validate(head_size=8)
    NasArch.parse("32:mha|20:conv3,ffn").validate(head_size=8)  # only attention needs whole heads
    with pytest.raises(UserError, match="not a multiple of the head size"):
        tiny_config("20:mha")


def test_arch_round_trips():
    arch = NasArch.parse(MIXED)
    assert arch.to_string() == str(arch) == MIXED
    assert NasArch.parse(" e16 / 32: mha, ffn ,conv3 | 24:conv5,ffn,identity|32:conv7,mha,ffn") == arch
    assert NasArch.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
    assert (arch.embedding_width, arch.output_width, [b.depth for b in arch.blocks]) == (16, 32, [3, 2, 3])
    plain = NasArch.parse("24:ffn")
    assert plain.embedding_size is None and plain.embedding_width == 24 and plain.to_string() == "24:ffn"
    assert tiny_config(arch).nas_arch == arch  # the config keeps the dict form


def test_hidden_states_are_block_outputs():
    model = tiny_model(NasBertModel)
    out = model(**batch(), output_hidden_states=True)
    assert len(out.hidden_states) == 1 + 3
    assert [h.shape[-1] for h in out.hidden_states] == [32, 32, 24, 32]
    assert out.hidden_states[-1] is out.last_hidden_state
    assert out.pooler_output.shape == (2, 32)
    assert model(**batch()).hidden_states is None
    # names a supernet copies weights into
    names = dict(model.named_modules())
    assert "embedding_proj" in names and "blocks.1.input_proj" in names and "blocks.0.input_proj" not in names
    assert type(names["blocks.1.slots.0"]).__name__ == "SeparableConv" and names["blocks.1.slots.0"].kernel_size == 5


def test_parameter_count_and_init():
    model = tiny_model(NasBertModel)
    arch = model.config.nas_arch
    assert arch.num_parameters(VOCAB, 32, 2) == sum(p.numel() for p in model.parameters())
    emb = model.embeddings.word_embeddings.weight
    assert torch.all(emb[0] == 0) and 0.01 < emb[1:].std() < 0.03  # pad row zero, normal(0, 0.02)
    assert torch.all(model.blocks[0].slots[0].LayerNorm.weight == 1)


def test_save_and_auto_load_give_identical_logits(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    register_auto_classes()  # a second registration must not raise
    model = tiny_model(num_labels=3)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is NasBertForSequenceClassification
    assert AutoConfig.from_pretrained(tmp_path).nas_arch == NasArch.parse(MIXED)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch()).logits, model(**batch()).logits, atol=0, rtol=0)
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base) is NasBertModel
    torch.testing.assert_close(base.blocks[2].slots[1].query.weight, model.nasbert.blocks[2].slots[1].query.weight)


def test_onnx_export_matches_pytorch(tmp_path):
    from bertcompress.export.onnx import export_onnx, onnx_logits, onnx_session

    model = tiny_model()
    path = export_onnx(model, tmp_path / "nas.onnx")
    b = batch(rows=3, length=11)  # not the traced shape: the axes are dynamic
    with torch.no_grad():
        expected = model(**b).logits.numpy()
    got = onnx_logits(onnx_session(path, threads=1), b)
    assert abs(got - expected).max() < 1e-4


def test_regression_head_uses_mse():
    model = tiny_model(num_labels=1)
    labels = torch.tensor([0.5, -1.0])
    out = model(**batch(), labels=labels)
    assert model.config.problem_type == "regression"
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), labels))


def test_classification_heads_use_cross_entropy():
    model = tiny_model(num_labels=3)
    labels = torch.tensor([2, 0])
    out = model(**batch(), labels=labels)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))

    tagger = tiny_model(NasBertForTokenClassification, num_labels=4)
    b = batch()
    tags = torch.randint(0, 4, b["input_ids"].shape)
    tags[b["attention_mask"] == 0] = -100
    out = tagger(**b, labels=tags)
    assert out.logits.shape == (2, 6, 4) and tagger.nasbert.pooler is None
    keep = tags != -100
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[keep], tags[keep]))
