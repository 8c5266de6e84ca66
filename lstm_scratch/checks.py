"""Small argument checks shared by every module that validates numbers or compares configurations.

Callers keep their own messages (they name the field, the value and the fix); these functions only
decide. ``bool`` is an ``int`` in Python, but ``hidden=True`` is a mistake, never a count: it is
rejected wherever a number is wanted. NumPy scalars are accepted (a search may hand them out).
"""
from __future__ import annotations

import numbers


def is_integer(value, minimum: int | None = None) -> bool:
    """True for a Python or NumPy integer (not a bool) that is ≥ ``minimum`` when one is given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return False
    return minimum is None or bool(value >= minimum)


def is_real(value) -> bool:
    """True for a Python or NumPy real number, integers included (not a bool); NaN and ±inf too —
    a caller that needs a finite value checks that itself, with its own message."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_integer(name: str, value) -> None:
    """Raise ``ValueError("{name} must be a positive integer, got {value!r}")`` unless ``value`` is one."""
    if not is_integer(value, 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def config_diff(saved: dict, now: dict) -> dict:
    """{field: (saved value, current value)} for every field of ``now`` that ``saved`` holds
    differently or lacks (then the saved value shows as None) — the answer to "why does this
    checkpoint / file not match?"."""
    return {key: (saved.get(key), value) for key, value in now.items() if saved.get(key) != value}
