"""How fast online training runs: the one timer behind ``lstm-odyssey check`` and ``benchmarks/``.

Online training makes one update per sequence (SPEC §10): compute the gradient of the sequence,
then take the trainer's own Nesterov momentum step (:class:`lstm_scratch.momentum.Momentum`,
ε = (1 − m)·η). :func:`time_online_training` times exactly that, so a timing can never drift from
what the trainer does; what computes the gradient (a Layer, the raw kernels, a whole Network) is
the caller's choice. Timings are the best of several epochs: the minimum is the run least disturbed
by other work on the machine.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from .momentum import Momentum


def best_of(epoch: Callable[[], object], repeats: int, warm_up: bool = False) -> float:
    """The fastest of ``repeats`` timed calls of ``epoch()``, in seconds (after one untimed call if
    ``warm_up``)."""
    if warm_up:
        epoch()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        epoch()
        best = min(best, time.perf_counter() - start)
    return best


def time_online_training(gradient: Callable[..., np.ndarray], sequences: Sequence[tuple],
                         params: np.ndarray, *, lr: float, momentum: float = 0.9, repeats: int = 3,
                         warm_up: int = 1) -> float:
    """Best seconds per epoch of online training over ``sequences``.

    Per sequence: ``g = gradient(*sequence)`` (the gradient with respect to ``params``, computed at
    ``params``), then the trainer's Nesterov step ``Momentum(params, lr, momentum).step(g)``, which
    updates ``params`` in place. The first ``warm_up`` sequences are run once untimed first (they
    compile the kernels, or load them from the on-disk cache).
    """
    opt = Momentum(params, lr, momentum)

    def run(part):
        for sequence in part:
            opt.step(gradient(*sequence))

    run(sequences[:warm_up])
    return best_of(lambda: run(sequences), repeats)
