"""The configuration of one training run (:class:`TrainConfig`): every field that determines a run's
result, checked when it is made, with a comment per field. ``protocol`` chooses the training regime:
``online`` (the paper's, SPEC §6: :mod:`.train`) or ``jzs`` (JZS's, SPEC §11: :mod:`.minibatch`); the
fields only one protocol uses are None for the other, and unset fields get the protocol's defaults, so
a record's config says exactly what ran.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from . import minibatch
from .checks import is_integer, is_real
from .variants import get as get_architecture


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run's result (``threads`` and the output place do not)."""

    task: str                    # task name (lstm_scratch.datasets.TASKS), or a label for given data
    arch: str = "V"              # architecture: V, NIG, …, FGR, GRU, MUT1-3; JZS's TANH, LSTM, LSTM-F/-I/-O/-B
                                 # (lstm_scratch.variants)
    hidden: int = 100            # N, blocks per direction
    layers: int = 1              # stacked recurrent layers (as nn.LSTM(num_layers=); JZS searched 1–4)
    lr: float = 1e-3             # η, before the (1 − m) scaling (jzs: the starting η, halved as it stalls)
    momentum: float | None = None    # m, 0 ≤ m < 1; None: 0.9 (online), 0 (jzs: plain SGD)
    nesterov: bool = True        # False: classical momentum (a TIMIT search dimension)
    noise: float = 0.0           # σ of the Gaussian noise added to training inputs
    clip: float | None = None    # element-wise gradient clipping to [−clip, clip]; None: off (default)
    seed: int = 1                # the run's seed: initialisation, sequence order and noise
    max_epochs: int = 150        # hard limit on epochs
    patience: int = 15           # stop after this many epochs without a better validation metric
    dtype: str = "float64"       # "float64" (default), "float32" or "mixed" (float32 kernels, float64
                                 # master weights and velocity): the opt-in speed modes (SPEC §6)
    forget_bias: float | None = None   # initial forget-gate bias; None: the architecture's (+1 for
                                       # LSTM-B, else 0), recorded as that number
    bidirectional: bool | None = None   # None: the task's (music: one direction; TIMIT, handwriting: two)
    init_scale: float = 0.1      # σ of the N(0, σ²) initialisation of every weight (SPEC §6; JZS vary it)
    protocol: str = "online"     # "online": the paper's, one update per sequence, full BPTT (SPEC §6);
                                 # "jzs": JZS's minibatch regime (SPEC §11, lstm_scratch.minibatch)
    # jzs only (None there: lstm_scratch.minibatch.DEFAULTS; online: must stay None)
    batch: int | None = None         # sequences per minibatch (20)
    unroll: int | None = None        # truncated-BPTT window in steps, state carried across windows (35)
    clip_norm: float | None = None   # clip the minibatch gradient to this global L2 norm (5)
    lr_decay: float | None = None    # η ← η·lr_decay after each epoch ≥ 3 epochs past the best (½)

    def __post_init__(self):
        def bad(field, value, need):
            raise ValueError(f"{field}={value!r}: {need}")
        if not isinstance(self.task, str) or not self.task:
            bad("task", self.task, "give a task name, e.g. jsb (see 'lstm-odyssey data list')")
        # The canonical name (raises for an unknown architecture): --arch v is recorded as V.
        object.__setattr__(self, "arch", get_architecture(self.arch).name)
        self._resolve_protocol(bad)
        if self.forget_bias is None:
            object.__setattr__(self, "forget_bias", get_architecture(self.arch).initial_forget_bias())
        # Plain Python numbers (a search may pass NumPy scalars): the JSON copy then compares equal.
        for name in ("hidden", "layers", "seed", "max_epochs", "patience"):
            value = getattr(self, name)
            if not is_integer(value):
                bad(name, value, "must be an integer")
            object.__setattr__(self, name, int(value))
        reals = ("lr", "momentum", "noise", "forget_bias", "init_scale")
        for name in reals + (("clip",) if self.clip is not None else ()):
            value = getattr(self, name)
            if not is_real(value):
                bad(name, value, "must be a number")
            object.__setattr__(self, name, float(value))
        if self.hidden < 1:
            bad("hidden", self.hidden, "the number of blocks must be a positive integer")
        if self.layers < 1:
            bad("layers", self.layers, "the number of stacked recurrent layers must be a positive integer")
        if not (math.isfinite(self.lr) and self.lr >= 0):
            bad("lr", self.lr, "the learning rate must be a finite number ≥ 0")
        if not 0 <= self.momentum < 1:
            bad("momentum", self.momentum, "momentum must lie in [0, 1): the lr is scaled by (1 − m)")
        if not math.isfinite(self.forget_bias):
            bad("forget_bias", self.forget_bias, "the initial forget-gate bias must be a finite number")
        get_architecture(self.arch).initial_forget_bias(self.forget_bias)   # LSTM-B refuses another bias
        if not (math.isfinite(self.noise) and self.noise >= 0):
            bad("noise", self.noise, "the input-noise standard deviation must be a finite number ≥ 0")
        if self.clip is not None and not (math.isfinite(self.clip) and self.clip > 0):
            bad("clip", self.clip, "clipping needs a finite threshold > 0 (or None for no clipping)")
        for name in ("seed", "max_epochs", "patience"):
            value = getattr(self, name)
            if value < (0 if name == "seed" else 1):
                bad(name, value, "must be a non-negative integer" if name == "seed" else "must be ≥ 1")
        if self.dtype not in ("float64", "float32", "mixed"):
            bad("dtype", self.dtype, "use float64, float32 or mixed")
        if not isinstance(self.nesterov, bool) or self.bidirectional not in (None, True, False):
            bad("nesterov/bidirectional", (self.nesterov, self.bidirectional), "must be True or False")
        if not (math.isfinite(self.init_scale) and self.init_scale > 0):
            bad("init_scale", self.init_scale, "the initialisation's standard deviation must be finite, > 0")

    def _resolve_protocol(self, bad) -> None:
        """Check the protocol and its fields; fill the unset ones (momentum; jzs: minibatch.DEFAULTS)."""
        if self.protocol not in ("online", "jzs"):
            bad("protocol", self.protocol, "use online (the paper's SGD, SPEC §6) or jzs (JZS's minibatch "
                "regime, SPEC §11)")
        jzs = self.protocol == "jzs"
        defaults = minibatch.DEFAULTS if jzs else {"momentum": 0.9}
        for name in minibatch.DEFAULTS:
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, defaults.get(name))
            elif not jzs and name != "momentum":
                bad(name, value, "applies to protocol jzs only: add protocol='jzs' (--protocol jzs), or leave "
                    "it unset")
        if not jzs:
            return
        for name in ("batch", "unroll"):
            if not is_integer(getattr(self, name), 1):
                bad(name, getattr(self, name), "must be an integer ≥ 1")
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("clip_norm", "lr_decay"):
            value = getattr(self, name)
            if not is_real(value) or not (math.isfinite(value) and value > 0):
                bad(name, value, "must be a finite number > 0")
            object.__setattr__(self, name, float(value))
        if self.lr_decay > 1:
            bad("lr_decay", self.lr_decay, "the decay factor must lie in (0, 1] (1: no decay)")
        if self.bidirectional:
            bad("bidirectional", True, "protocol jzs carries the state forward in time, which a backward "
                "direction cannot: use one direction, or protocol online")
        if get_architecture(self.arch).full_gate_recurrence:
            bad("arch", self.arch, "FGR's gate recurrence carries gate values that truncated BPTT does not "
                "carry between windows; train FGR with protocol online")

    @property
    def kernel_dtype(self) -> str:
        """The dtype of the network and the data: float32 for ``mixed`` (whose master weights are float64)."""
        return "float32" if self.dtype == "mixed" else self.dtype

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        if not isinstance(values, dict):
            raise ValueError(f"a configuration is a JSON object of fields, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown configuration field(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def canonical(cls, saved: dict) -> dict:
        """The canonical form of a configuration saved as a dict (a checkpoint's, a record's, a study's
        failure note): ``asdict(TrainConfig.from_dict(saved))``. Fields added since it was written take
        their defaults (``layers`` 1, ``protocol`` online, ``init_scale`` 0.1, the jzs fields None), names
        their canonical spelling (``v`` → ``V``), None defaults their resolved values (``forget_bias``,
        ``momentum``) — so it equals ``asdict(config)`` of the same run made today. Compare saved
        configurations only through this. ``ValueError`` if ``saved`` is no valid configuration."""
        return asdict(cls.from_dict(saved))

    def same_as(self, saved) -> bool:
        """Whether ``saved`` (a dict from a file) is this configuration, in canonical form; False for
        another one and for one that cannot be read (:meth:`canonical`)."""
        try:
            return self.canonical(saved) == asdict(self)
        except (ValueError, TypeError):
            return False
