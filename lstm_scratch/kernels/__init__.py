"""Numba kernels: forward and full backpropagation through time over one sequence.

    y, cache = forward(arch, blocks, x)            # x: C-contiguous (T, M)  ->  y: (T, N)
    dx = backward(arch, blocks, cache, dy, grads)  # dy = ∂L/∂y (T, N)      ->  dx = ∂L/∂x (T, M)
    h, c = final_state(arch, cache)                # the state after the last step (c: None for gated)

``forward(..., h0=, c0=)`` starts from a given state instead of zeros (truncated BPTT carries it from
window to window; c0 only for the LSTM family); ``backward(..., need_dstate=True)`` also returns
∂L/∂h0 and ∂L/∂c0: ``dx, dh0, dc0`` (dc0 None for gated cells).

``blocks`` / ``grads`` are the stacked views of :meth:`lstm_scratch.variants.Layout.blocks` on the
parameter and gradient vectors; ``backward`` overwrites every gradient. x, the parameters and dy share
one dtype, float64 or float32. Inputs are validated by the Layer, not here.
:mod:`.lstm` carries vanilla LSTM and the eight Odyssey variants, :mod:`.gated` GRU and MUT1–3;
:mod:`lstm_scratch.reference` is the readable oracle both are tested against.
"""
from __future__ import annotations

import numpy as np

from ..jit_cache import ensure_cache_dir
from ..variants import Architecture, Layout, get

ensure_cache_dir()      # before lstm, gated and primitives decorate cache=True kernels (jit_cache.py)
from . import lstm  # noqa: E402

__all__ = ["forward", "backward", "final_state", "warmup"]


def _module(arch: Architecture):
    if arch.family == "lstm":
        return lstm
    from . import gated  # imported on first use: only the gated cells need it
    return gated


def forward(arch, blocks: dict, x: np.ndarray, h0: np.ndarray | None = None, c0: np.ndarray | None = None):
    """Run one sequence forward from the state (h0, c0) (None: zeros); return y (T, N) and the cache
    :func:`backward` needs."""
    arch = get(arch)
    if arch.family == "lstm":
        return _module(arch).forward(arch, blocks, x, h0, c0)
    if c0 is not None:
        raise ValueError(f"c0: {arch.name} has no cell state; give h0 alone")
    return _module(arch).forward(arch, blocks, x, h0)


def final_state(arch, cache) -> tuple:
    """(h, c) after the last step of the sequence of ``cache`` (c is None for the gated cells)."""
    return _module(get(arch)).final_state(cache)


def backward(arch, blocks: dict, cache, dy: np.ndarray, grads: dict, need_dx: bool = True,
             need_dstate: bool = False):
    """Full BPTT over the sequence of ``cache``: overwrite ``grads`` and return ∂L/∂x (None when
    ``need_dx`` is False: a first layer's input gradient is not needed, and skipping it saves a GEMM).
    ``need_dstate``: return (∂L/∂x, ∂L/∂h0, ∂L/∂c0) instead (∂L/∂c0 None for the gated cells)."""
    arch = get(arch)
    return _module(arch).backward(arch, blocks, cache, dy, grads, need_dx, need_dstate)


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
