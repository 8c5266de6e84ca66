"""Where Numba keeps the compiled kernels, when the installed package cannot hold them.

Every kernel is compiled with ``cache=True``. Numba looks for a writable place at import time, when the
decorator runs: ``$NUMBA_CACHE_DIR`` if set, else ``__pycache__`` beside the source, else a user-wide
``~/.cache/numba`` — and with none of them (a read-only install and no writable ``$HOME``: a container,
a cluster node) the import dies with ``cannot cache function ...: no locator available``.
:func:`ensure_cache_dir` runs before any kernel module is imported and, in that case only, points
``NUMBA_CACHE_DIR`` at a private directory under the system's temporary folder, with a warning that says
what to set to keep the compiled kernels between sessions.

Every module with ``cache=True`` functions (``losses``, ``ctc``, ``momentum``, the ``kernels`` package)
calls it at the top, before its first decorator runs; the first call decides, the others return its
answer. (The package's ``__init__`` loads nothing eagerly, so :mod:`lstm_scratch.analysis` never
imports Numba.)
"""
from __future__ import annotations

import functools
import os
import stat
import tempfile
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
