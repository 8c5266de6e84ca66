"""Whether a run fits in memory, decided from the sizes before anything is allocated: ``--hidden 40000``
is a clear ``ValueError`` naming the size and the memory there is, not a raw ``MemoryError`` (47.8 GiB)
from deep inside NumPy after the data have loaded.

    bytes ≈ itemsize · (copies · P + CACHE_VECTORS · N · T_max · directions · layers · workers)

P parameters (every layer and the output layer); ``copies``: the parameters, gradient, velocity and
best copy, plus one spare for a checkpoint being read back (``PARAMETER_COPIES``), and for protocol jzs
one gradient per sequence of a batch and one per replica (:mod:`.minibatch`); the forward cache of one
sequence per direction, layer and evaluating thread: gates, cell state and outputs, ~12 vectors of N
per frame. The longest sequence of any split sets T_max.
"""
from __future__ import annotations

import os

import numpy as np

from .datasets import default_bidirectional
from .variants import Layout

PARAMETER_COPIES, CACHE_VECTORS = 5, 12


def estimate(config, data, threads) -> tuple[int, int]:
    """(bytes a run of ``config`` on ``data`` with ``threads`` needs at least, its parameter count)."""
    directions = 1 + bool(default_bidirectional(data.train) if config.bidirectional is None
                          else config.bidirectional)
    width = directions * config.hidden
    n_params = directions * Layout(config.arch, data.train.n_in, config.hidden).size \
        + (config.layers - 1) * directions * Layout(config.arch, width, config.hidden).size \
        + data.train.n_out * (width + 1)
    longest = max(len(x) for split in data for x in split.inputs)
    itemsize = np.dtype(config.kernel_dtype).itemsize
    workers = max(threads or os.cpu_count() or 1, 1)
    cache = CACHE_VECTORS * config.hidden * longest * directions * config.layers * workers
    copies = PARAMETER_COPIES + (config.batch + workers if config.protocol == "jzs" else 0)
    return itemsize * (copies * n_params + cache), n_params


def available() -> int | None:
    """Bytes of memory this process could still get (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def too_big(config, data, threads) -> str:
    """The message for a run that does not fit: its size, what it needs, what there is, what to do."""
    needed, n_params = estimate(config, data, threads)
    free = available()
    have = f"{free / 2**30:.1f} GiB" if free is not None else "not that much"
    return (f"hidden={config.hidden}: a {config.arch} network of {n_params:,} parameters needs about "
            f"{needed / 2**30:.1f} GiB in {config.dtype} (parameters, gradient, velocity, best copy, sequence "
            f"caches); this machine has {have} available: choose a smaller --hidden")


def check(config, data, threads) -> None:
    """Refuse a run that cannot fit in memory (:func:`too_big`) before allocating it."""
    free = available()
    if free is not None and estimate(config, data, threads)[0] > free:
        raise ValueError(too_big(config, data, threads))
