"""The task table and the one entry point, :func:`load`.

    load("jsb", "train")                                   # fetched + verified + cached on first use
    load("timit", "valid", root="/data/TIMIT")             # licensed: root= or $LSTM_SCRATCH_TIMIT
    load("iam_ondb", "test")                               # licensed: root= or $LSTM_SCRATCH_IAM_ONDB
    load("handwriting", "train")                           # IAM-OnDB if configured, else the synthetic set
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import iam_ondb, music, store, synthetic_handwriting, timit
from .split import Split

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Task:
    name: str
    title: str
    loss: str                 # "bernoulli" | "softmax" | "ctc"
    metric: str               # "nll_per_step" | "frame_error" | "cer"
    n_in: int
    access: str               # "fetch" (manifest files), "licensed" (root / env var), "generated"
    sizes: tuple              # published train / valid / test sequence counts (None: ours, see docs)
    groups: tuple = ()        # manifest groups fetched for this task
    env: str | None = None    # environment variable naming the corpus root (licensed tasks)
    synthetic: bool = False


TASKS = {t.name: t for t in (
    Task("jsb", "JSB Chorales, next-step piano roll (Boulanger-Lewandowski split)", "bernoulli", "nll_per_step",
         88, "fetch", (229, 76, 77), ("jsb",)),
    Task("nottingham", "Nottingham folk tunes, next-step piano roll", "bernoulli", "nll_per_step",
         88, "fetch", (694, 173, 170), ("nottingham",)),
    Task("musedata", "MuseData classical, next-step piano roll", "bernoulli", "nll_per_step",
         88, "fetch", (524, 135, 124), ("musedata",)),
    Task("piano_midi", "Piano-midi.de, next-step piano roll", "bernoulli", "nll_per_step",
         88, "fetch", (87, 12, 25), ("piano_midi",)),
    Task("timit", "TIMIT framewise phone classification, 61 classes (LDC93S1)", "softmax", "frame_error",
         39, "licensed", (3696, 400, 192), env=timit.ENV_ROOT),
    Task("timit_sample", "NLTK TIMIT sample, speaker split 12/2/2 — smoke runs only", "softmax", "frame_error",
         39, "fetch", (96, 16, 16), ("timit_sample",)),
    Task("iam_ondb", "IAM-OnDB-t1 online handwriting lines, CTC", "ctc", "cer",
         4, "licensed", (5355, 2956, 3859), env=iam_ondb.ENV_ROOT),
    Task("handwriting_synthetic", "SYNTHETIC online handwriting from Hershey fonts, CTC (IAM-OnDB stand-in)",
         "ctc", "cer", 4, "generated", (400, 100, 100), synthetic=True),
)}


def resolve(task: str, root=None) -> str:
    """Registry name for ``task``; the alias "handwriting" means IAM-OnDB when its location is given
    (``root=`` or ``$LSTM_SCRATCH_IAM_ONDB``) and the synthetic stand-in otherwise."""
    if task == "handwriting":
        return "iam_ondb" if root or os.environ.get(iam_ondb.ENV_ROOT) else "handwriting_synthetic"
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)} (or the alias 'handwriting')")
    return task


def load(task: str, split: str, root=None, dtype=np.float64, **options) -> Split:
    """One split of one task, ready for the network (see :class:`~.split.Split` for the conventions).

    ``root``: location of a licensed corpus (timit, iam_ondb). ``dtype``: float type of inputs (and of
    music targets). ``options``: ``mfcc=MfccSettings(...)`` for TIMIT, ``subsample=2`` for IAM-OnDB,
    ``settings=SyntheticSettings(...)`` for the synthetic handwriting.
    """
    name = resolve(task, root)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    spec = TASKS[name]
    if root is not None and spec.access != "licensed":
        raise ValueError(f"task {name!r} takes no root= (its files come from the manifest or a generator)")
    allowed = {"timit": {"mfcc"}, "timit_sample": {"mfcc"}, "iam_ondb": {"subsample"},
               "handwriting_synthetic": {"settings"}}.get(name, set())
    if set(options) - allowed:
        raise TypeError(f"task {name!r} does not take option(s) {sorted(set(options) - allowed)}")
    dtype = np.dtype(dtype)
    if name in music.SOURCES:
        return music.load(name, split, dtype)
    if name in ("timit", "timit_sample"):
        return timit.load(name, split, root, dtype, options.get("mfcc", timit.MfccSettings()))
    if name == "iam_ondb":
        return iam_ondb.load(split, root, dtype, options.get("subsample", 2))
    return synthetic_handwriting.load(split, dtype, options.get("settings", synthetic_handwriting.SyntheticSettings()))


def availability(name: str) -> str:
    """Short status for ``lstm-odyssey data list``."""
    spec = TASKS[name]
    if spec.access == "fetch":
        return "cached" if all(store.group_is_cached(g) for g in spec.groups) else "fetch on first use"
    if spec.access == "licensed":
        return f"${spec.env} = {os.environ[spec.env]}" if os.environ.get(spec.env) else f"needs root= or ${spec.env}"
    return "generated on first use (cached)"


def fetch(task: str, root=None) -> list[Split]:
    """Fetch and verify a task's files and build its cached features; returns the three splits."""
    name = resolve(task, root)
    for group_name in TASKS[name].groups:
        store.fetch_group(group_name)
    return [load(name, split, root=root) for split in SPLITS]
