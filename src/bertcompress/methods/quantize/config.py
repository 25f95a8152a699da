"""Quantization settings: what is quantized, at how many bits, and the KDLSQ training run."""

from __future__ import annotations

from dataclasses import field

from bertcompress.core.config import check, config, derive_seeds, setting, top_seed_setting
from bertcompress.data.config import DataConfig
from bertcompress.methods.distill.config import LossConfig
from bertcompress.models.quantized.config import QuantConfig
from bertcompress.train.config import TrainConfig


@config
class QuantizeTrainConfig:
    """`quantize`: KDLSQ (or plain LSQ QAT with kd: false) on a full-precision student.

        bertcompress quantize --student student --teacher teacher --bits w4a8 --task sst2 --data DIR --onnx

    The student is fake-quantized and trained on the task data with the TinyBERT losses, all four
    at once as in KDLSQ/TernaryBERT, against a full-precision teacher: `teacher: null` (default) is
    the unquantized student itself, as in the paper where the quantized model distils from its own
    full-precision copy; or a fine-tuned teacher folder (any width: TinyBERT's projections bridge
    it). The output folder holds the packed low-bit export (models/quantized/packed.py)."""

    student: str = setting("outputs/student", "full-precision model to quantize (e.g. the distilled student)")
    teacher: str | None = setting(None, "full-precision teacher (null: the student itself)")
    quant: QuantConfig = field(default_factory=QuantConfig)
    kd: bool = setting(True, "train with the TinyBERT losses against the teacher (false: LSQ on the labels "
                       "alone, the baseline)")
    ptq: bool = setting(False, "post-training dynamic int8 (torch), no training: the baseline")
    losses: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, lr=5e-5))
    data: DataConfig = field(default_factory=DataConfig)
    onnx: bool = setting(False, "also write <output>/onnx/model.onnx, an int8 model for ONNX Runtime (needs a8)")
    output: str = setting("outputs/quantized", "output folder")
    seed: int = top_seed_setting()

    def __post_init__(self) -> None:
        derive_seeds(self)
        check(not self.onnx or self.quant.act_bits == 8,
               f"onnx export needs 8-bit activations (quant.act_bits: 8), got {self.quant.act_bits}")
