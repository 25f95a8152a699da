"""The CVT sequence tagger (Clark et al. 2018, section 3.1): a CNN-BiLSTM encoder, a primary
prediction module on the full view, and auxiliary modules on restricted views.

Encoder: word embeddings and a character CNN (max-pooled over each word), then two BiLSTM
layers. Each direction is its own unidirectional LSTM; the backward one reads every sentence
reversed within its length, so padding never reaches a real word in either direction (and the
graph exports to ONNX without packed sequences).

Views of word t, as the paper's tagging modules see them:
  primary:  [h1_t, h2_t], both directions of both layers (the whole sentence)
  forward:  the layer-1 forward state at t (words 0..t)
  backward: the layer-1 backward state at t (words t..n-1)
  future:   the layer-1 forward state at t-1 (words 0..t-1: predicts t's tag without seeing it)
  past:     the layer-1 backward state at t+1 (words t+1..n-1)
  full:     the primary module's input, seen through the unlabelled minibatch's dropout
At the sentence's edges "future" and "past" read the LSTMs' initial state (zeros), as they have
seen nothing yet. Every module is one hidden layer and a softmax layer; the hidden layer is ReLU
except in "full", linear as in the reference code (its only difference from the primary module).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bertcompress.methods.cvt.config import CvtModelConfig
from bertcompress.methods.cvt.vocab import CvtVocab


class PredictionModule(nn.Module):
    """softmax(U · ReLU(W h + b) + c) (without the ReLU when not `activate`): logits out, the
    softmax is the loss's."""

    def __init__(self, size: int, hidden: int, tags: int, activate: bool = True):
        super().__init__()
        self.hidden = nn.Linear(size, hidden)
        self.out = nn.Linear(hidden, tags)
        self.activate = activate

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden(states)
        return self.out(F.relu(hidden) if self.activate else hidden)


class CharCNN(nn.Module):
    """Each word's characters: embedded, convolved at several widths, ReLU, max over the word.
    Only windows inside the word count, so how wide the batch is padded changes nothing."""

    def __init__(self, num_chars: int, dim: int, widths: list[int], filters: int):
        super().__init__()
        self.embed = nn.Embedding(num_chars, dim, padding_idx=0)
        self.widths = list(widths)
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, w) for w in self.widths)
        self.size = filters * len(self.widths)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        batch, words, width = chars.shape
        flat = chars.reshape(batch * words, width)
        lengths = (flat != 0).sum(-1, keepdim=True)  # characters with the word marks
        x = self.embed(flat).transpose(1, 2)
        pooled = []
        for w, conv in zip(self.widths, self.convs):
            y = F.relu(conv(x))
            starts = torch.arange(y.shape[-1], device=chars.device).unsqueeze(0)
            # the windows that start inside the word (window 0 always; short words pad with zero vectors);
            # zeroing the rest is neutral for the max as ReLU outputs are >= 0
            inside = starts <= (lengths - w).clamp(min=0)
            pooled.append(y.masked_fill(~inside.unsqueeze(1), 0.0).amax(-1))
        return torch.cat(pooled, -1).reshape(batch, words, self.size)


@dataclass
class Encoded:
    """The encoder's states, (batch, words, size) each."""

    forward1: torch.Tensor
    backward1: torch.Tensor
    full: torch.Tensor  # [forward1, backward1, forward2, backward2]
    mask: torch.Tensor


def _reverse_index(mask: torch.Tensor) -> torch.Tensor:
    """Positions that reverse each row within its length and leave its padding in place."""
    lengths = mask.sum(1, keepdim=True)
    pos = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    return torch.where(pos < lengths, lengths - 1 - pos, pos)


