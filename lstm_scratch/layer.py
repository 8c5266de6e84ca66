"""One recurrent layer (:class:`Layer`) and a bidirectional pair (:class:`BiLayer`) of any architecture.

A layer owns one contiguous parameter vector ``flat`` and a gradient vector ``grad_flat`` of the same
size; ``params`` and ``grads`` are dicts of named views into them (names as in :mod:`variants`).
``forward`` runs one sequence, ``backward`` runs full BPTT over it and overwrites ``grads``.

Initialisation (SPEC §6, our choice): every weight, peepholes included, from N(0, init_std²) with
init_std = 0.1; biases 0. ``forget_bias`` (JZS "LSTM-b": +1) sets the forget-gate bias b_f; for CIFG,
whose forget gate is fᵗ = 1 − iᵗ, it sets b_i = −forget_bias so that f starts at σ(forget_bias) too.
Left unset (None) it is the architecture row's own (:meth:`Architecture.initial_forget_bias`): +1 for
LSTM-B, 0 for every other row.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import reference
from .variants import Layout

BACKENDS = ("numba", "reference")
DTYPES = (np.float32, np.float64)


def _check_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in [np.dtype(d) for d in DTYPES]:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _storage(name: str, given: np.ndarray | None, size: int, dtype: np.dtype) -> np.ndarray:
    """A zeroed vector of ``size`` values, or ``given`` after checking it fits."""
    if given is None:
        return np.zeros(size, dtype=dtype)
    if not isinstance(given, np.ndarray) or given.dtype != dtype or given.shape != (size,):
        raise ValueError(f"{name} must be a 1-D {dtype} array of {size} values, "
                         f"got {getattr(given, 'dtype', type(given).__name__)} "
                         f"{getattr(given, 'shape', '')}")
    return given


def _check_sequence(name: str, array, width: int, dtype: np.dtype, length: int | None = None):
    """Validate one (T, width) sequence; return it C-contiguous (the kernels index rows)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of shape (T, {width}), got {type(array).__name__}")
    if array.ndim != 2 or array.shape[1] != width or array.shape[0] < 1:
        want = f"({length}, {width})" if length is not None else f"(T, {width}) with T >= 1"
        raise ValueError(f"{name} must have shape {want}, got {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} has {array.shape[0]} time steps but the forward pass had {length}")
    if array.dtype != dtype:
        raise TypeError(f"{name} has dtype {array.dtype} but the layer is {dtype}; "
                        f"convert with {name}.astype(np.{dtype})")
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{name} contains a non-finite value ({array[tuple(bad)]}) at time step "
                         f"{bad[0]}, unit {bad[1]}")
    if not array.flags.writeable:
        # Numba compiles read-only arrays as a type of their own: copy rather than build every
        # kernel a second time (a data set may hand out read-only views).
        return np.array(array, order="C")
    return np.ascontiguousarray(array)


