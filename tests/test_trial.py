"""What a search worker needs from the trainer: ``run_trial`` (return, resume or start), records checked
on reading, provenance, and worker preparation (thread pinning through the environment, a warm-up, and
pinning that two trials in one process cannot undo)."""
import json
import os
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from lstm_scratch import parallel, records
from lstm_scratch.network import Network
from lstm_scratch.provenance import provenance
from lstm_scratch.records import read_record
from lstm_scratch.train import run_trial, train

sys.path.insert(0, str(Path(__file__).parent))
from test_train import Killed, config, synthetic_task  # noqa: E402

LABELS = {"study": "jsb-0", "trial": "V-0003", "k": 3}


# ------------------------------------------------------------------------------------ run_trial
def test_run_trial_starts_then_returns_the_finished_record_without_training(monkeypatch, tmp_path):
    data, out = synthetic_task(), tmp_path / "V-0003"
    record = run_trial(config(), out, labels=LABELS, data=data)
    assert record["outcome"] == "finished" and record["labels"] == LABELS
    assert record["environment"]["pid"] == os.getpid() and record["environment"]["host"]
    assert record["environment"]["threads"] == 1
    assert read_record(out / "record.json") == json.loads(json.dumps(record))
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "params.npz", "record.json"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished trial was trained again")
    monkeypatch.setattr(Network, "loss_and_grad", no_training)
    assert run_trial(config(), out, labels=LABELS, data=data) == read_record(out / "record.json")


def test_run_trial_resumes_a_killed_trial_bit_for_bit(tmp_path):
    data, cfg = synthetic_task(), config(noise=0.3, max_epochs=5)
    whole = run_trial(cfg, tmp_path / "whole", data=data)
    with pytest.raises(Killed):
        train(cfg, tmp_path / "cut", data=data, threads=1, on_epoch=_kill_at(2))
    resumed = run_trial(cfg, tmp_path / "cut", labels=LABELS, data=data)
    assert resumed["sessions"] == 2 and resumed["labels"] == LABELS
    assert resumed["history"]["valid_metric"] == whole["history"]["valid_metric"]
    assert resumed["history"]["train_loss"] == whole["history"]["train_loss"]
    assert resumed["test_metric"] == whole["test_metric"]


def _kill_at(epoch):
    def on_epoch(e, history):
        if e == epoch:
            raise Killed
    return on_epoch


@pytest.mark.parametrize("where", ["record", "checkpoint"])
def test_run_trial_refuses_a_record_or_checkpoint_of_another_configuration(tmp_path, where):
    data, out = synthetic_task(), tmp_path / "trial"
    if where == "record":
        run_trial(config(), out, data=data)
    else:
        with pytest.raises(Killed):
            train(config(), out, data=data, threads=1, on_epoch=_kill_at(1))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match=rf"{where}\.(json|npz).*another configuration.*'lr': \(0\.1, 0\.2\)"):
        run_trial(config(lr=0.2), out, data=data)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("damage", ["truncated", "foreign", "missing-field", "not-json"])
