"""JZS's training regime (SPEC §11), the second protocol beside the paper's online SGD (:mod:`.train`):
minibatches, truncated BPTT with the state carried between windows, gradient-norm clipping, and the
learning rate halved while the validation metric stalls. :mod:`.train` runs the epochs, checkpoints,
early stopping and the record for both protocols; this module is one epoch of JZS's and its schedule.

One epoch (``config.protocol == "jzs"``)::

    for every batch B of `batch` training sequences, in the epoch's order (the last batch may be smaller):
        x̃_b = x_b + σξ_b                   fresh input noise (:mod:`.noise`), drawn in the batch's order
        s_b ← 0                             one (h, c) per layer and sequence
        for window w = 0, 1, … while a sequence of B has steps left (steps w·U … (w+1)·U − 1, U = unroll):
            for every b with steps in window w (on `threads` threads, one network replica each):
                ℓ_b, g_b = loss summed over the window's frames, and its gradient by BPTT inside the
                           window, starting from s_b (a constant: no gradient crosses the boundary)
                s_b ← the state after the window's last step
            g = (1/|B|) Σ_b g_b             summed in the batch's order (the same bits for any thread count)
            g ← g · min(1, c / ‖g‖₂)        gradient-norm clipping, c = clip_norm (global L2 norm)
            one momentum update with η (ε = (1 − m)·η, :mod:`.momentum`; m = 0 by default: θ ← θ − η g)
    after the epoch's validation (:func:`next_lr`):
        η ← η · lr_decay  if the metric has not improved for DECAY_AFTER (3) epochs — again after every
                          further epoch without improvement (the objective's ``improves`` decides)

With unroll ≥ T the window is the whole sequence, and with batch = 1 the gradient is exactly the online
protocol's (tested). The mean over the batch (not the sum) keeps η's meaning independent of the batch
size, as in Zaremba et al. (2014)'s code that JZS build on; the loss inside a window is summed over its
frames, as in the online protocol.

Why threads over the sequences of a batch: a step of one sequence is latency-bound (SPEC §10), and the
sequences of a batch are independent until their gradients are summed. Each thread owns a replica of
the network (:meth:`Network.replica`: the same parameter vector, its own gradient and caches) and takes
the next sequence not yet taken; every sequence's gradient lands in its own row of a (batch, parameters)
buffer, and the rows are added in the batch's order after the threads are done — so the result does not
depend on which thread ran what.

Choices (SPEC §11 gives the regime, not these details): the carried state is the forward values
reached with the parameters of the previous window (the update happens between windows, as in any
truncated-BPTT trainer); a sequence that has ended drops out of later windows of its batch and counts
0 towards their mean; the learning rate of every epoch is recorded in the history (``lr``).
Restrictions: truncation needs a loss that is a sum over frames (not CTC) and a unidirectional network
(a backward direction reads the future), and FGR is refused — its gate recurrence would need the
previous gate values carried as well, which this state (h, c) does not hold.
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .noise import with_noise

DECAY_AFTER = 3
"""Epochs without improvement of the validation metric after which the learning rate is decayed."""

DEFAULTS = {"batch": 20, "unroll": 35, "clip_norm": 5.0, "lr_decay": 0.5, "momentum": 0.0}
"""What a jzs configuration leaves unset becomes: JZS's batch of 20, 35 unrolled steps and halving
(SPEC §11); **(choice)** clipping at norm 5 and plain SGD (no momentum), the settings of Zaremba et al.
(2014), whose PTB setup JZS describe theirs after — JZS search the clipping norm but do not say its
default."""


def next_lr(lr: float, epochs: int, best_epoch: int | None, decay: float) -> float:
    """The learning rate for the epoch after ``epochs`` epochs, the best of them ``best_epoch`` (1-based):
    ``lr · decay`` once ``DECAY_AFTER`` or more epochs have passed without improvement, else ``lr``."""
    if best_epoch is not None and epochs - best_epoch >= DECAY_AFTER:
        return lr * decay
    return lr


def clip_by_norm(grad: np.ndarray, threshold: float) -> float:
    """Scale ``grad`` in place to L2 norm ``threshold`` if its norm ‖g‖₂ = √(Σ gᵢ²) exceeds it; return
    the norm before clipping. A non-finite norm leaves ``grad`` as it is (the update then reports the
    divergence)."""
    norm = math.sqrt(float(np.dot(grad, grad)))
    if math.isfinite(norm) and norm > threshold:
        grad *= threshold / norm
    return norm


def windows(steps: int, unroll: int) -> list[slice]:
    """The windows of a sequence of ``steps`` steps: [0, U), [U, 2U), …, the last one shorter."""
    return [slice(start, min(start + unroll, steps)) for start in range(0, steps, unroll)]


def protocol_problem(loss: str, bidirectional: bool) -> str | None:
    """Why the jzs protocol cannot train a network with this loss and direction, or None."""
    if loss == "ctc":
        return ("protocol jzs cuts sequences into windows, and the CTC loss is not a sum over frames; "
                "train a CTC task with protocol online")
    if bidirectional:
        return ("protocol jzs carries the state forward in time; a bidirectional network's backward "
                "direction reads the future: pass bidirectional=False, or use protocol online")
    return None


class MinibatchEpoch:
    """One epoch of JZS's regime for ``net``, on ``threads`` threads (module docstring).

    ``run(opt, lr, inputs, targets, order, sigma, noise_rng)`` returns the mean training loss per frame,
    or a (what, position, sequence) triple naming where the run diverged (position in ``order``; for a
    failed update, the batch's first sequence). ``close()`` ends the threads.
    """

    def __init__(self, net, batch: int, unroll: int, clip_norm: float, threads: int = 1):
        self.batch, self.unroll, self.clip_norm = batch, unroll, clip_norm
        self.nets = [net] + [net.replica() for _ in range(max(threads, 1) - 1)]
        self.pool = ThreadPoolExecutor(len(self.nets) - 1, thread_name_prefix="minibatch") \
            if len(self.nets) > 1 else None
        self.rows = np.zeros((batch, net.n_params), net.flat.dtype)   # one gradient per sequence
        self.grad = np.zeros(net.n_params, net.flat.dtype)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def run(self, opt, lr: float, inputs, targets, order, sigma: float, noise_rng):
        opt.set_lr(lr)                               # this epoch's η (halved as the metric stalls)
        total, frames = 0.0, 0
        for first in range(0, len(order), self.batch):
            positions = range(first, min(first + self.batch, len(order)))
            xs = [with_noise(inputs[order[p]], sigma, noise_rng) for p in positions]
            ys = [targets[order[p]] for p in positions]
            states = [None] * len(xs)
            for w in range(max(-(-x.shape[0] // self.unroll) for x in xs)):
                window = slice(w * self.unroll, (w + 1) * self.unroll)
                active = [b for b, x in enumerate(xs) if x.shape[0] > window.start]
                losses = self._gradients([(b, xs[b][window], ys[b][window], states[b]) for b in active],
                                         states)
                for b in active:
                    if not math.isfinite(losses[b]):
                        return "loss", positions[b], int(order[positions[b]])
                    total += losses[b]
                    frames += xs[b][window].shape[0]
                self._mean(active, len(xs))
                clip_by_norm(self.grad, self.clip_norm)
                if not opt.step(self.grad):
                    return "gradient or parameters", first, int(order[first])
        return total / frames

    def _gradients(self, work, states) -> dict:
        """Loss and gradient of every (b, x, y, state) of ``work``: gradient into ``rows[b]``, the state
        after the window into ``states[b]``; returns {b: loss}. Each replica takes the next item not yet
        taken (windows differ in length); which replica computes an item does not change its bits."""
        items, lock = iter(work), threading.Lock()

        def run(r):
            net, done = self.nets[r], {}
            while True:
                with lock:
                    item = next(items, None)
                if item is None:
                    return done
                b, x, y, state = item
                loss, grad = net.loss_and_grad(x, y, state)
                self.rows[b] = grad
                states[b] = net.final_state()
                done[b] = loss
        if self.pool is None or len(work) < 2:
            return run(0)
        pending = [self.pool.submit(run, r) for r in range(1, min(len(self.nets), len(work)))]
        try:
            losses = run(0)
        finally:
            results = [p.result() for p in pending]       # wait for every thread, even after an error
        for done in results:
            losses.update(done)
        return losses

    def _mean(self, active: list[int], size: int) -> None:
        """grad = (1/size) Σ rows[b] over ``active``, added in the batch's order."""
        self.grad[:] = self.rows[active[0]]
        for b in active[1:]:
            self.grad += self.rows[b]
        self.grad /= size
