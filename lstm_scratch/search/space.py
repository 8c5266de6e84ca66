"""The paper's search space (SPEC §7) in one place, and how one trial's hyperparameters are drawn.

Source: Greff et al., *LSTM: A Search Space Odyssey*, §IV ("Experimental setup"): per trial,
independently,

    N  ~ log-uniform on [20, 200], rounded        hidden blocks per direction
    η  ~ log-uniform on [1e-6, 1e-2]               learning rate
    m  = 1 − u,  u ~ log-uniform on [0.01, 1]      momentum, so m ∈ [0, 0.99]
    σ  ~ uniform on [0, 1]                          std of the Gaussian input noise
    TIMIT only: Nesterov or classical momentum (fair coin); gradient clipping to [−1, 1] on or off (fair coin)

Every dimension is drawn by inverse transform from one uniform number q ∈ [0, 1):

    log-uniform [a, b]:            x = exp(ln a + q·(ln b − ln a))
    uniform [a, b]:                x = a + q·(b − a)
    one-minus-log-uniform [a, b]:  x = 1 − exp(ln(1 − b) + q·(ln(1 − a) − ln(1 − b)))   (m from u = 1 − m)
    choice (c₁ … c_K):             x = c_⌊q·K⌋

and q comes from its own random stream, keyed by (study seed, task, architecture, k, dimension). So a
trial is fully determined by (study seed, task, architecture, k); with common random numbers (the
default) the architecture is left out of the key, so trial k of every architecture gets the same
hyperparameters (and the same run seed), which makes the comparison of architectures sharper; and
narrowing or fixing one dimension leaves every other dimension's draw unchanged (it maps the same q
into the narrower range).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

DISTRIBUTIONS = ("log_uniform", "uniform", "one_minus_log_uniform", "choice", "fixed")
DIMENSIONS = ("hidden", "lr", "momentum", "noise", "nesterov", "clip", "seed")
"""The dimensions of a trial, in the order of a trial's row (each is a TrainConfig field)."""

PAPER_CLIP = 1.0
"""Gradient clipping range [−1, 1] of the paper's TIMIT search (its only clipping setting)."""

INTEGER_DIMENSIONS = ("hidden", "seed", "params", "layers")
"""Dimensions whose values are integers (of either space)."""

SEED_RANGE = 2 ** 31
"""A trial's run seed (initialisation, order, noise) is drawn uniformly from [0, SEED_RANGE)."""


@dataclass(frozen=True)
class Dimension:
    """One dimension of the space: a distribution and its parameters (see the module docstring)."""

    dist: str                      # one of DISTRIBUTIONS
    low: float | None = None       # lower bound (log_uniform, uniform, one_minus_log_uniform)
    high: float | None = None      # upper bound
    round: bool = False            # round the draw to the nearest integer (hidden size)
    choices: tuple = ()            # the values of a "choice" (equally likely)
    value: object = None           # the value of a "fixed" dimension

    def __post_init__(self):
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(f"distribution {self.dist!r}: use one of {', '.join(DISTRIBUTIONS)}")
        if self.dist in ("log_uniform", "uniform", "one_minus_log_uniform"):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       for v in (self.low, self.high)) or self.low > self.high:
                raise ValueError(f"{self.dist} needs finite bounds low ≤ high, got [{self.low}, {self.high}]")
            if self.dist == "log_uniform" and self.low <= 0:
                raise ValueError(f"log_uniform needs low > 0, got {self.low}")
            if self.dist == "one_minus_log_uniform" and not 0 <= self.low <= self.high < 1:
                raise ValueError(f"one_minus_log_uniform needs 0 ≤ low ≤ high < 1, got [{self.low}, {self.high}]")
            object.__setattr__(self, "low", float(self.low))
            object.__setattr__(self, "high", float(self.high))
        if self.dist == "choice":
            object.__setattr__(self, "choices", tuple(self.choices))
            if not self.choices:
                raise ValueError("a choice dimension needs at least one value")

    def draw(self, q: float):
        """The value for the uniform number ``q`` ∈ [0, 1) (inverse transform, module docstring)."""
        if self.dist == "fixed":
            return self.value
        if self.dist == "choice":
            return self.choices[min(int(q * len(self.choices)), len(self.choices) - 1)]
        if self.dist == "uniform":
            x = self.low + q * (self.high - self.low)
        elif self.dist == "log_uniform":
            x = math.exp(math.log(self.low) + q * (math.log(self.high) - math.log(self.low)))
        else:   # m = 1 − u, u log-uniform on [1 − high, 1 − low]
            u_low, u_high = 1.0 - self.high, 1.0 - self.low
            x = 1.0 - math.exp(math.log(u_low) + q * (math.log(u_high) - math.log(u_low)))
        x = min(max(x, self.low), self.high)            # exp/log round-off must not leave the range
        return int(round(x)) if self.round else x

    def contains(self, other: "Dimension") -> bool:
        """Whether every value ``other`` can give is one this dimension can give (narrowing check)."""
        if self.dist in ("log_uniform", "uniform", "one_minus_log_uniform"):
            values = [other.value] if other.dist == "fixed" else (
                [other.low, other.high] if other.dist == self.dist else list(other.choices) or [None])
            return all(isinstance(v, (int, float)) and not isinstance(v, bool) and self.low <= v <= self.high
                       for v in values)
        if self.dist == "choice":
            values = [other.value] if other.dist == "fixed" else list(other.choices)
            return other.dist in ("fixed", "choice") and all(v in self.choices for v in values)
        return other.dist == "fixed" and other.value == self.value

    def to_dict(self) -> dict:
        fields = {"dist": self.dist}
        if self.dist in ("log_uniform", "uniform", "one_minus_log_uniform"):
            fields.update(low=self.low, high=self.high, round=self.round)
        elif self.dist == "choice":
            fields["choices"] = list(self.choices)
        else:
            fields["value"] = self.value
        return fields

    @classmethod
    def from_dict(cls, values: dict) -> "Dimension":
        if not isinstance(values, dict) or "dist" not in values:
            raise ValueError(f"a dimension is a dict with 'dist' and its parameters, got {values!r}")
        unknown = set(values) - {"dist", "low", "high", "round", "choices", "value"}
        if unknown:
            raise ValueError(f"unknown dimension field(s) {sorted(unknown)} in {values!r}")
        return cls(**values)

    def describe(self) -> str:
        if self.dist == "fixed":
            return f"= {self.value!r}"
        if self.dist == "choice":
            return "one of " + ", ".join(map(repr, self.choices))
        rounded = ", rounded" if self.round else ""
        if self.dist == "one_minus_log_uniform":
            return f"1 − u, u log-uniform on [{1 - self.high:g}, {1 - self.low:g}]"
        return f"{self.dist.replace('_', '-')} on [{self.low:g}, {self.high:g}]{rounded}"


