"""A student of another vocabulary than its teacher: each reads the text with its own tokenizer,
the layer losses compare aligned positions (data/alignment.py)."""

from __future__ import annotations

import json

import pytest
import torch

from bertcompress.core.errors import UserError
from bertcompress.data.alignment import align_positions, encode_for_two
from bertcompress.data.config import DataConfig
from bertcompress.data.encoding import collate
from bertcompress.data.examples import Example
from bertcompress.methods.distill.config import DistillConfig, LossConfig, TeacherCacheConfig
from bertcompress.methods.distill.losses import LossContext, attention_loss, gather_pairs, hidden_loss
from bertcompress.methods.distill.verb import distill
from bertcompress.models.intermediates import Intermediates
from bertcompress.train.config import TrainConfig
from conftest import SPECIALS, tiny_config, write_vocab


def other_tokenizer(folder, drop=()):
    """A BERT tokenizer over the tiny vocabulary in another order (other ids), less `drop` (words
    it then cuts into letters)."""
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = [w for w in write_vocab(folder).read_text().split() if w not in SPECIALS and w not in drop]
    (folder / "vocab.txt").write_text("\n".join(SPECIALS + words[::-1]) + "\n", encoding="utf-8")
    tok = BertTokenizerFast.from_pretrained(folder, do_lower_case=True)
    tok.save_pretrained(folder)
    return tok


def test_align_positions_mpnet_pair_layout():
    # [CLS] a b [SEP] c [SEP] against <s> a b </s> </s> c </s>: content by character, the first and
    # last special tokens with each other (the counts differ)
    sp = ("special",)
    student = [sp, (0, 0, 1), (0, 2, 3), sp, (1, 0, 1), sp]
    teacher = [sp, (0, 0, 1), (0, 2, 3), sp, sp, (1, 0, 1), sp]
    s, t, same = align_positions(student, teacher)
    assert (s, t, same) == ([0, 1, 2, 4, 5], [0, 1, 2, 5, 6], True)


def test_align_positions_different_cuts_keep_word_starts():
    sp = ("special",)
    student = [sp, (0, 0, 5), (0, 6, 8), (0, 8, 10), sp]  # "movie" whole; "sa" + "##ts" style cut
    teacher = [sp, (0, 0, 2), (0, 2, 5), (0, 6, 10), sp]  # "mo" + "##vie"; "sats" whole
    s, t, same = align_positions(student, teacher)
    assert (s, t, same) == ([0, 1, 2, 4], [0, 1, 3, 4], False)


def test_encode_for_two_same_pieces_align_everything(tmp_path, tiny_tokenizer):
    other = other_tokenizer(tmp_path / "other")
    examples = [Example("a good movie", None, 1), Example("the plot", "was dull", 0)]
    features, stats = encode_for_two(other, tiny_tokenizer, examples, 32)
    assert stats.same_pieces == 2 and stats.aligned_share == 1.0 and stats.usable
    for f in features:
        assert f["input_ids"] != f["teacher_input_ids"]  # other ids for the same pieces
        assert f["align_student"] == f["align_teacher"] == list(range(len(f["input_ids"])))
    assert other.convert_ids_to_tokens(features[0]["input_ids"]) == \
        tiny_tokenizer.convert_ids_to_tokens(features[0]["teacher_input_ids"])


def test_encode_for_two_different_cuts(tmp_path, tiny_tokenizer):
    other = other_tokenizer(tmp_path / "other", drop=("movie",))  # "movie" -> letters
    features, stats = encode_for_two(other, tiny_tokenizer, [Example("a good movie", None, 1)], 32)
    f = features[0]
    pieces = other.convert_ids_to_tokens(f["input_ids"])
    assert pieces == ["[CLS]", "a", "good", "m", "##o", "##v", "##i", "##e", "[SEP]"]
    assert f["align_student"] == [0, 1, 2, 3, 8] and f["align_teacher"] == [0, 1, 2, 3, 4]
    assert stats.same_pieces == 0 and stats.aligned_share == pytest.approx(5 / 9)


def test_collate_pads_both_views_and_alignment(tmp_path, tiny_tokenizer):
    other = other_tokenizer(tmp_path / "other", drop=("movie",))
    examples = [Example("a good movie", None, 1), Example("fun", None, 0)]
    features, _ = encode_for_two(other, tiny_tokenizer, examples, 32)
    batch = collate([dict(f, index=i) for i, f in enumerate(features)], 0, 0)
    assert batch["input_ids"].shape == (2, 9) and batch["teacher_input_ids"].shape == (2, 5)
    assert batch["teacher_attention_mask"].tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    assert batch["align_mask"].tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    assert batch["index"].tolist() == [0, 1]


