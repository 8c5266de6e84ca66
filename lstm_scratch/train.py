"""Online SGD with Nesterov momentum, input noise and early stopping (SPEC §6): what every trial runs.

One run::

    for epoch = 1 … max_epochs:
        for every training sequence, in an order reshuffled each epoch from the run's seed:
            x̃ = x + ξ,  ξ ~ N(0, σ²) drawn afresh for this presentation (training inputs only)
            g = ∇_θ loss(x̃, target)        full-sequence BPTT; the loss is summed over the sequence
            g ← clip(g, −c, c)             element-wise, only if clipping is on (default off)
            one momentum update (below)
        score the validation split; keep θ if its metric is the best so far (lower is better; accuracy: higher)
        stop when the metric has not improved for `patience` epochs
    score the test split once, with the kept θ

Momentum (:mod:`.momentum`): v ← m·v − (1 − m)·η·∇f, Nesterov by default (classical as an option),
implemented in the look-ahead-point reformulation — see that module for the equations.

``protocol="jzs"`` replaces the inner loop by JZS's regime (SPEC §11, :mod:`.minibatch`): minibatches,
truncated BPTT with the state carried between windows, gradient-norm clipping, and η halved after each
epoch ≥ 3 epochs past the best one; everything else here — validation, early stopping, checkpoints,
divergence, the record — is the same for both protocols. The record's config says which protocol ran.

Divergence: a non-finite loss, gradient, parameter or validation metric ends the run at once with
outcome ``diverged`` (no exception). Any other exception after the run started gives ``failed`` with
the traceback in the record. Random streams: one seed gives three independent generators (NumPy
``SeedSequence.spawn``) — initialisation, sequence order, input noise — so turning noise on does not
change the order or the initial weights.
"""
from __future__ import annotations

import math
import os
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from typing import Callable, NamedTuple

import numpy as np

from . import memory, minibatch, records, rundir
from .checks import is_integer
from .config import TrainConfig
from .datacheck import check_data
from .momentum import MasterMomentum, Momentum
from .datasets import TASKS, TaskData, default_bidirectional, fingerprint_of, load_task
from .network import Network
from .noise import with_noise
from .objectives import objective
from .parallel import pinned_threads

OUTCOMES = records.OUTCOMES


# ---------------------------------------------------------------------------------------- one run
class Divergence(NamedTuple):
    epoch: int          # 1-based epoch in which it happened
    what: str           # "loss", "gradient or parameters" or "validation metric"
    position: int       # position in the epoch's order (-1 for the validation metric)
    sequence: int       # index of the training sequence (-1 for the validation metric)


HISTORY = records.HISTORY


def _build_run(config: TrainConfig, data: TaskData) -> tuple[Network, rundir.RunState]:
    """The network initialised from the run's seed, and a fresh run state (``data`` already checked)."""
    init, order, noise = np.random.SeedSequence(config.seed).spawn(3)
    bidirectional = default_bidirectional(data.train) if config.bidirectional is None else config.bidirectional
    net = Network(config.arch, data.train.n_in, config.hidden, data.train.n_out, loss=data.train.loss,
                  bidirectional=bidirectional, dtype=config.kernel_dtype, seed=np.random.default_rng(init),
                  forget_bias=config.forget_bias, layers=config.layers, init_std=config.init_scale)
    state = rundir.RunState(net.flat.copy(), np.random.default_rng(order), np.random.default_rng(noise),
                            {name: [] for name in rundir.history_names(config)}, lr=config.lr,
                            started=records.now())
    return net, state


def _as_dtype(data: TaskData, dtype: str) -> TaskData:
    """Inputs (and Bernoulli targets) in the run's dtype; no copy where they already are."""
    def convert(split):
        inputs = [np.asarray(x, dtype=dtype) for x in split.inputs]
        targets = ([np.asarray(y, dtype=dtype) for y in split.targets] if objective(split.loss).real_targets
                   else list(split.targets))
        return inputs, targets
    return TaskData(*(convert(split) for split in data))


