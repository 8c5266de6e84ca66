"""TIMIT framewise phone classification: features, labels, standardisation, cached loading.

Per utterance: 39 MFCC features per 10 ms frame (:mod:`.mfcc`), and the label of each frame = the
``.phn`` segment holding its centre (one of 61 phones, index into ``PHONES_61``). Frames whose centre
lies outside the transcribed span (one sample utterance has 0.18 s of untranscribed tail) are dropped.
Inputs are standardised per feature with the mean and standard deviation of all training frames:

    x̂ᵗ = (xᵗ − μ_train) / σ_train

Two tasks share this code: ``timit`` (the licensed LDC corpus, from ``root=`` or ``$LSTM_SCRATCH_TIMIT``;
3696 / 400 / 192 utterances) and ``timit_sample`` (the free NLTK sample, fetched and verified via the
manifest, split by speaker 96 / 16 / 16 for smoke runs only — all its speakers are TIMIT-train speakers).

Unstandardised features are cached per split, keyed by the source checksums, the utterance lists and
the MFCC settings; the training split's cache also holds μ and σ, so loading valid/test needs no
recomputation once train has been built. The key hashes every audio and ``.phn`` file of the split, but
:func:`.store.file_digest` remembers each file's hash for the process, so loading all three splits
reads the corpus once and a cached load after that only ``stat``s it.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from . import store
from .mfcc import MfccSettings, mfcc
from .split import Split, fit_standardiser, standardise
from .timit_corpus import (EXPECTED_SIZES, PHONES_61, SAMPLE_TEST_SPEAKERS, SAMPLE_VALID_SPEAKERS,
                           frame_labels, ldc_splits, read_audio, read_phn, sample_splits)

ENV_ROOT = "LSTM_SCRATCH_TIMIT"
FEATURE_VERSION = 1   # bump when the feature or labelling code changes meaning
SPLITS = ("train", "valid", "test")


def utterance_features(audio: Path, phn: Path, settings: MfccSettings = MfccSettings()):
    """(features (T, 39) float64, labels (T,) int64, frames dropped as untranscribed) of one utterance."""
    samples, rate = read_audio(audio)
    if rate != settings.sample_rate:
        raise ValueError(f"{audio}: sample rate {rate} Hz, the feature settings expect {settings.sample_rate}")
    if len(samples) < settings.window:
        raise ValueError(f"{audio}: {len(samples)} samples — too short for one {settings.window}-sample frame")
    features = mfcc(samples, settings)
    centres = settings.hop * np.arange(len(features)) + settings.window // 2
    kept, labels = frame_labels(read_phn(phn), centres, phn)
    if not kept.any():
        raise ValueError(f"{phn}: no frame centre lies inside the transcribed segments (empty sequence)")
    return features[kept], labels, int((~kept).sum())


class _Source:
    """Where one TIMIT task's utterances come from, and the identity of each split for the cache."""

    def __init__(self, task: str, root):
        self.task = task
        self.root = root
        self._splits = None
        self._fingerprints = {}    # split → content fingerprint: load(valid) needs train's key twice

    def splits(self):
        if self._splits is None:
            if self.task == "timit_sample":
                self.root = store.cache_dir() / "files" / "timit_sample" / "timit"
                store.fetch_group("timit_sample")
                self._splits = sample_splits(self.root)
            else:
                self._splits = ldc_splits(self.root)
                sizes = {k: len(v) for k, v in self._splits.items()}
                if sizes != EXPECTED_SIZES:
                    warnings.warn(f"TIMIT at {self.root}: split sizes {sizes}, expected {EXPECTED_SIZES} — "
                                  f"an incomplete copy?", stacklevel=3)
        return self._splits

    def key(self, split: str, settings: MfccSettings) -> dict:
        if self.task == "timit_sample":
            # the manifest's checksums identify the files without reading them: a cached load is instant
            identity = {"files": store.group_fingerprint("timit_sample"),
                        "valid": sorted(SAMPLE_VALID_SPEAKERS), "test": sorted(SAMPLE_TEST_SPEAKERS)}
        else:
            if split not in self._fingerprints:
                utts = self.splits()[split]
                files = [u.audio for u in utts] + [u.phn for u in utts]
                self._fingerprints[split] = store.content_fingerprint(files)   # each file hashed once per process
            identity = {"files": self._fingerprints[split]}
        return {"task": self.task, "split": split, "source": identity, "mfcc": settings.as_key(),
                "version": FEATURE_VERSION}


def _raw_split(source: _Source, split: str, settings: MfccSettings) -> dict:
    """Unstandardised features + labels of one split, from the cache or computed and cached."""
    path = store.derived_path(source.task, split, source.key(split, settings))
    return store.load_derived(path, lambda: _build_split(source, split, settings, path))


def _build_split(source: _Source, split: str, settings: MfccSettings, path: Path) -> dict:
    utterances = source.splits()[split]
    if not utterances:
        raise ValueError(f"{source.task} {split}: no utterances found under {source.root}")
    features, labels, dropped = [], [], 0
    for utt in utterances:
        f, lab, n_dropped = utterance_features(utt.audio, utt.phn, settings)
        features.append(f)
        labels.append(lab)
        dropped += n_dropped
    data, offsets = store.pack(features)
    arrays = {"features": data, "offsets": offsets, "labels": np.concatenate(labels),
              "ids": np.array([u.uid for u in utterances]), "dropped_frames": np.array(dropped)}
    if split == "train":
        arrays.update(fit_standardiser(features, f"{source.task} train"))
    store.save_npz_atomic(path, arrays)
    return arrays


def _train_statistics(source: _Source, settings: MfccSettings) -> dict:
    path = store.derived_path(source.task, "train", source.key("train", settings))
    # only the two small arrays are read
    return store.load_derived(path, lambda: _build_split(source, "train", settings, path), ("mean", "std"))


def load(task: str, split: str, root=None, dtype=np.float64, settings: MfccSettings = MfccSettings()) -> Split:
    """One split of ``timit`` (needs ``root`` or ``$LSTM_SCRATCH_TIMIT``) or ``timit_sample``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    if task == "timit":
        root = root or os.environ.get(ENV_ROOT)
        if not root:
            raise FileNotFoundError(f"TIMIT (LDC93S1) is licensed and never downloaded: give its location — "
                                    f"root= in Python, --root on the command line, or set ${ENV_ROOT} — "
                                    f"to your copy (the folder holding TRAIN/ and TEST/)")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"TIMIT root {root} is not a directory")
    source = _Source(task, root)
    raw = _raw_split(source, split, settings)
    stats = _train_statistics(source, settings)
    features = store.unpack(raw["features"], raw["offsets"])
    labels = store.unpack(raw["labels"], raw["offsets"])
    what = ("NLTK TIMIT sample (CC BY-NC-SA, LDC), speaker split for smoke runs" if task == "timit_sample"
            else f"TIMIT LDC93S1 at {root}")
    return Split(task=task, name=split, inputs=standardise(features, stats, dtype), targets=labels,
                 ids=[str(u) for u in raw["ids"]], n_in=settings.n_features, n_out=len(PHONES_61),
                 loss="softmax", labels=PHONES_61, synthetic=False, source=what,
                 normalisation=stats, notes={"dropped_untranscribed_frames": int(raw["dropped_frames"])},
                 fingerprint=store.fingerprint(source.key(split, settings), source.key("train", settings)))
