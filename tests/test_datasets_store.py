"""Manifest, fetching from a mirror (directory or URL), verification and the cache."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from lstm_scratch.datasets import ChecksumError, store

from conftest import SHARED_DATA, needs_shared


def _files(root: Path) -> dict:
    """Every file under root with its size and hash: what "the cache is unchanged" compares."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


@needs_shared
def test_manifest_checksums_match_the_shared_sha256sums():
    recorded = {}
    for folder in ("music", "timit_sample"):
        for line in (SHARED_DATA / folder / "SHA256SUMS").read_text().splitlines():
            digest, name = line.split(None, 1)
            recorded[f"{folder}/{name.strip().removeprefix('./')}"] = digest
    groups = store.load_manifest()["groups"]
    entries = [e for g in groups.values() for e in g["files"]]
    assert len(entries) == 335
    for entry in entries:
        assert recorded[entry["path"]] == entry["sha256"], entry["path"]
        assert (SHARED_DATA / entry["path"]).stat().st_size == entry["size"], entry["path"]


def test_every_manifest_entry_has_a_url_or_says_why_not():
    for name, group in store.load_manifest()["groups"].items():
        assert group["licence"] and group["title"], name
        for entry in group["files"]:
            assert entry["url"] is None and "mirror" in entry["note"] or entry["url"].startswith("https://"), entry


def test_fetch_copies_from_a_mirror_directory_and_verifies(data_env):
    (path,) = store.fetch_group("jsb").values()
    assert path == data_env / "files" / "music" / "jsb-chorales-quarter.pkl"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == store.group("jsb")["files"][0]["sha256"]
    assert store.group_is_cached("jsb") and not store.group_is_cached("musedata")
    assert not [p for p in data_env.rglob("*.part")]          # no temporary left behind


def test_fetch_from_a_url_mirror(data_env, monkeypatch):
    monkeypatch.setenv(store.ENV_MIRROR, SHARED_DATA.as_uri())   # file:// goes through urllib like http(s)
    (path,) = store.fetch_group("piano_midi").values()
    assert path.stat().st_size == store.group("piano_midi")["files"][0]["size"]


@pytest.mark.parametrize("damage", ["altered", "truncated"])
def test_bad_mirror_file_is_an_error_naming_it_and_never_cached(data_env, monkeypatch, tmp_path, damage):
    store.fetch_group("piano_midi")            # something already cached, which must stay as it is
    entry = store.group("jsb")["files"][0]
    bad_mirror = tmp_path / "mirror"
    (bad_mirror / "music").mkdir(parents=True)
    content = (SHARED_DATA / entry["path"]).read_bytes()
    content = content[:1000] if damage == "truncated" else content[:-1] + bytes([content[-1] ^ 1])
    (bad_mirror / entry["path"]).write_bytes(content)
    monkeypatch.setenv(store.ENV_MIRROR, str(bad_mirror))
    before = _files(data_env)
    with pytest.raises(ChecksumError, match="jsb-chorales-quarter.pkl") as err:
        store.fetch_group("jsb")
    assert ("truncated" in str(err.value)) == (damage == "truncated")
    assert _files(data_env) == before


def test_file_missing_from_the_mirror(data_env, monkeypatch, tmp_path):
    monkeypatch.setenv(store.ENV_MIRROR, str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="Nottingham.mat is not in the mirror"):
        store.fetch_group("nottingham")


def test_damaged_cached_file_is_reported_not_used(data_env):
    (path,) = store.fetch_group("jsb").values()
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        fh.write(b"X")
    with pytest.raises(ChecksumError, match="delete it and fetch again"):
        store.fetch_group("jsb")


def test_pack_unpack_and_atomic_npz(tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV_CACHE, str(tmp_path))
    arrays = [np.arange(6.0).reshape(3, 2), np.zeros((0, 2)), np.ones((2, 2))]
    data, offsets = store.pack(arrays)
    assert offsets.tolist() == [0, 3, 3, 5]
    assert all(np.array_equal(a, b) for a, b in zip(arrays, store.unpack(data, offsets)))
    path = store.derived_path("t", "train", {"b": 1, "a": [1, 2]})
    assert path == store.derived_path("t", "train", {"a": [1, 2], "b": 1})       # key order is irrelevant
    assert path != store.derived_path("t", "train", {"a": [1, 2], "b": 2})
    store.save_npz_atomic(path, {"data": data})
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    with np.load(path) as saved:
        assert np.array_equal(saved["data"], data)


def test_file_digest_is_remembered_only_while_the_file_is_unchanged_and_settled(tmp_path, monkeypatch):
    calls = []
    real = store.sha256_file
    monkeypatch.setattr(store, "_DIGESTS", {})
    monkeypatch.setattr(store, "sha256_file", lambda path: calls.append(path) or real(path))
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    expected = hashlib.sha256(b"abc").hexdigest()
    assert store.file_digest(path) == store.file_digest(path) == expected
    assert len(calls) == 2                          # just written: could change again within one mtime tick
    then = time.time() - 60
    os.utime(path, (then, then))
    assert store.file_digest(path) == store.file_digest(tmp_path / "." / "a.bin") == expected
    assert len(calls) == 3                          # settled: hashed once, then remembered
    path.write_bytes(b"abd")                        # same size, new content
    os.utime(path, (then + 1, then + 1))
    assert store.file_digest(path) == hashlib.sha256(b"abd").hexdigest() and len(calls) == 4
