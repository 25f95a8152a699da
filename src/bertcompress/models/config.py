"""The student's shape and start, and the default teacher (models/student.py builds it)."""

from __future__ import annotations

from bertcompress.core.config import (
    check,
    config,
    setting,
)

DEFAULT_TEACHER = "all-MiniLM-L6-v2"


INIT_FROM_TEACHER = ("random", "teacher_layers")


@config
class StudentConfig:
    """Shape and start of a student. A new one (init random or teacher_layers) is of the teacher's
    family, and a size left as None (null in YAML) is the teacher's; one started from a pre-trained
    model (init names it) is of that model's family and vocabulary, and a size left as None is that
    model's."""

    num_layers: int | None = setting(4, "transformer layers (null: the teacher's, or the init model's)")
    hidden_size: int | None = setting(312, "hidden size (null: the teacher's, or the init model's)")
    num_heads: int | None = setting(12, "attention heads (null: the teacher's, or the init model's)")
    ffn_size: int | None = setting(1200, "feed-forward size (null: the teacher's, or the init model's)")
    init: str = setting("random", "random: fresh weights; teacher_layers: copy whole teacher layers "
                        "(DistilBERT-style, needs the teacher's hidden size); or a pre-trained model (folder or "
                        "name, e.g. all-MiniLM-L6-v2) to start from, with its own tokenizer: whole when the sizes "
                        "are its own, else cut to them by ETD (`run`; elsewhere cut it with `extract` first)")
    init_layers: list[int] | None = setting(None, "1-based teacher layers to copy for init teacher_layers "
                                            "(null: the layer mapping)")
    extract: str = setting("impt", "how a pre-trained init model is cut to a smaller shape: impt (ETD-Impt, its "
                           "most important units) or rand (ETD-Rand)", choices=("impt", "rand"))

    def __post_init__(self) -> None:
        check(self.num_layers is None or self.num_layers >= 1,
               f"student.num_layers must be >= 1, got {self.num_layers}")
        sizes = (self.hidden_size, self.num_heads, self.ffn_size)
        check(all(v is None or v >= 1 for v in sizes), "student sizes must be positive")
        check(self.hidden_size is None or self.num_heads is None or self.hidden_size % self.num_heads == 0,
               f"student.hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        check(bool(self.init.strip()), "student.init must be random, teacher_layers or a model")

    @property
    def pretrained(self) -> str | None:
        """The pre-trained model the student starts from, if `init` names one."""
        return None if self.init in INIT_FROM_TEACHER else self.init

    def depth(self, teacher_layers: int) -> int:
        return self.num_layers if self.num_layers is not None else teacher_layers
