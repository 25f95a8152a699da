"""NAS-BERT students trained as the hand-designed ones are (issue 29): the final general stage
matches every block boundary through the supernet's projections, task distillation reads each
block's output as a layer, and the re-rank uses held-out sequences apart from pruning's."""

from __future__ import annotations

import json

import pytest
import torch
from test_nas_supernet import batch, candidates, one_thread, supernet, teacher  # noqa: F401 (one_thread: fixture)
from test_nas_verb import _config, corpus  # noqa: F401 (corpus: a fixture)

from bertcompress.methods.distill.config import LossConfig
from bertcompress.methods.distill.objective import DistillationObjective, without_unreadable_layer_losses
from bertcompress.methods.nas import verb as nas_verbs
from bertcompress.methods.nas.assemble import assemble
from bertcompress.methods.nas.final_stage import FinalObjective, whole_loss
from bertcompress.methods.nas.supernet import BlockwiseObjective, masked_mse
from bertcompress.models.nasbert.arch import NasArch
from bertcompress.models.nasbert.blocks import block_widths
from bertcompress.models.nasbert.modeling import NasBertConfig, NasBertForSequenceClassification
from bertcompress.train.config import TrainConfig

ARCH = NasArch.parse("e16/16:mha,ffn|24:conv3,identity")


def _final(layers: str = "blocks", seed: int = 1):
    t = teacher()
    net = supernet(t, seed).eval()
    blockwise = BlockwiseObjective(net, t, candidates())
    model = assemble(net, ARCH)
    return net, blockwise, model, FinalObjective(model, blockwise, ARCH, layers).eval()


def test_final_stage_terms_equal_the_supernet_run_end_to_end_by_hand():
    net, blockwise, model, objective = _final()
    b = batch()
    mask = b["attention_mask"]
    loss, logs = objective(b)
    with torch.no_grad():  # the supernet runs the arch end to end, each block at the teacher's width
        states = blockwise.teacher_states(b)
        x = net.embed(16, b["input_ids"], b["token_type_ids"])
        expected = {"embedding": masked_mse(x, states[0], mask)}
        for n, choice in enumerate(ARCH.blocks, start=1):
            x = net.blocks[n - 1](x, choice, mask)
            expected[f"block{n}"] = masked_mse(x, states[n], mask)
    assert list(logs) == ["embedding", "block1", "block2"]
    for name, value in expected.items():
        assert float(logs[name]) == pytest.approx(float(value), rel=1e-4), name
    assert float(loss.detach()) == pytest.approx(float(sum(expected.values())), rel=1e-4)
    # the last term is what the re-rank compares, and what `last` trains alone
    _, _, _, last = _final("last")
    assert float(last(b)[0].detach()) == pytest.approx(float(expected["block2"]), rel=1e-4)
    assert whole_loss(model, blockwise, [b]) == pytest.approx(float(expected["block2"]), rel=1e-4)


def test_final_stage_trains_the_model_and_copies_of_the_projections():
    net, _, model, objective = _final()
    objective.train()
    loss, _ = objective(batch())
    loss.backward()
    assert objective.embedding_proj.weight.grad.abs().sum() > 0 and objective.block_proj[0].weight.grad.abs().sum() > 0
    assert model.blocks[0].slots[0].query.weight.grad.abs().sum() > 0
    assert model.output_proj.weight.grad.abs().sum() > 0  # the last block's projection is the model's own
    assert net.blocks[0].output_proj["16"].weight.grad is None  # the supernet's are copied, never trained
    assert len(objective.block_proj) == len(ARCH.blocks) - 1


# ---------------------------------------------------------------- task distillation reads the blocks

def _nas_student(arch: str = "e16/32:mha,ffn|16:conv3,ffn") -> NasBertForSequenceClassification:
    torch.manual_seed(0)
    return NasBertForSequenceClassification(NasBertConfig(arch=arch, vocab_size=60, head_size=8,
                                                          max_position_embeddings=64, num_labels=2)).eval()