def _train_epoch(net, opt, inputs, targets, order, sigma, noise_rng, epoch):
    """One pass over the training sequences in ``order``: mean loss per frame, or a Divergence."""
    total, frames = 0.0, 0
    for position, index in enumerate(order):
        x = with_noise(inputs[index], sigma, noise_rng)
        loss, grad = net.loss_and_grad(x, targets[index])
        if not math.isfinite(loss):
            return Divergence(epoch, "loss", position, int(index))
        if not opt.step(grad):
            return Divergence(epoch, "gradient or parameters", position, int(index))
        total += loss
        frames += x.shape[0]
    return total / frames


def _stop_reason(state: rundir.RunState, config: TrainConfig) -> str | None:
    """``early_stopped`` after ``patience`` epochs without improvement, ``finished`` at ``max_epochs``."""
    if state.best_epoch is not None and state.epochs - state.best_epoch >= config.patience:
        return "early_stopped"
    if state.epochs >= config.max_epochs:
        return "finished"
    return None


def _restore(checkpoint, path, config, opt, state) -> None:
    """Continue from ``checkpoint`` (:func:`rundir.restore_run`); an extended run must not end at once."""
    extended = rundir.restore_run(checkpoint, path, config, opt, state) is not None
    if extended and _stop_reason(state, config) is not None:
        raise ValueError(f"{path}: the run ended after epoch {state.epochs} (best epoch "
                         f"{state.best_epoch}) and would end again at once with max_epochs="
                         f"{config.max_epochs}, patience={config.patience}; raise --max-epochs above "
                         f"{state.epochs} and --patience above {state.epochs - (state.best_epoch or 0)}")


