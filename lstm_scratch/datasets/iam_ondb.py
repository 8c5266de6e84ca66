"""IAM-OnDB (Liwicki & Bunke 2005) online handwriting, task IAM-OnDB-t1, one sequence per text line.

Registration-restricted, never downloaded: point ``root=`` or ``$LSTM_SCRATCH_IAM_ONDB`` at a folder with

    ascii/<a01>/<a01-000>/<a01-000u>.txt          transcriptions: the lines after "CSR:" (CRLF accepted)
    lineStrokes/<a01>/<a01-000>/<a01-000u>-01.xml  pen trajectory of written line 1 (ISO-8859-1 XML)
    trainset.txt  testset_v.txt  testset_t.txt  testset_f.txt   split lists, one form id per line
                                                (at the root or in one folder directly below it)

Form id → folder: ``^(((\\w+)-\\d+)\\w?)$`` → ``\\3/\\2/\\1``. CSR line i belongs to stroke file ``-ii``.
Splits (Greff et al.): train = trainset without form a08-551z (a run of '%' with no strokes);
valid = testset_v + testset_t; test = testset_f. Lines with a transcription but no stroke file, and
stroke files with no transcription line, are skipped and counted in ``Split.notes``.
Features and targets: :mod:`.strokes` (Δx, Δy, τ, pen-up; every second point; standardised; CTC).
"""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from . import store, strokes

ENV_ROOT = "LSTM_SCRATCH_IAM_ONDB"
FEATURE_VERSION = 1
SPLIT_FILES = {"train": ("trainset.txt",), "valid": ("testset_v.txt", "testset_t.txt"), "test": ("testset_f.txt",)}
EXCLUDED_TRAIN_FORMS = frozenset({"a08-551z"})
_FORM_ID = re.compile(r"^(((\w+)-\d+)\w?)$")


def form_folder(form_id: str) -> Path:
    """``a01-000u`` → ``a01/a01-000/a01-000u``."""
    match = _FORM_ID.match(form_id)
    if match is None:
        raise ValueError(f"{form_id!r} is not an IAM-OnDB form id (like a01-000u)")
    return Path(match.group(3), match.group(2), match.group(1))


def read_transcription(path: Path) -> list[str]:
    """The CSR lines of an ``ascii/`` file: everything after the first ``CSR:`` line, stripped, no blanks."""
    text = path.read_bytes().decode("latin-1")
    lines = re.split(r"\r?\n", text)
    for number, line in enumerate(lines):
        if line.strip() == "CSR:":
            return [s.strip() for s in lines[number + 1:] if s.strip()]
    raise ValueError(f"{path}: no 'CSR:' section")


def read_line_strokes(path: Path) -> list[np.ndarray]:
    """Strokes of one ``lineStrokes/`` file as (n, 3) arrays of (x, y, time)."""
    try:
        tree = ElementTree.parse(path)   # honours the XML declaration's ISO-8859-1 encoding
    except ElementTree.ParseError as err:
        raise ValueError(f"{path}: malformed XML ({err})") from None
    stroke_set = tree.getroot().find("StrokeSet")
    if stroke_set is None:
        raise ValueError(f"{path}: no <StrokeSet> element")
    result = []
    for number, stroke in enumerate(stroke_set.iter("Stroke"), 1):
        try:
            points = [(float(p.get("x")), float(p.get("y")), float(p.get("time"))) for p in stroke.iter("Point")]
        except (TypeError, ValueError):
            raise ValueError(f"{path}: stroke {number} has a <Point> without numeric x, y and time") from None
        if points:
            result.append(np.array(points))
    if not result:
        raise ValueError(f"{path}: no pen points (empty sequence)")
    return result


def find_split_file(root: Path, name: str) -> Path:
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"IAM-OnDB split file {name} not found in {root} or a folder directly below it; "
                            f"it comes with the IAM-OnDB-t1 task definition (trainset.txt, testset_v.txt, "
                            f"testset_t.txt, testset_f.txt)")


def read_split_list(path: Path) -> list[str]:
    with open(path, encoding="latin-1") as fh:
        return [line.strip() for line in fh if line.strip()]


def _split_forms(root: Path, split: str) -> tuple[list[Path], list[str]]:
    """(split list files, form ids) of one split."""
    lists = [find_split_file(root, name) for name in SPLIT_FILES[split]]
    forms = [f for path in lists for f in read_split_list(path)]
    if split == "train":
        forms = [f for f in forms if f not in EXCLUDED_TRAIN_FORMS]
    return lists, forms


