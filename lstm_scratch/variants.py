"""The table of recurrent architectures: which gates, activations, peepholes and extras each has,
and where each parameter lives in a layer's flat parameter vector.

Vanilla LSTM ``V`` (Greff et al. 2017, eq. 1–6), x^t ∈ R^M, N blocks, y^{-1} = c^{-1} = 0::

    z̄ᵗ = W_z xᵗ + R_z yᵗ⁻¹ + b_z                    zᵗ = g(z̄ᵗ)      block input
    īᵗ = W_i xᵗ + R_i yᵗ⁻¹ + p_i ⊙ cᵗ⁻¹ + b_i        iᵗ = σ(īᵗ)      input gate  (peeks at the old cell)
    f̄ᵗ = W_f xᵗ + R_f yᵗ⁻¹ + p_f ⊙ cᵗ⁻¹ + b_f        fᵗ = σ(f̄ᵗ)      forget gate (peeks at the old cell)
    cᵗ = zᵗ ⊙ iᵗ + cᵗ⁻¹ ⊙ fᵗ                                           cell
    ōᵗ = W_o xᵗ + R_o yᵗ⁻¹ + p_o ⊙ cᵗ + b_o          oᵗ = σ(ōᵗ)      output gate (peeks at the new cell)
    yᵗ = h(cᵗ) ⊙ oᵗ                                                    block output

with g = h = tanh. The eight variants each change one thing:

    NIG   iᵗ ≡ 1                       drops W_i, R_i, p_i, b_i
    NFG   fᵗ ≡ 1                       drops W_f, R_f, p_f, b_f
    NOG   oᵗ ≡ 1                       drops W_o, R_o, p_o, b_o
    NIAF  g(x) = x
    NOAF  h(x) = x
    CIFG  fᵗ = 1 − iᵗ                  drops W_f, R_f, p_f, b_f
    NP    no peepholes                 drops p_i, p_f, p_o
    FGR   every gate also sees all three gates of the previous step:
            īᵗ += R_ii iᵗ⁻¹ + R_fi fᵗ⁻¹ + R_oi oᵗ⁻¹   (R_ab carries gate a at t−1 into gate b at t)
            f̄ᵗ += R_if iᵗ⁻¹ + R_ff fᵗ⁻¹ + R_of oᵗ⁻¹
            ōᵗ += R_io iᵗ⁻¹ + R_fo fᵗ⁻¹ + R_oo oᵗ⁻¹  adds nine N×N matrices

Gated units of Józefowicz, Zaremba & Sutskever (2015), h = hᵗ⁻¹::

    GRU   r = σ(W_r x + U_r h + b_r)      u = σ(W_u x + U_u h + b_u)
          h̃ = tanh(W_h x + U_h (r ⊙ h) + b_h)            hᵗ = u ⊙ h + (1 − u) ⊙ h̃
    MUT1  z = σ(W_z x + b_z)              r = σ(W_r x + U_r h + b_r)
          hᵗ = tanh(U_h (r ⊙ h) + tanh(W_h x) + b_h) ⊙ z + h ⊙ (1 − z)
    MUT2  z = σ(W_z x + U_z h + b_z)      r = σ(W_r x + U_r h + b_r)
          hᵗ = tanh(U_h (r ⊙ h) + W_h x + b_h) ⊙ z + h ⊙ (1 − z)
    MUT3  z = σ(W_z x + U_z tanh(h) + b_z)   r = σ(W_r x + U_r h + b_r)
          hᵗ = tanh(U_h (r ⊙ h) + W_h x + b_h) ⊙ z + h ⊙ (1 − z)

JZS write the bare input ``x`` into MUT1's candidate (``tanh(x)``) and MUT2's reset gate (``x``), which
needs dim(x) = N. Our choice (SPEC §4): a learned projection takes its place — ``tanh(W_h x)`` in MUT1,
``W_r x`` in MUT2 — so every cell accepts any input size.

JZS's benchmark set (:data:`JZS_ARCHITECTURES`): their cells are rows of this same table, new flag
combinations on the same two kernels, not new kernels::

    TANH    hᵗ = tanh(W_h x + U_h h + b_h)      the gated family without mixing gate (k ≡ 0) and without
                                                reset gate (r ≡ 1): hᵗ = h̃; JZS's "Tanh" (their W, U, b)
    LSTM    JZS's LSTM = a no-peephole LSTM = NP. JZS print the output gate as o = tanh(·), almost
            certainly a typo for σ (all their other gates are σ; a "gate" in (−1, 1) would flip the
            output's sign): we use σ.
    LSTM-F  LSTM without forget gate (fᵗ ≡ 1)   = NP + NFG
    LSTM-I  LSTM without input gate (iᵗ ≡ 1)    = NP + NIG
    LSTM-O  LSTM without output gate (oᵗ ≡ 1)   = NP + NOG
    LSTM-B  LSTM with the forget-gate bias initialised to +1 (an initialisation default of the row:
            ``forget_bias`` left unset gives +1); same parameters and kernel flags as LSTM

JZS write the ablations in lower case (LSTM-f, …); names are case-insensitive, so both spellings work.

Flat layout. A layer's parameters are one contiguous vector; each name is a row-contiguous view into
it. The input weights of all gates come first and are adjacent, so they also form one stacked matrix
(``blocks["W"]``) that projects the whole sequence in one GEMM; the recurrent weights likewise
(``blocks["R"]``, ``blocks["U"]``). Order: LSTM family ``W_* R_* p_* b_* R_ab``; gated family
``W_* U_* b_*``; gates within each group in the order of :attr:`Architecture.gates`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import check_positive_integer


@dataclass(frozen=True)
class Architecture:
    """One row of the table. Flags say what differs from vanilla LSTM (LSTM family) or which JZS
    cell this is (gated family)."""

    name: str
    description: str
    family: str = "lstm"               # "lstm" (Greff et al.) or "gated" (GRU and the JZS mutants)
    # --- LSTM family -----------------------------------------------------------------------
    input_gate: bool = True            # False: iᵗ ≡ 1 (NIG)
    forget_gate: bool = True           # False: fᵗ ≡ 1 (NFG)
    output_gate: bool = True           # False: oᵗ ≡ 1 (NOG)
    coupled: bool = False              # fᵗ = 1 − iᵗ (CIFG): a forget gate without parameters
    input_activation: bool = True      # g = tanh; False: g(x) = x (NIAF)
    output_activation: bool = True     # h = tanh; False: h(x) = x (NOAF)
    peepholes: bool = True             # p_i, p_f, p_o; False for NP
    full_gate_recurrence: bool = False  # the nine R_ab matrices (FGR)
    # --- gated family ----------------------------------------------------------------------
    # The gate that mixes old state and candidate: "u" keeps the old state (GRU: hᵗ = u⊙h + (1−u)⊙h̃),
    # "z" writes the candidate (MUT: hᵗ = z⊙h̃ + (1−z)⊙h), "" none: hᵗ = h̃ (TANH).
    mix_gate: str = ""
    # What the mix gate sees of hᵗ⁻¹: "none" (MUT1, and TANH, which has no mix gate), "h" (GRU, MUT2)
    # or "tanh" (MUT3).
    mix_recurrence: str = ""
    candidate_input_tanh: bool = False  # MUT1: tanh(W_h x) enters the candidate instead of W_h x
    reset_gate: bool = True            # False: r ≡ 1, h̃ = tanh(U_h h + W_h x + b_h) (TANH, with no mix gate)
    # --- initialisation --------------------------------------------------------------------
    # The initial forget-gate bias this row stands for (LSTM-B: +1); None: the caller's choice, default 0.
    forget_bias: float | None = None

    def initial_forget_bias(self, given: float | None = None) -> float:
        """The forget-gate bias to initialise with: ``given``, else this row's own (LSTM-B: +1; else 0).
        A row that *is* a bias (LSTM-B) refuses another one rather than silently becoming another cell."""
        if self.forget_bias is None:
            return 0.0 if given is None else float(given)
        if given is not None and float(given) != self.forget_bias:
            raise ValueError(f"forget_bias={given!r}: {self.name} is the {self.description}; leave "
                             "forget_bias unset, or choose LSTM to set another forget-gate bias")
        return float(self.forget_bias)

    @property
    def has_forget_params(self) -> bool:
        """A forget gate with parameters of its own (W_f, R_f, b_f): not NFG, not CIFG."""
        return self.forget_gate and not self.coupled

    @property
    def gates(self) -> tuple[str, ...]:
        """Gate letters in storage order: LSTM ``z i f o`` (those present); gated ``u|z r h`` (those
        present: TANH has ``h`` alone)."""
        if self.family == "gated":
            return tuple(g for g in (self.mix_gate, "r" if self.reset_gate else "", "h") if g)
        present = {"z": True, "i": self.input_gate, "f": self.has_forget_params,
                   "o": self.output_gate}
        return tuple(g for g in "zifo" if present[g])

    @property
    def recurrent_gates(self) -> tuple[str, ...]:
        """Gates with a recurrent matrix (R_* for LSTM, U_* for the gated family)."""
        if self.family == "gated" and self.mix_recurrence == "none":
            return tuple(g for g in self.gates if g != self.mix_gate)
        return self.gates

    @property
    def peephole_gates(self) -> tuple[str, ...]:
        """Gates with a peephole p_* (LSTM family): i, f, o where the gate exists."""
        if self.family != "lstm" or not self.peepholes:
            return ()
        present = {"i": self.input_gate, "f": self.has_forget_params,
                   "o": self.output_gate}
        return tuple(g for g in "ifo" if present[g])


FGR_SOURCES_TARGETS = [(a, b) for b in "ifo" for a in "ifo"]
"""(source a, target b) of each R_ab in storage order: R_ii, R_fi, R_oi, R_if, R_ff, R_of, R_io, R_fo,
R_oo — all matrices feeding target gate i, then f, then o. As a (3, 3, N, N) block ``Q[b, a] = R_ab``."""

_TABLE = [
    Architecture("V", "vanilla LSTM with peepholes"),
    Architecture("NIG", "no input gate", input_gate=False),
    Architecture("NFG", "no forget gate", forget_gate=False),
    Architecture("NOG", "no output gate", output_gate=False),
    Architecture("NIAF", "no input activation function (g = identity)", input_activation=False),
    Architecture("NOAF", "no output activation function (h = identity)", output_activation=False),
    Architecture("CIFG", "coupled input and forget gate (f = 1 - i)", coupled=True),
    Architecture("NP", "no peepholes", peepholes=False),
    Architecture("FGR", "full gate recurrence", full_gate_recurrence=True),
    Architecture("GRU", "gated recurrent unit", family="gated", mix_gate="u", mix_recurrence="h"),
    Architecture("MUT1", "JZS mutant 1", family="gated", mix_gate="z", mix_recurrence="none",
                 candidate_input_tanh=True),
    Architecture("MUT2", "JZS mutant 2", family="gated", mix_gate="z", mix_recurrence="h"),
    Architecture("MUT3", "JZS mutant 3", family="gated", mix_gate="z", mix_recurrence="tanh"),
]

# JZS's own cells and ablations, as flag combinations on the same kernels (module docstring).
_JZS_TABLE = [
    Architecture("TANH", "plain tanh RNN (JZS Tanh)", family="gated", mix_recurrence="none",
                 reset_gate=False),
    Architecture("LSTM", "JZS LSTM (no peepholes, as NP)", peepholes=False),
    Architecture("LSTM-F", "JZS LSTM without forget gate", peepholes=False, forget_gate=False),
    Architecture("LSTM-I", "JZS LSTM without input gate", peepholes=False, input_gate=False),
    Architecture("LSTM-O", "JZS LSTM without output gate", peepholes=False, output_gate=False),
    Architecture("LSTM-B", "JZS LSTM with forget-gate bias +1", peepholes=False, forget_bias=1.0),
]

ARCHITECTURES: tuple[str, ...] = tuple(a.name for a in _TABLE)
"""The paper's nine architectures followed by GRU and the JZS mutants (the Odyssey study's table)."""

LSTM_VARIANTS: tuple[str, ...] = tuple(a.name for a in _TABLE if a.family == "lstm")
"""Vanilla LSTM and the eight Odyssey variants."""

JZS_ARCHITECTURES: tuple[str, ...] = ("TANH", "LSTM", "LSTM-F", "LSTM-I", "LSTM-O", "LSTM-B",
                                      "GRU", "MUT1", "MUT2", "MUT3")
"""JZS's benchmark set (their Table 1): Tanh, LSTM and its ablations -f -i -o -b, GRU, MUT1–3."""

