"""The attack on a tiny BERT trained so that one word ('good' / 'bad') decides the label."""

import random

import pytest
import torch
import torch.nn.functional as F

from bertcompress.core.errors import UserError
from bertcompress.data.substitutes import MaskedLMCandidates, stop_words
from bertcompress.evaluation.attack import _candidates, attack, word_importance
from bertcompress.evaluation.config import AttackConfig
from conftest import biased_mlm, fake_wordnet, seeded, tiny_config

NOUNS = "movie film story plot actor acting day man woman dog cat world life work".split()


def toy_sentence(rng: random.Random, adjective: str) -> str:
    """'the' and 2-4 nouns, the adjective at a random place: only its presence tells the label."""
    words = ["the"] + [rng.choice(NOUNS) for _ in range(rng.randint(2, 4))]
    words.insert(rng.randint(1, len(words)), adjective)
    return " ".join(words)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small gain nothing from threads, and on a busy machine waiting threads make
    them several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy_model(tiny_tokenizer):
    """Trained full-batch until it fits: 'good' means 1, 'bad' means 0, neither means 50/50 (so
    that deleting either word matters)."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    cfg = tiny_config("bert", len(tiny_tokenizer), layers=1)
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
    model = AutoModelForSequenceClassification.from_config(cfg)
    rng = random.Random(0)
    data = [(toy_sentence(rng, w), t) for _ in range(48) for w, t in (("good", 1.0), ("bad", 0.0), ("", 0.5))]
    enc = tiny_tokenizer([" ".join(s.split()) for s, _ in data], padding=True, return_tensors="pt")
    target = torch.tensor([[1 - t, t] for _, t in data])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        kl = F.kl_div(model(**enc).logits.log_softmax(-1), target, reduction="batchmean")
        if kl.item() < 0.03:
            break
        opt.zero_grad()
        kl.backward()
        opt.step()
    assert kl.item() < 0.03
    return model.eval()


def test_deletion_importance_ranks_the_decisive_word_first(toy_model, tiny_tokenizer):
    ranked = word_importance(toy_model, tiny_tokenizer, "the dog cat good", 1)
    assert [w for w, _ in ranked][0] == "good"
    assert {w for w, _ in ranked} == {"dog", "cat", "good"}  # stop words are not attacked
    assert ranked[0][1] > ranked[1][1] + 0.1


def test_attack_flips_the_label_within_budget(toy_model, tiny_tokenizer):
    rng = random.Random(1)
    examples = [(toy_sentence(rng, "good"), 1), (toy_sentence(rng, "bad"), 0), (toy_sentence(rng, "good"), 0)]
    cfg = AttackConfig(sources=("embedding",), candidates_k=200, max_queries=200, progress=False)
    out = attack(toy_model, tiny_tokenizer, examples, config=cfg)
    assert out["examples"] == 3 and out["attacked"] == 2 and out["sources"] == ["embedding"]
    assert out["clean_accuracy"] == pytest.approx(2 / 3)
    assert out["attack_success_rate"] == 1.0 and out["attack_accuracy"] == 0.0
    skipped = out["records"][2]
    assert skipped["status"] == "skipped" and skipped["queries"] == 1  # wrong already: not attacked
    shares = []
    for rec in out["records"][:2]:
        words, new = rec["original"].split(), rec["adversarial"].split()
        assert rec["success"] and rec["adversarial_prediction"] != rec["label"]
        assert [c["original"] for c in rec["changed_words"]] == ["good" if rec["label"] else "bad"]
        assert sum(a != b for a, b in zip(words, new)) == 1 and len(new) == len(words)
        assert rec["words_changed_share"] == pytest.approx(1 / len(words))
        assert rec["words_changed_share"] <= cfg.max_change_share
        attackable = len(words) - 1  # all but "the"
        assert 1 + attackable < rec["queries"] <= cfg.max_queries  # clean + deletions + candidates
        shares.append(rec["words_changed_share"])
    assert out["mean_words_changed_share"] == pytest.approx(sum(shares) / 2)


def test_query_count_is_exact_and_capped(toy_model, tiny_tokenizer):
    text = "the dog cat good"
    cfg = AttackConfig(sources=("embedding",), candidates_k=200, max_queries=4, progress=False)
    rec = attack(toy_model, tiny_tokenizer, [(text, 1)], config=cfg)["records"][0]
    assert rec["queries"] == 4 and not rec["success"]  # clean + 3 deletions: none left to substitute
    cfg.max_queries = 10_000
    rec = attack(toy_model, tiny_tokenizer, [(text, 1)], config=cfg)["records"][0]
    assert rec["success"] and rec["queries"] <= 1 + 3 + 200


def test_change_budget_forbids_success(toy_model, tiny_tokenizer):
    cfg = AttackConfig(sources=("embedding",), candidates_k=200, max_change_share=0.1, progress=False)
    out = attack(toy_model, tiny_tokenizer, [("the dog cat good", 1)], config=cfg)
    rec = out["records"][0]
    assert rec["status"] == "failed" and rec["changed_words"] == [] and rec["adversarial"] is None
    assert out["attack_success_rate"] == 0.0 and out["attack_accuracy"] == 1.0
    assert out["mean_words_changed_share"] is None


def test_pairs_keep_text_b_and_regressors_are_refused(toy_model, tiny_tokenizer, tmp_path):
    cfg = AttackConfig(sources=("embedding",), candidates_k=200, progress=False)
    out = attack(toy_model, tiny_tokenizer, [("the dog good", "a cat", 1)], config=cfg)
    assert out["records"][0]["text_b"] == "a cat"
    toy_model.config.num_labels = 1
    try:
        with pytest.raises(UserError):
            attack(toy_model, tiny_tokenizer, [("the dog good", 1.0)], config=cfg)
    finally:
        toy_model.config.num_labels = 2
    with pytest.raises(UserError):
        attack(toy_model, tiny_tokenizer, [("x", 1)], config=AttackConfig(sources=("glove",)))


def test_wordnet_source(toy_model, tiny_tokenizer, tmp_path):
    cfg = AttackConfig(sources=("wordnet",), wordnet_dir=str(fake_wordnet(tmp_path)), progress=False)
    rec = attack(toy_model, tiny_tokenizer, [("the dog cat good", 1)], config=cfg)["records"][0]
    assert rec["success"] and rec["changed_words"][0]["new"] in ("fine", "bad")


def test_mlm_source(toy_model, tiny_tokenizer, tmp_path):
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    BertForMaskedLM(tiny_config("bert", len(tiny_tokenizer), layers=1)).save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    cfg = AttackConfig(sources=("mlm",), candidates_k=5, mlm_model=str(tmp_path), progress=False)
    out = attack(toy_model, tiny_tokenizer, [("the dog cat good", 1)], config=cfg)
    rec = out["records"][0]
    assert out["sources"] == ["mlm"] and rec["status"] in ("succeeded", "failed")
    assert rec["queries"] <= 1 + 3 + 3 * 5


def test_bad_configs_are_refused(toy_model, tiny_tokenizer, tmp_path):
    with pytest.raises(UserError):
        AttackConfig(max_change_share=0)
    with pytest.raises(UserError):
        attack(toy_model, tiny_tokenizer, [("the dog good", 2)], config=AttackConfig(progress=False))
    with pytest.raises(UserError):  # no source available: refuse rather than report a robust model
        attack(toy_model, tiny_tokenizer, [("the dog good", 1)],
               config=AttackConfig(sources=("wordnet",), wordnet_dir=str(tmp_path), progress=False))


def test_merged_candidates_drop_stop_words_and_the_word_itself(tiny_tokenizer):
    # the MLM's best are the word itself ("Good" in the text), then "the" (a stop word)
    bias = {"good": 200, "the": 100, "great": 50, "bad": 40}
    mlm = MaskedLMCandidates(biased_mlm(tiny_tokenizer, bias), tiny_tokenizer)
    words = ["a", "Good", "movie"]
    assert mlm.candidates(words, 1, 3) == ["the", "great", "bad"]  # the source drops the word itself
    merged = _candidates({"mlm": mlm}, words, [1], 3)[1]
    assert merged == ["Great", "Bad"]  # stop word dropped, case matched to the original
    assert not {w.lower() for w in merged} & (stop_words() | {"good"})


def test_attack_unchanged_on_fixed_seed(tiny_tokenizer, tmp_path):
    """Recorded before the candidate sources moved to data/substitutes.py: the move changed nothing."""
    from transformers import BertForMaskedLM, BertForSequenceClassification

    mlm = seeded(BertForMaskedLM(tiny_config("bert", len(tiny_tokenizer), layers=1)), 0)
    mlm.save_pretrained(tmp_path / "mlm")
    tiny_tokenizer.save_pretrained(tmp_path / "mlm")
    model = seeded(BertForSequenceClassification(tiny_config("bert", len(tiny_tokenizer), layers=1)), 1)
    sentences = ["the good movie was really fun .", "i love dogs and cats", "a terrible plot , boring actors !",
                 "she saw the worst film of the year", "Brilliant acting but dull story"]
    cfg = AttackConfig(candidates_k=8, max_queries=60, mlm_model=str(tmp_path / "mlm"), progress=False,
                       wordnet_dir=str(fake_wordnet(tmp_path)), max_change_share=0.5)
    out = attack(model, tiny_tokenizer, list(zip(sentences, [1, 0, 1, 1, 0])), config=cfg)
    assert out["sources"] == ["mlm", "embedding", "wordnet"]
    got = [(r["status"], r["queries"], r["adversarial"], [(c["position"], c["new"]) for c in r["changed_words"]])
           for r in out["records"]]
    assert got == [("succeeded", 13, "the day movie was really fun .", [(1, "day")]),
                   ("succeeded", 14, "i work dogs and cat", [(1, "work"), (4, "cat")]),
                   ("succeeded", 13, "a day plot , boring actors !", [(1, "day")]),
                   ("succeeded", 21, "she child the good film of the year", [(1, "child"), (3, "good")]),
                   ("succeeded", 11, "Brilliant acting but dull year", [(4, "year")])]


def test_word_list_source(toy_model, tiny_tokenizer, tmp_path):
    words = tmp_path / "neighbours.txt"
    words.write_text("good  fine,bad good\n\nmovie film\n", encoding="utf-8")
    cfg = AttackConfig(sources=("embedding",), candidates_from=str(words), candidates_k=5, progress=False)
    out = attack(toy_model, tiny_tokenizer, [("the dog cat good", 1)], config=cfg)
    assert out["sources"] == ["wordlist"] and out["candidates_from"] == str(words)
    rec = out["records"][0]
    assert rec["success"] and [c["new"] for c in rec["changed_words"]] in (["fine"], ["bad"])
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(UserError, match="holds no words"):
        attack(toy_model, tiny_tokenizer, [("the dog good", 1)],
               config=AttackConfig(candidates_from=str(tmp_path / "empty.txt"), progress=False))


def test_candidates_come_from_the_reference_not_the_attacked_model(toy_model, tiny_tokenizer, tmp_path):
    """Two models with different input embeddings attacked from one reference face the same
    candidate words; each from its own embeddings would not."""
    from bertcompress.evaluation.attack import build_candidates

    other = type(toy_model)(toy_model.config)  # same vocabulary, other (random) embeddings
    toy_model.save_pretrained(tmp_path / "reference")
    tiny_tokenizer.save_pretrained(tmp_path / "reference")
    cfg = AttackConfig(sources=("embedding",), candidates_k=10, progress=False)
    shared = build_candidates(cfg, str(tmp_path / "reference"))
    words = "the dog cat good".split()
    ref_lists = _candidates(shared.sources, words, [1, 2, 3], 10)
    own_lists = _candidates(build_candidates(cfg, model=other, tokenizer=tiny_tokenizer).sources, words, [1, 2, 3], 10)
    assert ref_lists != own_lists  # the premise: the two embedding spaces propose other words
    for model in (toy_model, other):
        out = attack(model, tiny_tokenizer, [("the dog cat good", 1)], config=cfg, candidates=shared)
        assert out["candidates_from"] == str(tmp_path / "reference")
        for change in out["records"][0]["changed_words"]:
            assert change["new"].lower() in [c.lower() for c in ref_lists[change["position"]]]
