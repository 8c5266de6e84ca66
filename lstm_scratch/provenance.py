"""Where a result came from: the code, the libraries and the machine. One function, :func:`provenance`,
shared by a run record (its ``environment``) and a study's ``study.json``, so both say the same thing
in the same words."""
from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path


def code_version() -> str:
    """The git commit of the package's working tree (``+dirty`` if it has local changes), or the
    package version when it is not a git checkout."""
    from . import __version__
    here = Path(__file__).resolve().parent
    try:
        def git(*args):
            return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        return f"git:{commit}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"lstm_scratch {__version__}"


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict:
    """Code and library versions, the machine and this process: code_version, package_version, python,
    numpy, numba, scipy, blas, platform, cpu, cpu_count, host, pid. Computed afresh on every call (the
    working tree may change between the runs of one process)."""
    import numba
    import numpy
    import scipy
    from threadpoolctl import threadpool_info

    from . import __version__
    return {"code_version": code_version(), "package_version": __version__,
            "python": platform.python_version(), "numpy": numpy.__version__, "numba": numba.__version__,
            "scipy": scipy.__version__,
            "blas": [f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')})"
                     for b in threadpool_info() if b.get("user_api") == "blas"],
            "platform": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "host": socket.gethostname(), "pid": os.getpid()}
