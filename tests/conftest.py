"""Shared fixtures: a tiny word-piece tokenizer and tiny random encoders of each family."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

WORDS = (
    "the a an and or but not no is was are be it this that good bad great terrible movie film "
    "story plot actor acting fun boring love hate best worst very really quite so too funny sad "
    "happy dull brilliant awful nice poor fine i you he she we they my your his her our their "
    "of in on at to for with by from about as into like than then there here when what who how "
    "why all some any more most less many much one two three time day year man woman people "
    "thing way life world hand part child eye place work week case point number group problem "
    "fact cat dog sat mat run ran went go come came see saw make made take took know knew think"
).split()
SUFFIXES = ["##s", "##ed", "##ing", "##ly", "##er", "##est", "##y", "##n", "##t"]
LETTERS = list("abcdefghijklmnopqrstuvwxyz") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
PUNCT = list(".,!?'\"-:;()")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_vocab(folder: Path) -> Path:
    vocab = SPECIALS + PUNCT + WORDS + SUFFIXES + LETTERS
    seen, out = set(), []
    for t in vocab:
        if t not in seen:
            seen.add(t)
            out.append(t)
    path = folder / "vocab.txt"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("tok")
    write_vocab(folder)
    tok = BertTokenizerFast.from_pretrained(folder, do_lower_case=True)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def tiny_config(model_type: str, vocab_size: int, layers: int = 4, hidden: int = 32, heads: int = 4,
                ffn: int = 64, num_labels: int = 2):
    """A tiny random config of the given family, sized alike across families."""
    from transformers import AutoConfig

    if model_type == "distilbert":
        return AutoConfig.for_model("distilbert", vocab_size=vocab_size, n_layers=layers, dim=hidden,
                                    n_heads=heads, hidden_dim=ffn, max_position_embeddings=128,
                                    num_labels=num_labels, pad_token_id=0)
    extra = {"electra": {"embedding_size": hidden},
             # factorised embeddings narrower than the layers, one layer applied `layers` times
             "albert": {"embedding_size": hidden // 2, "num_hidden_groups": 1, "inner_group_num": 1},
             # as DeBERTa-v3: both relative-position terms, shared position keys, no token types
             "deberta-v2": {"relative_attention": True, "pos_att_type": ["p2c", "c2p"], "position_buckets": 16,
                            "max_relative_positions": -1, "share_att_key": True, "norm_rel_ebd": "layer_norm",
                            "type_vocab_size": 0},
             # local layers see 2 tokens each side: a 7-token test sequence is cut by the window
             "modernbert": {"global_attn_every_n_layers": 2, "local_attention": 4, "bos_token_id": 2,
                            "eos_token_id": 3, "cls_token_id": 2, "sep_token_id": 3},
             }.get(model_type, {})
    return AutoConfig.for_model(model_type, vocab_size=vocab_size, num_hidden_layers=layers,
                                hidden_size=hidden, num_attention_heads=heads, intermediate_size=ffn,
                                max_position_embeddings=130, num_labels=num_labels, pad_token_id=0,
                                **{"type_vocab_size": 2, **extra})


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, tiny_tokenizer_dir, tiny_tokenizer) -> Path:
    """A saved tiny BERT sequence classifier with the tiny tokenizer beside it."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_bert")
    model = AutoModelForSequenceClassification.from_config(tiny_config("bert", len(tiny_tokenizer)))
    model.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def sentiment_tsv(tmp_path) -> Path:
    """A small SST-2-style folder with train and dev files."""
    pos = ["a great movie", "really good fun", "the best film", "i love this story", "brilliant acting"]
    neg = ["a terrible movie", "really bad plot", "the worst film", "i hate this story", "awful acting"]
    folder = tmp_path / "SST-2"
    folder.mkdir()
    rows = [f"{s}\t1" for s in pos] + [f"{s}\t0" for s in neg]
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows * 4) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def corpus_file(tmp_path) -> Path:
    """A small general-distillation corpus: one-line documents about films."""
    text = "\n\n".join(f"the {w} movie was {v} and i {f} it" for w in ("good", "bad", "fine", "dull")
                       for v in ("great", "awful", "fun") for f in ("love", "hate"))
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def plain_logging():
    """Each test starts with bertcompress's logger as a library leaves it (a benchmark module
    imported by a test sets it up as the CLI does)."""
    from bertcompress.core.log import log

    log.handlers[:], log.propagate = [], True
    log.setLevel(logging.NOTSET)


@pytest.fixture
def said(caplog):
    """What bertcompress logged (info and up) during the test: `said.text`."""
    caplog.set_level(logging.INFO, logger="bertcompress")
    return caplog


def seeded(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every weight drawn from one seeded generator: the same model whatever `transformers`'
    initialisation does, so outputs can be compared with values recorded earlier."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.eval()


def biased_mlm(tokenizer, bias: dict[str, float] | None = None):
    """A random tiny masked LM whose output bias makes "great" the best allowed word."""
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config("bert", len(tokenizer)))
    out_bias = model.get_output_embeddings().bias
    with torch.no_grad():
        out_bias.zero_()
        for t, v in (bias or {"good": 100, "[SEP]": 90, "##s": 80, ".": 75, "great": 50, "bad": 40}).items():
            out_bias[tokenizer.convert_tokens_to_ids(t)] = v
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


SENTENCES = ["a great movie", "the worst film i saw this year", "really quite boring", "i love this story !",
             "an awful plot but brilliant acting", "fun"]


# Run by a fresh interpreter on a copy of the folder: plain transformers and onnxruntime only.
STANDARD_TOOLS = """
import json, sys
import numpy as np, onnxruntime as ort, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, sentences = sys.argv[1], json.loads(sys.argv[2])
tok = AutoTokenizer.from_pretrained(folder)
model, info = AutoModelForSequenceClassification.from_pretrained(folder, output_loading_info=True)
with torch.no_grad():
    logits = model.eval()(**tok(sentences, padding=True, return_tensors="pt")).logits
session = ort.InferenceSession(folder + "/onnx/model.onnx", providers=["CPUExecutionProvider"])
enc = tok(sentences, padding=True, return_tensors="np")
onnx_logits = session.run(["logits"], {i.name: enc[i.name] for i in session.get_inputs()})[0]
assert not [m for m in sys.modules if m.startswith("bertcompress")]
print(json.dumps({"info": {k: sorted(map(str, v)) for k, v in info.items()}, "logits": logits.tolist(),
                  "onnx": np.asarray(onnx_logits).tolist()}))
"""


def float_activations(model):
    """The in-memory fake-quantized model with its activation quantizers off: quantized weights only."""
    import copy

    from bertcompress.models.quantized.modules import QuantLinear

    plain = copy.deepcopy(model)
    for m in plain.modules():
        if isinstance(m, QuantLinear):
            m.act_quant = None
    return plain