_BY_NAME = {a.name: a for a in _TABLE + _JZS_TABLE}
ALL_ARCHITECTURES: tuple[str, ...] = tuple(_BY_NAME)
"""Every name :func:`get` knows: :data:`ARCHITECTURES`, then the JZS-only rows (TANH, LSTM, LSTM-F/-I/-O/-B)."""


def get(arch: str | Architecture) -> Architecture:
    """The :class:`Architecture` called ``arch`` (names are case-insensitive)."""
    if isinstance(arch, Architecture):
        return arch
    found = _BY_NAME.get(str(arch).upper())
    if found is None:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ALL_ARCHITECTURES)}")
    return found


class Layout:
    """Where every parameter of one layer sits in its flat vector.

    ``shapes`` maps each name to its shape in storage order; ``views(flat)`` gives the named views,
    ``blocks(flat)`` the stacked views the kernels use:

    LSTM family: ``W`` (G·N, M), ``R`` (G·N, N), ``p`` (P, N), ``b`` (G·N,), ``Q`` (3, 3, N, N) for FGR,
    with G gates (:attr:`Architecture.gates`) and P peepholes (:attr:`Architecture.peephole_gates`).
    Gated family: ``W`` (G·N, M), ``U`` (K·N, N), ``b`` (G·N,) with G = 3 gates and K = 3 recurrent
    matrices (MUT1: K = 2, no U_z; TANH: G = K = 1, W_h, U_h, b_h alone).
    """

    def __init__(self, arch: str | Architecture, n_in: int, n_hidden: int):
        check_positive_integer("n_in", n_in)
        check_positive_integer("n_hidden", n_hidden)
        self.arch = get(arch)
        self.n_in, self.n_hidden = int(n_in), int(n_hidden)
        M, N, a = self.n_in, self.n_hidden, self.arch
        shapes: dict[str, tuple[int, ...]] = {}
        recurrent = "R" if a.family == "lstm" else "U"
        for g in a.gates:
            shapes[f"W_{g}"] = (N, M)
        for g in a.recurrent_gates:
            shapes[f"{recurrent}_{g}"] = (N, N)
        for g in a.peephole_gates:
            shapes[f"p_{g}"] = (N,)
        for g in a.gates:
            shapes[f"b_{g}"] = (N,)
        if a.full_gate_recurrence:
            for src, tgt in FGR_SOURCES_TARGETS:
                shapes[f"R_{src}{tgt}"] = (N, N)
        self.shapes = shapes
        self.offsets: dict[str, int] = {}
        offset = 0
        for name, shape in shapes.items():
            self.offsets[name] = offset
            offset += int(np.prod(shape))
        self.size = offset

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Named views into ``flat`` (writing to a view writes to ``flat``)."""
        self._check(flat)
        return {name: flat[self.offsets[name]:self.offsets[name] + int(np.prod(shape))].reshape(shape)
                for name, shape in self.shapes.items()}

    def blocks(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Stacked views: all gates' matrices of one kind as one matrix (see the class docstring)."""
        self._check(flat)
        a, N, M = self.arch, self.n_hidden, self.n_in

        G = len(a.gates)
        out = {"W": self._stack("W_", a.gates, flat, (G * N, M))}
        if a.family == "lstm":
            out["R"] = self._stack("R_", a.recurrent_gates, flat, (G * N, N))
            out["p"] = self._stack("p_", a.peephole_gates, flat, (len(a.peephole_gates), N))
            out["b"] = self._stack("b_", a.gates, flat, (G * N,))
            out["Q"] = (self._stack("R_ii", None, flat, (3, 3, N, N)) if a.full_gate_recurrence
                        else flat[:0].reshape(0, 0, 0, 0))
        else:
            K = len(a.recurrent_gates)
            out["U"] = self._stack("U_", a.recurrent_gates, flat, (K * N, N))
            out["b"] = self._stack("b_", a.gates, flat, (G * N,))
        return out

    def _stack(self, prefix, gates, flat, shape):
        """The contiguous run of ``prefix + gate`` parameters (or from one name on) as one array."""
        count = int(np.prod(shape))
        if count == 0:
            return flat[:0].reshape(shape)
        first = prefix if gates is None else prefix + gates[0]
        start = self.offsets[first]
        return flat[start:start + count].reshape(shape)

    def _check(self, flat: np.ndarray) -> None:
        if flat.ndim != 1 or flat.size != self.size:
            raise ValueError(f"{self.arch.name} layer with n_in={self.n_in}, n_hidden={self.n_hidden} "
                             f"needs a flat vector of {self.size} values, got shape {flat.shape}")


def n_params(arch: str | Architecture, n_in: int, n_hidden: int) -> int:
    """Number of parameters of one layer (one direction)."""
    return Layout(arch, n_in, n_hidden).size
