"""Online SGD with Nesterov momentum, input noise and early stopping (SPEC §6): what every trial runs.

One run::

    for epoch = 1 … max_epochs:
        for every training sequence, in an order reshuffled each epoch from the run's seed:
            x̃ = x + ξ,  ξ ~ N(0, σ²) drawn afresh for this presentation (training inputs only)
            g = ∇_θ loss(x̃, target)        full-sequence BPTT; the loss is summed over the sequence
            g ← clip(g, −c, c)             element-wise, only if clipping is on (default off)
            one momentum update (below)
        score the validation split; keep θ if its metric is the best so far (all metrics: lower is better)
        stop when the metric has not improved for `patience` epochs
    score the test split once, with the kept θ

Momentum (:mod:`.momentum`): v ← m·v − (1 − m)·η·∇f, Nesterov by default (classical as an option),
implemented in the look-ahead-point reformulation — see that module for the equations.

Divergence: a non-finite loss, gradient, parameter or validation metric ends the run at once with
outcome ``diverged`` (no exception). Any other exception after the run started gives ``failed`` with
the traceback in the record. Random streams: one seed gives three independent generators (NumPy
``SeedSequence.spawn``) — initialisation, sequence order, input noise — so turning noise on does not
change the order or the initial weights.
"""
from __future__ import annotations

import math
import numbers
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from . import records
from .datacheck import check_data
from .momentum import Momentum
from .network import METRICS, Network
from .parallel import pinned_threads
from .variants import get as get_architecture

