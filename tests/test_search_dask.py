"""A study on a real Dask cluster: ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1,
started here (CLUSTER.md); one worker SIGKILLed mid-study, and every trial still ends exactly once."""
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from search_helpers import (KILLABLE_EPOCHS, assert_each_trial_ended_once, kill_mid_trial, search_env,  # noqa: F401
                            tiny_study)

from lstm_scratch import cli
from lstm_scratch.parallel import worker_environment

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed: pip install -e '.[dask]'")
DASK = Path(sys.executable).parent / "dask"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(search_env, tmp_path_factory):
    """The scheduler address of a real cluster: one scheduler and two single-thread workers with the
    worker environment; stopped afterwards through the PIDs started here."""
    if not DASK.exists():
        pytest.skip(f"{DASK} not found (the dask extra installs it)")
    folder = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, **worker_environment(threads=1)}
    started = []

    def start(*args, log):
        started.append(subprocess.Popen([str(DASK), *args], env=env, stdout=open(folder / log, "w"),
                                         stderr=subprocess.STDOUT))
    try:
        start("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard",
              log="scheduler.log")
        for i in range(2):
            start("worker", address, "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard",
                  "--local-directory", str(folder / f"w{i}"), "--name", f"w{i}", log=f"worker{i}.log")
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in reversed(started):
            process.terminate()
        for process in reversed(started):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_study_survives_a_worker_sigkilled_mid_trial(tmp_path, dask_cluster):
    study = tiny_study(tmp_path / "s", max_epochs=KILLABLE_EPOCHS, trials=3)
    result = {}
    driver = threading.Thread(target=lambda: result.update(study.run(scheduler=dask_cluster, progress=False)),
                              daemon=True)
    driver.start()
    killed = kill_mid_trial(study)              # the lease names the worker process (the nanny restarts it)
    driver.join(timeout=900)
    assert not driver.is_alive()
    assert result["total"]["done"] == study.size
    assert_each_trial_ended_once(study, resumed={killed.id})


def test_a_study_through_a_client_and_the_cli(tmp_path, dask_cluster, capsys):
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    with distributed.Client(dask_cluster) as client:
        assert study.run(client=client, progress=False)["total"]["done"] == 2
    assert_each_trial_ended_once(study)
    assert cli.main(["search", "run", str(study.path), "--scheduler", dask_cluster]) == 0   # nothing left to do
    assert "2/2 trials ended" in capsys.readouterr().out
    assert_each_trial_ended_once(study)


def test_an_unreachable_scheduler_is_a_clear_error_and_nothing_is_written(tmp_path, search_env, capsys):
    study = tiny_study(tmp_path / "s", trials=1)
    before = sorted(p.name for p in study.path.iterdir())
    address = f"tcp://127.0.0.1:{free_port()}"
    assert cli.main(["search", "run", str(study.path), "--scheduler", address]) == 2
    assert f"cannot reach the Dask scheduler at {address}" in capsys.readouterr().err
    assert sorted(p.name for p in study.path.iterdir()) == before