def train(config: TrainConfig, out=None, *, data: TaskData | None = None, root=None, resume: bool = False,
          threads: int | None = None, progress: bool | None = None,
          on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Run (or, with ``resume``, continue) one training run; return its record (also written to
    ``out/record.json`` when ``out`` is given, with a checkpoint after every epoch).

    ``data``: the task's splits (default: ``load_task(config.task, config.kernel_dtype, root)``).
    ``threads``: cores for this run (default all): validation runs over sequences on that many threads,
    and with two or more a bidirectional layer trains its directions concurrently (Numba is pinned to
    ``threads``, BLAS to one thread — see :mod:`.parallel`).
    ``progress``: a tqdm bar (default: only when stderr is a terminal). ``on_epoch(epoch, history)``
    is called after each epoch's checkpoint. Bad arguments, a run directory that cannot be used and bad
    data (:func:`check_data`) raise ``ValueError`` before anything is written.

    Record fields: format, outcome (``finished`` | ``early_stopped`` | ``diverged`` | ``failed``), config,
    seed, task {name (the registry name the data came from, e.g. handwriting_synthetic for the alias
    handwriting; config.task for data of no registered task), fingerprint (of the data, null for data
    made by hand: :attr:`lstm_scratch.datasets.TaskData.fingerprint`), loss, metric, n_in, n_out,
    sequences, frames, synthetic, source}, network {arch,
    n_hidden, bidirectional, n_params, dtype}, epochs, best_epoch (1-based), best_valid_metric,
    test_metric (null unless the run finished or stopped early), history {train_loss (mean per frame,
    noisy inputs, moving parameters), valid_metric, seconds, train_seconds, valid_seconds},
    seconds_per_epoch, test_seconds, wall_seconds, cpu_seconds, started, ended, sessions, labels ({} here;
    :func:`run_trial` stamps a study's), extensions ([{at_epoch, max_epochs, patience}]: limits raised on
    resume), divergence, error (traceback), environment (:func:`lstm_scratch.provenance.provenance`: code
    and library versions, host, pid, …; plus threads).

    ``resume`` may raise ``config.max_epochs`` / ``patience`` above the checkpoint's (extending a run, even
    one that has ended); nothing else may differ. The run holds ``out``'s lock (:func:`rundir.locked`)
    throughout; another process using ``out`` gets ``rundir.RunLocked``. Ctrl-C raises KeyboardInterrupt
    (the checkpoint stays; no record), also when it lands inside a compiled kernel.
    """
    clock = (time.perf_counter(), time.process_time())
    _check_arguments(config, out, data, resume, threads, progress, on_epoch)
    if out is None:
        return _session(config, None, _task_data(config, data, root, threads), None, threads, progress,
                        on_epoch, clock=clock)
    out = rundir.check_out(out)
    wanted = asdict(config)
    rundir.check_run_dir(out, resume, wanted)   # cheap mistakes first: before the data are loaded
    data = _task_data(config, data, root, threads)
    with rundir.locked(out):
        # Again under the lock: another process may have used the directory while the data loaded.
        checkpoint = None
        if rundir.check_run_dir(out, resume, wanted):
            checkpoint = rundir.load_checkpoint(out / rundir.CHECKPOINT_NAME)
        return _session(config, out, data, checkpoint, threads, progress, on_epoch, clock=clock)


def run_trial(config: TrainConfig, out, *, labels: dict | None = None, data: TaskData | None = None, root=None,
              threads: int = 1, progress: bool = False,
              publish: Callable[[Callable[[], None]], None] | None = None) -> dict:
    """One trial of a study in the run directory ``out``, whatever state it is in; returns its record.

    Under the directory's lock (:func:`rundir.locked`; a second process gets ``rundir.RunLocked``):

    * a valid record (:func:`records.read_record`) of this ``config`` is returned as it is, without
      training — whatever its outcome (a study counts failed and diverged trials as results);
    * else a checkpoint of this ``config`` is continued (bit for bit as if never interrupted);
    * else the trial starts afresh.

    A record or checkpoint of another configuration raises ``ValueError`` (the caller decides). A record
    that fails :func:`records.read_record` or a checkpoint that fails :func:`rundir.load_checkpoint`
    (damaged: writes are atomic, so only the disk or a hand can do that) is set aside as
    ``<name>.corrupt-<time>`` and the trial goes on without it. ``labels`` (a small JSON-able dict,
    e.g. ``{"study": …, "trial": …}``) is stamped into the record; its ``environment`` names the host
    and process. ``data``, ``root``, ``threads``, ``progress``: as for :func:`train` (one thread by
    default: a worker of a study is one of many). ``publish(write)``, if given, is called to write the
    record (a study's worker writes it only while it still holds the trial's lease, else raises).
    """
    clock = (time.perf_counter(), time.process_time())
    _check_arguments(config, out, data, False, threads, progress, None)
    if out is None:
        raise ValueError("run_trial needs the trial's run directory (out=...)")
    labels = records.check_labels(labels)
    out = rundir.check_out(out)
    wanted = asdict(config)
    with rundir.locked(out):
        record = rundir.usable(out / rundir.RECORD_NAME, records.read_record, lambda r: r["config"], wanted,
                               "running the trial")
        if record is not None:
            return record
        checkpoint = rundir.usable(out / rundir.CHECKPOINT_NAME, rundir.load_checkpoint,
                                   lambda c: c[1]["config"], wanted, "starting the trial afresh")
        data = _task_data(config, data, root, threads)
        return _session(config, out, data, checkpoint, threads, progress, None, clock=clock, labels=labels,
                        publish=publish)


def _task_data(config, data, root, threads) -> TaskData:
    """The run's data, checked: ``data`` as given (any sequence of three splits) or the task loaded;
    and the network for it must fit in memory (:func:`.memory.check`)."""
    data = load_task(config.task, config.kernel_dtype, root) if data is None else TaskData(*data)
    check_data(data)
    if config.protocol == "jzs":
        bidirectional = (default_bidirectional(data.train) if config.bidirectional is None
                         else config.bidirectional)
        problem = minibatch.protocol_problem(data.train.loss, bidirectional)
        if problem is not None:
            raise ValueError(f"task {config.task!r}: {problem}")
    memory.check(config, data, threads)
    return data


def _session(config, out, data, checkpoint, threads, progress, on_epoch, *, clock, labels=None,
             publish=None) -> dict:
    """One session of a run on checked ``data``: from ``checkpoint`` (arrays, state) or afresh, until it
    ends (the record is returned, and written to ``out``) or is interrupted (the checkpoint stays)."""
    try:
        net, state = _build_run(config, data)
        state.clock = clock
        optimiser = MasterMomentum if config.dtype == "mixed" else Momentum
        opt = optimiser(net.flat, config.lr, config.momentum, config.nesterov, config.clip)
    except MemoryError as err:
        raise ValueError(memory.too_big(config, data, threads)) from err
    if checkpoint is not None:
        _restore(checkpoint, out / rundir.CHECKPOINT_NAME, config, opt, state)
        net.flat[:] = opt.theta             # mixed: the network is the master rounded to float32
    splits = _as_dtype(data, config.kernel_dtype)
    if out is not None:
        # A fresh run replaces the record of one that failed before its first checkpoint; an ended
        # run being extended gets a new record when it ends again (its history is in the checkpoint).
        if checkpoint is None or state.extensions:
            (out / rundir.RECORD_NAME).unlink(missing_ok=True)
    result = {"divergence": None, "error": None, "test_metric": None, "test_seconds": None}
    with pinned_threads(threads) as threads:
        environment = records.environment(threads)      # the code as it was when this session started
        for layer in net.layers:
            if hasattr(layer, "concurrent"):
                layer.concurrent = threads >= 2
        bar = _progress_bar(config, state, progress)
        train_epoch, close = _epoch_of_protocol(config, net, opt, state, splits.train, threads)
        try:
            with np.errstate(all="ignore"):     # overflow on the way to divergence is detected, not warned
                outcome, result["divergence"] = _epochs(config, net, opt, state, splits, threads, out, bar,
                                                        on_epoch, train_epoch)
                if outcome != "diverged":
                    t0 = time.perf_counter()
                    net.flat[:] = state.best                # test the best-validation parameters, once
                    result["test_metric"] = net.evaluate(*splits.test, threads=threads)
                    result["test_seconds"] = time.perf_counter() - t0
                    if out is not None:
                        net.save(out / rundir.PARAMS_NAME)
        except Exception as err:
            if _interrupted(err):
                # Ctrl-C inside a Numba kernel surfaces as "SystemError: CPUDispatcher(...) returned a
                # result with an exception set", the KeyboardInterrupt chained to it: an interruption.
                raise KeyboardInterrupt("interrupted inside a compiled kernel") from err
            outcome, result["error"] = "failed", traceback.format_exc()
        finally:
            close()
            if bar is not None:
                bar.close()
    state.tick()
    record = _record(config, data, net, state, outcome, environment=environment, labels=labels, **result)
    if out is not None:
        def write():
            records.write_json(out / rundir.RECORD_NAME, record)
        if publish is None:
            write()
        else:
            publish(write)
    return record


def _interrupted(err: BaseException) -> bool:
    """Whether ``err``'s chain of causes and contexts holds a KeyboardInterrupt."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _check_arguments(config, out, data, resume, threads, progress, on_epoch) -> None:
    """Every argument of :func:`train` (the configuration checks itself), before data or disk."""
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config={config!r}: pass a TrainConfig, e.g. TrainConfig('jsb')")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ValueError(f"out={out!r}: give the run directory as a path (or None for no files)")
    if data is not None and not (isinstance(data, Sequence) and not isinstance(data, str) and len(data) == 3):
        raise ValueError(f"data: pass the three splits, TaskData(train, valid, test) or any sequence of "
                         f"three (or None to load {config.task!r}); got {type(data).__name__}")
    if not isinstance(resume, bool):
        raise ValueError(f"resume={resume!r}: must be True or False")
    if resume and out is None:
        raise ValueError("resume=True needs the run directory (out=...) that holds the checkpoint")
    if threads is not None and not is_integer(threads, 1):
        raise ValueError(f"threads={threads!r}: give the number of cores as an integer ≥ 1 "
                         "(or None for all of them)")
    if progress not in (None, True, False):
        raise ValueError(f"progress={progress!r}: must be True, False or None (a bar only on a terminal)")
    if on_epoch is not None and not callable(on_epoch):
        raise ValueError(f"on_epoch={on_epoch!r}: must be a function f(epoch, history) or None")


