"""Layer-mapping search: the genetic algorithm on known fitness functions, its config errors, a
tiny end-to-end search (proxy distillation + fine-tuning) with resume and the CLI, the ETD
initialisation shared by every candidate, and the held-out loss checked by hand."""

import dataclasses
import json
import random

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from bertcompress.cli import main
from bertcompress.core.config import from_dict, to_dict
from bertcompress.core.errors import UserError
from bertcompress.data.config import CorpusConfig, DataConfig
from bertcompress.methods.mapping_search.config import GeneticConfig, MappingSearchConfig
from bertcompress.methods.mapping_search.genetic import genetic_search
from bertcompress.models.config import StudentConfig
from bertcompress.train.config import TrainConfig

TARGET = (2, 3, 3, 6)


def distance_fitness(genome):
    return -sum(abs(a - b) for a, b in zip(genome, TARGET))


def test_ga_finds_the_optimum_and_scores_each_genome_once():
    calls = []

    def fitness(g):
        calls.append(g)
        return distance_fitness(g)

    ga = GeneticConfig(population=8, generations=12, seed=0)
    result = genetic_search(fitness, 4, 1, 6, ga, seeds=[(1, 2, 3, 4), (3, 4, 5, 6)])
    assert result.best == TARGET and result.best_fitness == 0
    assert len(calls) == len(set(calls)) == len(result.scores)  # every genome scored exactly once
    assert result.history[0].population[:2] == [(1, 2, 3, 4), (3, 4, 5, 6)]  # seeds open generation 0
    best = [h.best_fitness for h in result.history]
    assert best == sorted(best)  # elitism: the best never gets worse
    assert all(list(g) == sorted(g) for h in result.history for g in h.population)  # monotone
    # a converging population repeats genomes, and a repeat costs no proxy run
    assert len(calls) < 8 * 12


def test_ga_without_monotone_keeps_gene_order():
    result = genetic_search(lambda g: -abs(g[0] - 3) - abs(g[1] - 1), 2, 1, 4,
                            GeneticConfig(population=6, generations=6, seed=1), monotone=False)
    assert result.best == (3, 1)  # a decreasing mapping: only reachable without `monotone`


def test_ga_resume_replays_the_same_generations_and_scores_only_the_rest():
    ga = GeneticConfig(population=6, generations=4, seed=3)
    first = []
    full = genetic_search(distance_fitness, 4, 1, 6, ga, on_scored=lambda g, f: first.append((g, f)))
    known = dict(first[:7])  # killed after 7 scored genomes
    again = []
    resumed = genetic_search(lambda g: again.append(g) or distance_fitness(g), 4, 1, 6, ga, known=known)
    assert [h.population for h in resumed.history] == [h.population for h in full.history]
    assert set(again) == set(full.scores) - set(known)


def test_ga_small_space_repeats_instead_of_looping():
    result = genetic_search(lambda g: 1.0, 1, 1, 2, GeneticConfig(population=5, generations=2, elite=1))
    assert set(result.scores) == {(1,), (2,)} and len(result.history[0].population) == 5


@pytest.mark.parametrize("kwargs,match", [
    ({"population": 1}, "population must be >= 2"),
    ({"generations": 0}, "generations must be >= 1"),
    ({"elite": 8}, r"elite must be in \[0, population\)"),
    ({"tournament": 0}, "tournament must be >= 1"),
    ({"mutation_rate": 1.5}, r"mutation_rate must be in \[0, 1\]"),
])
def test_genetic_config_errors(kwargs, match):
    with pytest.raises(UserError, match=match):
        GeneticConfig(**kwargs)


def test_elite_defaults_to_a_quarter_of_the_population():
    assert GeneticConfig().n_elite == 2 and GeneticConfig(population=2).n_elite == 1
    assert GeneticConfig(population=12, elite=0).n_elite == 0


def test_search_config_errors():
    with pytest.raises(UserError, match="at least one task"):
        MappingSearchConfig(tasks=[])
    with pytest.raises(UserError, match="each may appear once"):
        MappingSearchConfig(tasks=[DataConfig(task="sst2"), DataConfig(task="sst2")])
    with pytest.raises(UserError, match="proxy_sequences must be >= 1"):
        MappingSearchConfig(proxy_sequences=0)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(f"the {w} movie was {v} and i loved it" for w in ("good", "bad", "fine")
                                for v in ("great", "awful", "fun")), encoding="utf-8")
    return path


