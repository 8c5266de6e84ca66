"""MFCC features for TIMIT, as SPEC §5 asks: 25 ms Hamming windows every 10 ms, pre-emphasis 0.97,
12 MFCCs + log energy, plus first and second temporal derivatives = 39 inputs per frame.

For a signal s[n] at 16 kHz (raw 16-bit sample values):

    pre-emphasis     s'[n] = s[n] − 0.97 s[n−1]          (s'[0] = s[0])
    framing          frame t = s'[160 t : 160 t + 400] · w,   w[n] = 0.54 − 0.46 cos(2πn / 399)
                     only complete frames: T = 1 + ⌊(len(s) − 400) / 160⌋, centre of frame t at 160 t + 200
    power spectrum   P_t[k] = |FFT_512(frame t)[k]|² / 512,   k = 0 … 256
    log energy       E_t = log Σ_k P_t[k]
    mel filterbank   26 triangular filters, equally spaced on mel(f) = 2595 log10(1 + f / 700) from 0 to
                     8000 Hz, edges at FFT bin ⌊513 · f / 16000⌋
    cepstrum         c_t[n] = λ_n Σ_m α_n cos(π n (m + ½) / 26) log(F_t[m]),   n = 1 … 12
                     (orthonormal DCT-II: α_0 = √(1/26), α_n = √(2/26); lifter λ_n = 1 + 11 sin(π n / 22))
    static           v_t = (E_t, c_t[1], …, c_t[12])                                    13 values
    derivatives      Δv_t = Σ_{n=1..2} n (v_{t+n} − v_{t−n}) / (2 Σ_{n=1..2} n²)         (edges repeated)
    output           (v_t, Δv_t, ΔΔv_t)                                                  39 values

Choices where SPEC §5 is silent (the HTK / python_speech_features conventions, so an independent
implementation can check us): FFT size 512, 26 filters, lifter 22, energy from the power spectrum of
the windowed frame, regression window 2. Unlike python_speech_features we never zero-pad a partial last
frame: every frame is real audio, and its centre can be labelled from the ``.phn`` file.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class MfccSettings:
    sample_rate: int = 16000      # Hz; TIMIT is 16 kHz
    window: int = 400             # samples per frame (25 ms)
    hop: int = 160                # samples between frame starts (10 ms)
    preemphasis: float = 0.97     # s'[n] = s[n] − a s[n−1]
    n_fft: int = 512              # FFT length (frames are zero-padded to it)
    n_filters: int = 26           # triangular mel filters from 0 Hz to sample_rate / 2
    n_cepstra: int = 12           # c_1 … c_n kept; c_0 is replaced by log energy
    lifter: int = 22              # cepstral liftering constant L (0 = none)
    delta_window: int = 2         # N of the regression formula for Δ and ΔΔ

    def as_key(self) -> dict:
        return asdict(self)

    @property
    def n_features(self) -> int:
        return 3 * (self.n_cepstra + 1)


def n_frames(n_samples: int, settings: MfccSettings = MfccSettings()) -> int:
    """Number of complete frames in a signal of ``n_samples`` samples."""
    return 0 if n_samples < settings.window else 1 + (n_samples - settings.window) // settings.hop


def mel_filterbank(settings: MfccSettings = MfccSettings()) -> np.ndarray:
    """(n_filters, n_fft/2 + 1) triangular filters on the mel scale, edges snapped to FFT bins."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges_mel = np.linspace(mel(0.0), mel(settings.sample_rate / 2), settings.n_filters + 2)
    bins = np.floor((settings.n_fft + 1) * hz(edges_mel) / settings.sample_rate)
    bank = np.zeros((settings.n_filters, settings.n_fft // 2 + 1))
    k = np.arange(settings.n_fft // 2 + 1)
    for j in range(settings.n_filters):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        rising = (k >= lo) & (k < mid)
        falling = (k >= mid) & (k < hi)
        bank[j, rising] = (k[rising] - lo) / (mid - lo)
        bank[j, falling] = (hi - k[falling]) / (hi - mid)
    return bank


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II rows 0 … n_out − 1: D[n, m] = α_n cos(π n (m + ½) / n_in)."""
    n = np.arange(n_out)[:, None]
    m = np.arange(n_in)[None, :]
    d = np.sqrt(2.0 / n_in) * np.cos(np.pi * n * (m + 0.5) / n_in)
    d[0] /= np.sqrt(2.0)
    return d


def deltas(v: np.ndarray, window: int) -> np.ndarray:
    """Regression derivative Δv_t = Σ_n n (v_{t+n} − v_{t−n}) / (2 Σ_n n²), edges repeated."""
    padded = np.pad(v, ((window, window), (0, 0)), mode="edge")
    t = len(v)
    numerator = sum(n * (padded[window + n:window + n + t] - padded[window - n:window - n + t])
                    for n in range(1, window + 1))
    return numerator / (2.0 * sum(n * n for n in range(1, window + 1)))


def mfcc(signal: np.ndarray, settings: MfccSettings = MfccSettings()) -> np.ndarray:
    """(T, 39) features of a mono signal; see the module docstring for every step."""
    s = np.asarray(signal, dtype=np.float64)
    t = n_frames(len(s), settings)
    if t == 0:
        raise ValueError(f"signal of {len(s)} samples is shorter than one {settings.window}-sample frame")
    emphasised = np.concatenate(([s[0]], s[1:] - settings.preemphasis * s[:-1]))
    starts = settings.hop * np.arange(t)
    frames = emphasised[starts[:, None] + np.arange(settings.window)] * np.hamming(settings.window)
    power = np.abs(np.fft.rfft(frames, settings.n_fft)) ** 2 / settings.n_fft
    tiny = np.finfo(np.float64).eps      # log(0) guard for digital silence
    energy = np.log(np.maximum(power.sum(axis=1), tiny))
    filter_energies = np.log(np.maximum(power @ mel_filterbank(settings).T, tiny))
    cepstra = filter_energies @ dct_matrix(settings.n_filters, settings.n_cepstra + 1).T
    if settings.lifter > 0:
        n = np.arange(settings.n_cepstra + 1)
        cepstra *= 1.0 + (settings.lifter / 2.0) * np.sin(np.pi * n / settings.lifter)
    static = np.column_stack([energy, cepstra[:, 1:]])
    delta = deltas(static, settings.delta_window)
    return np.hstack([static, delta, deltas(delta, settings.delta_window)])
