"""Data sets of the study, fetched, verified, cached and returned ready for the network.

    from lstm_scratch.datasets import load
    train = load("jsb", "train")          # Split: inputs (T, 88), targets (T, 88), loss "bernoulli"
    data = load_task("jsb")               # TaskData(train, valid, test), loaded once per process

Tasks (``TASKS``): jsb, nottingham, musedata, piano_midi (piano rolls, next step); timit (licensed) and
timit_sample (free NLTK sample) — 39 MFCC features, 61 phone labels per frame; iam_ondb (licensed) and
handwriting_synthetic (Hershey-font stand-in, clearly synthetic) — 4 pen features, CTC labels 1..K with
blank 0; memorisation, arithmetic, xml (JZS's generated tasks, :mod:`.jzs`) — one-hot symbols, the next
symbol as target, −1 where not scored. Files come from ``data/manifest.json`` via ``$LSTM_SCRATCH_MIRROR``
or the canonical URLs into ``$LSTM_SCRATCH_DATA`` (default ``~/.cache/lstm_scratch``); see :mod:`.store`.
"""
from .jzs import JzsSettings
from .mfcc import MfccSettings, mfcc
from .registry import (SPLITS, TASKS, Task, TaskData, availability, default_bidirectional, fetch, fingerprint_of,
                       load, load_task, resolve)
from .split import BLANK, Split
from .store import ChecksumError, DamagedCacheError
from .synthetic_handwriting import SyntheticSettings
from .timit_corpus import FOLD_61_TO_39, PHONES_39, PHONES_61, fold_39, frame_error_39

__all__ = ["BLANK", "ChecksumError", "DamagedCacheError", "FOLD_61_TO_39", "JzsSettings", "MfccSettings", "PHONES_39", "PHONES_61",
           "SPLITS", "Split", "SyntheticSettings", "TASKS", "Task", "TaskData", "availability", "default_bidirectional",
           "fetch", "fingerprint_of",
           "fold_39", "frame_error_39", "load", "load_task", "mfcc", "resolve"]
