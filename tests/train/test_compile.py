"""train.torch_compile: the compiled distillation step trains like the eager one."""

import pytest
import torch
from test_cuda_graph import objective
from torch._dynamo.utils import counters

from bertcompress.core.errors import UserError
from bertcompress.data.encoding import collate
from bertcompress.train.config import TrainConfig
from bertcompress.train.loop import train_loop


def test_compiled_training_equals_eager_training(tmp_path):
    g = torch.Generator().manual_seed(0)
    feats = [{"input_ids": torch.randint(5, 100, (12,), generator=g).tolist()} for _ in range(16)]
    cfg = dict(max_steps=4, batch_size=8, lr=1e-3, precision="fp32", device="cpu", log_every=1, warmup_ratio=0.0)
    runs = []
    counters.clear()
    for compiled in (False, True):
        obj = objective(dropout=0.0)
        res = train_loop(obj, feats, lambda f: collate(f, 0), TrainConfig(torch_compile=compiled, **cfg),
                         work_dir=tmp_path / str(compiled))
        runs.append((obj, [h["loss"] for h in res.history if "loss" in h]))
    # one graph, no breaks: teacher, student, recorders and all four losses compile whole
    assert counters["stats"]["unique_graphs"] >= 1 and not counters["graph_break"]
    (eager, loss_e), (comp, loss_c) = runs
    assert len(loss_c) == 4 and loss_c == pytest.approx(loss_e, rel=1e-4)
    for a, b in zip(eager.parameters(), comp.parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_compile_with_cuda_graphs_is_a_one_line_error():
    with pytest.raises(UserError, match="not supported yet"):
        TrainConfig(torch_compile=True, cuda_graphs=True)