def paper_space(task: str) -> dict[str, Dimension]:
    """The paper's space for ``task`` (registry name): the four common dimensions, plus the two TIMIT
    switches on TIMIT (and its free sample); elsewhere Nesterov momentum and no clipping."""
    timit = task in ("timit", "timit_sample")
    return {
        "hidden": Dimension("log_uniform", 20, 200, round=True),
        "lr": Dimension("log_uniform", 1e-6, 1e-2),
        "momentum": Dimension("one_minus_log_uniform", 0.0, 0.99),
        "noise": Dimension("uniform", 0.0, 1.0),
        "nesterov": Dimension("choice", choices=(True, False)) if timit else Dimension("fixed", value=True),
        "clip": Dimension("choice", choices=(None, PAPER_CLIP)) if timit else Dimension("fixed", value=None),
        "seed": Dimension("uniform", 0, SEED_RANGE - 1, round=True),
    }


PAPER_SOURCE = ("Greff, Srivastava, Koutník, Steunebrink & Schmidhuber, LSTM: A Search Space Odyssey "
                "(IEEE TNNLS 2017), §IV")
JZS_SOURCE = ("Józefowicz, Zaremba & Sutskever, An Empirical Exploration of Recurrent Network Architectures "
              "(ICML 2015), §3: their dimensions; the ranges are our choice (SPEC §11, jzs_space)")


def reference_space(task: str, protocol: str) -> tuple[dict[str, "Dimension"], str]:
    """(the space a study of ``protocol`` narrows, the paper it comes from): the Odyssey's
    (:func:`paper_space`) for protocol online, JZS's (:func:`jzs_space`) for protocol jzs."""
    if protocol == "jzs":
        return jzs_space(task), JZS_SOURCE
    return paper_space(task), PAPER_SOURCE


def reference_space_of(definition: dict) -> dict:
    """A study definition's reference space as ``{"source": the paper, "dimensions": {name: range
    described}}``: its ``reference_space``, or — a study.json written before that key existed — its
    ``paper_space`` (which was JZS's space for a study of protocol jzs, the Odyssey's otherwise);
    ``{"source": None, "dimensions": {}}`` when it has neither (a bare table's inferred definition)."""
    saved = definition.get("reference_space")
    if isinstance(saved, dict):
        return {"source": saved.get("source"), "dimensions": dict(saved.get("dimensions") or {})}
    old = definition.get("paper_space")
    if not isinstance(old, dict):
        return {"source": None, "dimensions": {}}
    protocol = (definition.get("protocol") or {}).get("protocol", "online")
    return {"source": JZS_SOURCE if protocol == "jzs" else PAPER_SOURCE, "dimensions": dict(old)}