def test_the_hidden_and_embedding_losses_read_each_block_through_its_own_projection():
    from transformers import AutoModelForSequenceClassification

    from conftest import tiny_config

    student = _nas_student()
    assert block_widths(student) == [32, 32, 16]
    torch.manual_seed(0)
    t = AutoModelForSequenceClassification.from_config(tiny_config("bert", 60, layers=4, hidden=32, heads=4)).eval()
    weights = without_unreadable_layer_losses(student, {"embedding": 1.0, "hidden": 1.0, "attention": 1.0}, "test")
    assert weights == {"embedding": 1.0, "hidden": 1.0}
    objective = DistillationObjective(student, t, LossConfig(), weights)
    assert objective.mapping == [2, 4]  # block n learned the end of the teacher's n-th half
    projections = objective.projections
    # block 1 and the embeddings are as wide as the teacher (identity); block 2 is 16 wide (its own linear map)
    assert isinstance(projections.hidden_proj[0], torch.nn.Identity)
    assert projections.hidden_proj[1].weight.shape == (32, 16) and not projections.shared
    b = {k: v for k, v in batch().items()}
    loss, logs = objective(b)
    mask = b["attention_mask"]
    with torch.no_grad():
        s = student.nasbert(**b, output_hidden_states=True).hidden_states
        h = t.bert(**b, output_hidden_states=True).hidden_states
        w = projections.hidden_proj[1]
        hidden = masked_mse(s[1], h[2], mask) + masked_mse(s[2] @ w.weight.T + w.bias, h[4], mask)
        embedding = masked_mse(s[0], h[0], mask)
    assert float(logs["hidden"]) == pytest.approx(float(hidden), rel=1e-5)
    assert float(logs["embedding"]) == pytest.approx(float(embedding), rel=1e-5)
    with pytest.raises(Exception, match="no attention maps: set losses.weights.attention: 0"):
        DistillationObjective(student, t, LossConfig(), {"hidden": 1.0, "attention": 1.0})


# ---------------------------------------------------------------- held-out sets

def test_pruning_and_rerank_sets_are_disjoint_and_never_trained_on(tmp_path, tiny_bert_dir, corpus):  # noqa: F811
    from transformers import AutoTokenizer

    cfg = _config(tiny_bert_dir, corpus, tmp_path / "nas", rerank_sequences=12)
    train, pruning, rerank = nas_verbs._corpus_split(cfg, AutoTokenizer.from_pretrained(tiny_bert_dir))

    def rows(batches):
        return [tuple(r[m.bool()].tolist()) for b in batches for r, m in zip(b["input_ids"], b["attention_mask"])]

    assert len(rows(pruning)) == 2 * 4 and len(rows(rerank)) == 12  # heldout_batches x batch_size; rerank
    assert len(train) + 8 + 12 == 64
    seen = {tuple(f["input_ids"]) for f in train}
    assert not (set(rows(pruning)) | set(rows(rerank))) & seen and not set(rows(pruning)) & set(rows(rerank))
    # null: 256, or a quarter of the corpus's 64 sequences
    default = _config(tiny_bert_dir, corpus, tmp_path / "nas", rerank_sequences=None)
    assert len(rows(nas_verbs._corpus_split(default, AutoTokenizer.from_pretrained(tiny_bert_dir))[2])) == 16


def test_a_run_ranks_survivors_on_the_rerank_set_and_trains_every_block_at_the_end(tmp_path, tiny_bert_dir,
                                                                                  corpus, monkeypatch):  # noqa: F811
    scored = []  # sequences of each held-out set a block scoring read
    real = nas_verbs._block_losses
    monkeypatch.setattr(nas_verbs, "_block_losses", lambda o, batches, *a, **k: scored.append(
        sum(len(b["input_ids"]) for b in batches)) or real(o, batches, *a, **k))
    cfg = _config(tiny_bert_dir, corpus, tmp_path / "nas", budgets=["1M"], rerank_sequences=12,
                  final_general=TrainConfig(max_steps=2, batch_size=4, lr=1e-3, device="cpu", log_every=1))
    out = nas_verbs.nas(cfg)
    # 2 pruning points x 2 blocks on the pruning set (8 sequences), then both blocks' survivors on the rerank set
    assert scored == [8, 8, 8, 8, 12, 12]
    report = json.loads((out / "nas.json").read_text())
    assert report["heldout_sequences"] == {"pruning": 8, "rerank": 12}
    (entry,) = report["budgets"]
    assert entry["final_general"]["layers"] == "blocks"
    assert set(entry["final_general_last_losses"]) == {"loss", "embedding", "block1", "block2"}
    assert entry["final_general_last_losses"]["loss"] == pytest.approx(
        sum(entry["final_general_last_losses"][k] for k in ("embedding", "block1", "block2")), rel=1e-5)
