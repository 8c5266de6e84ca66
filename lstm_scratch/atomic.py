"""Writing files atomically: a temporary file beside the target, renamed onto it (``os.replace``) once
complete. A reader sees the old file or the new one, never half of one — even when the process is
killed while writing — and a failed write leaves nothing behind.

A killed writer does leave its temporary file, ``.<name>.<pid>@<host>.<random>.part``. Such leftovers
are removed beside the target by every later write of it (and in a whole folder by
:func:`remove_stale_parts`), but only when no one can still be writing them, since many processes share
these folders:

- the name says this host and its process id is not running here, and the file has not changed for
  ``DEAD_WRITER_GRACE_S`` (the grace covers another pid namespace on a host of the same name); or
- the file has not changed for ``STALE_AFTER_S`` (an hour; covers other hosts on a shared file system,
  whose processes cannot be seen from here). Every writer writes continuously, so an hour without a
  change means its writer is gone.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import re
import socket
import tempfile
import time
from pathlib import Path

STALE_AFTER_S = 3600
DEAD_WRITER_GRACE_S = 60
_HOST = socket.gethostname()


def atomic_write(path: str | os.PathLike, write, *, binary: bool = True, verify=None,
                 exclusive: bool = False) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``; then ``verify(temporary_path)`` if
    given (raise to refuse the file); then rename it onto ``path``. The file gets mode 0o644 (mkstemp
    makes it private; results and caches are meant to be shared). Afterwards, stale temporaries of
    killed writes of ``path`` are removed (see the module docstring).

    ``exclusive``: create ``path`` only if it does not exist — a hard link instead of the rename, which
    the file system makes atomic, so of two processes creating the same file at once exactly one
    succeeds; the other gets ``FileExistsError`` and has written nothing."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}@{_HOST}.", suffix=".part", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as handle:
            write(handle)
        if verify is not None:
            verify(Path(tmp))
        if exclusive:
            os.link(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    remove_stale_parts(path.parent, path.name)


# ".<name>.<pid>@<host>.<random>.part": mkstemp's random part has no dot, a host name may have some
_PART_NAME = re.compile(r"\..*\.(\d+)@([^@/]+)\.[a-z0-9_]+\.part")


def writable(folder: str | os.PathLike) -> bool:
    """True if ``folder`` exists or can be made, and a file can be created in it (``os.access`` says yes
    to root everywhere, and nothing about a read-only file system)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def _writer_is_gone(name: str) -> bool:
    """True if a temporary file's name says it was written on this host by a process that is not running."""
    match = _PART_NAME.fullmatch(name)
    if match is None or match[2] != _HOST:
        return False
    try:
        os.kill(int(match[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:           # exists, owned by someone else
        pass
    return False


def _part_pattern(name: str | None) -> str:
    """The glob of :func:`atomic_write`'s temporary files (of target ``name`` if given); it also matches
    the older ``.<name>.<random>.part``, written before names carried the writer."""
    return f".{glob.escape(name)}.*.part" if name is not None else ".*.part"


def is_part_file(filename: str, name: str | None = None) -> bool:
    """Whether ``filename`` (a name, not a path) is a temporary file of :func:`atomic_write` — of target
    ``name`` if given — in flight or left by a killed write: not a file of its own (see the module
    docstring)."""
    return fnmatch.fnmatchcase(filename, _part_pattern(name))


def remove_stale_parts(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the leftover temporary files of killed writes in ``folder`` (only those of target ``name``
    if given) that no one can still be writing; return what was removed. Safe to call from any number
    of processes at once."""
    now = time.time()
    removed = []
    for part in Path(folder).glob(_part_pattern(name)):
        try:
            age = now - part.stat().st_mtime
            if age > STALE_AFTER_S or (age > DEAD_WRITER_GRACE_S and _writer_is_gone(part.name)):
                part.unlink()
                removed.append(part)
        except OSError:      # finished or removed by another process meanwhile, or not ours to remove
            continue
    return removed