def _gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class CvtTagger(nn.Module):
    """The tagger. `forward` gives the primary module's logits (batch, words, tags); `encode` and
    `view_logits` give what the auxiliary modules see and say. `vocab` travels with it."""

    def __init__(self, cfg: CvtModelConfig, vocab: CvtVocab, views: list[str]):
        super().__init__()
        self.cfg, self.vocab, self.views = cfg, vocab, list(views)
        self.word_embed = nn.Embedding(len(vocab.words), cfg.word_dim, padding_idx=0)
        bound = math.sqrt(3.0 / cfg.word_dim)  # variance 1/dim; pretrained vectors, if any, replace rows later
        nn.init.uniform_(self.word_embed.weight, -bound, bound)
        with torch.no_grad():
            self.word_embed.weight[0].zero_()
        self.char_cnn = CharCNN(len(vocab.chars), cfg.char_dim, cfg.char_widths, cfg.char_filters)
        size = cfg.word_dim + self.char_cnn.size
        self.forward1 = nn.LSTM(size, cfg.lstm1, batch_first=True)
        self.backward1 = nn.LSTM(size, cfg.lstm1, batch_first=True)
        self.forward2 = nn.LSTM(2 * cfg.lstm1, cfg.lstm2, batch_first=True)
        self.backward2 = nn.LSTM(2 * cfg.lstm1, cfg.lstm2, batch_first=True)
        tags = len(vocab.tags)
        full = 2 * cfg.lstm1 + 2 * cfg.lstm2
        self.primary = PredictionModule(full, cfg.projection, tags)
        # keyed "view_<name>": a ModuleDict key may not shadow an attribute ("forward")
        self.auxiliary = nn.ModuleDict({
            f"view_{v}": PredictionModule(full, cfg.projection, tags, activate=False) if v == "full"
            else PredictionModule(cfg.lstm1, cfg.projection, tags) for v in self.views})

    @property
    def min_chars(self) -> int:
        """The narrowest character padding a batch may have (the widest filter must fit)."""
        return max(self.cfg.char_widths)

    def encode(self, input_ids: torch.Tensor, chars: torch.Tensor, attention_mask: torch.Tensor,
               dropout: float = 0.0) -> Encoded:
        def drop(x: torch.Tensor) -> torch.Tensor:
            return F.dropout(x, dropout, training=dropout > 0)

        mask = attention_mask.to(torch.long)
        reverse = _reverse_index(mask)
        words = drop(torch.cat([self.word_embed(input_ids), self.char_cnn(chars)], -1))
        forward1 = drop(self.forward1(words)[0])
        backward1 = drop(_gather_rows(self.backward1(_gather_rows(words, reverse))[0], reverse))
        layer1 = torch.cat([forward1, backward1], -1)
        forward2 = drop(self.forward2(layer1)[0])
        backward2 = drop(_gather_rows(self.backward2(_gather_rows(layer1, reverse))[0], reverse))
        return Encoded(forward1, backward1, torch.cat([layer1, forward2, backward2], -1), mask)

    def forward(self, input_ids: torch.Tensor, chars: torch.Tensor, attention_mask: torch.Tensor,
                dropout: float = 0.0) -> torch.Tensor:
        return self.primary(self.encode(input_ids, chars, attention_mask, dropout).full)

    def view_states(self, encoded: Encoded, view: str) -> torch.Tensor:
        """What the auxiliary module of `view` reads at each word (module docstring)."""
        if view == "forward":
            return encoded.forward1
        if view == "backward":
            return encoded.backward1
        if view == "future":  # shifted right: word t reads the state after word t-1
            return F.pad(encoded.forward1[:, :-1], (0, 0, 1, 0))
        if view == "past":  # shifted left: word t reads the state before word t+1; the last word reads zeros
            following = F.pad(encoded.mask[:, 1:], (0, 1)).unsqueeze(-1).to(encoded.backward1.dtype)
            return F.pad(encoded.backward1[:, 1:], (0, 0, 0, 1)) * following
        if view == "full":
            return encoded.full
        raise ValueError(f"unknown view {view!r}")

    def view_logits(self, encoded: Encoded) -> dict[str, torch.Tensor]:
        return {v: self.auxiliary[f"view_{v}"](self.view_states(encoded, v)) for v in self.views}


def primary_parameters(tagger: CvtTagger) -> int:
    """Parameters the primary path uses at inference (the auxiliary modules are for training only)."""
    return sum(p.numel() for name, p in tagger.named_parameters() if not name.startswith("auxiliary."))
