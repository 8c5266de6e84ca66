"""Thread pinning. Online training is latency-bound: parallelism belongs across sequences (evaluation),
directions (a bidirectional layer) and trials (the search), each on threads or processes of our own —
never inside the small per-sequence GEMMs.

So BLAS gets one thread by default: on the 2-core machines two OpenBLAS threads beside ours made a
bidirectional epoch 4–6× slower under load, a JSB epoch (N = 100) took 17× the CPU time, and two
concurrent directions ran at 0.7× instead of 1.6×. Numba gets the run's thread budget.
"""
from __future__ import annotations

import os
from contextlib import contextmanager


def pin_threads(n_threads: int | None = None, blas_threads: int = 1) -> int:
    """Limit Numba to ``n_threads`` (default: all cores) and BLAS to ``blas_threads``; return the
    Numba thread count actually set."""
    import numba
    # Load the BLAS the kernels' np.dot calls (SciPy's OpenBLAS) now: loaded later, by the first kernel
    # call, it would escape threadpoolctl and run with every core.
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import threadpool_limits

    cores = os.cpu_count() or 1
    n_threads = cores if n_threads is None else int(n_threads)
    if n_threads < 1:
        raise ValueError(f"threads must be at least 1, got {n_threads}")
    n_threads = min(n_threads, numba.config.NUMBA_NUM_THREADS)
    threadpool_limits(limits=blas_threads, user_api="blas")
    numba.set_num_threads(n_threads)
    return n_threads


@contextmanager
def pinned_threads(n_threads: int | None = None, blas_threads: int = 1):
    """:func:`pin_threads` for the duration of a ``with`` block, then the previous limits again."""
    import numba
    import scipy.linalg.cython_blas  # noqa: F401  (see pin_threads)
    from threadpoolctl import threadpool_limits

    saved_numba, saved_blas = numba.get_num_threads(), threadpool_limits(limits=None)
    try:
        yield pin_threads(n_threads, blas_threads)
    finally:
        saved_blas.restore_original_limits()
        numba.set_num_threads(saved_numba)
