"""NAS-BERT models as `transformers` models: config, encoder and task heads.

    embeddings (at the arch's embedding size) -> embedding_proj (only when that differs from
    block 1's width) -> blocks in order (each with `input_proj` when its width differs from the
    previous block's) -> output_proj (only with `output_size`) -> pooler (dense + tanh on position 0)

A model assembled from a supernet (methods/nas/assemble.py) sets `project_every_block`, so the embeddings have
an `embedding_proj` and every later block an `input_proj` even where widths match (they hold
composed supernet projections, not the identity), and `output_size` = the teacher's width, so the final
`output_proj` maps the last block back into the teacher's space where pooler and heads work. Both
are off by default.

Module names are what a supernet copies weights into: `embeddings.*` (BERT's names),
`embedding_proj`, `blocks.{b}.input_proj`, `blocks.{b}.slots.{s}` (an ops.py module of the
slot's op), `output_proj`. `hidden_states` are the embedding output (after the projection) and then
each BLOCK's output at its own width; `output_proj` only changes `last_hidden_state` (and what the
pooler and heads see), so with it `hidden_states[-1]` is not `last_hidden_state`.

Written for transformers 4.45+ and 5.x: a classic `__init__` config (5.x keeps it working for
custom code), `post_init()`, no tied weights, and init through `torch.nn.init`, which 5.x guards
so loaded weights are not re-initialised.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, init
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput, TokenClassifierOutput

from bertcompress.core.errors import UserError
from bertcompress.models.nasbert.arch import BlockArch, NasArch
from bertcompress.models.nasbert.ops import make_op

# BERT-base in NAS-BERT's split of the teacher: 4 blocks of 3 layers
DEFAULT_ARCH = "|".join(["768:" + ",".join(["mha", "ffn"] * 3)] * 4)


class NasBertConfig(PretrainedConfig):
    """`arch` is kept as NasArch.to_dict() (any of its forms is accepted); `hidden_size` is derived:
    what the pooler and heads see, `output_size` when set, else the last block's width."""

    model_type = "nasbert"

    def __init__(self, arch: NasArch | dict | str | None = None, vocab_size: int = 30522,
                 max_position_embeddings: int = 512, type_vocab_size: int = 2, head_size: int = 64,
                 hidden_dropout_prob: float = 0.1, attention_probs_dropout_prob: float = 0.1,
                 layer_norm_eps: float = 1e-12, initializer_range: float = 0.02, pad_token_id: int | None = 0,
                 classifier_dropout: float | None = None, hidden_size: int | None = None,
                 project_every_block: bool = False, output_size: int | None = None, **kwargs):
        nas = NasArch.coerce(DEFAULT_ARCH if arch is None else arch).validate(head_size)
        if output_size is not None and (isinstance(output_size, bool) or not isinstance(output_size, int)
                                        or output_size < 1):
            raise UserError(f"NAS-BERT output_size must be a positive integer or None, got {output_size!r}")
        self.arch = nas.to_dict()
        self.project_every_block = bool(project_every_block)
        self.output_size = output_size
        self.hidden_size = output_size or nas.output_width  # a saved value is ignored: arch and output_size decide
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.head_size = head_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.classifier_dropout = classifier_dropout
        super().__init__(pad_token_id=pad_token_id, **kwargs)

    @property
    def nas_arch(self) -> NasArch:
        return NasArch.from_dict(self.arch)


