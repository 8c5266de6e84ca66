"""Reading TIMIT: audio (NIST SPHERE or RIFF), ``.phn`` phone segments, the corpus layouts, the splits,
and the 61 → 39 phone folding. Feature extraction and loading live in :mod:`.timit`.

Layouts understood:

* the LDC corpus: ``<root>/[TIMIT/]{TRAIN,TEST}/DR<d>/<speaker>/<utt>.{WAV,PHN}`` in upper or lower case,
  audio NIST SPHERE (whatever the extension says) or RIFF (some mirrors: ``<utt>.WAV.wav``);
* the NLTK sample: ``<root>/[timit/]dr<d>-<speaker>/<utt>.{wav,phn}`` (all TRAIN speakers).

Audio format is recognised by content (``NIST_1A`` or ``RIFF``), never by file name.
"""
from __future__ import annotations

import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PHONES_61 = tuple("aa ae ah ao aw ax ax-h axr ay b bcl ch d dcl dh dx eh el em en eng epi er ey f g gcl "
                  "h# hh hv ih ix iy jh k kcl l m n ng nx ow oy p pau pcl q r s sh t tcl th uh uw ux v w y z "
                  "zh".split())
PHONES_39 = tuple("aa ae ah aw ay b ch d dh dx eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh sil t th "
                  "uh uw v w y z".split())
# Lee & Hon (1989), = Kaldi phones.60-48-39.map. 'q' (glottal stop) has no 39-class counterpart: Kaldi
# deletes it; for framewise scoring we give its frames -1 and leave them out of the 39-class error.
_FOLDS = {"ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l", "em": "m",
          "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw", "bcl": "sil", "dcl": "sil", "gcl": "sil",
          "pcl": "sil", "tcl": "sil", "kcl": "sil", "h#": "sil", "pau": "sil", "epi": "sil"}
FOLD_61_TO_39 = np.array([-1 if p == "q" else PHONES_39.index(_FOLDS.get(p, p)) for p in PHONES_61], dtype=np.int64)
_PHONE_INDEX = {p: i for i, p in enumerate(PHONES_61)}

# PROVENANCE.md §2.4: the 24-speaker core test set and Halberstadt's 50-speaker development set.
CORE_TEST_SPEAKERS = frozenset("mdab0 mwbt0 felc0 mtas1 mwew0 fpas0 mjmp0 mlnt0 fpkt0 mlll0 mtls0 fjlm0 mbpm0 "
                               "mklt0 fnlp0 mcmj0 mjdh0 fmgd0 mgrt0 mnjm0 fdhc0 mjln0 mpam0 fmld0".split())
DEV_SPEAKERS = frozenset("faks0 fdac1 fjem0 mgwt0 mjar0 mmdb1 mmdm2 mpdf0 fcmh0 fkms0 mbdg0 mbwm0 mcsh0 fadg0 "
                         "fdms0 fedw0 mgjf0 mglb0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0 fnmr0 frew0 fsem0 mbns0 mmjr0 "
                         "mdls0 mdlf0 mdvc0 mers0 fmah0 fdrw0 mrcs0 mrjm4 fcal1 mmwh0 fjsj0 majc0 mjsw0 mreb0 "
                         "fgjd0 fjmg0 mroa0 mteb0 mjfc0 mrjr0 fmml0 mrws1".split())
EXPECTED_SIZES = {"train": 3696, "valid": 400, "test": 192}

# The NLTK sample's 16 speakers (2 per dialect region, all TIMIT-train) split BY SPEAKER for smoke runs:
# one woman and one man from different regions in each of valid and test, the other twelve train.
SAMPLE_VALID_SPEAKERS = frozenset({"dr4-falr0", "dr7-madd0"})
SAMPLE_TEST_SPEAKERS = frozenset({"dr6-fapb0", "dr2-marc0"})


def fold_39(labels: np.ndarray) -> np.ndarray:
    """Map 61-class frame labels to the 39 folded classes ('q' frames → −1)."""
    return FOLD_61_TO_39[np.asarray(labels, dtype=np.int64)]


