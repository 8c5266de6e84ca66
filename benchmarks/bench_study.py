"""The random-search study's speed: executor scaling, Dask overhead, and the cost of the full JSB study.

    python benchmarks/bench_study.py scaling      # (a) a 20-trial JSB mini-study, capped epochs: 2 local workers vs 1
    python benchmarks/bench_study.py dask         # (b) the same mini-study on a local Dask cluster vs the local pool
    python benchmarks/bench_study.py projection --trials 63 --study studies/jsb-projection
                                                  # (c) core-hours of the full JSB study (9 × 200, float64)

(a) and (b) draw their trials from the paper's space (N from 20 to 200) with epochs capped
(``--max-epochs``, default 3), so the trial sizes are those of the study; the data are fetched and the
kernels compiled once before anything is timed. (b) starts ``dask scheduler`` and two single-thread
``dask worker`` processes on 127.0.0.1 and reports (wall_dask − wall_local) / trials: the overhead per
trial. (c) runs ``--trials`` trials of the real study (all nine architectures, full protocol: up to
150 epochs, patience 15), two at a time by default, resumable (``--study DIR``: run it again to
continue), and projects the 1,800 trials' core-hours from the mean CPU seconds per trial, with a
same-run speed probe — a 400×100 float64 matvec, 3.86 µs on a quiet machine, sampled once a minute
during the run (median) — to say what the
projection would be at normal speed. Only ratios within one run mean anything: the machine is shared.
"""
from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"        # before numpy is imported: the driver's own BLAS stays out of the way

PROBE_REFERENCE_US = 3.86         # the 400×100 float64 matvec on a quiet machine of this kind (issue 9)
FULL_STUDY_TRIALS = 9 * 200


def speed_probe(repeats: int = 7, number: int = 20000) -> float:
    """Best µs of a 400×100 float64 matrix–vector product (R·y of N = 100): the machine's speed now."""
    import timeit

    import numpy as np
    rng = np.random.default_rng(0)
    a, x = rng.standard_normal((400, 100)), rng.standard_normal(100)
    return min(timeit.repeat(lambda: a @ x, number=number, repeat=repeats)) / number * 1e6


def mini_study(path, args):
    from lstm_scratch.search import Study
    return Study.create(path, task="jsb", archs=args.archs, trials=args.trials_per_arch, seed=args.seed,
                        max_epochs=args.max_epochs, patience=args.max_epochs)


def timed_run(study, **executor) -> float:
    start = time.perf_counter()
    study.run(progress=False, prepare=False, **executor)
    return time.perf_counter() - start


def cpu_seconds(study) -> float:
    return float(study.to_dataframe().cpu_seconds.sum())