class Layer:
    """A unidirectional recurrent layer.

    >>> layer = Layer(arch="CIFG", n_in=3, n_hidden=4, seed=0)
    >>> y = layer.forward(np.zeros((5, 3)))          # (T, M) -> (T, N)
    >>> dx = layer.backward(np.ones_like(y))          # (T, N) -> (T, M); fills layer.grads

    ``flat`` / ``grad_flat`` may be given as views into a larger vector (a network's); the layer then
    initialises and uses that storage — or, with ``keep_values=True``, uses ``flat`` as it is (a
    replica sharing another layer's parameters).
    """

    def __init__(self, arch: str = "V", n_in: int = 1, n_hidden: int = 1, *, dtype=np.float64,
                 seed: int | np.random.Generator = 0, forget_bias: float | None = None,
                 backend: str = "numba", init_std: float = 0.1,
                 flat: np.ndarray | None = None, grad_flat: np.ndarray | None = None,
                 keep_values: bool = False):
        self.layout = Layout(arch, n_in, n_hidden)
        self.arch = self.layout.arch
        self.n_in, self.n_hidden = self.layout.n_in, self.layout.n_hidden
        self.dtype = _check_dtype(dtype)
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.flat = _storage("flat", flat, self.layout.size, self.dtype)
        self.grad_flat = _storage("grad_flat", grad_flat, self.layout.size, self.dtype)
        self.params = self.layout.views(self.flat)
        self.grads = self.layout.views(self.grad_flat)
        self._blocks = self.layout.blocks(self.flat)
        self._grad_blocks = self.layout.blocks(self.grad_flat)
        self._cache = None
        if not (keep_values and flat is not None):
            self.initialise(seed, forget_bias=forget_bias, init_std=init_std)

    @property
    def n_params(self) -> int:
        return self.layout.size

    def initialise(self, seed: int | np.random.Generator = 0, *, forget_bias: float | None = None,
                   init_std: float = 0.1) -> None:
        """Weights and peepholes ~ N(0, init_std²), biases 0, forget bias as in the module docstring."""
        forget_bias = self.arch.initial_forget_bias(forget_bias)
        if forget_bias and self.arch.family != "lstm":
            raise ValueError(f"forget_bias applies to LSTM variants; {self.arch.name} has no forget gate")
        if forget_bias and not (self.arch.forget_gate or self.arch.coupled):
            raise ValueError(f"forget_bias={forget_bias}: {self.arch.name} has no forget gate to bias; "
                             "use forget_bias=0")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.flat[:] = rng.normal(0.0, init_std, self.layout.size)
        for name, view in self.params.items():
            if name.startswith("b_"):
                view[:] = 0.0
        if self.arch.coupled:
            self.params["b_i"][:] = -forget_bias
        elif "b_f" in self.params:
            self.params["b_f"][:] = forget_bias

    def _backend(self):
        if self.backend == "reference":
            return reference, self.params, self.grads
        from . import kernels
        return kernels, self._blocks, self._grad_blocks

    def forward(self, x: np.ndarray, keep_cache: bool = True, state: tuple | None = None) -> np.ndarray:
        """x: (T, n_in) of the layer's dtype → y: (T, n_hidden).

        ``keep_cache=False`` skips storing what :meth:`backward` needs: the layer is then left
        untouched, so several threads may run forward passes of the same layer at once (evaluation).
        ``state`` = (h0, c0): start from that state instead of zeros (truncated BPTT; c0 None for the
        gated cells) — what :meth:`final_state` returned for the window before. No gradient flows into
        it (:meth:`backward` stops at the window's first step)."""
        x = _check_sequence("x", x, self.n_in, self.dtype)
        module, params, _ = self._backend()
        y, cache = module.forward(self.arch, params, x, *self._check_state(state))
        if keep_cache:
            self._cache, self._steps = cache, x.shape[0]
        return y

    def _check_state(self, state) -> tuple:
        """``state`` = (h0, c0) checked against this layer: ((N,), (N,) or None) of its dtype, finite."""
        if state is None:
            return None, None
        cells = self.arch.family == "lstm"
        if not (isinstance(state, tuple) and len(state) == 2):
            raise ValueError(f"state must be a pair (h0, c0){'' if cells else ' with c0 None'}, got "
                             f"{type(state).__name__}")
        for name, vector in zip(("h0", "c0"), state):
            if vector is None and (name == "h0" or cells):
                raise ValueError(f"{name} is None: {self.arch.name} needs it in an initial state")
            if vector is not None and not cells and name == "c0":
                raise ValueError(f"c0: {self.arch.name} has no cell state; give (h0, None)")
            if vector is not None and not (isinstance(vector, np.ndarray) and vector.shape == (self.n_hidden,)
                                           and vector.dtype == self.dtype and np.isfinite(vector).all()):
                raise ValueError(f"{name} must be a finite {self.dtype} vector of {self.n_hidden} values, got "
                                 f"{getattr(vector, 'dtype', type(vector).__name__)} "
                                 f"{getattr(vector, 'shape', '')}")
        return state

    def final_state(self) -> tuple:
        """(h, c) after the last step of the last forward pass that kept its cache (c None for the gated
        cells): the initial state of the next window in truncated BPTT. Copies: the cache may be reused."""
        if self._cache is None:
            raise RuntimeError("final_state() needs a forward pass with keep_cache=True first")
        module, _, _ = self._backend()
        h, c = module.final_state(self.arch, self._cache)
        return h.copy(), None if c is None else c.copy()

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """dy = ∂L/∂y: (T, n_hidden) → ∂L/∂x: (T, n_in); overwrites ``grads`` with ∂L/∂θ.
        ``need_dx=False`` (a network's first layer) skips ∂L/∂x — one GEMM less — and returns None."""
        if self._cache is None:
            raise RuntimeError("backward() needs the forward pass of the same sequence: call forward(x) "
                               "first")
        dy = _check_sequence("dy", dy, self.n_hidden, self.dtype, self._steps)
        module, params, grads = self._backend()
        return module.backward(self.arch, params, self._cache, dy, grads, need_dx)

    def __repr__(self) -> str:
        return (f"Layer(arch={self.arch.name!r}, n_in={self.n_in}, n_hidden={self.n_hidden}, "
                f"dtype={self.dtype.name}, backend={self.backend!r}, n_params={self.n_params})")


class Direction:
    """A layer that reads its sequence forwards or reversed, with outputs and gradients in the
    sequence's own time order, and the ``columns`` its outputs fill in a concatenated output: the
    building block of a bidirectional layer (and of a network's per-direction readout)."""

    def __init__(self, layer: Layer, reverse: bool, columns: slice):
        self.layer, self.reverse, self.columns = layer, reverse, columns

    def _flip(self, array):
        return array[::-1] if self.reverse and array is not None else array

    def forward(self, x: np.ndarray, keep_cache: bool = True) -> np.ndarray:
        return self._flip(self.layer.forward(self._flip(x), keep_cache))

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        return self._flip(self.layer.backward(self._flip(dy), need_dx))


