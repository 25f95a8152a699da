"""`cvt`: Cross-View Training of a CNN-BiLSTM tagger end to end.

    1. data: the labelled file split train/dev/test, the labelled budget sampled from train, the
       unlabelled sentences gathered (sentences.py); vocabularies from the budget and the unlabelled
       words (never from dev or test)
    2. training on the shared loop (objective.py), scored on dev with the EMA weights
    3. the output folder: model.safetensors, cvt_config.json, words/chars/tags.json (saving.py),
       model.onnx (onnx_tagger.py), bertcompress_result.json (dev and test metrics, the trivial
       baseline, parameters, training time), bertcompress_config.yaml
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from bertcompress.core.config import save_config, to_dict
from bertcompress.core.errors import UserError
from bertcompress.core.io import atomic_dir, atomic_write_json, writes_output
from bertcompress.core.log import log
from bertcompress.evaluation.metrics import learned
from bertcompress.evaluation.tagging_metrics import tagging_trivial_baseline
from bertcompress.methods.cvt.config import CvtConfig
from bertcompress.methods.cvt.model import CvtTagger, primary_parameters
from bertcompress.methods.cvt.objective import CvtObjective, UnlabelledBatches
from bertcompress.methods.cvt.onnx_tagger import compare_runtimes, export_cvt_onnx
from bertcompress.methods.cvt.predict import score_tagger
from bertcompress.methods.cvt.saving import save_tagger
from bertcompress.methods.cvt.sentences import LabelledData, labelled_data, unlabelled_sentences
from bertcompress.methods.cvt.vocab import CvtCollator, CvtVocab
from bertcompress.methods.cvt.word_vectors import load_word_vectors
from bertcompress.models.card import CardFacts, write_model_card
from bertcompress.models.saving import RESULT_FILENAME, checkpoint_dir, drop_checkpoints
from bertcompress.train.config import TrainConfig
from bertcompress.train.distributed import refuse_ddp
from bertcompress.train.loop import TrainResult, seed_run, train_loop

ONNX_FILE = "model.onnx"


@writes_output
def cvt(cfg: CvtConfig, *, resume: bool = False) -> Path:
    """Train a tagger by Cross-View Training; write it to `cfg.output` and return that path."""
    refuse_ddp("cvt is not supported under torchrun (DDP): run it as one process")
    seed_run(cfg.train.seed)
    data = labelled_data(cfg.data)
    unlabelled = _unlabelled(cfg, data)
    vocab = CvtVocab.build([s.tokens for s in data.train], unlabelled, data.tags, lowercase=cfg.model.lowercase,
                           min_count=cfg.model.min_count, max_vocab=cfg.model.max_vocab,
                           max_word_length=cfg.model.max_word_length)
    tagger = CvtTagger(cfg.model, vocab, cfg.unlabelled.views)
    pretrained = None
    if cfg.model.word_vectors is not None:
        pretrained = load_word_vectors(tagger.word_embed, vocab, cfg.model.word_vectors)
        log.info(f"cvt: {pretrained:,} of {len(vocab.words) - 2:,} words start from {cfg.model.word_vectors}")
    log.info(f"cvt: {len(data.train):,} labelled and {len(unlabelled):,} unlabelled sentences, "
             f"{len(data.tags)} tags, {len(vocab.words):,} words; {primary_parameters(tagger):,} parameters to tag")
    batches = (UnlabelledBatches(unlabelled, vocab, cfg.train.batch_size, cfg.train.seed, tagger.min_chars)
               if unlabelled else None)
    m = cfg.model
    objective = CvtObjective(tagger, batches, weight=cfg.unlabelled.weight, dropout_labelled=m.dropout_labelled,
                             dropout_unlabelled=m.dropout_unlabelled, label_smoothing=m.label_smoothing,
                             ema=cfg.ema, grad_accum=cfg.train.grad_accum, schedule=cfg.unlabelled.schedule)
    features = [vocab.encode(s.tokens, s.tags) for s in data.train]
    # the method's settings and data sizes: --resume refuses a checkpoint written with others
    settings = {"data": to_dict(cfg.data), "unlabelled": to_dict(cfg.unlabelled), "model": to_dict(cfg.model),
                "ema": cfg.ema, "words": len(vocab.words), "unlabelled_sentences": len(unlabelled)}
    run = train_loop(objective, features, CvtCollator(tagger.min_chars), loop_budget(cfg),
                     config=cfg, work_dir=checkpoint_dir(cfg.output, "cvt"), resume=resume,
                     evaluate=lambda o: score_tagger(o.averaged, data.dev), desc="cvt", settings=settings)
    final = objective.averaged.cpu().eval()
    result = _result(cfg, final, data, unlabelled, run)
    result["data"]["pretrained_words"] = pretrained
    return _publish(cfg, final, data, result)


def loop_budget(cfg: CvtConfig) -> TrainConfig:
    """The loop's settings: train.* counts labelled minibatches; the alternate schedule spends every
    other step on an unlabelled one, so its loop runs twice the steps (or epochs)."""
    t = cfg.train
    if cfg.unlabelled.schedule != "alternate" or cfg.unlabelled.weight == 0:
        return t
    return replace(t, epochs=2 * t.epochs, max_steps=None if t.max_steps is None else 2 * t.max_steps,
                   min_steps=2 * t.min_steps)


def _unlabelled(cfg: CvtConfig, data: LabelledData) -> list[list[str]]:
    if cfg.unlabelled.weight == 0:
        return []
    sentences = unlabelled_sentences(cfg.unlabelled, data.rest, cfg.data)
    if not sentences:
        raise UserError("cvt has no unlabelled sentences: add unlabelled.paths, or keep unlabelled.rest_of_train with "
                        "a data.labelled_limit below the train split's size, or set unlabelled.weight 0 to train on "
                        "the labels alone")
    return sentences


def _result(cfg: CvtConfig, tagger: CvtTagger, data: LabelledData, unlabelled: list[list[str]],
            run: TrainResult) -> dict[str, Any]:
    dev = run.final_eval or score_tagger(tagger, data.dev)  # a resumed, finished run evaluated nothing
    trivial = tagging_trivial_baseline([s.tags for s in data.dev], data.tags)
    result = {"method": "cvt", "eval_split": "dev", "dev": dev,
              "test": score_tagger(tagger, data.test) if data.test else None,
              **trivial, "learned": learned(dev["score"], trivial["trivial_score"]),
              "parameters": {"primary": primary_parameters(tagger),
                             "total": sum(p.numel() for p in tagger.parameters())},
              "data": {"labelled": len(data.train), "unlabelled": len(unlabelled), "dev": len(data.dev),
                       "test": len(data.test), "tags": len(data.tags), "words": len(tagger.vocab.words),
                       "chars": len(tagger.vocab.chars)},
              "train_seconds": round(run.seconds, 1), "steps": run.steps, "history": run.history}
    if run.best_step is not None:
        result["best_step"] = run.best_step
    if not result["learned"]:
        log.warning(f"cvt: dev score {dev['score']:.3f} is not clearly above the trivial baseline "
                    f"({trivial['trivial_predictor']}: {trivial['trivial_score']:.3f}); try more steps (train.epochs, "
                    "train.max_steps) or another learning rate")
    return result


def _card_facts(cfg: CvtConfig, result: dict[str, Any]) -> CardFacts:
    name = Path(cfg.output).name
    params = result["parameters"]["total"]  # counted once, for the result record
    facts = CardFacts(name=name, command="cvt", model_kind="token_classifier", library="bertcompress",
                      shape=f"A CNN-BiLSTM tagger trained by Cross-View Training: {params / 1e6:.1f}M parameters",
                      task="tagging", split="dev", scores=result["dev"])
    facts.load = ("from bertcompress.methods.cvt.predict import predict_tags\n"
                  "from bertcompress.methods.cvt.saving import load_cvt\n\n"
                  f"tagger = load_cvt(\"path/to/{name}\")\n"
                  "predict_tags(tagger, [\"The jury said it was fine .\"])  # model.onnx runs it without us")
    return facts


def _publish(cfg: CvtConfig, tagger: CvtTagger, data: LabelledData, result: dict[str, Any]) -> Path:
    with atomic_dir(cfg.output) as tmp:
        save_tagger(tagger, tmp)
        if cfg.onnx:
            export_cvt_onnx(tagger, tmp / ONNX_FILE)
        if cfg.runtimes:
            split = "test" if data.test else "dev"
            result["runtimes"] = {"split": split, **compare_runtimes(tagger, tmp / ONNX_FILE, getattr(data, split))}
        atomic_write_json(tmp / RESULT_FILENAME, result)
        save_config(cfg, tmp)
        write_model_card(tmp, _card_facts(cfg, result))
    drop_checkpoints(cfg.output)
    test = result["test"]
    log.info(f"cvt: dev {result['dev']['score']:.4f}"
          + (f", test {test['score']:.4f}" if test else "") + f"; wrote {cfg.output}")
    return Path(cfg.output)
