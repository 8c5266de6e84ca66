"""The task table and the entry points, :func:`load` (one split) and :func:`load_task` (all three).

    load("jsb", "train")                                   # fetched + verified + cached on first use
    load("timit", "valid", root="/data/TIMIT")             # licensed: root= or $LSTM_SCRATCH_TIMIT
    load("iam_ondb", "test")                               # licensed: root= or $LSTM_SCRATCH_IAM_ONDB
    load("handwriting", "train")                           # IAM-OnDB if configured, else the synthetic set
    load_task("jsb")                                       # TaskData(train, valid, test), once per process

A task's row holds every fact about it: its loader and the options that loader takes, its objective
(:mod:`lstm_scratch.objectives`, which names the metric), its default direction, where its files
come from. Adding a task is one row (and, for a new corpus, one loader module).
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ..objectives import Objective, objective
from . import iam_ondb, jzs, music, store, synthetic_handwriting, timit
from .split import Split

SPLITS = ("train", "valid", "test")
DTYPES = ("float32", "float64")


# Loaders: loader(task, split, root, dtype, **options) -> Split; the keyword names are the options a
# task row accepts (``Task.options``).
def _music(task, split, root, dtype):
    return music.load(task, split, dtype)


def _timit(task, split, root, dtype, mfcc=timit.MfccSettings()):
    return timit.load(task, split, root, dtype, mfcc)


def _iam_ondb(task, split, root, dtype, subsample=2):
    return iam_ondb.load(split, root, dtype, subsample)


def _synthetic_handwriting(task, split, root, dtype, settings=synthetic_handwriting.SyntheticSettings()):
    return synthetic_handwriting.load(split, dtype, settings)


def _jzs(task, split, root, dtype, settings=jzs.JzsSettings()):
    return jzs.load(task, split, dtype, settings)


@dataclass(frozen=True)
class Task:
    name: str
    title: str
    loss: str                 # objective name (lstm_scratch.objectives): bernoulli, softmax, ctc, next_symbol
    n_in: int
    access: str               # "fetch" (manifest files), "licensed" (root / env var), "generated"
    sizes: tuple              # published train / valid / test sequence counts (None: ours, see docs)
    loader: Callable          # loader(task, split, root, dtype, **options) -> Split
    bidirectional: bool       # default direction: next-step prediction must not see the future
    options: tuple = ()       # keyword options the loader accepts (load(..., **options))
    groups: tuple = ()        # manifest groups fetched for this task
    env: str | None = None    # environment variable naming the corpus root (licensed tasks)
    synthetic: bool = False
    is_cached: Callable | None = None   # generated tasks: is_cached() -> are the default splits built?
                                        # (None: generated on the fly, never cached)
    uninformed: float | None = None     # test metric of the predictor that knows nothing (music: p = ½ for
                                        # every key, 88 ln 2 ≈ 61.0 nats per step); a trial that ends worse
                                        # has blown up (analysis.importance.blow_ups). None: a bounded metric
                                        # (error %, accuracy), where no trial can end far beyond it

    @property
    def objective(self) -> Objective:
        return objective(self.loss)

    @property
    def metric(self) -> str:
        """The objective's metric name: nll_per_step, frame_error, cer or accuracy."""
        return self.objective.metric_name


MUSIC_UNINFORMED = music.N_KEYS * float(np.log(2))
"""NLL per time step of p = ½ for every one of the 88 keys: what a network that learned nothing scores."""