def _form_files(root: Path, form: str) -> tuple[Path | None, dict[str, Path]]:
    """(transcription file or None, {name: stroke file}) of one form."""
    folder = form_folder(form)
    ascii_path = root / "ascii" / folder.with_suffix(".txt")
    if not ascii_path.is_file():
        return None, {}
    stroke_dir = root / "lineStrokes" / folder.parent
    return ascii_path, {p.name: p for p in stroke_dir.glob(f"{form}-*.xml")} if stroke_dir.is_dir() else {}


def split_files(root: Path, split: str) -> list[Path]:
    """Every file a split's features depend on (the cache key), found without reading any of them: the
    split lists, and each listed form's transcription and stroke files."""
    lists, forms = _split_forms(root, split)
    files = list(lists)
    for form in forms:
        ascii_path, stroke_files = _form_files(root, form)
        if ascii_path is not None:
            files += [ascii_path, *stroke_files.values()]
    return files


def split_lines(root: Path, split: str):
    """(lines, notes): lines = [(line id, transcription, stroke file)] and the skipped counts."""
    _, forms = _split_forms(root, split)
    lines = []
    notes = {"forms_without_transcription": 0, "lines_without_strokes": 0, "strokes_without_transcription": 0}
    for form in forms:
        ascii_path, stroke_files = _form_files(root, form)
        if ascii_path is None:
            notes["forms_without_transcription"] += 1
            continue
        for number, text in enumerate(read_transcription(ascii_path), 1):
            stroke_file = stroke_files.pop(f"{form}-{number:02d}.xml", None)
            if stroke_file is None:
                notes["lines_without_strokes"] += 1
                continue
            lines.append((f"{form}-{number:02d}", text, stroke_file))
        notes["strokes_without_transcription"] += len(stroke_files)
    if not lines:
        raise ValueError(f"IAM-OnDB {split}: no text line with both strokes and transcription under {root}")
    return lines, notes


def _key(root: Path, split: str, subsample: int) -> dict:
    # The key needs only the file list and the (per-process remembered) file hashes: a cached load
    # neither parses transcriptions nor re-reads the corpus.
    return {"task": "iam_ondb", "split": split, "files": store.content_fingerprint(split_files(root, split)),
            "subsample": subsample, "version": FEATURE_VERSION}


def _raw_split(root: Path, split: str, subsample: int) -> dict:
    path = store.derived_path("iam_ondb", split, _key(root, split, subsample))
    return store.load_derived(path, lambda: _build_split(root, split, subsample, path))


def _build_split(root: Path, split: str, subsample: int, path: Path) -> dict:
    lines, notes = split_lines(root, split)
    features = [strokes.point_features(strokes.subsample(read_line_strokes(f), subsample), str(f))
                for _, _, f in lines]
    texts = [text for _, text, _ in lines]
    arrays = strokes.pack_lines(features, texts, [line_id for line_id, _, _ in lines])
    arrays.update({f"n_{k}": np.array(v) for k, v in notes.items()})
    if split == "train":
        strokes.add_training_statistics(arrays, features, texts, "IAM-OnDB train")
    store.save_npz_atomic(path, arrays)
    return arrays


def load(split: str, root=None, dtype=np.float64, subsample: int = 2):
    """One split of IAM-OnDB as a CTC :class:`~.split.Split`."""
    root = root or os.environ.get(ENV_ROOT)
    if not root:
        raise FileNotFoundError(f"IAM-OnDB is registration-restricted and never downloaded: give its location — "
                                f"root= in Python, --root on the command line, or set ${ENV_ROOT} — to your copy "
                                f"(with ascii/, lineStrokes/ and the split lists); "
                                f"without it use the task 'handwriting_synthetic'")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"IAM-OnDB root {root} is not a directory")
    raw = _raw_split(root, split, subsample)
    train = raw if split == "train" else _raw_split(root, "train", subsample)
    notes = {k[2:]: int(raw[k]) for k in raw if k.startswith("n_")}
    fingerprint = store.fingerprint(_key(root, split, subsample), _key(root, "train", subsample))
    return strokes.ctc_split("iam_ondb", split, raw, train, dtype, f"IAM-OnDB at {root}", False, notes,
                             fingerprint)
