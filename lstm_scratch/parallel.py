"""Thread pinning. Online training is latency-bound: one thread per run is fastest, and parallelism
belongs across sequences (evaluation), directions (bidirectional layers) and trials (the search).
Worker processes pin BLAS and Numba to their share of the cores so nothing oversubscribes."""
from __future__ import annotations

import os


def pin_threads(n_threads: int | None = None) -> int:
    """Limit BLAS (via threadpoolctl) and Numba to ``n_threads`` (default: all cores); return it."""
    import numba
    from threadpoolctl import threadpool_limits

    cores = os.cpu_count() or 1
    n_threads = cores if n_threads is None else int(n_threads)
    if n_threads < 1:
        raise ValueError(f"threads must be at least 1, got {n_threads}")
    n_threads = min(n_threads, numba.config.NUMBA_NUM_THREADS)
    threadpool_limits(limits=n_threads)
    numba.set_num_threads(n_threads)
    return n_threads