TASKS = {t.name: t for t in (
    Task("jsb", "JSB Chorales, next-step piano roll (Boulanger-Lewandowski split)", "bernoulli",
         88, "fetch", (229, 76, 77), _music, bidirectional=False, groups=("jsb",), uninformed=MUSIC_UNINFORMED),
    Task("nottingham", "Nottingham folk tunes, next-step piano roll", "bernoulli",
         88, "fetch", (694, 173, 170), _music, bidirectional=False, groups=("nottingham",), uninformed=MUSIC_UNINFORMED),
    Task("musedata", "MuseData classical, next-step piano roll", "bernoulli",
         88, "fetch", (524, 135, 124), _music, bidirectional=False, groups=("musedata",), uninformed=MUSIC_UNINFORMED),
    Task("piano_midi", "Piano-midi.de, next-step piano roll", "bernoulli",
         88, "fetch", (87, 12, 25), _music, bidirectional=False, groups=("piano_midi",), uninformed=MUSIC_UNINFORMED),
    Task("timit", "TIMIT framewise phone classification, 61 classes (LDC93S1)", "softmax",
         39, "licensed", (3696, 400, 192), _timit, bidirectional=True, options=("mfcc",), env=timit.ENV_ROOT),
    Task("timit_sample", "NLTK TIMIT sample, speaker split 12/2/2 — smoke runs only", "softmax",
         39, "fetch", (96, 16, 16), _timit, bidirectional=True, options=("mfcc",), groups=("timit_sample",)),
    Task("iam_ondb", "IAM-OnDB-t1 online handwriting lines, CTC", "ctc",
         4, "licensed", (5355, 2956, 3859), _iam_ondb, bidirectional=True, options=("subsample",),
         env=iam_ondb.ENV_ROOT),
    Task("handwriting_synthetic", "SYNTHETIC online handwriting from Hershey fonts, CTC (IAM-OnDB stand-in)",
         "ctc", 4, "generated", (400, 100, 100), _synthetic_handwriting, bidirectional=True,
         options=("settings",), synthetic=True, is_cached=synthetic_handwriting.is_cached),
    # JZS's synthetic tasks (lstm_scratch.datasets.jzs): next-symbol prediction, one direction
    Task("memorisation", "JZS memorisation: read 5 letters (of 26), then reproduce them", "next_symbol",
         len(jzs.VOCABULARIES["memorisation"]), "generated", jzs.DEFAULT_SIZES, _jzs, bidirectional=False,
         options=("settings",)),
    Task("arithmetic", "JZS arithmetic: a ± b of up to 8 digits read among distractor letters, then the answer",
         "next_symbol", len(jzs.VOCABULARIES["arithmetic"]), "generated", jzs.DEFAULT_SIZES, _jzs,
         bidirectional=False, options=("settings",)),
    Task("xml", "JZS XML: nested random tags, predict every character", "next_symbol",
         len(jzs.VOCABULARIES["xml"]), "generated", jzs.DEFAULT_SIZES, _jzs, bidirectional=False,
         options=("settings",)),
)}


def resolve(task: str, root=None) -> str:
    """Registry name for ``task``; the alias "handwriting" means IAM-OnDB when its location is given
    (``root=`` or ``$LSTM_SCRATCH_IAM_ONDB``) and the synthetic stand-in otherwise."""
    if task == "handwriting":
        return "iam_ondb" if root or os.environ.get(iam_ondb.ENV_ROOT) else "handwriting_synthetic"
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)} (or the alias 'handwriting')")
    return task


def _check_dtype(dtype) -> np.dtype:
    try:
        checked = np.dtype(dtype)
    except TypeError as err:
        raise ValueError(f"dtype={dtype!r} is not a NumPy dtype; use one of {', '.join(DTYPES)}") from err
    if checked.name not in DTYPES:
        raise ValueError(f"dtype={checked.name}: data load as {' or '.join(DTYPES)} only (the network "
                         "computes in those)")
    return checked


