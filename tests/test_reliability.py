"""Faults a study with many workers would hit: stale compiled kernels, a read-only install, leftovers of
killed writes, a licensed corpus without its location. (Data-cache faults: test_datasets_store.py.)"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lstm_scratch
from lstm_scratch import atomic
from lstm_scratch.datasets import timit

PACKAGE = Path(lstm_scratch.__file__).resolve().parent

# Runs one LSTM kernel forward in a fresh process on a copy of the package (argv[1] = its parent) and
# prints the output and whether the compiled kernel came from Numba's disk cache.
KERNEL_RUN = """
import json, sys
import numpy as np
import lstm_scratch
assert lstm_scratch.__file__.startswith(sys.argv[1]), lstm_scratch.__file__
from lstm_scratch import kernels
from lstm_scratch.kernels import lstm
from lstm_scratch.variants import Layout, get
arch = get("V")
layout = Layout(arch, 3, 4)
flat = np.random.default_rng(0).normal(0.0, 0.5, layout.size)
x = np.random.default_rng(1).normal(0.0, 1.0, (6, 3))
y, _ = kernels.forward(arch, layout.blocks(flat), x)
fwd, _ = lstm.compiled(arch, lstm._build_for)
print(json.dumps({"y": y.tolist(), "hits": sum(fwd.stats.cache_hits.values()),
                  "misses": sum(fwd.stats.cache_misses.values())}))
"""


def _copy_package(dest: Path) -> Path:
    """A copy of the package without any compiled files; returns the folder to put on sys.path."""
    shutil.copytree(PACKAGE, dest / "lstm_scratch", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _python(code: str, *args, env_update: dict, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(env_update)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def test_an_edit_of_an_inlined_kernel_helper_is_compiled_not_served_stale_from_the_cache(tmp_path):
    root = _copy_package(tmp_path / "src")

    def run():
        done = _python(KERNEL_RUN, root, env_update={"PYTHONPATH": str(root)}, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    first, again = run(), run()
    assert first["misses"] == 1 and first["hits"] == 0           # compiled and written to the cache
    assert again["hits"] == 1 and again["misses"] == 0           # unchanged sources: loaded from it
    assert again["y"] == first["y"]

    primitives = root / "lstm_scratch" / "kernels" / "primitives.py"
    source = primitives.read_text()
    assert source.count("return one / (one + exp(-x))") == 1
    primitives.write_text(source.replace("return one / (one + exp(-x))", "return one / (one + exp(-x - one))"))
    edited = run()                           # σ(x) became σ(x + 1): the kernel that inlines it must change
    assert edited["misses"] == 1 and edited["hits"] == 0
    assert edited["y"] != first["y"]


def test_a_read_only_install_without_a_writable_home_caches_kernels_in_a_temporary_folder(tmp_path):
    root = _copy_package(tmp_path / "src")
    # As root no permission bit stops a write, so make the places unusable for everyone: a __pycache__
    # that is a regular file, and a $HOME that is a regular file (so ~/.cache/numba cannot exist).
    for folder in (root / "lstm_scratch", root / "lstm_scratch" / "kernels"):
        (folder / "__pycache__").write_text("not a folder")
    home = tmp_path / "home"
    home.write_text("not a folder")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    code = ("import numpy as np, lstm_scratch, lstm_scratch.momentum as m\n"
            "p = np.zeros(3); m._momentum_step(p, np.zeros(3), np.ones(3), 0.9, 0.1, 0.0, True); print(p[0])")
    done = _python(code, env_update={"PYTHONPATH": str(root), "HOME": str(home), "TMPDIR": str(temporary)},
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "NUMBA_CACHE_DIR" in done.stderr and "read-only" in done.stderr      # says what to set
    fallback = temporary / f"lstm_scratch-numba-{os.getuid()}"
    assert list(fallback.rglob("*momentum_step*.nbi"))                          # and the cache works there


def test_killed_writes_leave_part_files_that_a_later_write_removes(tmp_path):
    target = tmp_path / "record.json"
    code = ("import sys, time\nfrom lstm_scratch.atomic import atomic_write\n"
            "def write(handle):\n    handle.write(b'half a record'); handle.flush(); print('writing', flush=True)\n"
            "    time.sleep(600)\n"
            f"atomic_write({str(target)!r}, write)")
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    (part,) = tmp_path.glob(".record.json.*.part")
    assert f".{writer.pid}@" in part.name
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert part.exists() and not target.exists()              # what a killed write leaves behind

    atomic.atomic_write(target, lambda h: h.write(b"{}"))
    assert part.exists()          # changed less than a minute ago: could be a writer in another pid namespace
    old = time.time() - 2 * atomic.DEAD_WRITER_GRACE_S
    os.utime(part, (old, old))
    atomic.atomic_write(target, lambda h: h.write(b"{}"))
    assert not part.exists() and target.read_bytes() == b"{}"


def test_only_part_files_no_one_can_still_be_writing_are_removed(tmp_path):
    host = atomic._HOST
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1       # a pid that never runs
    minutes = {                                        # name → minutes since last change
        f".r.json.{dead}@{host}.a1.part": 2,           # dead writer here, past the grace: removed
        f".r.json.{dead}@{host}.b2.part": 0,           # dead writer here, within the grace: kept
        f".r.json.{os.getpid()}@{host}.c3.part": 30,   # a live writer (this process): kept
        f".r.json.{dead}@other.node.d4.part": 30,      # another host, unseen writer: kept for an hour
        f".r.json.{dead}@other.node.e5.part": 61,      # ... then removed
        ".r.json.f6abcdef.part": 61,                   # the old name without a writer: by age alone
        f".q.json.{dead}@{host}.g7.part": 2,           # another target's: left to that target's writes
    }
    now = time.time()
    for name, age in minutes.items():
        (tmp_path / name).write_bytes(b"partial")
        os.utime(tmp_path / name, (now - 60 * age, now - 60 * age))
    atomic.atomic_write(tmp_path / "r.json", lambda h: h.write(b"{}"))
    left = {p.name for p in tmp_path.glob(".*.part")}
    assert left == {f".r.json.{dead}@{host}.b2.part", f".r.json.{os.getpid()}@{host}.c3.part",
                    f".r.json.{dead}@other.node.d4.part", f".q.json.{dead}@{host}.g7.part"}
    removed = atomic.remove_stale_parts(tmp_path)       # the helper a study calls on a whole folder
    assert [p.name for p in removed] == [f".q.json.{dead}@{host}.g7.part"]


def test_timit_without_a_location_names_both_the_python_and_the_command_line_way(monkeypatch):
    monkeypatch.delenv(timit.ENV_ROOT, raising=False)
    with pytest.raises(FileNotFoundError) as err:
        timit.load("timit", "train")
    message = str(err.value)
    assert "root= in Python" in message and "--root on the command line" in message and timit.ENV_ROOT in message