def _parse_value(name: str, text: str):
    """One value of dimension ``name`` from the command line / API string form."""
    text = text.strip()
    if name == "nesterov":
        lowered = text.lower()
        if lowered in ("true", "nesterov", "yes", "on", "1"):
            return True
        if lowered in ("false", "classical", "no", "off", "0"):
            return False
        raise ValueError(f"nesterov={text!r}: use true (Nesterov) or false (classical)")
    if name == "clip" and text.lower() in ("none", "off", "no"):
        return None
    if name == "clip" and text.lower() == "on":
        return PAPER_CLIP
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: not a number") from None
    if name in INTEGER_DIMENSIONS:
        if number != int(number):
            raise ValueError(f"{name}={text!r}: must be an integer")
        return int(number)
    return number


def narrowed(space: dict[str, Dimension], spec: str | dict, source: str = "the paper's") -> dict[str, Dimension]:
    """``space`` with some dimensions fixed or narrowed, from ``"hidden=32"``, ``"lr=1e-4:1e-2"``,
    ``"nesterov=true"``, ``"clip=none"`` (comma-separated for several), or a dict
    ``{name: value | (low, high) | Dimension}``. The names are ``space``'s own (:data:`DIMENSIONS`,
    or :data:`JZS_DIMENSIONS` for :func:`jzs_space`, whose ``source`` is "JZS's").

    A range keeps the dimension's distribution and must lie inside it (narrowing: the same q maps into
    the smaller range); a single value fixes the dimension and may be any valid value (e.g. N = 8 for
    a smoke study) — the trial's configuration then checks it.
    """
    known = ", ".join(space)
    if isinstance(spec, str):
        items = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"space setting {part!r}: write NAME=VALUE or NAME=LOW:HIGH, e.g. hidden=32")
            low, colon, high = value.partition(":")
            name = name.strip()
            if name not in space:
                raise ValueError(f"space setting {part!r}: unknown dimension {name!r}; known: {known}")
            items[name] = (_parse_value(name, low), _parse_value(name, high)) if colon else _parse_value(name, value)
        spec = items
    if not isinstance(spec, dict):
        raise ValueError(f"space: give a dict or a string like 'hidden=32,lr=1e-4:1e-2', got {spec!r}")
    out = dict(space)
    for name, value in spec.items():
        if name not in space:
            raise ValueError(f"space: unknown dimension {name!r}; known: {known}")
        base = space[name]
        if isinstance(value, Dimension):
            new = value
        elif isinstance(value, (tuple, list)) and len(value) == 2 and base.dist in (
                "log_uniform", "uniform", "one_minus_log_uniform"):
            new = Dimension(base.dist, value[0], value[1], round=base.round)
        elif isinstance(value, (tuple, list)):
            new = Dimension("choice", choices=tuple(value))
        else:
            new = Dimension("fixed", value=value)
        if new.dist != "fixed" and not base.contains(new):
            raise ValueError(f"space: {name} {new.describe()} is not inside {source} {base.describe()}; "
                             f"narrow within it, or fix a single value ({name}=VALUE)")
        out[name] = new
    return out


def _dimensions_of(names) -> tuple[str, ...]:
    """The dimension tuple (the paper's or JZS's) whose names are exactly ``names``, or a ValueError."""
    for dimensions in (DIMENSIONS, JZS_DIMENSIONS):
        if set(names) == set(dimensions):
            return dimensions
    raise ValueError(f"a space names exactly the dimensions {', '.join(DIMENSIONS)} (the paper's) or "
                     f"{', '.join(JZS_DIMENSIONS)} (JZS's); got {sorted(names)}")


def space_to_dict(space: dict[str, Dimension]) -> dict:
    return {name: space[name].to_dict() for name in _dimensions_of(space)}


def space_from_dict(values: dict) -> dict[str, Dimension]:
    if not isinstance(values, dict):
        raise ValueError(f"a space is a dict of dimensions, got {values!r}")
    return {name: Dimension.from_dict(values[name]) for name in _dimensions_of(values)}


