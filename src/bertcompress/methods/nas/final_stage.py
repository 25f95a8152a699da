"""The `final_general` stage of `nas`: a chosen model distilled whole against the teacher.

In the supernet, block n learned the teacher's output at the end of its n-th share of layers through
its output projection (width h_n -> the teacher's T), and each embedding size learned the teacher's
embedding output through `embedding_out`. With `final_layers: blocks` (the default) the assembled
model keeps learning exactly that, now end to end (each block reading its predecessor's output):

    loss = MSE(embedding_out_E(embeddings), T_0) + sum over blocks n < N of MSE(P_n(block n), T_end(n))
           + MSE(last_hidden_state, T_L)

TinyBERT's embedding and hidden-state losses with the uniform mapping, which is what the
hand-designed students of the same budget get. P_n starts as block n's supernet output projection
(trained here, dropped afterwards, as TinyBERT's W_h); the last block's is the model's own
`output_proj`, since `last_hidden_state` is what the pooler and task heads read. `final_layers:
last` keeps only the last term (before issue 29).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from bertcompress.methods.nas.supernet import BlockwiseObjective, masked_mse
from bertcompress.models.nasbert.arch import NasArch

FINAL_LAYERS = ("blocks", "last")


class FinalObjective(nn.Module):
    """`student` (an assembled NasBertModel of `arch`) against the teacher of `blockwise`."""

    def __init__(self, student: nn.Module, blockwise: BlockwiseObjective, arch: NasArch | str,
                 layers: str = "blocks"):
        super().__init__()
        if layers not in FINAL_LAYERS:
            raise ValueError(f"unknown final_layers {layers!r}")
        arch = NasArch.coerce(arch)
        self.student, self.layers = student, layers
        self._blockwise = [blockwise]  # a list: the supernet and teacher are not trained or saved here
        if layers == "blocks":
            supernet = blockwise.supernet
            self.embedding_proj = copy.deepcopy(supernet.embedding_out[str(arch.embedding_width)])
            self.block_proj = nn.ModuleList(copy.deepcopy(supernet.blocks[n].output_proj[str(block.hidden)])
                                            for n, block in enumerate(arch.blocks[:-1]))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        states = self._blockwise[0].teacher_states(batch)  # [embedding output, end of block 1, ..., block N]
        mask = batch["attention_mask"]
        inputs = dict(input_ids=batch["input_ids"], attention_mask=mask, token_type_ids=batch.get("token_type_ids"))
        if self.layers == "last":
            last = masked_mse(self.student(**inputs).last_hidden_state, states[-1], mask)
            return last, {"whole": last.detach()}
        embedded: list[torch.Tensor] = []
        # the embeddings' own output (before the model's composed projection into block 1)
        hook = self.student.embeddings.register_forward_hook(lambda _m, _i, out: embedded.append(out))
        try:
            out = self.student(**inputs, output_hidden_states=True)
        finally:
            hook.remove()
        terms = {"embedding": masked_mse(self.embedding_proj(embedded[0]), states[0], mask)}
        for n, proj in enumerate(self.block_proj, start=1):
            terms[f"block{n}"] = masked_mse(proj(out.hidden_states[n]), states[n], mask)
        terms[f"block{len(states) - 1}"] = masked_mse(out.last_hidden_state, states[-1], mask)
        return torch.stack(list(terms.values())).sum(), {k: v.detach() for k, v in terms.items()}


@torch.no_grad()
def whole_loss(student: nn.Module, blockwise: BlockwiseObjective, batches) -> float:
    """Token-weighted held-out MSE of the model's last hidden state against the teacher's last
    layer: what the re-rank compares."""
    student.eval()
    device = next(student.parameters()).device
    last = FinalObjective(student, blockwise, student.config.nas_arch, layers="last")
    total, tokens = 0.0, 0.0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        n = float(batch["attention_mask"].sum())
        total += float(last(batch)[0]) * n
        tokens += n
    return total / tokens
