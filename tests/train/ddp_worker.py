"""Run by tests/train/test_ddp.py under torchrun: a few distillation steps on a tiny BERT, then rank 0
writes the student's weights. Not a test module itself (no test_ prefix)."""

import os
import sys
from pathlib import Path

import torch
from transformers import AutoModel

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]  # and conftest's folder
from bertcompress.core.errors import TrainingDiverged  # noqa: E402
from bertcompress.methods.distill.config import LossConfig  # noqa: E402
from bertcompress.methods.distill.objective import DistillationObjective  # noqa: E402
from bertcompress.models.config import StudentConfig  # noqa: E402
from bertcompress.models.student import build_student  # noqa: E402
from bertcompress.train.config import TrainConfig  # noqa: E402
from bertcompress.train.loop import train_loop  # noqa: E402
from conftest import tiny_config  # noqa: E402


def make_features(n: int = 16, length: int = 10) -> list[dict]:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 100, (n, length), generator=g)
    return [{"input_ids": ids[i]} for i in range(n)]


def collate(items):
    ids = torch.stack([i["input_ids"] for i in items])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def main(out: str, batch_size: int, nan_on_rank1: bool = False) -> None:
    torch.manual_seed(0)
    cfg = tiny_config("bert", 100, layers=4)
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
    teacher = AutoModel.from_config(cfg)
    student = build_student(teacher, StudentConfig(num_layers=2, hidden_size=16, num_heads=4, ffn_size=32),
                            classifier=False, seed=1)
    student.config.hidden_dropout_prob = 0.0
    for m in student.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    objective = DistillationObjective(student, teacher, LossConfig(), {"embedding": 1, "hidden": 1, "attention": 1})
    rank = int(os.environ.get("RANK", 0))
    if nan_on_rank1 and rank == 1:  # from the second step on, only this process sees a NaN loss
        forward, calls = objective.forward, []

        def nan_forward(batch):
            calls.append(1)
            loss, logs = forward(batch)
            return (loss * float("nan") if len(calls) >= 2 else loss), logs
        objective.forward = nan_forward
    try:
        train_loop(objective, make_features(), collate, TrainConfig(max_steps=4, batch_size=batch_size, lr=1e-3,
                   warmup_ratio=0.0, device="cpu"), work_dir=Path(out) / "ckpt")
    except TrainingDiverged as e:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"rank{rank}.diverged").write_text(str(e))
        return
    torch.save({k: v.detach().clone() for k, v in objective.state_dict().items()}, Path(out) / f"rank{rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), nan_on_rank1=sys.argv[3:] == ["nan-on-rank1"])