def _key(text: str) -> int:
    """A stable 64-bit integer for a name (Python's hash() changes between processes)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def uniform_number(seed: int, task: str, arch: str | None, k: int, dimension: str) -> float:
    """The q ∈ [0, 1) of one dimension of one trial: its own stream, keyed by everything that
    identifies it (``arch=None``: shared by every architecture — common random numbers)."""
    entropy = [int(seed), _key(task), _key(arch or "*common*"), int(k), _key(dimension)]
    return float(np.random.default_rng(np.random.SeedSequence(entropy)).random())


def sample(space: dict[str, Dimension], *, seed: int, task: str, arch: str, k: int,
           shared: bool = True) -> dict:
    """Trial ``k``'s hyperparameters for ``arch``: {dimension: value} (TrainConfig field values).
    ``shared`` (common random numbers): every architecture gets the same values for the same k."""
    key_arch = None if shared else arch
    return {name: space[name].draw(uniform_number(seed, task, key_arch, k, name)) for name in DIMENSIONS}


# ---------------------------------------------------------------------------------------------
# JZS's search space (SPEC §11), for trials of the jzs protocol (lstm_scratch.minibatch). A separate
# addition (helper H11): the paper's space above is untouched.
# ---------------------------------------------------------------------------------------------
JZS_DIMENSIONS = ("params", "layers", "lr", "init_scale", "clip_norm", "seed")
"""The dimensions of a JZS trial. ``params`` is the parameter budget: :func:`jzs_sample` turns it into
the largest hidden size N whose network fits it, so every architecture and depth of trial k gets about
the same number of parameters (JZS compared architectures at similar sizes)."""


def jzs_space(task: str) -> dict[str, Dimension]:
    """JZS's random hyperparameters: init scale, η, clipping norm, layers 1–4, within a parameter budget.

    Source: JZS (ICML 2015) §3 name these dimensions; their value sets are not available to us (SPEC §11:
    "exact value sets unconfirmed"), so the ranges are **our choice**, centred on the settings of
    Zaremba, Sutskever & Vinyals (2014), the PTB setup JZS build on, with the same loss normalisation
    (the mean over the batch of the loss summed over a window: :mod:`lstm_scratch.minibatch`):

        params      log-uniform on [1e4, 1e5]    budget; sized for a CPU study (JZS's models were larger)
        layers      one of 1, 2, 3, 4            JZS's range
        lr          log-uniform on [0.1, 5]       Zaremba et al.: η = 1
        init_scale  log-uniform on [0.02, 0.3]    σ of N(0, σ²); Zaremba et al.'s uniform ±0.04…±0.1 have
                                                  σ = 0.023…0.058; the Odyssey's 0.1 inside
        clip_norm   log-uniform on [1, 20]        Zaremba et al.: 5 and 10

    The same for every task (``task`` is taken for symmetry with :func:`paper_space`)."""
    del task
    return {
        "params": Dimension("log_uniform", 1e4, 1e5, round=True),
        "layers": Dimension("choice", choices=(1, 2, 3, 4)),
        "lr": Dimension("log_uniform", 0.1, 5.0),
        "init_scale": Dimension("log_uniform", 0.02, 0.3),
        "clip_norm": Dimension("log_uniform", 1.0, 20.0),
        "seed": Dimension("uniform", 0, SEED_RANGE - 1, round=True),
    }


def hidden_for_budget(budget: int, arch: str, layers: int, n_in: int, n_out: int) -> int:
    """The largest N whose unidirectional network of ``layers`` layers has at most ``budget`` parameters
    (recurrent layers + output layer, as :class:`lstm_scratch.network.Network` counts them); at least 1."""
    from ..variants import Layout

    def size(n):
        return (Layout(arch, n_in, n).size + (layers - 1) * Layout(arch, n, n).size + n_out * (n + 1))
    low, high = 1, 2
    while size(high) <= budget:
        high *= 2
    while high - low > 1:                      # size(low) ≤ budget < size(high), or low = 1
        middle = (low + high) // 2
        low, high = (middle, high) if size(middle) <= budget else (low, middle)
    return low


def jzs_sample(space: dict[str, Dimension], *, seed: int, task: str, arch: str, k: int, n_in: int, n_out: int,
               shared: bool = True) -> dict:
    """Trial ``k``'s TrainConfig values for ``arch`` under protocol jzs: the draws of ``space``
    (:func:`jzs_space`) with ``params`` turned into ``hidden`` (:func:`hidden_for_budget`), plus
    ``protocol="jzs"``. For JZS's tasks n_in = n_out = the vocabulary size (``TASKS[task].n_in``)."""
    values = jzs_draws(space, seed=seed, task=task, arch=arch, k=k, shared=shared)
    budget = values.pop("params")
    values["hidden"] = hidden_for_budget(budget, arch, values["layers"], n_in, n_out)
    return {**values, "protocol": "jzs"}


def jzs_draws(space: dict[str, Dimension], *, seed: int, task: str, arch: str, k: int, shared: bool = True) -> dict:
    """Trial ``k``'s draws of JZS's dimensions as sampled, {dimension: value} (``params``: the budget,
    which :func:`jzs_sample` turns into N; a study's table shows it as ``budget``)."""
    key_arch = None if shared else arch
    return {name: space[name].draw(uniform_number(seed, task, key_arch, k, name)) for name in JZS_DIMENSIONS}