def frame_error_39(predicted: np.ndarray, target: np.ndarray) -> float:
    """Framewise error after folding both sides to 39 classes; frames whose target is 'q' are ignored."""
    p, t = fold_39(predicted), fold_39(target)
    kept = t >= 0
    if not kept.any():
        raise ValueError("no scorable frames (every target frame is 'q')")
    return float(np.mean(p[kept] != t[kept]))


# ---------------------------------------------------------------------------------------------------
# Audio

def read_sphere(path: Path) -> tuple[np.ndarray, int]:
    """NIST SPHERE: line 1 ``NIST_1A``, line 2 the header size in bytes, ``name -type value`` fields
    up to ``end_head``, then raw PCM samples (``sample_byte_format`` 01 = little, 10 = big endian)."""
    data = Path(path).read_bytes()
    lines = data[:64].split(b"\n")
    try:
        header_size = int(lines[1])
    except (IndexError, ValueError):
        raise ValueError(f"{path}: NIST SPHERE header has no size on line 2") from None
    fields = {}
    for line in data[:header_size].decode("ascii", "replace").splitlines()[2:]:
        if line.strip() == "end_head":
            break
        parts = line.split(None, 2)
        if len(parts) == 3:
            fields[parts[0]] = int(parts[2]) if parts[1] == "-i" else parts[2].strip()
    coding = fields.get("sample_coding", "pcm")
    if fields.get("channel_count", 1) != 1 or fields.get("sample_n_bytes", 2) != 2 or coding != "pcm":
        raise ValueError(f"{path}: only mono 16-bit uncompressed PCM SPHERE is supported (channel_count="
                         f"{fields.get('channel_count')}, sample_n_bytes={fields.get('sample_n_bytes')}, "
                         f"sample_coding={coding})")
    order = {"01": "<", "10": ">"}.get(fields.get("sample_byte_format", "01"))
    if order is None:
        raise ValueError(f"{path}: unknown sample_byte_format {fields['sample_byte_format']!r}")
    count = fields.get("sample_count", (len(data) - header_size) // 2)
    if len(data) < header_size + 2 * count:
        raise ValueError(f"{path}: truncated — header promises {count} samples, file holds "
                         f"{(len(data) - header_size) // 2}")
    samples = np.frombuffer(data, dtype=order + "i2", count=count, offset=header_size).astype(np.int16)
    return samples, int(fields.get("sample_rate", 16000))


def read_riff(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit PCM, got {w.getnchannels()} channel(s) of "
                             f"{8 * w.getsampwidth()} bits")
        frames = w.readframes(w.getnframes())
        return np.frombuffer(frames, dtype="<i2").copy(), w.getframerate()


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """(int16 samples, sample rate) of a TIMIT audio file, SPHERE or RIFF whatever its name."""
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"NIST_1A"):
        return read_sphere(path)
    if magic.startswith(b"RIFF"):
        return read_riff(path)
    raise ValueError(f"{path}: neither NIST SPHERE nor RIFF audio (starts with {magic!r})")