class BiLayer:
    """A forward and a backward layer over the same input, outputs concatenated: (T, 2N).

    The backward direction reads the sequence reversed: yᵇᵗ depends on x^{t..T−1}. Parameters are
    one flat vector, the forward direction first; names are prefixed ``fw.`` and ``bw.``.

    ``concurrent = True`` runs the two directions of a training pass (``forward`` with the cache kept,
    ``backward``) on two threads: they share nothing but the input, and the Numba kernels release the
    GIL. It pays only when a second core is free, so it is off by default; the trainer turns it on for
    runs given two or more threads. Results are the same either way, bit for bit.
    """

    concurrent = False
    _pool = None

    def __getstate__(self):
        # A thread pool cannot be pickled (process and Dask executors ship networks); a copy makes
        # its own on first concurrent use.
        state = dict(self.__dict__)
        state.pop("_pool", None)
        return state

    def __init__(self, arch: str = "V", n_in: int = 1, n_hidden: int = 1, *, dtype=np.float64,
                 seed: int | np.random.Generator = 0, forget_bias: float | None = None,
                 backend: str = "numba", init_std: float = 0.1,
                 flat: np.ndarray | None = None, grad_flat: np.ndarray | None = None,
                 keep_values: bool = False):
        size = Layout(arch, n_in, n_hidden).size
        dtype = _check_dtype(dtype)
        self.flat = _storage("flat", flat, 2 * size, dtype)
        self.grad_flat = _storage("grad_flat", grad_flat, 2 * size, dtype)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        common = dict(dtype=dtype, seed=rng, forget_bias=forget_bias, backend=backend, init_std=init_std,
                      keep_values=keep_values and flat is not None)
        self.fw = Layer(arch, n_in, n_hidden, flat=self.flat[:size], grad_flat=self.grad_flat[:size],
                        **common)
        self.bw = Layer(arch, n_in, n_hidden, flat=self.flat[size:], grad_flat=self.grad_flat[size:],
                        **common)
        self.directions = (Direction(self.fw, False, slice(0, n_hidden)),
                           Direction(self.bw, True, slice(n_hidden, 2 * n_hidden)))
        self.arch, self.n_in, self.n_hidden, self.dtype = self.fw.arch, n_in, n_hidden, dtype
        self.params = {f"{d}.{k}": v for d, layer in (("fw", self.fw), ("bw", self.bw))
                       for k, v in layer.params.items()}
        self.grads = {f"{d}.{k}": v for d, layer in (("fw", self.fw), ("bw", self.bw))
                      for k, v in layer.grads.items()}

    @property
    def n_params(self) -> int:
        return self.fw.n_params + self.bw.n_params

    def each_direction(self, work, concurrent: bool | None = None) -> tuple:
        """(work(forward direction), work(backward direction)), the second on a helper thread when
        ``concurrent`` (default: ``self.concurrent``)."""
        concurrent = self.concurrent if concurrent is None else concurrent
        run_fw, run_bw = (lambda: work(self.directions[0])), (lambda: work(self.directions[1]))
        if not concurrent:
            return run_fw(), run_bw()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bilayer-bw")
        pending = self._pool.submit(run_bw)
        try:
            first = run_fw()
        except BaseException:
            pending.exception()         # let the other direction finish before the error propagates
            raise
        return first, pending.result()

    def forward(self, x: np.ndarray, keep_cache: bool = True) -> np.ndarray:
        """x: (T, n_in) → [y_fw | y_bw]: (T, 2·n_hidden). ``keep_cache=False``: see :meth:`Layer.forward`
        (such passes run their directions one after the other: evaluation parallelises over sequences)."""
        y_fw, y_bw = self.each_direction(lambda d: d.forward(x, keep_cache),
                                         self.concurrent and keep_cache)
        return np.concatenate([y_fw, y_bw], axis=1)

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """dy: (T, 2·n_hidden) → ∂L/∂x: (T, n_in) (None when not ``need_dx``); overwrites ``grads``."""
        N = self.n_hidden
        if not isinstance(dy, np.ndarray) or dy.ndim != 2 or dy.shape[1] != 2 * N:
            raise ValueError(f"dy must have shape (T, {2 * N}) for a bidirectional layer of "
                             f"{N} units per direction, got {getattr(dy, 'shape', type(dy).__name__)}")
        dx_fw, dx_bw = self.each_direction(lambda d: d.backward(dy[:, d.columns], need_dx))
        return dx_fw + dx_bw if need_dx else None

    def __repr__(self) -> str:
        return (f"BiLayer(arch={self.arch.name!r}, n_in={self.n_in}, n_hidden={self.n_hidden}, "
                f"dtype={self.dtype.name}, backend={self.fw.backend!r}, n_params={self.n_params})")
