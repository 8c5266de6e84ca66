"""The shared number checks and the configuration diff (lstm_scratch.checks)."""
import numpy as np
import pytest

from lstm_scratch.checks import check_positive_integer, config_diff, is_integer, is_real


@pytest.mark.parametrize("value, minimum, expected", [
    (3, None, True), (np.int64(3), None, True), (-2, None, True), (0, 1, False), (1, 1, True),
    (np.int32(0), 0, True), (True, None, False), (False, 0, False), (3.0, None, False), ("3", None, False),
    (None, None, False),
])
def test_is_integer_takes_python_and_numpy_integers_but_no_bool(value, minimum, expected):
    assert is_integer(value, minimum) is expected


@pytest.mark.parametrize("value, expected", [
    (0.5, True), (2, True), (np.float32(0.5), True), (np.int64(2), True), (float("nan"), True),
    (True, False), ("0.5", False), (None, False), (1j, False),
])
def test_is_real_takes_real_numbers_but_no_bool(value, expected):
    assert is_real(value) is expected


def test_check_positive_integer_names_the_field_and_the_value():
    check_positive_integer("n_out", np.int64(2))
    for bad in (0, True, 2.0, None):
        with pytest.raises(ValueError, match=rf"^n_out must be a positive integer, got {bad!r}$"):
            check_positive_integer("n_out", bad)


def test_config_diff_lists_each_differing_or_missing_field_as_saved_then_now():
    saved = {"arch": "V", "lr": 0.1, "hidden": 50}
    now = {"arch": "CIFG", "lr": 0.1, "hidden": 50, "clip": 1.0}
    assert config_diff(saved, now) == {"arch": ("V", "CIFG"), "clip": (None, 1.0)}
    assert config_diff(now, now) == {}