def test_aligned_hidden_loss_by_hand():
    s = torch.arange(2 * 4 * 2, dtype=torch.float32).view(2, 4, 2)
    t = torch.zeros(2, 3, 2)
    align = (torch.tensor([[0, 2], [1, 0]]), torch.tensor([[1, 2], [0, 0]]), torch.tensor([[1, 1], [1, 0]]))
    ctx = LossContext(mapping=[1], projections=_Identity(), attention_mask=torch.ones(2, 4), alignment=align)
    loss = hidden_loss(Intermediates(hidden_states=(s, s)), Intermediates(hidden_states=(t, t)), ctx)
    # the compared student rows: s[0,0]=(0,1), s[0,2]=(4,5), s[1,1]=(10,11); teacher rows are 0
    assert loss.item() == pytest.approx((0 + 1 + 16 + 25 + 100 + 121) / (3 * 2))


def test_gather_pairs_zeroes_left_out_pairs():
    scores = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    out = gather_pairs(scores, torch.tensor([[3, 1, 0]]), torch.tensor([[1, 1, 0]]))
    assert out[0, 0].tolist() == [[15, 13, 0], [7, 5, 0], [0, 0, 0]]


def test_aligned_attention_loss_counts_real_pairs():
    a_s = torch.ones(1, 2, 3, 3)
    a_t = torch.zeros(1, 2, 2, 2)
    align = (torch.tensor([[0, 2]]), torch.tensor([[0, 1]]), torch.tensor([[1, 1]]))
    ctx = LossContext(mapping=[1], projections=_Identity(), attention_mask=torch.ones(1, 3), alignment=align)
    loss = attention_loss(Intermediates(hidden_states=(), scores={1: a_s}),
                          Intermediates(hidden_states=(), scores={1: a_t}), ctx)
    assert loss.item() == pytest.approx(1.0)  # 2 heads x 4 pairs, each (1 - 0)^2, averaged


class _Identity:
    def embedding(self, x):
        return x

    def hidden(self, i, x):
        return x


