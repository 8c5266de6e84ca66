"""Shared fixtures: small random problems with every parameter (biases and peepholes too) non-zero,
and a data environment that reads the shared data folder as the mirror and caches in a temporary folder."""
from pathlib import Path

import pytest

from lstm_scratch import gradcheck

# CI clones the repository with shared/ beside it; shared/data stands in for the download URLs.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(),
                                  reason=f"shared data not found at {SHARED_DATA} (clone shared/ beside the repo)")


@pytest.fixture
def data_env(monkeypatch, tmp_path):
    """Mirror = the shared data folder, cache = a fresh temporary folder (never the user's cache)."""
    from lstm_scratch.datasets import store
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (clone shared/ beside the repo)")
    monkeypatch.setenv(store.ENV_MIRROR, str(SHARED_DATA))
    monkeypatch.setenv(store.ENV_CACHE, str(tmp_path / "cache"))
    return tmp_path / "cache"

# Small enough to check every entry by finite differences, long enough (T >= 5) to exercise the recurrence.
N_IN, N_HIDDEN, STEPS = 3, 4, 6


def random_layer(arch, *, seed=0, **options):
    """The suite's small layer (gradcheck.random_layer): every parameter from N(0, scale²), so no zero
    bias or peephole can hide a bug. Options: bidirectional, backend, dtype, scale."""
    return gradcheck.random_layer(arch, N_IN, N_HIDDEN, seed=seed + 100, **options)


def random_problem(layer, seed=0, steps=STEPS):
    """An input sequence and an upstream gradient Δ for ``layer`` (gradcheck.random_problem)."""
    return gradcheck.random_problem(layer, steps, seed=seed + 200)
