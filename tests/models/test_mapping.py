import pytest

from bertcompress.core.errors import UserError
from bertcompress.models.layer_mapping import resolve_mapping


def test_uniform_mapping_matches_tinybert():
    assert resolve_mapping("uniform", 4, 12) == [3, 6, 9, 12]
    assert resolve_mapping("uniform", 6, 12) == [2, 4, 6, 8, 10, 12]
    assert resolve_mapping("uniform", 4, 6) == [2, 3, 5, 6]  # ⌈m·N/M⌉
    assert resolve_mapping("uniform", 3, 3) == [1, 2, 3]


def test_last_and_explicit():
    assert resolve_mapping("last", 2, 6) == [5, 6]
    assert resolve_mapping([1, 1, 6], 3, 6) == [1, 1, 6]


@pytest.mark.parametrize("spec,match", [
    ([1, 2], "needs 3 entries"),
    ([1, 2, 7], "out of range 1..6"),
    ([0, 2, 3], "out of range"),
    ("middle", "bad layer mapping"),
])
def test_bad_mappings(spec, match):
    with pytest.raises(UserError, match=match):
        resolve_mapping(spec, 3, 6)


def test_last_needs_shallower_student():
    with pytest.raises(UserError, match="student has 8 layers"):
        resolve_mapping("last", 8, 6)
