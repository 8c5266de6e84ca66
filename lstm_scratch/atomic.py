"""Writing files atomically: a temporary file beside the target, renamed onto it (``os.replace``) once
complete. A reader sees the old file or the new one, never half of one — even when the process is
killed while writing — and a failed write leaves nothing behind."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike, write, *, binary: bool = True, verify=None) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``; then ``verify(temporary_path)`` if
    given (raise to refuse the file); then rename it onto ``path``. The file gets mode 0o644 (mkstemp
    makes it private; results and caches are meant to be shared)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as handle:
            write(handle)
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
