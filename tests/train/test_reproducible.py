"""A run is reproducible from its config alone: what a verb builds at random before its training
loop starts (a fresh task head on a pre-trained encoder) is seeded too."""

import torch
from safetensors.torch import load_file
from transformers import AutoModel

from bertcompress.cli import main
from conftest import tiny_config


def test_finetune_twice_gives_the_same_weights(tmp_path, tiny_tokenizer, sentiment_tsv):
    encoder = tmp_path / "encoder"  # no task head, like all-MiniLM-L6-v2: fine-tuning adds a random one
    AutoModel.from_config(tiny_config("bert", len(tiny_tokenizer))).save_pretrained(encoder)
    tiny_tokenizer.save_pretrained(encoder)
    args = ["--model", str(encoder), "--data", str(sentiment_tsv), "--set", "train.batch_size=8",
            "--set", "train.max_steps=2", "--set", "data.task=sst2", "--set", "train.device=cpu"]
    runs = []
    for i in range(2):
        torch.manual_seed(1000 + i)  # whatever the caller's generator holds
        assert main(["finetune", *args, "-o", str(tmp_path / str(i))]) == 0
        runs.append(load_file(tmp_path / str(i) / "model.safetensors"))
    assert runs[0].keys() == runs[1].keys()
    for name in runs[0]:
        torch.testing.assert_close(runs[0][name], runs[1][name], rtol=0, atol=0, msg=name)