def load(task: str, split: str, root=None, dtype=np.float64, **options) -> Split:
    """One split of one task, ready for the network (see :class:`~.split.Split` for the conventions).

    ``root``: location of a licensed corpus (timit, iam_ondb). ``dtype``: float32 or float64, the type of
    inputs (and of music targets). ``options``: those the task's row lists — ``mfcc=MfccSettings(...)``
    for TIMIT, ``subsample=2`` for IAM-OnDB, ``settings=SyntheticSettings(...)`` for the synthetic
    handwriting, ``settings=JzsSettings(...)`` for memorisation, arithmetic and xml.
    """
    name = resolve(task, root)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    spec = TASKS[name]
    if root is not None and spec.access != "licensed":
        raise ValueError(f"task {name!r} takes no root= (its files come from the manifest or a generator)")
    unknown = set(options) - set(spec.options)
    if unknown:
        raise TypeError(f"task {name!r} does not take option(s) {sorted(unknown)}")
    return spec.loader(name, split, root, _check_dtype(dtype), **options)


class TaskData(NamedTuple):
    """The three splits of a task. Each needs ``inputs``, ``targets``, ``loss``, ``n_in``, ``n_out``
    (a :class:`~.split.Split` has them); ``synthetic``, ``source`` and ``fingerprint`` are recorded if
    present."""

    train: object
    valid: object
    test: object

    @property
    def fingerprint(self) -> str | None:
        return fingerprint_of(self)


def fingerprint_of(splits) -> str | None:
    """The data's identity over three splits: a short sha256 of their fingerprints, or None when a split
    has none (data made by hand)."""
    parts = [getattr(split, "fingerprint", None) for split in splits]
    if any(part is None for part in parts):
        return None
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


def load_task(task: str, dtype="float64", root=None) -> TaskData:
    """The train / valid / test splits of a registered task (fetched and cached on first use).

    Memoised per process by (resolved task, dtype, root — for a licensed task also the one its
    environment variable names — and the cache directory): a search worker running many trials loads
    its data once. The splits are shared between callers: never change their arrays in place (the
    trainer does not; marking them read-only would make Numba compile every kernel a second time, for
    read-only inputs). ``load_task.cache_clear()`` forgets them."""
    name = resolve(task, root)
    spec = TASKS[name]
    where = root or (os.environ.get(spec.env) if spec.access == "licensed" else None)
    where = None if where is None else os.path.abspath(os.path.expanduser(where))
    return _load_task(name, _check_dtype(dtype).name, root, where, str(store.cache_dir()))


@functools.lru_cache(maxsize=4)         # a TIMIT float64 task holds ~0.4 GB: keep a few, not all
def _load_task(name: str, dtype: str, root, where, cache: str) -> TaskData:
    """Memoised on every argument: ``root`` as given (it reaches the ``source`` line), ``where`` the
    corpus it means (for a licensed task also when the environment names it) and the cache directory."""
    return TaskData(*(load(name, split, root=root, dtype=dtype) for split in SPLITS))


load_task.cache_clear = _load_task.cache_clear       # tests that change the data on disk start afresh


def default_bidirectional(split) -> bool:
    """The direction a run takes unless told: the task's row for a registered task's split, else (data
    made by hand) the objective's default — one direction only for next-step prediction."""
    spec = TASKS.get(getattr(split, "task", None))
    return spec.bidirectional if spec is not None else objective(split.loss).bidirectional


def availability(name: str) -> str:
    """Short status for ``lstm-odyssey data list``."""
    spec = TASKS[name]
    if spec.access == "fetch":
        return "cached" if all(store.group_is_cached(g) for g in spec.groups) else "fetch on first use"
    if spec.access == "licensed":
        return f"${spec.env} = {os.environ[spec.env]}" if os.environ.get(spec.env) else f"needs root= or ${spec.env}"
    if spec.is_cached is None:
        return "generated on the fly (seeded)"
    return "cached" if spec.is_cached() else "generated on first use (cached)"


def fetch(task: str, root=None) -> TaskData:
    """Fetch and verify a task's files and build its cached features; returns the three splits."""
    name = resolve(task, root)
    for group_name in TASKS[name].groups:
        store.fetch_group(group_name)
    return load_task(name, root=root)