def read_phn(path: Path) -> list[tuple[int, int, int]]:
    """``.phn`` segments as (start, end, phone index into PHONES_61), times in samples."""
    segments = []
    with open(path, encoding="ascii", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
                raise ValueError(f"{path} line {number}: expected 'start end phone', got {line.strip()!r}")
            if parts[2] not in _PHONE_INDEX:
                raise ValueError(f"{path} line {number}: phone {parts[2]!r} is not one of the 61 TIMIT phones")
            segments.append((int(parts[0]), int(parts[1]), _PHONE_INDEX[parts[2]]))
    if not segments:
        raise ValueError(f"{path}: no phone segments (empty file)")
    return segments


def frame_labels(segments, centres: np.ndarray, path) -> tuple[np.ndarray, np.ndarray]:
    """Label of each frame centre = the segment with start ≤ centre < end.

    Returns (kept, labels): frames whose centre lies before the first or after the last segment are
    not labelled by the transcription and are dropped (``kept`` is their mask); a centre inside a gap
    between segments is an error."""
    starts = np.array([s for s, _, _ in segments])
    ends = np.array([e for _, e, _ in segments])
    phones = np.array([p for _, _, p in segments], dtype=np.int64)
    kept = (centres >= starts[0]) & (centres < ends[-1])
    index = np.searchsorted(starts, centres[kept], side="right") - 1
    inside = centres[kept] < ends[index]
    if not inside.all():
        bad = int(centres[kept][~inside][0])
        raise ValueError(f"{path}: sample {bad} (a frame centre) falls in a gap between phone segments")
    return kept, phones[index]


# ---------------------------------------------------------------------------------------------------
# Corpus layout

@dataclass(frozen=True)
class Utterance:
    uid: str          # e.g. "train/dr1/fvmh0/si836" (LDC) or "dr1-fvmh0/si836" (NLTK sample)
    speaker: str      # lower case, e.g. "fvmh0" (LDC) or "dr1-fvmh0" (sample)
    sentence: str     # lower case, e.g. "si836"
    audio: Path
    phn: Path


def _by_lower_name(directory: Path) -> dict[str, Path]:
    return {p.name.lower(): p for p in directory.iterdir()}


def _utterances_in(speaker_dir: Path, uid_prefix: str, speaker: str) -> list[Utterance]:
    files = _by_lower_name(speaker_dir)
    found = []
    for name, phn in sorted(files.items()):
        if not name.endswith(".phn"):
            continue
        stem = name[:-4]
        audio = files.get(stem + ".wav") or files.get(stem + ".wav.wav")
        if audio is None:
            raise FileNotFoundError(f"{phn}: no audio file {stem}.wav beside it")
        found.append(Utterance(f"{uid_prefix}/{stem}", speaker, stem, audio, phn))
    return found


def find_ldc_root(root: Path) -> Path | None:
    """The directory holding TRAIN and TEST (any case): ``root`` or up to two levels below it."""
    level = [Path(root)] if Path(root).is_dir() else []
    for _ in range(3):
        below = []
        for directory in level:
            subdirs = sorted(p for p in directory.iterdir() if p.is_dir())
            if {"train", "test"} <= {p.name.lower() for p in subdirs}:
                return directory
            below += subdirs
        level = below
    return None


def ldc_splits(root: Path) -> dict[str, list[Utterance]]:
    """Standard splits of the full corpus, SA1/SA2 dropped: train = TRAIN (3696), valid = the
    50 development speakers of TEST (400), test = the 24 core-test speakers (192)."""
    base = find_ldc_root(Path(root))
    if base is None:
        raise FileNotFoundError(f"{root}: no TIMIT corpus here (looked for TRAIN/ and TEST/ folders, any case)")
    subsets = _by_lower_name(base)
    splits = {"train": [], "valid": [], "test": []}
    for subset in ("train", "test"):
        for region in sorted(p for p in subsets[subset].iterdir() if re.fullmatch(r"dr\d", p.name.lower())):
            for speaker_dir in sorted(p for p in region.iterdir() if p.is_dir()):
                speaker = speaker_dir.name.lower()
                if subset == "train":
                    split = "train"
                else:
                    split = "test" if speaker in CORE_TEST_SPEAKERS else "valid" if speaker in DEV_SPEAKERS else None
                if split is None:
                    continue
                prefix = f"{subset}/{region.name.lower()}/{speaker}"
                splits[split] += [u for u in _utterances_in(speaker_dir, prefix, speaker)
                                  if not u.sentence.startswith("sa")]
    return splits


def sample_splits(root: Path) -> dict[str, list[Utterance]]:
    """The NLTK sample split by speaker (SA1/SA2 dropped like the full corpus): 12 / 2 / 2 speakers,
    96 / 16 / 16 utterances."""
    root = Path(root)
    base = root / "timit" if (root / "timit").is_dir() else root
    speaker_dirs = sorted(p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"dr\d-[fm]\w+", p.name))
    if not speaker_dirs:
        raise FileNotFoundError(f"{root}: no NLTK TIMIT sample here (looked for dr<d>-<speaker> folders)")
    splits = {"train": [], "valid": [], "test": []}
    for speaker_dir in speaker_dirs:
        speaker = speaker_dir.name
        split = ("valid" if speaker in SAMPLE_VALID_SPEAKERS else
                 "test" if speaker in SAMPLE_TEST_SPEAKERS else "train")
        splits[split] += [u for u in _utterances_in(speaker_dir, speaker, speaker) if not u.sentence.startswith("sa")]
    return splits
