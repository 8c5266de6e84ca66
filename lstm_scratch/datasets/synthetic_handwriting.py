"""SYNTHETIC online handwriting: the stand-in for IAM-OnDB when the database is absent (SPEC §5).

Text lines are rendered from Hershey stroke fonts (PyPI ``hershey-fonts``, MIT) by simulated "writers".
It is NOT real handwriting and results on it are not comparable with IAM-OnDB numbers: every Split
from this task has ``synthetic=True`` and a source line that says so.

Each writer w draws, once, from a seeded generator: a font (cursive or script-like), slant κ, size s,
aspect a, letter spacing, word-gap factor, pen speed v, point jitter σ and a smooth elastic field.
A line is then laid out glyph by glyph (glyphs that touch in the font stay one pen-down stroke — the
cursive fonts give joined-up script) and transformed point by point:

    shear + scale + baseline tilt    x' = s·a·(x − κ·y) cos ρ − s·y sin ρ,   y' = s·a·(x − κ·y) sin ρ + s·y cos ρ
    resample at constant pen speed   one point every 10 ms, i.e. every v · 0.01 units of arc length
    elastic distortion               (x, y) += A Σ_j (sin, cos)(2π (x cos θ_j + y sin θ_j) / λ_j + φ_j)
    jitter                           (x, y) += N(0, σ²)
    timing                           points 10 ms apart within a stroke; pen-up pauses between strokes

Features and CTC targets are those of IAM-OnDB (:mod:`.strokes`). Writers and texts are disjoint
across train / valid / test; everything is a pure function of the settings and the seed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib.metadata import version

import numpy as np

from . import store, strokes

GENERATOR_VERSION = 1   # bump when the generator's output changes for the same settings
FONTS = ("cursive", "scripts", "scriptc", "futural", "timesi", "rowmans")
SAMPLE_INTERVAL_S = 0.01
SOURCE = ("SYNTHETIC online handwriting rendered from Hershey stroke fonts (hershey-fonts) by simulated "
          "writers — a stand-in, NOT IAM-OnDB")

# Text material: common English words (our own list), assembled into lines of 2–5 words.
WORDS = tuple("""
the of and to in is was he for it with as his on be at by had are but from or have an they which one you
were her all she there would their we him been has when who will more no if out so said what up its about
into than them can only other new some could time these two may then do first any my now such like our over
man me even most made after also did many before must through back years where much your way well down
should because each just those people how too little state good very make world still own see men work long
get here between both life being under never day same another know while last might us great old year off
come since against go came right used take three states himself few house use during without again place
around however home small found thought went say part once general high upon school every does got united left
number course war until always away something fact though water less public put think almost hand enough far
took head yet government system better set told nothing night end why called didn't eyes find going look asked
later knew point next program city business give group toward young days let room president side social given
present several order national second possible rather per face among form important often things looked early
white john case become large big need four within felt along children saw best church ever least power development
light thing seemed family interest want members mind country area others done turned although open god service
certain kind problem began different door thus help sense means whole matter perhaps itself york times law human
line above name example action company hands local show whether five history gave today either act feet across
taken past quite anything seen having death week experience body word half field car already information tell
together shall money period held keep sure free real probably seems behind cannot miss political air question
making office brought whose special heard major problems ago became federal moment study available known result
street economic boy position reason change south board individual job areas society west close turn love community
true court force full seem am wife age future wanted department voice center woman control common policy necessary
following front sometimes six girl clear further land run students provide feel party able mother music
""".split())


@dataclass(frozen=True)
class SyntheticSettings:
    seed: int = 0                        # everything below is drawn from generators seeded by this
    writers: tuple = (40, 10, 10)        # writers in train / valid / test (disjoint)
    lines_per_writer: int = 10           # text lines each writer writes
    words_per_line: tuple = (2, 5)       # inclusive range of words in a line
    subsample: int = 2                   # keep every second point, as for IAM-OnDB

    def as_key(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Writer:
    wid: str              # "w007": unique across all three splits
    font: str
    slant: float          # κ: x shifts by −κ·y (y points down, so κ > 0 leans right)
    size: float           # s
    aspect: float         # a
    letter_gap: float     # extra font units after each glyph
    word_gap: float       # factor on the width of a space
    speed: float          # v: font units of arc length per second
    jitter: float         # σ in font units
    elastic: np.ndarray   # (3, 4): amplitude, wavelength, direction θ, phase φ per component


def make_writer(index: int, seed: int) -> Writer:
    rng = np.random.default_rng([seed, 1, index])
    elastic = np.column_stack([rng.uniform(0.3, 1.2, 3), rng.uniform(15, 60, 3),
                               rng.uniform(0, np.pi, 3), rng.uniform(0, 2 * np.pi, 3)])
    return Writer(wid=f"w{index:03d}", font=FONTS[rng.integers(len(FONTS))], slant=rng.uniform(-0.15, 0.45),
                  size=rng.uniform(0.8, 1.25), aspect=rng.uniform(0.85, 1.2), letter_gap=rng.uniform(-0.5, 2.0),
                  word_gap=rng.uniform(0.7, 1.6), speed=rng.uniform(150, 260), jitter=rng.uniform(0.05, 0.25),
                  elastic=elastic)


@lru_cache(maxsize=None)
def hershey_font(name: str):
    """A loaded Hershey font (decompressing one takes ~0.1 s, so each is loaded once per process)."""
    from HersheyFonts import HersheyFonts
    font = HersheyFonts()
    font.load_default_font(name)
    return font


def make_text(rng: np.random.Generator, words_per_line: tuple) -> str:
    n = int(rng.integers(words_per_line[0], words_per_line[1] + 1))
    words = [str(w) for w in rng.choice(WORDS, size=n)]
    if rng.random() < 0.3:
        words[0] = words[0].capitalize()
    if rng.random() < 0.15:
        words.insert(int(rng.integers(len(words) + 1)), str(int(rng.integers(1, 1000))))
    text = " ".join(words)
    if rng.random() < 0.3:
        text += str(rng.choice(list(".,?!;:")))
    return text


def layout(font, text: str, writer: Writer) -> list[np.ndarray]:
    """Glyph strokes placed along the line, in font units; glyphs that touch in the font stay joined."""
    glyphs = font.all_glyphs
    result, x, previous_end = [], 0.0, None
    for char in text:
        glyph = glyphs.get(char)
        if glyph is None:
            raise ValueError(f"character {char!r} is not in Hershey font {writer.font!r}")
        if char == " ":
            x += glyph.char_width * writer.word_gap
            previous_end = None
            continue
        for number, stroke in enumerate(glyph.strokes):
            points = np.array([(x + px - glyph.left_offset, py) for px, py in stroke], dtype=np.float64)
            # the font joins this glyph to the previous one if they touch without our extra letter gap
            joined = (number == 0 and previous_end is not None
                      and np.allclose(points[0] - (writer.letter_gap, 0.0), previous_end))
            if joined:
                points = np.vstack([result.pop(), points])
            result.append(points)
        previous_end = result[-1][-1] if glyph.strokes else None
        x += glyph.char_width + writer.letter_gap
    return result


def resample(stroke: np.ndarray, spacing: float) -> np.ndarray:
    """Points every ``spacing`` units of arc length along a polyline (a dot stays one point)."""
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(stroke, axis=0).T))])
    if arc[-1] < spacing:
        return stroke[:1] if arc[-1] == 0 else stroke[[0, -1]]
    positions = np.append(np.arange(0.0, arc[-1], spacing), arc[-1])
    return np.column_stack([np.interp(positions, arc, stroke[:, 0]), np.interp(positions, arc, stroke[:, 1])])


def render_line(font, text: str, writer: Writer, rng: np.random.Generator) -> list[np.ndarray]:
    """Strokes (n, 3) of (x, y, t) for one line written by ``writer``."""
    tilt = rng.normal(0.0, 0.03)
    size = writer.size * rng.uniform(0.95, 1.05)
    line_phase = rng.uniform(0, 2 * np.pi, 3)
    cos_t, sin_t = np.cos(tilt), np.sin(tilt)
    placed_strokes = layout(font, text, writer)
    speeds = writer.speed * rng.uniform(0.85, 1.15, len(placed_strokes))
    resampled = []
    for stroke, speed in zip(placed_strokes, speeds):
        sheared_x = size * writer.aspect * (stroke[:, 0] - writer.slant * stroke[:, 1])
        y = size * stroke[:, 1]
        placed = np.column_stack([sheared_x * cos_t - y * sin_t, sheared_x * sin_t + y * cos_t])
        resampled.append(resample(placed, speed * SAMPLE_INTERVAL_S))
    # elastic field and jitter act on the whole line at once
    points = np.concatenate(resampled)
    amplitude, wavelength, direction, phase = writer.elastic.T
    angle = (2 * np.pi * (points[:, :1] * np.cos(direction) + points[:, 1:] * np.sin(direction)) / wavelength
             + phase + line_phase)
    points = points + np.column_stack([(amplitude * np.sin(angle)).sum(1), (amplitude * np.cos(angle)).sum(1)])
    points += rng.normal(0.0, writer.jitter, points.shape)
    pauses = rng.uniform(0.03, 0.15, len(resampled))
    result, start, t = [], 0, 0.0
    for stroke, speed, pause in zip(resampled, speeds, pauses):
        xy = points[start:start + len(stroke)]
        start += len(stroke)
        if result:   # pen-up: travel to the next stroke at about writing speed, plus a short pause
            t += np.hypot(*(xy[0] - result[-1][-1, :2])) / speed + pause
        times = t + SAMPLE_INTERVAL_S * np.arange(len(xy))
        t = times[-1]
        result.append(np.column_stack([xy, times]))
    return result


def generate(settings: SyntheticSettings = SyntheticSettings()) -> dict[str, list[tuple[str, str, str, list]]]:
    """All three splits: split → [(line id, writer id, text, strokes)]. Texts never repeat across splits."""
    text_rng = np.random.default_rng([settings.seed, 2])
    used_texts: set[str] = set()
    splits, index = {}, 0
    for split, n_writers in zip(("train", "valid", "test"), settings.writers):
        lines = []
        for _ in range(n_writers):
            writer = make_writer(index, settings.seed)
            rng = np.random.default_rng([settings.seed, 3, index])
            for number in range(settings.lines_per_writer):
                text = make_text(text_rng, settings.words_per_line)
                while text in used_texts:
                    text = make_text(text_rng, settings.words_per_line)
                used_texts.add(text)
                line_id = f"{writer.wid}-{number:02d}"
                lines.append((line_id, writer.wid, text, render_line(hershey_font(writer.font), text, writer, rng)))
            index += 1
        splits[split] = lines
    return splits


def _key(settings: SyntheticSettings, split: str) -> dict:
    return {"task": "handwriting_synthetic", "split": split, "settings": settings.as_key(),
            "generator": GENERATOR_VERSION, "hershey_fonts": version("hershey-fonts")}


def _build_cache(settings: SyntheticSettings) -> None:
    """Generate all splits once and cache each (train with its statistics and alphabet)."""
    for split, lines in generate(settings).items():
        features = [strokes.point_features(strokes.subsample(s, settings.subsample), line_id)
                    for line_id, _, _, s in lines]
        texts = [text for _, _, text, _ in lines]
        arrays = strokes.pack_lines(features, texts, [line_id for line_id, _, _, _ in lines])
        if split == "train":
            strokes.add_training_statistics(arrays, features, texts, "synthetic handwriting train")
        store.save_npz_atomic(store.derived_path("handwriting_synthetic", split, _key(settings, split)), arrays)


def is_cached(settings: SyntheticSettings = SyntheticSettings()) -> bool:
    """True if all three splits for ``settings`` are in the derived cache and readable (``data list``)."""
    return all(store.derived_is_valid(store.derived_path("handwriting_synthetic", split, _key(settings, split)))
               for split in ("train", "valid", "test"))


def _cached(settings: SyntheticSettings, split: str) -> dict:
    path = store.derived_path("handwriting_synthetic", split, _key(settings, split))
    return store.load_derived(path, lambda: _build_cache(settings))


def load(split: str, dtype=np.float64, settings: SyntheticSettings = SyntheticSettings()):
    """One split of the synthetic handwriting task as a CTC :class:`~.split.Split` (``synthetic=True``)."""
    if len(settings.writers) != 3 or min(settings.writers) < 1 or settings.lines_per_writer < 1:
        raise ValueError(f"synthetic handwriting needs ≥ 1 writer per split and ≥ 1 line per writer, got "
                         f"writers={settings.writers}, lines_per_writer={settings.lines_per_writer}")
    raw, train = _cached(settings, split), _cached(settings, "train")
    writers = sorted({str(i).split("-")[0] for i in raw["ids"]})
    return strokes.ctc_split("handwriting_synthetic", split, raw, train, dtype, SOURCE, True,
                             {"writers": writers, "seed": settings.seed},
                             store.fingerprint(_key(settings, split), _key(settings, "train")))
