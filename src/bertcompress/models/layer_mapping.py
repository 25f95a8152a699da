"""Layer mapping n = g(m): which teacher layer each student layer learns from.

Layers are 1-based as in the paper; 0 is the embedding layer (always mapped to 0).
"""

from __future__ import annotations

import math

from bertcompress.core.errors import UserError


def resolve_mapping(spec: str | list[int], num_student: int, num_teacher: int) -> list[int]:
    """Return [g(1), ..., g(M)].

    uniform: g(m) = ⌈m·N/M⌉, which is TinyBERT's m·N/M when M divides N and otherwise keeps the
    last student layer on the last teacher layer; last: the top M teacher layers; a list: as given.
    """
    if num_student < 1 or num_teacher < 1:
        raise UserError(f"bad layer mapping: need at least one layer (student {num_student}, teacher {num_teacher})")
    if spec == "uniform":
        return [math.ceil(m * num_teacher / num_student) for m in range(1, num_student + 1)]
    if spec == "last":
        if num_student > num_teacher:
            raise UserError(f"bad layer mapping 'last': student has {num_student} layers, teacher only {num_teacher}")
        return list(range(num_teacher - num_student + 1, num_teacher + 1))
    if isinstance(spec, str):
        raise UserError(f"bad layer mapping {spec!r}: use 'uniform', 'last' or a list of teacher layers")
    mapping = list(spec)
    if len(mapping) != num_student:
        raise UserError(f"bad layer mapping {mapping}: the student has {num_student} layers, "
                        f"so the mapping needs {num_student} entries")
    for m, n in enumerate(mapping, start=1):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= num_teacher:
            raise UserError(f"bad layer mapping {mapping}: student layer {m} maps to teacher layer {n}, "
                            f"out of range 1..{num_teacher}")
    return mapping
