"""Input noise, the regulariser both training protocols share (SPEC §6: online, :mod:`.train`; SPEC §11:
JZS's minibatches, :mod:`.minibatch`)::

    x̃ = x + σξ,   ξ ~ N(0, 1) element-wise, drawn afresh at each presentation of x (training inputs only)

The draws come from the run's own noise generator (one of the three streams a run's seed spawns), so
turning noise on changes neither the initial weights nor the order of the sequences.
"""
from __future__ import annotations

import numpy as np


def with_noise(x: np.ndarray, sigma: float, noise_rng) -> np.ndarray:
    """x + σξ, ξ ~ N(0, 1) drawn afresh for this presentation in x's dtype; x itself untouched (σ ≤ 0:
    x as it is, and no draw)."""
    if sigma <= 0:
        return x
    noisy = noise_rng.standard_normal(x.shape, dtype=x.dtype)
    noisy *= sigma
    noisy += x
    return noisy
