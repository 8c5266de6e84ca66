"""The one training-step timer (lstm_scratch.timing) that ``lstm-odyssey check`` and the benchmarks
share: it takes the trainer's own Nesterov step once per sequence, in order, after the warm-up."""
import importlib
import math
import os
from pathlib import Path

import numpy as np
import pytest

from lstm_scratch.momentum import Momentum
from lstm_scratch.timing import best_of, time_online_training


def test_best_of_runs_the_warm_up_once_untimed_then_every_repeat():
    calls = []
    seconds = best_of(lambda: calls.append(1), repeats=3, warm_up=True)
    assert len(calls) == 4 and 0 <= seconds < math.inf


@pytest.mark.parametrize("warm_up", [1, 3])
def test_timer_takes_the_trainers_nesterov_step_per_sequence(warm_up):
    """The parameters end exactly where the trainer's Momentum leaves them after the warm-up
    sequences and two epochs; the gradient is taken at the current (look-ahead) parameters."""
    rng = np.random.default_rng(0)
    sequences = [(rng.normal(size=4), float(k)) for k in range(3)]
    seen = []

    def gradient(a, k):                           # depends on the parameters: order and timing matter
        seen.append(k)
        return a * params + k

    params = rng.normal(size=4)
    start = params.copy()
    time_online_training(gradient, sequences, params, lr=0.3, momentum=0.9, repeats=2, warm_up=warm_up)
    assert seen == [k for _, k in sequences[:warm_up]] + 2 * [k for _, k in sequences]

    expected = start.copy()
    opt = Momentum(expected, 0.3, 0.9)           # Nesterov, ε = (1 − m)·η, as the trainer builds it
    for a, k in sequences[:warm_up] + 2 * sequences:
        opt.step(a * expected + k)
    np.testing.assert_array_equal(params, expected)


def _bench(name, monkeypatch):
    """A benchmark module, imported with its one-thread environment settings undone afterwards."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent / "benchmarks"))
    return importlib.import_module(name)


@pytest.mark.parametrize("caller", ["selfcheck", "bench_model", "bench_layers"])
def test_every_caller_of_the_timer_runs(monkeypatch, caller):
    """The self-check and the benchmarks (not run by the suite otherwise) still run on a tiny problem."""
    rng = np.random.default_rng(0)
    xs = [(rng.random((T, 88)) < 0.05).astype(np.float64) for T in (6, 8, 7)]
    if caller == "selfcheck":
        from lstm_scratch.selfcheck import time_training_step
        us_per_step = time_training_step("V", 3, np.float64, n_sequences=3, repeats=2)
    elif caller == "bench_model":
        us_per_step = 1e6 * _bench("bench_model", monkeypatch).time_ours("V", 3, np.float64, xs, xs,
                                                                         repeats=2) / 21
    else:
        dys = [rng.normal(size=(len(x), 3)) for x in xs]
        us_per_step = 1e6 * _bench("bench_layers", monkeypatch).time_ours("V", 3, np.float64, xs, dys,
                                                                          repeats=2) / 21
    assert 0 < us_per_step < math.inf


@pytest.mark.parametrize("compile_seconds, notice_after, says_so", [(0.0, 60.0, False), (1.0, 0.01, True)],
                         ids=["cached", "compiling"])
def test_check_says_it_is_compiling_only_when_that_takes_a_while(monkeypatch, capsys, compile_seconds,
                                                                  notice_after, says_so):
    """``lstm-odyssey check`` is not silent while the kernels compile, and says nothing when they load
    from the cache at once."""
    import time

    from lstm_scratch import parallel, selfcheck
    warmed = []
    monkeypatch.setattr(parallel, "warm_up", lambda archs, dtype, loss=None: (time.sleep(compile_seconds),
                                                                               warmed.append((tuple(archs), dtype))))
    selfcheck.compile_kernels(notice_after=notice_after)
    assert [dtype for _, dtype in warmed] == ["float64", "float32"]
    assert all(len(archs) == 13 for archs, _ in warmed)
    out = capsys.readouterr().out
    assert ("compiling the kernels of the 13 architectures once" in out) is says_so
    assert ("compiled in" in out) is says_so
