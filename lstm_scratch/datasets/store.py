"""Where data files come from and where they are kept: the manifest, fetching, verification, the cache.

Every external file the package can fetch is listed in ``data/manifest.json`` (path, size, sha256,
canonical URL), grouped by task. ``fetch_group(name)`` returns local paths to verified copies:

1. ``$LSTM_SCRATCH_DATA/files/<path>`` (default cache ``~/.cache/lstm_scratch``) if it is already there;
2. otherwise it is copied from the mirror ``$LSTM_SCRATCH_MIRROR`` — a directory laid out like
   ``shared/data`` (``<mirror>/<path>``) or a base URL (``<mirror>/<path>``) — or, with no mirror,
   downloaded from the file's canonical URL.

A new copy lands under a temporary name, is checked for size and sha256, and only then renamed into
place (``os.replace``): a truncated or altered file raises :class:`ChecksumError` naming it and is never
cached. Derived data (features) live in ``$LSTM_SCRATCH_DATA/derived/`` under a name that hashes
everything they depend on (source checksums + settings), so changing either builds a new file.

Content hashes of local files are remembered for the life of the process (:func:`file_digest`), keyed by
the file's path and ``stat`` identity (device, inode, size, mtime, ctime): a licensed corpus is read once
per process however many splits are loaded, and a file that changes gets a new stat and is hashed again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import numpy as np

from ..atomic import atomic_write

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "data" / "manifest.json"
ENV_CACHE = "LSTM_SCRATCH_DATA"
ENV_MIRROR = "LSTM_SCRATCH_MIRROR"
DOWNLOAD_TIMEOUT_S = 60
# A file modified less than this long ago may change again within the file system's timestamp resolution
# (1 ms .. 2 s) without its stat changing, so its digest is not remembered (git's "racy clean" problem).
SETTLED_NS = 2_000_000_000
_DIGESTS: dict[tuple, str] = {}     # stat identity → sha256, see file_digest


class ChecksumError(ValueError):
    """A fetched or cached file does not have the size / sha256 the manifest records."""


def cache_dir() -> Path:
    """The cache root: ``$LSTM_SCRATCH_DATA`` or ``~/.cache/lstm_scratch``."""
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "lstm_scratch").expanduser()


def mirror() -> str | None:
    """``$LSTM_SCRATCH_MIRROR`` (a directory or a base URL), or None."""
    return os.environ.get(ENV_MIRROR) or None


def load_manifest(path: Path = MANIFEST_PATH) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"data manifest {path} not found: lstm_scratch must be installed from its "
                                f"source tree (pip install -e .) so that data/manifest.json is present")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def group(name: str) -> dict:
    """One manifest group (title, licence, upstream, files)."""
    groups = load_manifest()["groups"]
    if name not in groups:
        raise ValueError(f"no file group {name!r} in {MANIFEST_PATH}; known: {', '.join(groups)}")
    return groups[name]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, entry: dict, what: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has the manifest's size and sha256."""
    size = path.stat().st_size
    if size != entry["size"]:
        hint = " (truncated download?)" if size < entry["size"] else ""
        raise ChecksumError(f"{what}: {entry['path']} has {size} bytes, the manifest says {entry['size']}{hint}")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise ChecksumError(f"{what}: {entry['path']} has sha256 {digest}, the manifest says {entry['sha256']}")


def _copy_from(source: str, dest) -> None:
    """Copy a mirror path, a file:// / http(s):// URL into the open binary file ``dest``."""
    if "://" in source:
        with urllib.request.urlopen(source, timeout=DOWNLOAD_TIMEOUT_S) as response:
            shutil.copyfileobj(response, dest)
    else:
        with open(source, "rb") as fh:
            shutil.copyfileobj(fh, dest)


def _source_of(entry: dict) -> str:
    base = mirror()
    if base is None:
        if not entry.get("url"):
            raise FileNotFoundError(f"{entry['path']} has no public download URL ({entry.get('note', '')}); "
                                    f"set ${ENV_MIRROR} to a directory laid out like shared/data")
        return entry["url"]
    if "://" in base:
        return base.rstrip("/") + "/" + entry["path"]
    local = Path(base).expanduser() / entry["path"]
    if not local.is_file():
        raise FileNotFoundError(f"{entry['path']} is not in the mirror {base} (${ENV_MIRROR}); "
                                f"the mirror must be laid out like shared/data")
    return str(local)


def fetch_file(entry: dict) -> Path:
    """A verified local copy of one manifest entry, fetching it into the cache if needed."""
    target = cache_dir() / "files" / entry["path"]
    if target.is_file():
        verify(target, entry, f"cached file {target} is damaged — delete it and fetch again")
        return target
    source = _source_of(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda fh: _copy_from(source, fh),
                 verify=lambda tmp: verify(tmp, entry, f"fetched from {source}"))
    return target


def fetch_group(name: str) -> dict[str, Path]:
    """Verified local paths of every file in a manifest group, keyed by manifest path."""
    return {entry["path"]: fetch_file(entry) for entry in group(name)["files"]}


def group_is_cached(name: str) -> bool:
    """True if every file of the group is already in the cache (size checked, not re-hashed)."""
    root = cache_dir() / "files"
    return all((root / e["path"]).is_file() and (root / e["path"]).stat().st_size == e["size"]
               for e in group(name)["files"])


def group_fingerprint(name: str) -> str:
    """A hash of a group's recorded checksums: the identity of its data for derived-cache keys."""
    return hashlib.sha256("".join(e["sha256"] for e in group(name)["files"]).encode()).hexdigest()


def file_digest(path) -> str:
    """sha256 of a local file, hashed at most once per process while the file is unchanged.

    Remembered under (absolute path, device, inode, size, mtime, ctime): writing to the file changes its
    mtime and ctime, replacing it changes the inode, so a changed file is hashed again. Files modified in
    the last ``SETTLED_NS`` are hashed every time (a second write within one timestamp tick would leave
    the stat unchanged).
    """
    path = os.path.abspath(path)      # not resolve(): (device, inode) already name the file, and is cheap
    st = os.stat(path)
    identity = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    digest = _DIGESTS.get(identity)
    if digest is None:
        digest = sha256_file(path)
        if time.time_ns() - st.st_mtime_ns > SETTLED_NS:
            _DIGESTS[identity] = digest
    return digest


def content_fingerprint(paths) -> str:
    """A hash of the contents of local files (licensed corpora have no manifest checksums)."""
    h = hashlib.sha256()
    for path in sorted(p if isinstance(p, Path) else Path(p) for p in paths):   # Path(Path) re-parses: slow
        h.update(path.name.encode() + b"\0" + file_digest(path).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------
# Derived data: ragged lists of arrays packed into one .npz, written atomically.

def derived_path(task: str, split: str, key: dict) -> Path:
    """Cache file for derived data of (task, split) under settings ``key`` (JSON-serialisable)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir() / "derived" / f"{task}-{split}-{digest}.npz"


def save_npz_atomic(path: Path, arrays: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def read_npz(path: Path, names=None) -> dict:
    """Arrays of a derived-cache file (all, or only ``names``: an .npz reads members lazily)."""
    with np.load(path, allow_pickle=False) as cached:
        return {k: cached[k] for k in (names or cached.files)}


def pack(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate a ragged list along axis 0; return (data, offsets) with offsets[i]:offsets[i+1]."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in arrays])
    return np.concatenate(arrays, axis=0), offsets


def unpack(data: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [data[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
