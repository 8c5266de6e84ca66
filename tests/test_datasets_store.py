"""Manifest, fetching from a mirror (directory or URL), verification and the cache."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstm_scratch import cli, datasets
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


# ---------------------------------------------------------------------------------------------------
# Faults a study with many workers would hit: damaged derived files, offline, an unwritable cache.

def _damage(path: Path, how: str) -> None:
    content = path.read_bytes()
    if how == "header":                              # (T, 88) → (T, 87): a valid header, a shorter read
        assert content.count(b", 88), }") == 1
        path.write_bytes(content.replace(b", 88), }", b", 87), }"))
        return
    middle = len(content) // 2                       # inside the piano rolls' data
    path.write_bytes(content[:middle] if how == "truncated"
                     else content[:middle] + bytes([content[middle] ^ 0xFF]) + content[middle + 1:])


def _jsb_train_cache(data_env) -> Path:
    (path,) = (data_env / "derived").glob("jsb-train-*.npz")
    return path


@pytest.mark.parametrize("how", ["truncated", "flipped", "header"])
def test_a_damaged_derived_file_is_rebuilt_with_a_warning_naming_it(data_env, how):
    first = datasets.load("jsb", "train")
    path = _jsb_train_cache(data_env)
    _damage(path, how)
    assert store.derived_is_valid(path) == (how != "truncated")   # the cheap check sees a truncation only;
    with pytest.warns(UserWarning, match=f"{path.name} is damaged.*rebuilding"):   # the CRC-32s the rest
        again = datasets.load("jsb", "train")
    assert len(again.inputs) == len(first.inputs)
    assert all(np.array_equal(a, b) for a, b in zip(first.inputs, again.inputs))
    assert store.derived_is_valid(path) and sorted(store.read_npz(path)) == ["offsets", "rolls"]
    assert not list(data_env.rglob("*.part"))


def test_processes_rebuilding_one_damaged_file_at_once_all_get_the_data(data_env):
    expected = hashlib.sha256(np.concatenate(datasets.load("jsb", "train").inputs).tobytes()).hexdigest()
    path = _jsb_train_cache(data_env)
    _damage(path, "truncated")
    code = ("import hashlib, numpy as np; from lstm_scratch import datasets; s = datasets.load('jsb', 'train'); "
            "print(hashlib.sha256(np.concatenate(s.inputs).tobytes()).hexdigest())")
    workers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(3)]          # the environment names data_env
    results = [(w.communicate(timeout=600), w.returncode) for w in workers]
    for (out, err), code in results:
        assert code == 0, err
        assert out.split() == [expected]
    assert store.derived_is_valid(path) and not list(data_env.rglob("*.part"))


def test_a_damaged_derived_file_that_cannot_be_rebuilt_is_an_error_naming_it(data_env, monkeypatch, tmp_path):
    datasets.load("jsb", "train")
    path = _jsb_train_cache(data_env)
    _damage(path, "truncated")
    for source in (data_env / "files").rglob("*.pkl"):                 # the source is gone ...
        source.unlink()
    monkeypatch.setenv(store.ENV_MIRROR, str(tmp_path / "empty"))       # ... and cannot be fetched
    with pytest.warns(UserWarning, match=path.name), pytest.raises(ValueError) as err:
        datasets.load("jsb", "train")
    message = str(err.value)
    assert str(path) in message and "rebuilding it failed" in message and "jsb-chorales-quarter.pkl" in message


def _refusing_urls(monkeypatch):
    """Every canonical URL pointed at port 9 of this host, which refuses connections: offline, quickly."""
    manifest = store.load_manifest()
    for group in manifest["groups"].values():
        for entry in group["files"]:
            entry["url"] = "http://127.0.0.1:9/" + entry["path"]
    monkeypatch.setattr(store, "load_manifest", lambda path=store.MANIFEST_PATH: manifest)


def test_offline_without_a_mirror_is_one_error_naming_the_file_the_url_and_the_variable(data_env, monkeypatch,
                                                                                         capsys):
    monkeypatch.delenv(store.ENV_MIRROR)
    _refusing_urls(monkeypatch)
    with pytest.raises(ValueError) as err:
        store.fetch_group("jsb")
    message = str(err.value)
    assert "http://127.0.0.1:9/music/jsb-chorales-quarter.pkl" in message and "$LSTM_SCRATCH_MIRROR" in message
    assert cli.main(["data", "fetch", "jsb"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()               # one line, no traceback
    assert "music/jsb-chorales-quarter.pkl" in line and "LSTM_SCRATCH_MIRROR" in line
    assert not list(data_env.rglob("*.part")) and not list(data_env.rglob("*.pkl"))


def test_an_unreachable_url_mirror_names_the_url_and_the_variable(data_env, monkeypatch):
    monkeypatch.setenv(store.ENV_MIRROR, "http://127.0.0.1:9/")
    with pytest.raises(ValueError, match=r"http://127.0.0.1:9/music/jsb-chorales-quarter.pkl.*LSTM_SCRATCH_MIRROR"):
        datasets.load("jsb", "valid")


def test_an_unwritable_data_cache_names_the_folder_and_the_variable(data_env, monkeypatch, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(store.ENV_CACHE, str(blocker / "cache"))   # unwritable even for root, unlike chmod 555
    with pytest.raises(ValueError, match=r"not writable.*\$LSTM_SCRATCH_DATA") as err:
        store.fetch_group("jsb")
    assert str(blocker / "cache") in str(err.value)
    with pytest.raises(ValueError, match=r"not writable.*\$LSTM_SCRATCH_DATA"):
        store.save_npz_atomic(store.derived_path("jsb", "train", {}), {"rolls": np.zeros(1)})


def test_data_list_says_cached_only_for_a_readable_derived_cache(data_env):
    from lstm_scratch.datasets.registry import availability
    datasets.load("handwriting_synthetic", "valid")                     # builds all three splits
    assert availability("handwriting_synthetic") == "cached"
    (path,) = (data_env / "derived").glob("handwriting_synthetic-test-*.npz")
    _damage(path, "truncated")
    assert availability("handwriting_synthetic") == "generated on first use (cached)"
