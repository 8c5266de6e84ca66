"""Thread pinning. Online training is latency-bound: parallelism belongs across sequences (evaluation),
directions (a bidirectional layer) and trials (the search), each on threads or processes of our own —
never inside the small per-sequence GEMMs.

So BLAS gets one thread by default: on the 2-core machines two OpenBLAS threads beside ours made a
bidirectional epoch 4–6× slower under load, a JSB epoch (N = 100) took 17× the CPU time, and two
concurrent directions ran at 0.7× instead of 1.6×. Numba gets the run's thread budget.

A search worker is prepared once (:func:`prepare_worker`, or :func:`worker_environment` for a child
process to be started), and compiles the study's kernels once (:func:`warm_up`), before its trials.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from contextlib import contextmanager

# Libraries that size their thread pools from these variables when they are loaded (so they must be set
# before NumPy is imported): OpenMP, OpenBLAS, MKL, numexpr — one thread each (the module docstring) —
# and Numba, whose pool is the worker's thread budget.
BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def worker_environment(threads: int = 1, numba_cache_dir=None) -> dict:
    """The environment variables to give a worker process before it imports NumPy: BLAS/OpenMP one
    thread, ``NUMBA_NUM_THREADS=threads``, and ``NUMBA_CACHE_DIR`` if given (e.g. a node-local disk,
    so workers on many nodes do not share one cache over a network file system)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads={threads!r}: give the worker's thread count as an integer ≥ 1")
    env = {name: "1" for name in BLAS_VARIABLES}
    env["NUMBA_NUM_THREADS"] = str(threads)
    if numba_cache_dir is not None:
        if not os.fspath(numba_cache_dir):
            raise ValueError("numba_cache_dir='': give a directory (or None for Numba's default)")
        env["NUMBA_CACHE_DIR"] = os.fspath(numba_cache_dir)
    return env


def prepare_worker(threads: int = 1, numba_cache_dir=None) -> dict:
    """Make this process a worker: set :func:`worker_environment` in ``os.environ`` (read by the
    libraries when they load, and inherited by children) and, for those already loaded, pin their
    limits now. Returns the variables set. ``import lstm_scratch`` loads neither NumPy nor Numba (its
    names load on first use), so calling this first, before any kernel, network or trainer module is
    imported, sets every pool from the environment; a worker started by a driver should still get
    :func:`worker_environment` in its environment at start (its other imports may load NumPy). Already
    imported kernels keep their Numba cache directory (their cache was opened at import): that case gives
    a ``RuntimeWarning``."""
    env = worker_environment(threads, numba_cache_dir)
    if "numba" in sys.modules:
        # Numba read the environment when it was imported (by a kernel module, say). Its pool
        # size cannot change any more — Numba re-reads the environment at every compile and raises if
        # NUMBA_NUM_THREADS differs once its threads run — so the variable keeps the pool's size and
        # pin_threads below limits the threads used; kernels compiled from now on use the cache given.
        import numba
        env["NUMBA_NUM_THREADS"] = str(numba.config.NUMBA_NUM_THREADS)
        if numba_cache_dir is not None and numba.config.CACHE_DIR != env["NUMBA_CACHE_DIR"]:
            numba.config.CACHE_DIR = env["NUMBA_CACHE_DIR"]
            if any(name.startswith("lstm_scratch.kernels") for name in sys.modules):
                warnings.warn(f"prepare_worker: the kernels are already imported, so they keep their Numba "
                              f"cache directory instead of {numba_cache_dir}; give the worker "
                              "worker_environment() when it starts", RuntimeWarning, stacklevel=2)
    os.environ.update(env)
    if "numpy" in sys.modules or "numba" in sys.modules:
        pin_threads(threads)
    return env


COMPILED_LOSSES = ("bernoulli", "ctc")     # the losses with Numba kernels (softmax, next_symbol: NumPy)


