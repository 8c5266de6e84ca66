"""Where Numba keeps the compiled kernels, when the installed package cannot hold them.

Every kernel is compiled with ``cache=True``. Numba looks for a writable place at import time, when the
decorator runs: ``$NUMBA_CACHE_DIR`` if set, else ``__pycache__`` beside the source, else a user-wide
``~/.cache/numba`` — and with none of them (a read-only install and no writable ``$HOME``: a container,
a cluster node) the import dies with ``cannot cache function ...: no locator available``.
:func:`ensure_cache_dir` runs before any kernel module is imported and, in that case only, points
``NUMBA_CACHE_DIR`` at a private directory under the system's temporary folder, with a warning that says
what to set to keep the compiled kernels between sessions.

Every module with ``cache=True`` functions (``momentum``, the ``kernels`` package) calls it at the top,
before its first decorator runs, and :func:`lazy_njit` calls it before it jits; the first call decides,
the others return its answer.

:func:`lazy_njit` is ``numba.njit`` applied on first use instead of at import. ``losses`` and ``ctc``
carry a few kernels but also the facts of every objective (metric names, directions) that the task
table, and through it the analysis, reads; with it they import without Numba, so reading results and
writing a report never load it. (The package's ``__init__`` loads nothing eagerly either.)
"""
from __future__ import annotations

import functools
import os
import stat
import sys
import tempfile
import threading
import warnings
from pathlib import Path

from .atomic import writable

ENV_NUMBA_CACHE = "NUMBA_CACHE_DIR"
PACKAGE = Path(__file__).resolve().parent
SOURCE_DIRS = (PACKAGE, PACKAGE / "kernels")     # the folders of modules with cache=True functions


def _user_cache_dir() -> Path:
    """Numba's user-wide cache folder (``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba`` on Linux)."""
    from numba.misc.appdirs import AppDirs
    return Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)


def _private_temporary_dir() -> Path:
    """A per-user folder under the temporary directory, reused across processes; a fresh one if the
    shared name is taken by someone else (Numba's cache files are pickles: never load another user's)."""
    path = Path(tempfile.gettempdir()) / f"lstm_scratch-numba-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.lstat()
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022 and writable(path):
            return path
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="lstm_scratch-numba-"))


@functools.lru_cache(maxsize=None)
def ensure_cache_dir() -> Path | None:
    """Make sure Numba has somewhere to write compiled kernels; return the folder chosen here, or None
    when Numba's own choice works (the usual case: only two ``stat``-and-create checks). Once per
    process: later calls return the first one's answer."""
    if os.environ.get(ENV_NUMBA_CACHE) and writable(Path(os.environ[ENV_NUMBA_CACHE])):
        return None
    if all(writable(folder / "__pycache__") for folder in SOURCE_DIRS) or writable(_user_cache_dir()):
        return None
    try:
        fallback = _private_temporary_dir()
    except OSError as err:
        raise OSError(f"no writable folder for Numba's compiled kernels (the package at {PACKAGE} is read-only, "
                      f"{_user_cache_dir()} and the temporary folder are not writable: {err}); set "
                      f"${ENV_NUMBA_CACHE} to a writable directory") from err
    warnings.warn(f"lstm_scratch: {PACKAGE} is read-only and {_user_cache_dir()} is not writable, so the compiled "
                  f"kernels are cached in {fallback}, which may not last; set ${ENV_NUMBA_CACHE} to a writable "
                  f"directory to keep them between sessions", stacklevel=2)
    os.environ[ENV_NUMBA_CACHE] = str(fallback)      # for this process's Numba and for its subprocesses
    import numba.core.config
    numba.core.config.CACHE_DIR = str(fallback)        # Numba may have read the environment already
    return fallback


def lazy_njit(**options):
    """``numba.njit(**options)`` for a module-level function, applied when the function is first called
    or inspected (``.signatures``, ``.stats``) instead of when its module is imported.

    On first use every function of that module so decorated is jitted at once, with the same options,
    and replaces its stand-in in the module's namespace: later calls go straight to the Numba dispatcher
    (nothing added to a hot path), and kernels that call each other see dispatchers when Numba compiles
    them. The machine code, the on-disk cache and the results are those of a plain ``@njit``."""
    def stand_in(function):
        return _LazyKernel(function, options)
    return stand_in


_jit_lock = threading.Lock()


class _LazyKernel:
    """A module-level kernel not jitted yet (:func:`lazy_njit`)."""

    def __init__(self, function, options: dict):
        functools.update_wrapper(self, function)
        self.py_func, self.options = function, options

    def dispatcher(self):
        """The Numba dispatcher that replaced this stand-in (jitting its module's kernels on first use)."""
        namespace = sys.modules[self.py_func.__module__].__dict__
        with _jit_lock:
            if isinstance(namespace.get(self.__name__), _LazyKernel):
                ensure_cache_dir()          # before the cache=True kernels are made
                from numba import njit
                for name, value in list(namespace.items()):
                    if isinstance(value, _LazyKernel):
                        namespace[name] = njit(**value.options)(value.py_func)
        return namespace[self.__name__]

    def __call__(self, *args, **kwargs):
        return self.dispatcher()(*args, **kwargs)

    def __getattr__(self, name):            # only for what the stand-in lacks: .signatures, .stats, …
        if name.startswith("__") or name in ("py_func", "options"):
            raise AttributeError(name)
        return getattr(self.dispatcher(), name)
