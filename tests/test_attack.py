"""The attack on a tiny BERT trained so that one word ('good' / 'bad') decides the label."""

import random

import pytest
import torch
import torch.nn.functional as F

from bertcompress.errors import UserError
from bertcompress.evaluation.attack import AttackConfig, WordNetSynonyms, attack, word_importance
from conftest import tiny_config

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


def fake_wordnet(folder):
    """A two-synset WordNet in the real file format (offsets are byte positions in data.adj)."""
    header = "  1 a licence line, indented as in the real files  \n"
    first = "00000000 00 a 02 good 0 fine(a) 0 000 | a gloss  \n"
    offset = len(header) + len(first)
    lines = [header, first.replace("00000000", f"{len(header):08d}"),
             f"{offset:08d} 00 s 02 good 1 bad 0 000 | a silly synset for the test  \n"]
    (folder / "data.adj").write_text("".join(lines), encoding="utf-8")
    (folder / "index.adj").write_text(header + f"good a 2 0 2 0 {len(header):08d} {offset:08d}  \n", encoding="utf-8")
    for pos in ("noun", "verb", "adv"):
        (folder / f"index.{pos}").write_text(header, encoding="utf-8")
        (folder / f"data.{pos}").write_text(header, encoding="utf-8")
    return folder


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


def test_wordnet_reader_and_source(toy_model, tiny_tokenizer, tmp_path):
    folder = fake_wordnet(tmp_path)
    wn = WordNetSynonyms.find(str(folder))
    assert wn.synonyms("Good", 5) == ["fine", "bad"] and wn.synonyms("film", 5) == []
    assert WordNetSynonyms.find(str(tmp_path / "missing")) is None
    cfg = AttackConfig(sources=("wordnet",), wordnet_dir=str(folder), progress=False)
    rec = attack(toy_model, tiny_tokenizer, [("the dog cat good", 1)], config=cfg)["records"][0]
    assert rec["success"] and rec["changed_words"][0]["new"] in ("fine", "bad")


@pytest.mark.skipif(WordNetSynonyms.find() is None, reason="WordNet database not installed")
def test_real_wordnet():
    assert "film" in WordNetSynonyms.find().synonyms("movie", 10)


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