def _student_folder(tmp_path, tok):
    from transformers import AutoModel

    torch.manual_seed(1)
    folder = tmp_path / "student_start"
    AutoModel.from_config(tiny_config("bert", len(tok), layers=2, hidden=16, heads=4, ffn=32)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_distill_task_with_a_student_of_another_vocabulary(tmp_path, tiny_bert_dir, sentiment_tsv, said):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    other = other_tokenizer(tmp_path / "other", drop=("movie",))
    start = _student_folder(tmp_path, other)
    train = TrainConfig(max_steps=3, batch_size=8, lr=1e-3)
    cfg = DistillConfig(stage="task", teacher=str(tiny_bert_dir), student_path=str(start),
                        data=DataConfig(task="sst2", path=str(sentiment_tsv), max_seq_len=32),
                        losses=LossConfig(layer_mapping=[2, 4]), train=train, prediction_train=train,
                        teacher_cache=TeacherCacheConfig(dir=str(tmp_path / "cache")), output=str(tmp_path / "student"))
    out = distill(cfg)
    assert "the student reads its own tokenizer" in said.text and "of the student's positions align" in said.text
    record = json.loads((out / "bertcompress_result.json").read_text())
    assert record["tokenizers"]["layer_losses"] is True and record["tokenizers"]["same_pieces"] < 40
    assert set(record["intermediate"]["history"][-1]) >= {"hidden", "attention", "embedding"}
    # saved with the student's own tokenizer, loadable by transformers alone
    assert AutoTokenizer.from_pretrained(out).get_vocab() == other.get_vocab()
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.vocab_size == len(other)


def test_general_stage_refuses_another_vocabulary(tmp_path, tiny_bert_dir):
    other = other_tokenizer(tmp_path / "other")
    start = _student_folder(tmp_path, other)
    cfg = DistillConfig(stage="general", teacher=str(tiny_bert_dir), student_path=str(start),
                        output=str(tmp_path / "g"))
    with pytest.raises(UserError, match="different vocabularies"):
        distill(cfg)


def test_run_starts_from_a_pretrained_model_of_another_vocabulary_cut_by_etd(tmp_path, tiny_bert_dir,
                                                                          sentiment_tsv, said):
    from bertcompress.core.config import from_dict, read_saved_config
    from bertcompress.pipeline.config import PipelineConfig
    from bertcompress.pipeline.verb import run

    other = other_tokenizer(tmp_path / "other")
    start = _student_folder(tmp_path, other)  # 2 layers x 16, 4 heads, FFN 32
    steps = {"max_steps": 2, "batch_size": 8}
    cfg = from_dict(PipelineConfig, {
        "teacher": str(tiny_bert_dir), "output": str(tmp_path / "run"),
        "data": {"task": "sst2", "path": str(sentiment_tsv), "max_seq_len": 16},
        "corpus": {"max_seq_len": 16, "max_sequences": 8},
        "student": {"init": str(start), "num_layers": 1, "hidden_size": None, "num_heads": None, "ffn_size": 16},
        "augment": {"enabled": False}, "latency": False, "teacher_cache": {"dir": str(tmp_path / "cache")},
        "finetune": steps, "general": steps, "task_intermediate": steps, "task_prediction": steps})
    report = run(cfg)
    out = tmp_path / "run"
    assert not (out / "general_student").exists()  # a pre-trained start is already general
    extracted = json.loads((out / "extracted_student" / "config.json").read_text())
    assert (extracted["num_hidden_layers"], extracted["hidden_size"], extracted["intermediate_size"]) == (1, 16, 16)
    assert set(report["stage_seconds"]) == {"teacher", "extracted_student", "student", "evaluate"}
    student = json.loads((out / "student" / "config.json").read_text())
    assert student["vocab_size"] == len(other) and student["num_hidden_layers"] == 1
    assert read_saved_config(PipelineConfig, out).student.init == str(start)
    assert "the student reads its own tokenizer" in said.text


def test_run_whole_pretrained_model_and_general_on_request(tmp_path, tiny_bert_dir):
    from bertcompress.models.config import StudentConfig
    from bertcompress.pipeline.config import PipelineConfig
    from bertcompress.pipeline.verb import pretrained_start, run

    other = other_tokenizer(tmp_path / "other")
    start = _student_folder(tmp_path, other)
    whole = PipelineConfig(student=StudentConfig(init=str(start), num_layers=None, hidden_size=None, num_heads=None,
                                                 ffn_size=None))
    assert pretrained_start(whole, tmp_path) == (str(start), None) and not whole.runs_general
    cut = PipelineConfig(student=StudentConfig(init=str(start), num_layers=1, hidden_size=None, num_heads=None,
                                               ffn_size=None, extract="rand"))
    folder, extraction = pretrained_start(cut, tmp_path)
    assert extraction.num_layers == 1 and extraction.hidden_size == 16 and extraction.strategy == "rand"
    asked = PipelineConfig(teacher=str(tiny_bert_dir), student=whole.student, general_distillation="run",
                           output=str(tmp_path / "r"))
    with pytest.raises(UserError, match="different vocabularies"):  # before anything trains
        run(asked)
    assert not (tmp_path / "r").exists()
    with pytest.raises(UserError, match="student.init: no such model folder"):
        pretrained_start(PipelineConfig(student=StudentConfig(init=str(tmp_path / "nothing"))), tmp_path)


def test_quantize_with_a_teacher_of_another_vocabulary(tmp_path, tiny_bert_dir, sentiment_tsv, said):
    from bertcompress.methods.quantize.config import QuantizeTrainConfig
    from bertcompress.methods.quantize.verb import quantize
    from bertcompress.models.quantized.config import QuantConfig

    other = other_tokenizer(tmp_path / "other", drop=("movie",))
    train = TrainConfig(max_steps=2, batch_size=8, lr=1e-3)
    data = DataConfig(task="sst2", path=str(sentiment_tsv), max_seq_len=32)
    student = distill(DistillConfig(stage="task", teacher=str(tiny_bert_dir), student_path=str(_student_folder(
        tmp_path, other)), data=data, train=train, prediction_train=train,
        teacher_cache=TeacherCacheConfig(enabled=False), output=str(tmp_path / "student")))
    out = quantize(QuantizeTrainConfig(student=str(student), teacher=str(tiny_bert_dir), kd=True,
                                       quant=QuantConfig.parse("w8a8"), data=data, train=train,
                                       output=str(tmp_path / "q")))
    assert "quantize: the teacher reads its own tokenizer" in said.text
    record = json.loads((out / "bertcompress_result.json").read_text())
    assert any({"hidden", "attention"} <= set(h) for h in record["history"])


def test_teacher_cache_of_two_views_holds_the_teachers_own_reading(tmp_path, tiny_bert_dir, tiny_tokenizer):
    """The cache runs the teacher on its own encoding (other lengths than the student's)."""
    from bertcompress.data.encoding import Collator
    from bertcompress.methods.distill.objective import DistillationObjective
    from bertcompress.methods.distill.teacher_outputs import build_teacher_outputs, teacher_inputs
    from bertcompress.models.loading import load_model

    other = other_tokenizer(tmp_path / "other", drop=("movie", "film"))
    examples = [Example("a good movie", None, 1), Example("the film was dull", "a bad movie", 0)]
    features, _ = encode_for_two(other, tiny_tokenizer, examples, 32)
    features = [dict(f, index=i) for i, f in enumerate(features)]
    assert len(features[0]["input_ids"]) > len(features[0]["teacher_input_ids"])
    teacher = load_model(str(tiny_bert_dir), "classifier")
    objective = DistillationObjective(load_model(str(tiny_bert_dir), "classifier"), teacher, LossConfig(),
                                      {"hidden": 1.0}).eval()
    collate_two = Collator(0, 0)
    cache = build_teacher_outputs(objective.run_teacher, features, collate_two, objective.teacher_layers(),
                                  TeacherCacheConfig(dir=str(tmp_path / "c"), dtype="float32"),
                                  teacher=str(tiny_bert_dir), hidden_size=32, heads=4, num_layers=4,
                                  precision="fp32", device=torch.device("cpu"), progress=False)
    batch = collate_two(features)
    live = objective.run_teacher(teacher_inputs(batch))
    got = cache.fetch(batch["index"], batch["teacher_input_ids"].shape[1], torch.device("cpu"))
    mask = batch["teacher_attention_mask"].bool()
    torch.testing.assert_close(got.hidden_states[4][mask], live.hidden_states[4][mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.logits, live.logits, atol=1e-5, rtol=1e-5)
