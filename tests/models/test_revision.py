"""Pinned Hub models and datasets: `NAME@REVISION` reaches every `from_pretrained` call as
`revision`, and `data.config_name` / `data.revision` reach `datasets.load_dataset`; tested up to the
call that would go to the network."""

from __future__ import annotations

import pytest

from bertcompress.core.errors import UserError
from bertcompress.data.config import DataConfig
from bertcompress.data.kinds import load_examples
from bertcompress.models import loading
from bertcompress.models.loading import load_model, load_tokenizer, model_config, resolve_model_path, split_revision


class ReachedTheHub(Exception):
    """Raised where `transformers` or `datasets` would go to the network."""


def recorder(calls: list):
    def call(*args, **kwargs):
        calls.append((args, kwargs))
        raise ReachedTheHub
    return call


@pytest.mark.parametrize("name, expected", [
    ("bert-base-uncased@v1.0", ("bert-base-uncased", "v1.0")),
    ("microsoft/deberta-v3-small@4f3c1a2", ("microsoft/deberta-v3-small", "4f3c1a2")),
    ("bert-base-uncased", ("bert-base-uncased", None)),
    ("runs/a/b@c", ("runs/a/b@c", None)),  # a path, not a Hub id
    ("name@", ("name@", None)),
])
def test_split_revision(name, expected):
    assert split_revision(name) == expected


def test_a_local_folder_named_with_an_at_is_a_folder(tmp_path, tiny_bert_dir):
    import shutil

    folder = tmp_path / "student@2"
    shutil.copytree(tiny_bert_dir, folder)
    assert split_revision(str(folder)) == (str(folder), None) and resolve_model_path(str(folder)) == str(folder)


def test_the_revision_reaches_transformers(monkeypatch):
    import transformers

    calls: list = []
    for cls in (transformers.AutoModel, transformers.AutoTokenizer, transformers.AutoConfig):
        monkeypatch.setattr(cls, "from_pretrained", recorder(calls))
    for load in (lambda n: load_model(n, "base"), load_tokenizer, model_config):
        with pytest.raises(ReachedTheHub):
            load("someone/encoder@v2")
    assert [(args[0], kwargs.get("revision")) for args, kwargs in calls] == [("someone/encoder", "v2")] * 3


def test_the_installed_copy_has_no_revisions():
    with pytest.raises(UserError, match="the copy installed here, which has no revisions"):
        resolve_model_path("all-MiniLM-L6-v2@main")
    assert loading.hub_kwargs("all-MiniLM-L6-v2") == {}


@pytest.mark.parametrize("config_name, expected", [(None, "sst2"), ("sst2_v2", "sst2_v2")])
def test_dataset_config_and_revision_reach_datasets(monkeypatch, config_name, expected):
    datasets = pytest.importorskip("datasets")
    calls: list = []
    monkeypatch.setattr(datasets, "load_dataset", recorder(calls))
    cfg = DataConfig(task="sst2", path="nyu-mll/glue", config_name=config_name, revision="r1")
    with pytest.raises(UserError, match="could not load dataset 'nyu-mll/glue'"):
        load_examples(cfg, "train")
    assert calls == [(("nyu-mll/glue", expected), {"revision": "r1"})]