def _epoch_of_protocol(config, net, opt, state, train, threads):
    """(train_epoch(epoch, order) -> mean loss per frame or a Divergence, close()) for the config's
    protocol: the online epoch above, or JZS's minibatch epoch (:mod:`.minibatch`) at ``state.lr``."""
    inputs, targets = train
    if config.protocol == "online":
        return (lambda epoch, order: _train_epoch(net, opt, inputs, targets, order, config.noise,
                                                  state.noise_rng, epoch)), (lambda: None)
    runner = minibatch.MinibatchEpoch(net, config.batch, config.unroll, config.clip_norm, threads)

    def train_epoch(epoch, order):
        loss = runner.run(opt, state.lr, inputs, targets, order, config.noise, state.noise_rng)
        return Divergence(epoch, *loss) if isinstance(loss, tuple) else loss
    return train_epoch, runner.close


def _epochs(config, net, opt, state, splits, threads, out, bar, on_epoch,
            train_epoch) -> tuple[str, Divergence | None]:
    """Train epoch after epoch until a stop reason; return it (and the Divergence, if any)."""
    valid = splits.valid
    while (outcome := _stop_reason(state, config)) is None:
        epoch = state.epochs + 1
        t0 = time.perf_counter()
        order = state.order_rng.permutation(len(splits.train[0]))
        loss = train_epoch(epoch, order)
        if isinstance(loss, Divergence):
            return "diverged", loss
        t1 = time.perf_counter()
        metric = net.evaluate(*valid, threads=threads)
        if not math.isfinite(metric):
            return "diverged", Divergence(epoch, "validation metric", -1, -1)
        t2 = time.perf_counter()
        for name, value in zip(HISTORY, (loss, metric, t2 - t0, t1 - t0, t2 - t1)):
            state.history[name].append(value)
        if state.best_epoch is None or net.objective.improves(metric, state.best_metric):
            state.best_metric, state.best_epoch = metric, epoch
            state.best[:] = opt.theta
        if config.protocol == "jzs":                # the η this epoch used, then the next epoch's
            state.history["lr"].append(state.lr)
            state.lr = minibatch.next_lr(state.lr, state.epochs, state.best_epoch, config.lr_decay)
        if out is not None:
            state.tick()
            rundir.save_run(out / rundir.CHECKPOINT_NAME, config, opt, state)
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


