"""Numba kernels: forward and full backpropagation through time over one sequence.

    y, cache = forward(arch, blocks, x)            # x: C-contiguous (T, M)  ->  y: (T, N)
    dx = backward(arch, blocks, cache, dy, grads)  # dy = ∂L/∂y (T, N)      ->  dx = ∂L/∂x (T, M)

``blocks`` / ``grads`` are the stacked views of :meth:`lstm_scratch.variants.Layout.blocks` on the
parameter and gradient vectors; ``backward`` overwrites every gradient. x, the parameters and dy share
one dtype, float64 or float32. Inputs are validated by the Layer, not here.
:mod:`.lstm` carries vanilla LSTM and the eight Odyssey variants, :mod:`.gated` GRU and MUT1–3;
:mod:`lstm_scratch.reference` is the readable oracle both are tested against.
"""
from __future__ import annotations

import numpy as np

from ..variants import Architecture, Layout, get
from . import lstm

__all__ = ["forward", "backward", "warmup"]


def _module(arch: Architecture):
    if arch.family == "lstm":
        return lstm
    from . import gated  # imported on first use: only the gated cells need it
    return gated


def forward(arch, blocks: dict, x: np.ndarray):
    """Run one sequence forward; return y (T, N) and the cache :func:`backward` needs."""
    arch = get(arch)
    return _module(arch).forward(arch, blocks, x)


def backward(arch, blocks: dict, cache, dy: np.ndarray, grads: dict, need_dx: bool = True):
    """Full BPTT over the sequence of ``cache``: overwrite ``grads`` and return ∂L/∂x (None when
    ``need_dx`` is False: a first layer's input gradient is not needed, and skipping it saves a GEMM)."""
    arch = get(arch)
    return _module(arch).backward(arch, blocks, cache, dy, grads, need_dx)


def warmup(arch, dtype=np.float64) -> None:
    """Compile (or load from the on-disk cache) ``arch``'s kernels for ``dtype`` now, on a tiny
    sequence, so the first real call is not the one that pays for it."""
    arch = get(arch)
    layout = Layout(arch, 2, 2)
    flat = np.zeros(layout.size, dtype=dtype)
    grads = np.zeros_like(flat)
    x = np.zeros((2, 2), dtype=dtype)
    y, cache = forward(arch, layout.blocks(flat), x)
    backward(arch, layout.blocks(flat), cache, np.zeros_like(y), layout.blocks(grads))
