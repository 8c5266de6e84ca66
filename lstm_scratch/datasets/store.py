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
import http.client
import json
import os
import shutil
import time
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..atomic import atomic_write, writable

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


def _copy_from(source: str, dest, name: str) -> None:
    """Copy a mirror path, a file:// / http(s):// URL into the open binary file ``dest``; a URL that
    cannot be read (offline, refused, 404, timeout) is a ValueError naming the file, the URL and the
    variable to set."""
    if "://" in source:
        try:
            with urllib.request.urlopen(source, timeout=DOWNLOAD_TIMEOUT_S) as response:
                shutil.copyfileobj(response, dest)
        except (OSError, http.client.HTTPException) as err:     # URLError, HTTPError, timeouts, resets
            hint = (f"check ${ENV_MIRROR} (= {mirror()})" if mirror() else
                    f"offline? set ${ENV_MIRROR} to a directory laid out like shared/data (or its base URL)")
            raise ValueError(f"cannot download {name} from {source} ({getattr(err, 'reason', err)}); "
                             f"{hint}") from err
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


def make_cache_folder(folder: Path) -> None:
    """Create a folder of the cache, checking that files can be made in it; a ValueError names it and the
    variable to set if not."""
    if not writable(folder):
        raise ValueError(f"the data cache is not writable: cannot create files in {folder}; set ${ENV_CACHE} "
                         f"to a writable directory (the cache is {cache_dir()})")


def fetch_file(entry: dict) -> Path:
    """A verified local copy of one manifest entry, fetching it into the cache if needed."""
    target = cache_dir() / "files" / entry["path"]
    if target.is_file():
        verify(target, entry, f"cached file {target} is damaged — delete it and fetch again")
        return target
    source = _source_of(entry)
    make_cache_folder(target.parent)
    atomic_write(target, lambda fh: _copy_from(source, fh, entry["path"]),
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

def fingerprint(*keys: dict) -> str:
    """A short (16 hex digits) sha256 of derived-cache keys: the identity of the data built from them
    (source checksums + settings + feature version), recorded with every run."""
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


def derived_path(task: str, split: str, key: dict) -> Path:
    """Cache file for derived data of (task, split) under settings ``key`` (JSON-serialisable)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir() / "derived" / f"{task}-{split}-{digest}.npz"


def save_npz_atomic(path: Path, arrays: dict) -> None:
    make_cache_folder(path.parent)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


class DamagedCacheError(ValueError):
    """A derived-cache file that cannot be read: truncated, altered, not an .npz, or a member missing."""


# What a damaged .npz raises when opened or read: a truncated zip has no central directory (BadZipFile),
# a flipped byte in a member fails the CRC-32 the zip stores for it, checked as the member is read to its
# end (BadZipFile), a damaged .npy header is a ValueError, a missing member a KeyError.
_DAMAGE = (zipfile.BadZipFile, EOFError, ValueError, KeyError, OSError, zlib.error)


def read_npz(path: Path, names=None) -> dict:
    """Arrays of a derived-cache file (all, or only ``names``: an .npz reads members lazily), each checked
    against its stored CRC-32; a damaged file raises :class:`DamagedCacheError` naming it.

    What ``np.load`` does, plus one check: each member is read to its end, because zipfile checks the
    CRC-32 only there — an altered .npy header that shrinks the shape would otherwise pass unseen."""
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {}
            for name in names or [member.removesuffix(".npy") for member in archive.namelist()]:
                with archive.open(f"{name}.npy") as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
                    if member.read():
                        raise ValueError(f"member {name}.npy has bytes after its array")
            return arrays
    except FileNotFoundError:
        raise
    except _DAMAGE as err:
        raise DamagedCacheError(f"derived-cache file {path} is damaged ({type(err).__name__}: {err})") from err


def load_derived(path: Path, build, names=None) -> dict:
    """The arrays of derived-cache file ``path`` (all, or only ``names``), built first if it is missing,
    or damaged — then with a warning naming it.

    ``build()`` makes the data from its verified sources and writes ``path`` with :func:`save_npz_atomic`
    (it may write sibling splits too); it returns the arrays, or None to have ``path`` read back. A damaged
    file is never deleted, only replaced: processes that rebuild it at once each write a whole file under
    a temporary name and the last rename wins, so every reader sees one complete file (deleting the
    damaged one could delete the file another process has just rebuilt). If the rebuild fails, a
    :class:`DamagedCacheError` names the file and what to do.
    """
    damage = None
    try:
        return read_npz(path, names)
    except FileNotFoundError:
        pass
    except DamagedCacheError as err:
        damage = err
        warnings.warn(f"{err}; rebuilding it from its verified sources", stacklevel=3)
    try:
        built = build()
        if built is None:
            return read_npz(path, names)
        return {k: built[k] for k in names} if names else built
    except Exception as err:
        if damage is None:
            raise
        raise DamagedCacheError(f"{damage}, and rebuilding it failed: {err} — fix that and run again (the "
                                f"files under {path.parent} can always be deleted, they are rebuilt)") from err


def derived_is_valid(path: Path) -> bool:
    """True if ``path`` is an .npz whose zip directory reads (a cheap check, for ``data list``'s "cached":
    it catches truncation; a flipped data byte is found by the CRC check of the next load, which rebuilds)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
    except _DAMAGE:
        return False
    return bool(members) and all(name.endswith(".npy") for name in members)


def pack(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate a ragged list along axis 0; return (data, offsets) with offsets[i]:offsets[i+1]."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in arrays])
    return np.concatenate(arrays, axis=0), offsets


def unpack(data: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [data[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