def _record(config, data, net, state, outcome, *, divergence, error, test_metric, test_seconds, environment,
            labels=None):
    splits = dict(zip(TaskData._fields, data))
    return records.run_record(
        outcome=outcome, config=asdict(config),
        task={"name": data.train.task if getattr(data.train, "task", None) in TASKS else config.task,
              "fingerprint": fingerprint_of(data),
              "loss": data.train.loss, "metric": objective(data.train.loss).label,
              "n_in": data.train.n_in, "n_out": data.train.n_out,
              "sequences": {name: len(split.inputs) for name, split in splits.items()},
              "frames": {name: int(sum(len(x) for x in split.inputs)) for name, split in splits.items()},
              "synthetic": bool(getattr(data.train, "synthetic", False)),
              "source": getattr(data.train, "source", None)},
        network={"arch": net.spec.arch, "n_hidden": net.spec.n_hidden, "bidirectional": net.spec.bidirectional,
                 "layers": net.spec.layers, "n_params": net.n_params, "dtype": net.spec.dtype},
        history=state.history, best_epoch=state.best_epoch,
        best_valid_metric=state.best_metric if state.best_epoch else None, test_metric=test_metric,
        test_seconds=test_seconds, wall_seconds=state.wall_seconds, cpu_seconds=state.cpu_seconds,
        started=state.started, sessions=state.sessions,
        divergence=divergence._asdict() if divergence else None, error=error, environment=environment,
        labels=labels, extensions=state.extensions or [])