def _tiny_search(tiny_bert_dir, sentiment_tsv, corpus, out, **extra) -> MappingSearchConfig:
    steps = TrainConfig(max_steps=2, batch_size=8)
    return MappingSearchConfig(
        teacher=str(tiny_bert_dir), student=StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=32),
        corpus=CorpusConfig(path=str(corpus), max_seq_len=16), proxy_sequences=16, proxy_general=steps,
        tasks=[DataConfig(task="sst2", path=str(sentiment_tsv), max_seq_len=16)], proxy_finetune=steps,
        search=GeneticConfig(population=3, generations=2, elite=1, seed=0), output=str(out),
        **{"proxy_init": "random", **extra})


def test_search_end_to_end_with_resume(tmp_path, tiny_bert_dir, sentiment_tsv, corpus, monkeypatch):
    from bertcompress.methods.mapping_search import verb as layer_mapping
    from bertcompress.methods.mapping_search.verb import search_mapping

    out = tmp_path / "search"
    cfg = _tiny_search(tiny_bert_dir, sentiment_tsv, corpus, out, final_general=TrainConfig(max_steps=2, batch_size=8))
    search_mapping(cfg)
    result = json.loads((out / "search.json").read_text())
    # the tiny teacher has 4 layers, the student 2: the hand-made mappings are scored in generation 0
    assert result["heuristics"]["uniform"]["mapping"] == [2, 4]
    assert result["heuristics"]["last"]["mapping"] == [3, 4]
    assert result["generations"][0]["population"][:2] == [[2, 4], [3, 4]]
    scored = {tuple(c["mapping"]): c for c in result["candidates"]}
    assert len(scored) == len(result["candidates"]) >= 3
    for c in scored.values():
        assert set(c["scores"]) == {"sst2"} and c["fitness"] == pytest.approx(c["scores"]["sst2"])
        assert all(1 <= n <= 4 for n in c["mapping"])
    best = result["best"]
    assert best["fitness"] == max(c["fitness"] for c in scored.values())
    assert not (out / "candidates").exists() or not any((out / "candidates").iterdir())  # models not kept
    student = AutoModel.from_pretrained(out / "student")  # the full distillation with the best mapping
    assert student.config.num_hidden_layers == 2
    assert json.loads((out / "student" / "bertcompress_result.json").read_text())["mapping"] == best["mapping"]

    with pytest.raises(UserError, match="already holds a search"):
        search_mapping(cfg)
    # resuming a finished search scores nothing again
    monkeypatch.setattr(layer_mapping, "proxy_score", lambda *a, **k: pytest.fail("re-scored a mapping"))
    search_mapping(cfg, resume=True)
    assert json.loads((out / "search.json").read_text())["best"] == best
    for change in ({"proxy_sequences": 8}, {"heldout_sequences": 8}, {"proxy_init": "etd"}):
        with pytest.raises(UserError, match="started with other settings"):
            search_mapping(dataclasses.replace(cfg, **change), resume=True)