OUTCOMES = ("finished", "early_stopped", "diverged", "failed")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run's result (``threads`` and the output place do not)."""

    task: str                    # task name (lstm_scratch.datasets.TASKS), or a label for given data
    arch: str = "V"              # architecture: V, NIG, …, FGR, GRU, MUT1-3 (lstm_scratch.variants)
    hidden: int = 100            # N, blocks per direction
    lr: float = 1e-3             # η, before the (1 − m) scaling
    momentum: float = 0.9        # m, 0 ≤ m < 1
    nesterov: bool = True        # False: classical momentum (a TIMIT search dimension)
    noise: float = 0.0           # σ of the Gaussian noise added to training inputs
    clip: float | None = None    # element-wise gradient clipping to [−clip, clip]; None: off (default)
    seed: int = 1                # the run's seed: initialisation, sequence order and noise
    max_epochs: int = 150        # hard limit on epochs
    patience: int = 15           # stop after this many epochs without a better validation metric
    dtype: str = "float64"       # "float64" (default) or "float32" (opt-in speed mode, SPEC §6)
    forget_bias: float = 0.0     # initial forget-gate bias (+1 for JZS "LSTM-b")
    bidirectional: bool | None = None   # None: the task's (music: one direction; TIMIT, handwriting: two)

    def __post_init__(self):
        def bad(field, value, need):
            raise ValueError(f"{field}={value!r}: {need}")
        if not isinstance(self.task, str) or not self.task:
            bad("task", self.task, "give a task name, e.g. jsb (see 'lstm-odyssey data list')")
        get_architecture(self.arch)                          # raises for an unknown architecture
        # Plain Python numbers (a search may pass NumPy scalars): the JSON copy then compares equal.
        for name in ("hidden", "seed", "max_epochs", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                bad(name, value, "must be an integer")
            object.__setattr__(self, name, int(value))
        for name in ("lr", "momentum", "noise", "forget_bias") + (("clip",) if self.clip is not None else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                bad(name, value, "must be a number")
            object.__setattr__(self, name, float(value))
        if self.hidden < 1:
            bad("hidden", self.hidden, "the number of blocks must be a positive integer")
        if not (math.isfinite(self.lr) and self.lr >= 0):
            bad("lr", self.lr, "the learning rate must be a finite number ≥ 0")
        if not 0 <= self.momentum < 1:
            bad("momentum", self.momentum, "momentum must lie in [0, 1): the lr is scaled by (1 − m)")
        if not (math.isfinite(self.noise) and self.noise >= 0):
            bad("noise", self.noise, "the input-noise standard deviation must be a finite number ≥ 0")
        if self.clip is not None and not (math.isfinite(self.clip) and self.clip > 0):
            bad("clip", self.clip, "clipping needs a finite threshold > 0 (or None for no clipping)")
        for name in ("seed", "max_epochs", "patience"):
            value = getattr(self, name)
            if value < (0 if name == "seed" else 1):
                bad(name, value, "must be a non-negative integer" if name == "seed" else "must be ≥ 1")
        if self.dtype not in ("float64", "float32"):
            bad("dtype", self.dtype, "use float64 or float32")
        if not isinstance(self.nesterov, bool) or self.bidirectional not in (None, True, False):
            bad("nesterov/bidirectional", (self.nesterov, self.bidirectional), "must be True or False")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown configuration field(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


class TaskData(NamedTuple):
    """The three splits of a task. Each needs ``inputs``, ``targets``, ``loss``, ``n_in``, ``n_out``
    (a :class:`lstm_scratch.datasets.Split` has them); ``synthetic`` and ``source`` are recorded if present."""

    train: object
    valid: object
    test: object


def load_task(task: str, dtype: str = "float64", root=None) -> TaskData:
    """The train / valid / test splits of a registered task (fetched and cached on first use)."""
    from .datasets import load, resolve
    name = resolve(task, root)
    return TaskData(*(load(name, split, root=root, dtype=dtype) for split in ("train", "valid", "test")))


# ---------------------------------------------------------------------------------------- one run
class Divergence(NamedTuple):
    epoch: int          # 1-based epoch in which it happened
    what: str           # "loss", "gradient or parameters" or "validation metric"
    position: int       # position in the epoch's order (-1 for the validation metric)
    sequence: int       # index of the training sequence (-1 for the validation metric)


@dataclass
class _State:
    """What a checkpoint holds besides the parameters and the velocity."""

    best: np.ndarray                 # the parameters with the best validation metric so far
    order_rng: np.random.Generator   # reshuffles the training sequences every epoch
    noise_rng: np.random.Generator   # input noise
    history: dict                    # per-epoch lists: train_loss, valid_metric, *_seconds
    best_epoch: int | None = None
    best_metric: float = math.inf
    wall_seconds: float = 0.0        # spent by earlier sessions of this run (resume)
    cpu_seconds: float = 0.0
    sessions: int = 1
    started: str = ""
    clock: tuple = (0.0, 0.0)        # (wall, CPU) clock readings at the last tick

    @property
    def epochs(self) -> int:
        return len(self.history["valid_metric"])

    def tick(self) -> None:
        """Add the wall and CPU time since the last tick to the run's totals."""
        now = (time.perf_counter(), time.process_time())
        self.wall_seconds += now[0] - self.clock[0]
        self.cpu_seconds += now[1] - self.clock[1]
        self.clock = now


HISTORY = ("train_loss", "valid_metric", "seconds", "train_seconds", "valid_seconds")


def _build_run(config: TrainConfig, data: TaskData) -> tuple[Network, _State]:
    """The network initialised from the run's seed, and a fresh run state (``data`` already checked)."""
    init, order, noise = np.random.SeedSequence(config.seed).spawn(3)
    bidirectional = (data.train.loss != "bernoulli") if config.bidirectional is None else config.bidirectional
    net = Network(config.arch, data.train.n_in, config.hidden, data.train.n_out, loss=data.train.loss,
                  bidirectional=bidirectional, dtype=config.dtype, seed=np.random.default_rng(init),
                  forget_bias=config.forget_bias)
    state = _State(net.flat.copy(), np.random.default_rng(order), np.random.default_rng(noise),
                   {name: [] for name in HISTORY}, started=records.now())
    return net, state


def _as_dtype(data: TaskData, dtype: str) -> TaskData:
    """Inputs (and Bernoulli targets) in the run's dtype; no copy where they already are."""
    def convert(split):
        inputs = [np.asarray(x, dtype=dtype) for x in split.inputs]
        targets = ([np.asarray(y, dtype=dtype) for y in split.targets] if split.loss == "bernoulli"
                   else list(split.targets))
        return inputs, targets
    return TaskData(*(convert(split) for split in data))


def _train_epoch(net, opt, inputs, targets, order, sigma, noise_rng, epoch):
    """One pass over the training sequences in ``order``: mean loss per frame, or a Divergence."""
    total, frames = 0.0, 0
    for position, index in enumerate(order):
        x = inputs[index]
        if sigma > 0:                               # fresh noise per presentation; x itself untouched
            noisy = noise_rng.standard_normal(x.shape, dtype=x.dtype)
            noisy *= sigma
            noisy += x
            x = noisy
        loss, grad = net.loss_and_grad(x, targets[index])
        if not math.isfinite(loss):
            return Divergence(epoch, "loss", position, int(index))
        if not opt.step(grad):
            return Divergence(epoch, "gradient or parameters", position, int(index))
        total += loss
        frames += x.shape[0]
    return total / frames


def _stop_reason(state: _State, config: TrainConfig) -> str | None:
    """``early_stopped`` after ``patience`` epochs without improvement, ``finished`` at ``max_epochs``."""
    if state.best_epoch is not None and state.epochs - state.best_epoch >= config.patience:
        return "early_stopped"
    if state.epochs >= config.max_epochs:
        return "finished"
    return None


def _save_checkpoint(path, config, opt, state):
    records.save_checkpoint(
        path, {"params": opt.theta, "velocity": opt.velocity, "best_params": state.best},
        {"config": asdict(config), "history": state.history, "best_epoch": state.best_epoch,
         "best_metric": state.best_metric, "order_rng": state.order_rng.bit_generator.state,
         "noise_rng": state.noise_rng.bit_generator.state, "wall_seconds": state.wall_seconds,
         "cpu_seconds": state.cpu_seconds, "sessions": state.sessions, "started": state.started})


def _restore(checkpoint, config, opt, state):
    arrays, saved = checkpoint
    if saved["config"] != asdict(config):
        diff = {k: (saved["config"].get(k), v) for k, v in asdict(config).items() if saved["config"].get(k) != v}
        raise ValueError(f"the checkpoint was made with another configuration (field: (checkpoint, now)) {diff}")
    for name, target in (("params", opt.theta), ("velocity", opt.velocity), ("best_params", state.best)):
        if arrays[name].shape != target.shape or arrays[name].dtype != target.dtype:
            raise ValueError(f"checkpoint array {name!r} is {arrays[name].dtype} {arrays[name].shape}, "
                             f"the network needs {target.dtype} {target.shape}")
        target[...] = arrays[name]
    state.order_rng.bit_generator.state = saved["order_rng"]
    state.noise_rng.bit_generator.state = saved["noise_rng"]
    state.history = {name: list(saved["history"][name]) for name in HISTORY}
    state.best_epoch = saved["best_epoch"]
    state.best_metric = math.inf if saved["best_metric"] is None else saved["best_metric"]
    state.wall_seconds, state.cpu_seconds = saved["wall_seconds"], saved["cpu_seconds"]
    state.sessions, state.started = saved["sessions"] + 1, saved["started"]


def read_checkpoint_config(out) -> TrainConfig:
    """The configuration stored in ``out``'s checkpoint (what ``--resume`` continues). Reads only the
    checkpoint's small JSON state; ``train(..., resume=True)`` then loads the arrays once."""
    out = Path(out)
    if not (out / records.CHECKPOINT_NAME).is_file():
        raise records.no_checkpoint(out)
    return TrainConfig.from_dict(records.load_checkpoint(out / records.CHECKPOINT_NAME, arrays=False)[1]["config"])


def train(config: TrainConfig, out=None, *, data: TaskData | None = None, root=None, resume: bool = False,
          threads: int | None = None, progress: bool | None = None,
          on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Run (or, with ``resume``, continue) one training run; return its record (also written to
    ``out/record.json`` when ``out`` is given, with a checkpoint after every epoch).

    ``data``: the task's splits (default: ``load_task(config.task, config.dtype, root)``).
    ``threads``: cores for this run (default all): validation runs over sequences on that many threads,
    and with two or more a bidirectional layer trains its directions concurrently (Numba is pinned to
    ``threads``, BLAS to one thread — see :mod:`.parallel`).
    ``progress``: a tqdm bar (default: only when stderr is a terminal). ``on_epoch(epoch, history)``
    is called after each epoch's checkpoint. Bad arguments, a run directory that cannot be used and bad
    data (:func:`check_data`) raise ``ValueError`` before anything is written.

    Record fields: format, outcome (``finished`` | ``early_stopped`` | ``diverged`` | ``failed``), config,
    seed, task {name, loss, metric, n_in, n_out, sequences, frames, synthetic, source}, network {arch,
    n_hidden, bidirectional, n_params, dtype}, epochs, best_epoch (1-based), best_valid_metric,
    test_metric (null unless the run finished or stopped early), history {train_loss (mean per frame,
    noisy inputs, moving parameters), valid_metric, seconds, train_seconds, valid_seconds},
    seconds_per_epoch, test_seconds, wall_seconds, cpu_seconds, started, ended, sessions, divergence,
    error (traceback), environment {code_version, library versions, threads, …}.
    """
    clock = (time.perf_counter(), time.process_time())
    _check_arguments(config, out, data, resume, threads, progress, on_epoch)
    out = Path(out) if out is not None else None
    checkpoint = records.open_run_dir(out, resume)
    data = load_task(config.task, config.dtype, root) if data is None else data
    check_data(data)
    net, state = _build_run(config, data)
    state.clock = clock
    opt = Momentum(net.flat, config.lr, config.momentum, config.nesterov, config.clip)
    if checkpoint is not None:
        _restore(checkpoint, config, opt, state)
    splits = _as_dtype(data, config.dtype)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if checkpoint is None:          # a run that failed before its first checkpoint starts afresh
            (out / records.RECORD_NAME).unlink(missing_ok=True)
    result = {"divergence": None, "error": None, "test_metric": None, "test_seconds": None}
    with pinned_threads(threads) as threads:
        environment = records.environment(threads)      # the code as it was when this session started
        if hasattr(net.rnn, "concurrent"):
            net.rnn.concurrent = threads >= 2
        bar = _progress_bar(config, state, progress)
        try:
            with np.errstate(all="ignore"):     # overflow on the way to divergence is detected, not warned
                outcome, result["divergence"] = _epochs(config, net, opt, state, splits, threads, out, bar,
                                                        on_epoch)
                if outcome != "diverged":
                    t0 = time.perf_counter()
                    opt.theta[:] = state.best               # test the best-validation parameters, once
                    result["test_metric"] = net.evaluate(*splits.test, threads=threads)
                    result["test_seconds"] = time.perf_counter() - t0
                    if out is not None:
                        net.save(out / records.PARAMS_NAME)
        except Exception:
            outcome, result["error"] = "failed", traceback.format_exc()
        finally:
            if bar is not None:
                bar.close()
    state.tick()
    record = _record(config, data, net, state, outcome, environment=environment, **result)
    if out is not None:
        records.write_json(out / records.RECORD_NAME, record)
    return record


def _check_arguments(config, out, data, resume, threads, progress, on_epoch) -> None:
    """Every argument of :func:`train` (the configuration checks itself), before data or disk."""
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config={config!r}: pass a TrainConfig, e.g. TrainConfig('jsb')")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ValueError(f"out={out!r}: give the run directory as a path (or None for no files)")
    if data is not None and not (isinstance(data, tuple) and len(data) == 3):
        raise ValueError(f"data: pass TaskData(train, valid, test) (or None to load {config.task!r}); "
                         f"got {type(data).__name__}")
    if not isinstance(resume, bool):
        raise ValueError(f"resume={resume!r}: must be True or False")
    if resume and out is None:
        raise ValueError("resume=True needs the run directory (out=...) that holds the checkpoint")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral)
                                or threads < 1):
        raise ValueError(f"threads={threads!r}: give the number of cores as an integer ≥ 1 "
                         "(or None for all of them)")
    if progress not in (None, True, False):
        raise ValueError(f"progress={progress!r}: must be True, False or None (a bar only on a terminal)")
    if on_epoch is not None and not callable(on_epoch):
        raise ValueError(f"on_epoch={on_epoch!r}: must be a function f(epoch, history) or None")


def _epochs(config, net, opt, state, splits, threads, out, bar, on_epoch) -> tuple[str, Divergence | None]:
    """Train epoch after epoch until a stop reason; return it (and the Divergence, if any)."""
    (train_x, train_y), valid = splits.train, splits.valid
    while (outcome := _stop_reason(state, config)) is None:
        epoch = state.epochs + 1
        t0 = time.perf_counter()
        order = state.order_rng.permutation(len(train_x))
        loss = _train_epoch(net, opt, train_x, train_y, order, config.noise, state.noise_rng, epoch)
        if isinstance(loss, Divergence):
            return "diverged", loss
        t1 = time.perf_counter()
        metric = net.evaluate(*valid, threads=threads)
        if not math.isfinite(metric):
            return "diverged", Divergence(epoch, "validation metric", -1, -1)
        t2 = time.perf_counter()
        for name, value in zip(HISTORY, (loss, metric, t2 - t0, t1 - t0, t2 - t1)):
            state.history[name].append(value)
        if metric < state.best_metric:
            state.best_metric, state.best_epoch = metric, epoch
            state.best[:] = opt.theta
        if out is not None:
            state.tick()
            _save_checkpoint(out / records.CHECKPOINT_NAME, config, opt, state)
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.4g}", valid=f"{metric:.4g}", refresh=False)
            bar.update(1)
        if on_epoch is not None:
            on_epoch(epoch, state.history)
    return outcome, None


def _progress_bar(config, state, progress):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=config.max_epochs, initial=state.epochs, unit="epoch",
                desc=f"{config.task} {config.arch} N={config.hidden}")


def _record(config, data, net, state, outcome, *, divergence, error, test_metric, test_seconds, environment):
    splits = dict(zip(TaskData._fields, data))
    return records.run_record(
        outcome=outcome, config=asdict(config),
        task={"name": config.task, "loss": data.train.loss, "metric": METRICS[data.train.loss],
              "n_in": data.train.n_in, "n_out": data.train.n_out,
              "sequences": {name: len(split.inputs) for name, split in splits.items()},
              "frames": {name: int(sum(len(x) for x in split.inputs)) for name, split in splits.items()},
              "synthetic": bool(getattr(data.train, "synthetic", False)),
              "source": getattr(data.train, "source", None)},
        network={"arch": net.spec.arch, "n_hidden": net.spec.n_hidden, "bidirectional": net.spec.bidirectional,
                 "n_params": net.n_params, "dtype": net.spec.dtype},
        history=state.history, best_epoch=state.best_epoch,
        best_valid_metric=state.best_metric if state.best_epoch else None, test_metric=test_metric,
        test_seconds=test_seconds, wall_seconds=state.wall_seconds, cpu_seconds=state.cpu_seconds,
        started=state.started, sessions=state.sessions,
        divergence=divergence._asdict() if divergence else None, error=error, environment=environment)