def scaling(args) -> None:
    from lstm_scratch.search.executors import prepare
    with tempfile.TemporaryDirectory() as folder:
        one, two = mini_study(Path(folder) / "one", args), mini_study(Path(folder) / "two", args)
        prepare(one)
        probe = speed_probe()
        wall_one = timed_run(one, workers=1)
        wall_two = timed_run(two, workers=2)
        print(f"{one.size}-trial JSB mini-study ({args.archs}, paper's space, ≤ {args.max_epochs} epochs), "
              f"probe {probe:.2f} µs (quiet: {PROBE_REFERENCE_US})")
        print(f"  1 worker : {wall_one:7.1f} s wall, {cpu_seconds(one):7.1f} CPU-s in trials")
        print(f"  2 workers: {wall_two:7.1f} s wall, {cpu_seconds(two):7.1f} CPU-s in trials")
        print(f"  speed-up : {wall_one / wall_two:.2f}×  (target ≥ 1.8×)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask_overhead(args) -> None:
    from distributed import Client

    from lstm_scratch.parallel import worker_environment
    from lstm_scratch.search.executors import prepare
    dask = Path(sys.executable).parent / "dask"
    with tempfile.TemporaryDirectory() as folder:
        local, remote = mini_study(Path(folder) / "local", args), mini_study(Path(folder) / "dask", args)
        prepare(local)
        address = f"tcp://127.0.0.1:{free_port()}"
        env = {**os.environ, **worker_environment(threads=1)}
        started = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port",
                                     address.rsplit(":", 1)[1], "--no-dashboard"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        try:
            for i in range(2):
                started.append(subprocess.Popen([str(dask), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                                 "--host", "127.0.0.1", "--no-dashboard", "--local-directory",
                                                 str(Path(folder) / f"w{i}")], env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            with Client(address, timeout="60s") as client:
                client.wait_for_workers(2, timeout=120)
                probe = speed_probe()
                wall_local = timed_run(local, workers=2)
                wall_dask = timed_run(remote, client=client)
        finally:
            for process in started:
                process.terminate()
            for process in started:
                process.wait(timeout=30)
        per_trial = (wall_dask - wall_local) / local.size
        print(f"{local.size}-trial JSB mini-study, 2 workers each, probe {probe:.2f} µs")
        print(f"  local pool : {wall_local:7.1f} s wall, {cpu_seconds(local):7.1f} CPU-s in trials")
        print(f"  Dask       : {wall_dask:7.1f} s wall, {cpu_seconds(remote):7.1f} CPU-s in trials")
        print(f"  overhead   : {per_trial:+.2f} s per trial  (target < 0.5 s)")


def projection(args) -> None:
    import numpy as np

    from lstm_scratch.search import Study
    path = Path(args.study or tempfile.mkdtemp(prefix="jsb-projection-"))
    study = Study.create(path, task="jsb", archs="all", trials=math.ceil(args.trials / 9), seed=args.seed)
    # The probe is sampled during the run (once a minute, in a thread of the driver, which is idle while
    # the workers train), so it sees the load the trials saw; its median is what the run ran at.
    probes, done = [speed_probe()], threading.Event()

    def sample():
        while not done.wait(60):
            probes.append(speed_probe(repeats=3, number=5000))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        study.run(workers=args.workers)
    finally:
        done.set()
    wall = time.perf_counter() - start
    probes.append(speed_probe())
    report_projection(study, wall, float(np.median(probes)), args.workers)


def report_projection(study, wall, probe, workers) -> None:
    """Project the full study's core-hours from the trials of ``study`` that have ended."""
    frame = study.to_dataframe()
    ended = frame[frame.outcome.isin(["finished", "early_stopped", "diverged", "failed"])]
    cpu = ended.cpu_seconds.mean()
    hours = cpu * FULL_STUDY_TRIALS / 3600
    train = valid = 0.0
    for trial in study.trials():
        s = study.state(trial)
        if s.record is not None:
            train += sum(s.record["history"]["train_seconds"])
            valid += sum(s.record["history"]["valid_seconds"]) + (s.record["test_seconds"] or 0.0)
    walls = ended.wall_seconds.sum()
    print(f"{len(ended)} trials of the full JSB study in {study.path} ({wall:.0f} s wall this session, "
          f"{workers} at a time); probe {probe:.2f} µs against {PROBE_REFERENCE_US} quiet "
          f"({probe / PROBE_REFERENCE_US:.2f}× slower)")
    print(f"  mean {cpu:.1f} CPU-s per trial → {hours:.1f} core-hours for {FULL_STUDY_TRIALS} trials, "
          f"≈ {hours * PROBE_REFERENCE_US / probe:.1f} at normal speed (goal ≤ 8)")
    print(f"  time in trials: training {train / walls:.0%}, validation + test {valid / walls:.0%}, "
          f"other {(walls - train - valid) / walls:.0%}")
    capped = (ended.epochs >= 150).sum()
    print(f"  {capped} of {len(ended)} ran to the 150-epoch cap; diverged {(ended.outcome == 'diverged').sum()}, "
          f"failed {(ended.outcome == 'failed').sum()}")
    print("  CPU-s per trial by architecture: " + ", ".join(
        f"{arch} {value:.0f}" for arch, value in ended.groupby("arch").cpu_seconds.mean().items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("scaling", "dask", "projection"))
    parser.add_argument("--archs", default="V,CIFG", help="(a), (b): architectures of the mini-study")
    parser.add_argument("--trials-per-arch", type=int, default=10, help="(a), (b): trials per architecture")
    parser.add_argument("--max-epochs", type=int, default=3, help="(a), (b): the epoch cap")
    parser.add_argument("--trials", type=int, default=63, help="(c): trials of the full study to run")
    parser.add_argument("--workers", type=int, default=2, help="(c): trials at a time")
    parser.add_argument("--study", help="(c): the study directory (run again to continue)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    {"scaling": scaling, "dask": dask_overhead, "projection": projection}[args.what](args)


if __name__ == "__main__":
    main()