def test_a_corrupt_record_is_set_aside_and_the_trial_runs_from_its_checkpoint(tmp_path, damage):
    data, cfg, out = synthetic_task(), config(max_epochs=3), tmp_path / "trial"
    whole = run_trial(cfg, tmp_path / "whole", data=data)
    with pytest.raises(Killed):
        train(cfg, out, data=data, threads=1, on_epoch=_kill_at(2))
    text = (tmp_path / "whole" / "record.json").read_text()
    bad = {"truncated": text[:len(text) // 2], "foreign": json.dumps({"format": "other/1", "outcome": "finished"}),
           "missing-field": json.dumps({k: v for k, v in json.loads(text).items() if k != "history"}),
           "not-json": "\x00\x01garbage"}[damage]
    (out / "record.json").write_text(bad)
    with pytest.raises(ValueError, match=r"record\.json: .*not a usable run record|cannot read the JSON"):
        read_record(out / "record.json")
    with pytest.warns(RuntimeWarning, match="set aside as record.json.corrupt-"):
        record = run_trial(cfg, out, data=data)
    assert record["sessions"] == 2 and record["history"]["valid_metric"] == whole["history"]["valid_metric"]
    aside = [p for p in out.iterdir() if p.name.startswith("record.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == bad


def test_a_corrupt_checkpoint_is_set_aside_and_the_trial_starts_afresh(tmp_path):
    data, out = synthetic_task(), tmp_path / "trial"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"PK\x03\x04 half a zip")
    with pytest.warns(RuntimeWarning, match="unreadable checkpoint.*set aside as checkpoint.npz.corrupt-"):
        record = run_trial(config(), out, data=data)
    assert record["outcome"] == "finished" and record["sessions"] == 1
    fresh = run_trial(config(), tmp_path / "fresh", data=data)
    assert record["history"]["valid_metric"] == fresh["history"]["valid_metric"]
    assert [p.name.split("-")[0] for p in out.iterdir() if "corrupt" in p.name] == ["checkpoint.npz.corrupt"]


@pytest.mark.parametrize("labels, message", [
    ([1, 2], "give a dict with string keys"), ({1: "a"}, "give a dict with string keys"),
    ({"x": float("nan")}, "must be plain JSON"), ({"x": object()}, "must be plain JSON"),
    ({"x": "y" * 5000}, "keep labels small"),
], ids=["list", "int-key", "nan", "object", "huge"])
def test_bad_labels_are_refused_before_anything_is_written(tmp_path, labels, message):
    with pytest.raises(ValueError, match=message):
        run_trial(config(), tmp_path / "trial", labels=labels, data=synthetic_task())
    assert not (tmp_path / "trial").exists()


def test_run_trial_loads_the_task_through_load_task(monkeypatch, tmp_path):
    data, calls = synthetic_task(), []
    monkeypatch.setattr("lstm_scratch.train.load_task", lambda *args: calls.append(args) or data)
    run_trial(config(), tmp_path / "trial", root="/nowhere")
    assert calls == [("synthetic-bernoulli", "float64", "/nowhere")]


# ------------------------------------------------------------------------------------ records, provenance
def test_read_record_refuses_each_kind_of_damage_naming_the_file(tmp_path):
    good = run_trial(config(max_epochs=2), tmp_path / "run", data=synthetic_task())
    path = tmp_path / "r.json"
    for change, message in [
        (lambda r: [], "holds a JSON list"),
        (lambda r: {**r, "format": "lstm_scratch.run/0"}, "format 'lstm_scratch.run/0'"),
        (lambda r: {k: v for k, v in r.items() if k != "outcome"}, "'outcome' is missing"),
        (lambda r: {**r, "outcome": "exploded"}, "'outcome' has an unusable value 'exploded'"),
        (lambda r: {**r, "epochs": "2"}, "'epochs' has an unusable value"),
        (lambda r: {**r, "epochs": 7}, "epochs=7 but the history holds 2"),
        (lambda r: {**r, "history": {**r["history"], "valid_metric": None}}, "'history'"),
        (lambda r: {**r, "labels": "x"}, "'labels' has an unusable value"),
    ]:
        path.write_text(json.dumps(change(good)))
        with pytest.raises(ValueError, match=f"{path}: .*{message}"):
            read_record(path)
    old = {k: v for k, v in good.items() if k not in ("labels", "extensions")}    # written before both
    path.write_text(json.dumps(old))
    assert read_record(path) == json.loads(json.dumps(old))


def test_provenance_names_code_libraries_host_and_process():
    info = provenance()
    for key in ("code_version", "package_version", "python", "numpy", "numba", "scipy", "blas", "platform",
                "cpu", "cpu_count", "host", "pid"):
        assert info[key] not in (None, ""), key
    assert info["pid"] == os.getpid() and info["numpy"] == np.__version__
    environment = records.environment(3)
    assert environment["threads"] == 3 and set(environment) == set(info) | {"threads"}


# ------------------------------------------------------------------------------------ worker preparation
def test_worker_environment_names_every_thread_pool():
    assert parallel.worker_environment(2, "/tmp/numba-cache") == {
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "2", "NUMBA_CACHE_DIR": "/tmp/numba-cache"}
    assert "NUMBA_CACHE_DIR" not in parallel.worker_environment()
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="threads="):
            parallel.worker_environment(bad)


PINNING_PROBE = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from lstm_scratch.parallel import prepare_worker, warm_up
if sys.argv[2] == "prepare_worker":
    import numpy, numba          # loaded before the worker is prepared (import lstm_scratch loads neither)
    prepare_worker(threads=1)
import numpy, numba, scipy.linalg.cython_blas
from threadpoolctl import threadpool_info
seconds = warm_up(["V", "GRU"], "float64")          # compiles: Numba re-reads the environment then
print(json.dumps({"numba_threads": numba.get_num_threads(), "numba_pool": numba.config.NUMBA_NUM_THREADS,
                  "cache_dir": numba.config.CACHE_DIR, "openblas_env": os.environ["OPENBLAS_NUM_THREADS"],
                  "blas": [b["num_threads"] for b in threadpool_info() if b["user_api"] == "blas"],
                  "warmed": sorted(seconds)}))
"""


@pytest.mark.parametrize("how", ["worker_environment", "prepare_worker"])
def test_a_worker_runs_every_pool_on_one_thread_in_a_fresh_process(tmp_path, how):
    """The machine's environment says 2 threads everywhere. A worker started with worker_environment
    (how a driver starts one) has every BLAS and Numba pool at one thread and compiles into the cache
    directory given; one that calls prepare_worker itself (NumPy and Numba already loaded by the
    import) is pinned at run time, and compiling afterwards still works."""
    cache = tmp_path / "numba-cache"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"}
    if how == "worker_environment":
        env.update(parallel.worker_environment(1, cache))
    done = subprocess.run([sys.executable, "-c", PINNING_PROBE, str(Path(__file__).parents[1]), how],
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["numba_threads"] == 1 and seen["openblas_env"] == "1"
    assert seen["blas"] and set(seen["blas"]) == {1}, seen["blas"]
    assert seen["warmed"] == ["GRU", "V"]
    if how == "worker_environment":
        assert seen["numba_pool"] == 1
        assert seen["cache_dir"] == str(cache) and any(cache.rglob("*.nbi"))      # the kernels' cache index
    else:
        assert seen["numba_pool"] == 2                     # loaded before: limited, not resized


def _blas_threads():
    from threadpoolctl import threadpool_info
    return {b["num_threads"] for b in threadpool_info() if b["user_api"] == "blas"}


def test_nested_pinning_is_undone_only_by_the_outermost_block():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=2, user_api="blas"):
        with parallel.pinned_threads(1):
            with parallel.pinned_threads(1):
                assert _blas_threads() == {1}
            assert _blas_threads() == {1}                    # the inner block left: still pinned
        assert _blas_threads() == {2}                        # the outermost restored the original


def test_two_trials_on_two_threads_do_not_undo_each_others_pinning():
    """Trial A enters, trial B enters, A leaves while B still runs: B must stay pinned; when B leaves,
    the process's original limits are back. Each thread's Numba count is its own."""
    import numba
    from threadpoolctl import threadpool_limits
    entered, a_left, seen = threading.Event(), threading.Event(), {}

    def trial_a():
        with parallel.pinned_threads(1):
            entered.wait(60)
        a_left.set()

    def trial_b():
        with parallel.pinned_threads(1):
            entered.set()
            a_left.wait(60)
            seen["blas_after_a_left"] = _blas_threads()
            seen["numba"] = numba.get_num_threads()
    with threadpool_limits(limits=2, user_api="blas"):
        threads = [threading.Thread(target=trial_a), threading.Thread(target=trial_b)]
        threads[0].start()
        threads[1].start()
        for t in threads:
            t.join(120)
        assert seen == {"blas_after_a_left": {1}, "numba": 1}
        assert _blas_threads() == {2}
        assert parallel._blas_users == 0


def test_two_trials_in_one_process_at_once_each_run_to_the_same_result(tmp_path):
    data = synthetic_task()
    alone = run_trial(config(), tmp_path / "alone", data=data)
    results = {}

    def trial(name):
        results[name] = run_trial(config(), tmp_path / name, data=data, labels={"trial": name})
    workers = [threading.Thread(target=trial, args=(name,)) for name in ("a", "b")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    for name in ("a", "b"):
        assert results[name]["history"]["valid_metric"] == alone["history"]["valid_metric"]
        assert results[name]["labels"] == {"trial": name}
    assert parallel._blas_users == 0


def test_config_of_a_record_compares_after_json(tmp_path):
    """A record read back from JSON equals the configuration it was made with (NumPy scalars, None
    and floats all survive the round trip), so a finished trial is recognised."""
    cfg = config(hidden=np.int64(4), lr=np.float64(0.1), clip=None)
    run_trial(cfg, tmp_path / "t", data=synthetic_task())
    assert read_record(tmp_path / "t" / "record.json")["config"] == asdict(cfg)


def test_warm_up_takes_every_dtype_of_a_study():
    for dtype in ("float64", "float32", "mixed"):
        assert list(parallel.warm_up(["NIG"], dtype)) == ["NIG"]
    assert list(parallel.warm_up("GRU")) == ["GRU"]
    with pytest.raises(ValueError, match="loss='bernouli': give the task's objective name, one of bernoulli"):
        parallel.warm_up("GRU", loss="bernouli")


LOSS_WARM_UP_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from lstm_scratch import ctc, losses
from lstm_scratch.parallel import warm_up

def compiled():
    return {name: sorted(str(s[0].dtype) for s in getattr(module, name).signatures)
            for module, name in ((losses, "_bernoulli_terms"), (ctc, "_ctc_linear"), (ctc, "_ctc_log"),
                                 (ctc, "_levenshtein"))}
seen = [compiled()]
for dtype, loss in (("mixed", "softmax"), ("mixed", "bernoulli"), ("float64", "ctc"), ("float64", None)):
    warm_up("NP", dtype, loss=loss)
    seen.append(compiled())
print(json.dumps(seen))
"""


def test_warm_up_compiles_the_loss_kernels_of_the_task_once_per_dtype():
    done = subprocess.run([sys.executable, "-c", LOSS_WARM_UP_PROBE, str(Path(__file__).parents[1])],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    fresh, softmax, bernoulli, ctc, every = json.loads(done.stdout.strip().splitlines()[-1])
    nothing = {"_bernoulli_terms": [], "_ctc_linear": [], "_ctc_log": [], "_levenshtein": []}
    assert fresh == nothing and softmax == nothing                  # softmax's loss is NumPy only
    assert bernoulli == {**nothing, "_bernoulli_terms": ["float32"]}   # mixed: float32 kernels
    assert ctc == {**bernoulli, "_ctc_linear": ["float64"], "_ctc_log": ["float64"], "_levenshtein": ["int64"]}
    assert every == {**ctc, "_bernoulli_terms": ["float32", "float64"]}   # None: every loss with kernels
