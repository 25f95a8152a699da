"""NAS-BERT (METHODS.md section 5): the architecture space and the model class an architecture
builds. Importing this package registers "nasbert" with transformers' Auto classes, so saved
NAS-BERT folders load through `AutoModel*.from_pretrained`."""

from .arch import OPS, BlockArch, NasArch, op_parameters
from .modeling import (
                       NasBertConfig,
                       NasBertForSequenceClassification,
                       NasBertForTokenClassification,
                       NasBertModel,
                       NasBertPreTrainedModel,
                       register_auto_classes,
)
from .ops import make_op

register_auto_classes()

__all__ = ["OPS", "BlockArch", "NasArch", "op_parameters", "make_op", "NasBertConfig", "NasBertModel",
           "NasBertPreTrainedModel", "NasBertForSequenceClassification", "NasBertForTokenClassification",
           "register_auto_classes"]
