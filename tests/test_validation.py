import pytest

from seglib.validation import check_positive_int


def test_check_positive_int():
    assert check_positive_int("n", 3) == 3
    with pytest.raises(TypeError, match="n must be an int, got float"):
        check_positive_int("n", 2.0)
    with pytest.raises(TypeError, match="got bool"):
        check_positive_int("n", True)
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        check_positive_int("n", 0)
