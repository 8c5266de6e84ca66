"""Shared fixtures: small random problems with every parameter (biases and peepholes too) non-zero,
and a data environment that reads the shared data folder as the mirror and caches in a temporary folder."""
from pathlib import Path

import numpy as np
import pytest

import lstm_scratch as ls

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


def random_layer(arch, *, bidirectional=False, backend="numba", dtype=np.float64, seed=0, scale=0.5):
    """A layer whose parameters are all drawn from N(0, scale²): no zero bias or peephole can hide a bug."""
    cls = ls.BiLayer if bidirectional else ls.Layer
    layer = cls(arch, N_IN, N_HIDDEN, dtype=dtype, seed=seed, backend=backend)
    layer.flat[:] = np.random.default_rng(seed + 100).normal(0.0, scale, layer.flat.size)
    return layer


def random_problem(layer, seed=0, steps=STEPS):
    """An input sequence and an upstream gradient Δ for ``layer``."""
    rng = np.random.default_rng(seed + 200)
    width = layer.n_hidden * (2 if isinstance(layer, ls.BiLayer) else 1)
    x = rng.normal(0.0, 1.0, (steps, layer.n_in)).astype(layer.dtype)
    dy = rng.normal(0.0, 1.0, (steps, width)).astype(layer.dtype)
    return x, dy