def test_search_cli_errors(tmp_path, capsys):
    assert main(["search-mapping", "--population", "1", "-o", str(tmp_path / "s")]) == 2
    assert "search.population must be >= 2" in capsys.readouterr().err
    assert main(["search-mapping", "--teacher", str(tmp_path / "missing"), "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bertcompress: error:") and "Traceback" not in err


# ------------------------------------------------------------------ proxy_init and proxy_metric

def test_proxy_settings_default_round_trip_and_errors(tmp_path):
    from bertcompress.core.config import load_config, save_config

    cfg = MappingSearchConfig()
    # what separated mappings in benchmarks/mapping_search.py: 2,000 sequences (63 steps of 32) from extracted
    # layers; three tasks of three kinds, as the paper's three; then the full run with the best mapping
    assert (cfg.proxy_init, cfg.proxy_metric, cfg.heldout_sequences) == ("etd_mapped", "finetune", 256)
    assert cfg.proxy_sequences == 2000 and cfg.proxy_general.batch_size == 32 and cfg.corpus.max_seq_len == 64
    assert [t.task for t in cfg.tasks] == ["rt-sentiment", "mrpc", "brown-pos"]
    assert cfg.final_general is not None and cfg.validate_top == 0
    cfg = MappingSearchConfig(proxy_init="etd", proxy_metric="heldout_loss", heldout_sequences=32, tasks=[])
    assert from_dict(MappingSearchConfig, to_dict(cfg)) == cfg
    save_config(cfg, tmp_path)
    assert load_config(MappingSearchConfig, str(tmp_path / "bertcompress_config.yaml")) == cfg
    for kwargs, match in (({"proxy_init": "teacher"}, "proxy_init must be one of random, etd, etd_mapped"),
                          ({"proxy_metric": "loss"}, "proxy_metric must be one of finetune, heldout_loss"),
                          ({"heldout_sequences": 0}, "heldout_sequences must be >= 1"),
                          ({"tasks": []}, "at least one task")):  # finetune still needs its tasks
        with pytest.raises(UserError, match=match) as e:
            MappingSearchConfig(**kwargs)
        assert "\n" not in str(e.value)


@pytest.fixture
def long_corpus(tmp_path):
    """About 40 sequences of 16 tokens, ending with a shorter one (padding in the held-out set)."""
    from conftest import WORDS

    rng = random.Random(0)
    lengths = [rng.randint(8, 30) for _ in range(40)]
    lengths.append(14 + (10 - sum(lengths)) % 14)  # one token a word: 14 per sequence, a 10-token tail
    path = tmp_path / "long.txt"
    path.write_text("\n\n".join(" ".join(rng.choice(WORDS) for _ in range(n)) for n in lengths), encoding="utf-8")
    return path


def _heldout_search(tiny_bert_dir, corpus, out, **extra) -> MappingSearchConfig:
    extra.setdefault("student", StudentConfig(num_layers=2, hidden_size=32, num_heads=4, ffn_size=32))
    extra.setdefault("proxy_init", "random")
    extra.setdefault("final_general", None)
    extra.setdefault("tasks", [])
    return MappingSearchConfig(
        teacher=str(tiny_bert_dir), corpus=CorpusConfig(path=str(corpus), max_seq_len=16), proxy_sequences=16,
        proxy_general=TrainConfig(max_steps=2, batch_size=8), proxy_metric="heldout_loss", heldout_sequences=1000,
        search=GeneticConfig(population=3, generations=2, elite=1, seed=0), output=str(out), **extra)


def test_heldout_loss_best_other_than_uniform_is_flagged_unless_validated(tmp_path, tiny_bert_dir, long_corpus,
                                                                           monkeypatch, caplog):
    from bertcompress.methods.mapping_search import verb as layer_mapping
    from bertcompress.methods.mapping_search.verb import search_mapping

    # low teacher layers score best, as the per-layer held-out loss ranked them on real data
    monkeypatch.setattr(layer_mapping, "proxy_score", lambda cfg, genome, *a, **k: {
        "mapping": list(genome), "fitness": -float(sum(genome)), "heldout_loss": float(sum(genome))})
    with caplog.at_level("WARNING", logger="bertcompress"):
        search_mapping(_heldout_search(tiny_bert_dir, long_corpus, tmp_path / "low"))
    best = json.loads((tmp_path / "low" / "search.json").read_text())["best"]["mapping"]
    assert best != [2, 4] and f"heldout_loss prefers {best} to the uniform mapping" in caplog.text
    caplog.clear()
    monkeypatch.setattr(layer_mapping, "proxy_score", lambda cfg, genome, *a, **k: {
        "mapping": list(genome), "fitness": -float(sum(abs(g - 2 * (i + 1)) for i, g in enumerate(genome))),
        "heldout_loss": 0.0})  # uniform ([2,4] of 4) best: nothing to flag
    with caplog.at_level("WARNING", logger="bertcompress"):
        search_mapping(_heldout_search(tiny_bert_dir, long_corpus, tmp_path / "uniform"))
    assert "heldout_loss prefers" not in caplog.text


def test_etd_init_is_extracted_once_and_shared_by_every_candidate(tmp_path, tiny_bert_dir, long_corpus,
                                                                  monkeypatch):
    from safetensors.torch import load_file

    from bertcompress.methods.mapping_search import verb as layer_mapping
    from bertcompress.methods.mapping_search.verb import search_mapping
    from bertcompress.methods.prune import verb as verbs

    extracted, starts = [], []
    real_extract, real_distill = verbs.extract, layer_mapping.distill
    monkeypatch.setattr(verbs, "extract", lambda c: extracted.append(c) or real_extract(c))
    monkeypatch.setattr(layer_mapping, "distill", lambda c, **k: starts.append(c.student_path) or real_distill(c, **k))
    out = tmp_path / "search"
    cfg = _heldout_search(tiny_bert_dir, long_corpus, out, proxy_init="etd")
    search_mapping(cfg)
    init = out / "init"
    assert len(extracted) == 1 and extracted[0].strategy == "rand" and extracted[0].output == str(init)
    assert (extracted[0].num_layers, extracted[0].hidden_size, extracted[0].ffn_size) == (2, 32, 32)
    scored = json.loads((out / "search.json").read_text())["candidates"]
    assert len(starts) == len(scored) >= 3 and set(starts) == {str(init)}  # every candidate, the same start
    before = load_file(init / "model.safetensors")
    # resuming neither re-extracts nor re-scores, and the shared start is left as it was
    monkeypatch.setattr(verbs, "extract", lambda c: pytest.fail("extracted the initial student again"))
    monkeypatch.setattr(layer_mapping, "proxy_score", lambda *a, **k: pytest.fail("re-scored a mapping"))
    search_mapping(cfg, resume=True)
    after = load_file(init / "model.safetensors")
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # an init folder extracted for another student shape is refused, not silently reused
    other = dataclasses.replace(cfg, student=dataclasses.replace(cfg.student, ffn_size=16))
    with pytest.raises(UserError, match="extracted with other settings"):
        layer_mapping.student_init(other)


def _states_by_hand(model_dir, features) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Plain torch: the features padded into one batch; every hidden state, and the mask."""
    longest = max(len(f["input_ids"]) for f in features)
    ids = torch.tensor([f["input_ids"] + [0] * (longest - len(f["input_ids"])) for f in features])
    mask = (torch.arange(longest)[None, :] < torch.tensor([len(f["input_ids"]) for f in features])[:, None]).float()
    with torch.no_grad():
        out = AutoModel.from_pretrained(model_dir).eval()(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    return out.hidden_states, mask


def _mse(s, t, mask) -> float:
    return float((((s - t) ** 2).sum(-1) * mask).sum() / (mask.sum() * t.shape[-1]))


def test_heldout_loss_equals_the_mse_by_hand_on_sequences_the_proxy_never_saw(tmp_path, tiny_bert_dir, long_corpus):
    from bertcompress.data.corpus import chunk_corpus, load_corpus
    from bertcompress.methods.mapping_search.heldout import heldout_features
    from bertcompress.methods.mapping_search.verb import proxy_score

    cfg = _heldout_search(tiny_bert_dir, long_corpus, tmp_path / "search", keep_candidates=True)
    record = proxy_score(cfg, (1, 3), tmp_path / "candidate")  # a mapping that does not end on the last layer
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    every = chunk_corpus(tokenizer, load_corpus(cfg.corpus), 16)
    held = heldout_features(tokenizer, cfg.corpus, cfg.proxy_sequences, cfg.heldout_sequences)
    assert held == every[16:] and len(held) > cfg.proxy_general.batch_size  # more than one batch
    assert len(held[-1]["input_ids"]) < 16  # and a padded one
    general = tmp_path / "candidate" / "general"
    # the proxy trained on the first 16 sequences only: disjoint from the held-out ones
    assert json.loads((general / "bertcompress_result.json").read_text())["sequences"] == 16
    s, mask = _states_by_hand(general, held)
    t, _ = _states_by_hand(tiny_bert_dir, held)
    # each student layer against its own teacher layer, relative to that layer's mean square
    layer_mse = [_mse(s[1], t[1], mask), _mse(s[2], t[3], mask)]
    relative = [layer_mse[0] / _mse(torch.zeros_like(t[1]), t[1], mask),
                layer_mse[1] / _mse(torch.zeros_like(t[3]), t[3], mask)]
    assert record["heldout_layer_mse"] == pytest.approx(layer_mse, rel=1e-5, abs=1e-6)
    assert record["heldout_layer_relative"] == pytest.approx(relative, rel=1e-5, abs=1e-6)
    assert record["heldout_loss"] == pytest.approx(sum(relative) / 2, rel=1e-5)
    # the metric before issue 29, recorded beside it: the last student layer against the teacher's last
    assert record["heldout_last_mse"] == pytest.approx(_mse(s[2], t[4], mask), rel=1e-5, abs=1e-6)
    assert record["fitness"] == -record["heldout_loss"] and "scores" not in record


def test_heldout_loss_refuses_a_student_narrower_than_the_teacher(tmp_path, tiny_bert_dir, long_corpus,
                                                                 monkeypatch):
    from bertcompress.methods.mapping_search import verb as layer_mapping
    from bertcompress.methods.mapping_search.verb import search_mapping

    monkeypatch.setattr(layer_mapping, "proxy_score", lambda *a, **k: pytest.fail("scored a mapping"))
    cfg = _heldout_search(tiny_bert_dir, long_corpus, tmp_path / "search",
                          student=StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=32))
    with pytest.raises(UserError, match="as wide as the teacher") as e:
        search_mapping(cfg)
    assert "\n" not in str(e.value)


def test_distinct_genomes_are_strictly_increasing():
    from bertcompress.methods.mapping_search.genetic import strictly_increasing

    assert strictly_increasing((2, 2, 5), 6) == (2, 3, 5)
    assert strictly_increasing((6, 5, 6), 6) == (4, 5, 6)
    assert strictly_increasing((1, 1, 1), 3) == (1, 2, 3)
    landscape = {g: -sum((a - b) ** 2 for a, b in zip(g, (1, 3, 6))) for g in
                 [(a, b, c) for a in range(1, 7) for b in range(a + 1, 7) for c in range(b + 1, 7)]}
    seen = []
    result = genetic_search(lambda g: landscape[g], 3, 1, 6, GeneticConfig(population=6, generations=6, seed=0),
                            distinct=True, on_scored=lambda g, f: seen.append(g))
    assert seen and all(g in landscape for g in seen)  # every genome scored is strictly increasing
    assert result.best == (1, 3, 6)
    with pytest.raises(ValueError, match="distinct genes need monotone"):
        genetic_search(lambda g: 0.0, 7, 1, 6, GeneticConfig(), distinct=True)
    with pytest.raises(UserError, match="distinct needs monotone"):
        MappingSearchConfig(monotone=False, distinct=True)


def test_etd_mapped_starts_each_candidate_from_its_own_teacher_layers(tmp_path, tiny_bert_dir, long_corpus,
                                                                      monkeypatch):
    from bertcompress.methods.mapping_search import verb as layer_mapping
    from bertcompress.methods.mapping_search.verb import search_mapping
    from bertcompress.methods.prune import verb as verbs

    extracted, starts = [], []
    real_extract, real_distill = verbs.extract, layer_mapping.distill
    monkeypatch.setattr(verbs, "extract", lambda c: extracted.append(c) or real_extract(c))
    monkeypatch.setattr(layer_mapping, "distill", lambda c, **k: starts.append(c) or real_distill(c, **k))
    out = tmp_path / "search"
    search_mapping(_heldout_search(tiny_bert_dir, long_corpus, out, proxy_init="etd_mapped"))
    scored = json.loads((out / "search.json").read_text())["candidates"]
    assert len(extracted) == len(starts) == len(scored) >= 3 and not (out / "init").exists()
    for c, start in zip(extracted, starts):  # each extracted from the layers its mapping names, then distilled
        assert c.layers == start.losses.layer_mapping and start.student_path == c.output


def test_segmented_genomes_keep_each_part_in_order():
    """Two mappings in one genome (hidden states, then attention): each half sorted (and with
    distinct, strictly increasing) on its own, and the search finds a target whose halves differ."""
    target = (2, 4, 6, 1, 2, 3)
    seen = []
    result = genetic_search(lambda g: -sum(abs(a - b) for a, b in zip(g, target)), 6, 1, 6,
                            GeneticConfig(population=8, generations=15, seed=0), distinct=True, segments=2,
                            seeds=[(2, 4, 6, 2, 4, 6)], on_scored=lambda g, f: seen.append(g))
    assert all(g[:3] == tuple(sorted(set(g[:3]))) and g[3:] == tuple(sorted(set(g[3:]))) for g in seen)
    assert result.best == target
    with pytest.raises(ValueError, match="cannot be cut into 4 equal segments"):
        genetic_search(lambda g: 0.0, 6, 1, 6, GeneticConfig(), segments=4)


def test_separate_attention_search_distils_with_both_mappings(tmp_path, tiny_bert_dir, long_corpus, monkeypatch):
    from bertcompress.methods.mapping_search import verb as layer_mapping
    from bertcompress.methods.mapping_search.verb import search_mapping

    configs = []
    real_distill = layer_mapping.distill
    monkeypatch.setattr(layer_mapping, "distill", lambda c, **k: configs.append(c) or real_distill(c, **k))
    out = tmp_path / "search"
    search_mapping(_heldout_search(tiny_bert_dir, long_corpus, out, separate_attention=True, keep_candidates=True))
    saved = json.loads((out / "search.json").read_text())
    assert saved["heuristics"]["uniform"] == {"mapping": [2, 4, 2, 4], "hidden_mapping": [2, 4],
                                              "attention_mapping": [2, 4],
                                              "fitness": saved["heuristics"]["uniform"]["fitness"]}
    assert len(configs) == len(saved["candidates"]) >= 3
    for c, scored in zip(configs, saved["candidates"]):
        hidden, attention = scored["mapping"][:2], scored["mapping"][2:]
        assert (scored["hidden_mapping"], scored["attention_mapping"]) == (hidden, attention)
        assert (c.losses.layer_mapping, c.losses.attention_mapping) == (hidden, attention)
        general = json.loads((out / "candidates" / "-".join(map(str, scored["mapping"])) / "general"
                              / "bertcompress_result.json").read_text())
        assert general["mapping"] == hidden  # the distillation ran with both
        assert general.get("attention_mapping", hidden) == attention
    with pytest.raises(UserError, match="separate_attention needs both"):
        no_attention = {**MappingSearchConfig().losses.weights, "attention": 0.0}
        MappingSearchConfig(separate_attention=True, losses=dataclasses.replace(MappingSearchConfig().losses,
                                                                                weights=no_attention))


# ------------------------------------------------------------------ validation against full runs

def test_spearman_by_hand_with_ties():
    from bertcompress.methods.mapping_search.validation import ranks, spearman

    assert ranks([0.3, 0.1, 0.3, 0.2]) == [3.5, 1.0, 3.5, 2.0]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1, 2, 3) against (2, 1, 3): 1 - 6 * (1 + 1 + 0) / (3 * 8) = 0.5
    assert spearman([0.1, 0.2, 0.3], [5.0, 4.0, 6.0]) == pytest.approx(0.5)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 2, 3], [7, 7, 7]) is None


def test_validation_records_full_scores_and_the_rank_agreement(tmp_path, tiny_bert_dir, sentiment_tsv, long_corpus,
                                                              monkeypatch):
    from bertcompress.methods.mapping_search import validation
    from bertcompress.methods.mapping_search.validation import spearman
    from bertcompress.methods.mapping_search.verb import search_mapping

    steps = TrainConfig(max_steps=2, batch_size=8)
    out = tmp_path / "search"
    cfg = _heldout_search(tiny_bert_dir, long_corpus, out, final_general=steps, validate_top=1, proxy_finetune=steps,
                          tasks=[DataConfig(task="sst2", path=str(sentiment_tsv), max_seq_len=16)])
    search_mapping(cfg)
    saved = json.loads((out / "search.json").read_text())
    val = saved["validation"]
    best, uniform, last = saved["best"]["mapping"], [2, 4], [3, 4]
    rows = list(val["mappings"].values())
    assert [r["mapping"] for r in rows] == [list(m) for m in dict.fromkeys(map(tuple, [best, uniform, last]))]
    fitness = {tuple(c["mapping"]): c["fitness"] for c in saved["candidates"]}
    for r in rows:
        assert r["proxy_fitness"] == fitness[tuple(r["mapping"])] and set(r["scores"]) == {"sst2"}
        assert r["full"] == r["scores"]["sst2"] and 0 <= r["full"] <= 1
    assert val["spearman_proxy_full"] == spearman([r["proxy_fitness"] for r in rows], [r["full"] for r in rows])
    top = max(rows, key=lambda r: r["proxy_fitness"])
    assert top["mapping"] == best and val["proxy_best_is_full_best"] == (top["full"] == max(r["full"] for r in rows))
    assert (out / "student").is_dir() and not (out / "validation" / "-".join(map(str, uniform)) / "general").exists()
    # a resumed run reads the finished validation back: nothing is fine-tuned again
    monkeypatch.setattr(validation, "finetune", lambda *a, **k: pytest.fail("fine-tuned again"))
    search_mapping(cfg, resume=True)
    assert json.loads((out / "search.json").read_text())["validation"] == val
    with pytest.raises(UserError, match="validate_top needs final_general"):
        MappingSearchConfig(validate_top=2, final_general=None)