def warm_up(archs, dtype="float64", loss: str | None = None) -> dict:
    """Compile (or load from the on-disk cache) the kernels a study needs — each architecture's
    recurrent kernels, the momentum update and the kernels of the task's ``loss``, for ``dtype``
    (float64, float32 or mixed) — so no trial pays for it, and concurrent workers do not all build the
    same cache. ``loss``: the task's objective name (``bernoulli``: the fused NLL; ``ctc``: the linear-
    and log-space recursions and the edit distance of the CER; softmax, next_symbol: nothing to
    compile); None warms every loss that has kernels. Returns the seconds each architecture took: each
    distinct kernel is compiled once, so a row whose flags an earlier row shares (LSTM after NP) takes
    next to nothing."""
    import numpy as np

    from .kernels import warmup
    from .momentum import MasterMomentum, Momentum
    from .objectives import OBJECTIVES
    if loss is not None and loss not in OBJECTIVES:
        raise ValueError(f"loss={loss!r}: give the task's objective name, one of {', '.join(OBJECTIVES)} "
                         "(or None for every loss)")
    kernel_dtype = np.dtype("float32" if dtype == "mixed" else dtype)   # mixed: float32 kernels
    seconds = {}
    for arch in ([archs] if isinstance(archs, str) else archs):
        start = time.perf_counter()
        warmup(arch, kernel_dtype)
        seconds[str(arch)] = time.perf_counter() - start
    optimiser = MasterMomentum if dtype == "mixed" else Momentum
    optimiser(np.zeros(2, kernel_dtype), 0.1, 0.5).step(np.zeros(2, kernel_dtype))
    for name in COMPILED_LOSSES:
        if loss in (None, name):
            _warm_up_loss(name, kernel_dtype)
    return seconds


def _warm_up_loss(name: str, dtype) -> None:
    """Call ``name``'s compiled functions once on a tiny problem in ``dtype`` (one compile per dtype)."""
    import numpy as np

    if name == "bernoulli":
        from .losses import bernoulli_nll_fast
        bernoulli_nll_fast(np.zeros((2, 2), dtype), np.zeros((2, 2), dtype))
    else:                              # ctc: float64 inside whatever the dtype, so compiled once
        from .ctc import character_error_rate, ctc_loss
        for method in ("linear", "log"):
            ctc_loss(np.zeros((3, 3), dtype), np.array([1]), method=method)
        character_error_rate([np.array([1, 2])], [np.array([1])])


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
    _take_blas_control()
    threadpool_limits(limits=blas_threads, user_api="blas")
    numba.set_num_threads(n_threads)
    return n_threads


def _take_blas_control() -> None:
    """Let this thread set OpenBLAS's limits. threadpoolctl (≥ 3.6) lets only the first thread that set
    them change them afterwards and silently ignores the others, so a trial on a worker thread would
    run unpinned; the process-wide bookkeeping below decides instead."""
    from threadpoolctl import OpenBLASController
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


# BLAS limits are process-wide, Numba's thread count is per thread. So the BLAS limits saved by the
# outermost pinned_threads of the process are restored by the last one to leave (two trials on two
# threads, or nested blocks, never undo each other's pinning), and each block restores its own
# thread's Numba count.
_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = None


@contextmanager
def pinned_threads(n_threads: int | None = None, blas_threads: int = 1):
    """:func:`pin_threads` for the duration of a ``with`` block, then the previous limits again (BLAS:
    when the last block of the process leaves)."""
    global _blas_users, _blas_saved
    import numba
    import scipy.linalg.cython_blas  # noqa: F401  (see pin_threads)
    from threadpoolctl import threadpool_limits

    saved_numba = numba.get_num_threads()
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = threadpool_limits(limits=None)
        _blas_users += 1
        try:
            pinned = pin_threads(n_threads, blas_threads)
        except BaseException:
            _leave()
            raise
    try:
        yield pinned
    finally:
        with _blas_lock:
            _leave()
        numba.set_num_threads(saved_numba)


def _leave() -> None:
    """One pinned_threads block ends (``_blas_lock`` held): the last restores the saved BLAS limits."""
    global _blas_users, _blas_saved
    _blas_users -= 1
    if _blas_users == 0:
        _take_blas_control()
        _blas_saved.restore_original_limits()
        _blas_saved = None