class NasBertEmbeddings(nn.Module):
    """Word + position + token type (none when type_vocab_size is 0), LayerNorm, dropout."""

    def __init__(self, width: int, vocab_size: int, max_positions: int, type_vocab_size: int,
                 pad_token_id: int | None, layer_norm_eps: float, dropout: float):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, width, padding_idx=pad_token_id)
        self.position_embeddings = nn.Embedding(max_positions, width)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, width) if type_vocab_size else None
        self.LayerNorm = nn.LayerNorm(width, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    @classmethod
    def from_config(cls, config: NasBertConfig, width: int) -> NasBertEmbeddings:
        return cls(width, config.vocab_size, config.max_position_embeddings, config.type_vocab_size,
                   config.pad_token_id, config.layer_norm_eps, config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor | None, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if position_ids is None:
            position_ids = torch.arange(x.shape[1], device=x.device)[None, :]
        x = x + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros(x.shape[:2], dtype=torch.long, device=x.device)
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class NasBlock(nn.Module):
    """An optional input projection to the block's width (always with `project`), then its slots in order."""

    def __init__(self, config: NasBertConfig, arch: BlockArch, input_width: int, project: bool = False):
        super().__init__()
        self.input_proj = nn.Linear(input_width, arch.hidden) if project or input_width != arch.hidden else None
        self.slots = nn.ModuleList(
            make_op(op, arch.hidden, config.head_size, config.hidden_dropout_prob, config.layer_norm_eps,
                    attention_dropout=config.attention_probs_dropout_prob) for op in arch.ops)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if self.input_proj is not None:
            x = self.input_proj(x)
        for slot in self.slots:
            x = slot(x, attention_mask)
        return x


class NasBertPooler(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.activation = nn.Tanh()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden[:, 0]))


def init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation of one module (not its children): normal(0, std) weights, zero biases
    and padding row, LayerNorm (1, 0). The supernet initialises its modules the same way."""
    if isinstance(module, (nn.Linear, nn.Conv1d)):
        init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        init.normal_(module.weight, mean=0.0, std=std)
        # a row slice loses 5.x's "loaded" flag, so ask the table itself
        if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        init.ones_(module.weight)
        init.zeros_(module.bias)


class NasBertPreTrainedModel(PreTrainedModel):
    config_class = NasBertConfig
    base_model_prefix = "nasbert"
    _no_split_modules = ["NasBlock"]

    def _init_weights(self, module: nn.Module) -> None:
        init_weights(module, self.config.initializer_range)

    def _return(self, output, return_dict: bool | None):
        return_dict = return_dict if return_dict is not None else getattr(self.config, "return_dict", True)
        return output if return_dict else output.to_tuple()


class NasBertModel(NasBertPreTrainedModel):
    def __init__(self, config: NasBertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        arch = config.nas_arch
        first = arch.blocks[0].hidden
        project = config.project_every_block
        self.embeddings = NasBertEmbeddings.from_config(config, arch.embedding_width)
        self.embedding_proj = nn.Linear(arch.embedding_width, first) \
            if project or arch.embedding_width != first else None
        inputs = [first] + [b.hidden for b in arch.blocks[:-1]]
        # block 1 reads the embedding projection's output: its own input_proj would only repeat it
        self.blocks = nn.ModuleList(NasBlock(config, b, width, project=project and i > 0)
                                    for i, (b, width) in enumerate(zip(arch.blocks, inputs)))
        self.output_proj = nn.Linear(arch.output_width, config.output_size) if config.output_size else None
        self.pooler = NasBertPooler(config.hidden_size) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> BaseModelOutputWithPooling | tuple:
        """`inputs_embeds`, if given, are at the embedding size; `attention_mask` None means no padding."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        if self.embedding_proj is not None:
            x = self.embedding_proj(x)
        states = [x]
        for block in self.blocks:
            x = block(x, attention_mask)
            states.append(x)
        if self.output_proj is not None:
            x = self.output_proj(x)
        output = BaseModelOutputWithPooling(
            last_hidden_state=x, pooler_output=None if self.pooler is None else self.pooler(x),
            hidden_states=tuple(states) if output_hidden_states else None)
        return self._return(output, return_dict)


def _classification_loss(config: NasBertConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """As BertForSequenceClassification: the problem type is inferred once and kept in the config."""
    num_labels = config.num_labels
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        if num_labels == 1:
            return MSELoss()(logits.squeeze(), labels.squeeze().to(logits.dtype))
        return MSELoss()(logits, labels.to(logits.dtype))
    if config.problem_type == "single_label_classification":
        return CrossEntropyLoss()(logits.view(-1, num_labels), labels.view(-1))
    return BCEWithLogitsLoss()(logits, labels.to(logits.dtype))


class _NasBertWithHead(NasBertPreTrainedModel):
    """The encoder, dropout and a linear classifier: what both task heads share."""

    pooling = True  # the sequence head reads the pooler; the token head reads every position

    def __init__(self, config: NasBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.nasbert = NasBertModel(config, add_pooling_layer=self.pooling)
        drop = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(drop)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class NasBertForSequenceClassification(_NasBertWithHead):
    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> SequenceClassifierOutput | tuple:
        out = self.nasbert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                           output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = None if labels is None else _classification_loss(self.config, logits, labels)
        return self._return(SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states),
                            return_dict)


class NasBertForTokenClassification(_NasBertWithHead):
    _keys_to_ignore_on_load_unexpected = [r"pooler"]
    pooling = False

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> TokenClassifierOutput | tuple:
        """`labels` [batch, seq]; -100 (padding, sub-word continuations) is left out of the loss."""
        out = self.nasbert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                           output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None if labels is None else CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
        return self._return(TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states),
                            return_dict)


def register_auto_classes() -> None:
    """Make "nasbert" folders loadable through the Auto classes; safe to call again."""
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification

    AutoConfig.register(NasBertConfig.model_type, NasBertConfig, exist_ok=True)
    AutoModel.register(NasBertConfig, NasBertModel, exist_ok=True)
    AutoModelForSequenceClassification.register(NasBertConfig, NasBertForSequenceClassification, exist_ok=True)
    AutoModelForTokenClassification.register(NasBertConfig, NasBertForTokenClassification, exist_ok=True)


register_auto_classes()  # importing this module is what makes saved NAS-BERT folders loadable
