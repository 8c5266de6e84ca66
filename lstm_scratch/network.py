"""A network of the paper (SPEC §5): one recurrent layer — unidirectional, or a forward and a backward
layer side by side — a dense output layer, and a loss; every parameter in one flat vector.

    hᵗ = [y_fwᵗ | y_bwᵗ]  (or y_fwᵗ alone)        aᵗ = W_out hᵗ + b_out        loss = ℓ(a, target)

with ℓ the softmax cross-entropy per frame (TIMIT), the independent-Bernoulli NLL (music) or CTC
(handwriting), looked up in :mod:`.objectives`; :mod:`.losses` and :mod:`.ctc` fold the output
non-linearity into the loss. Backward:
∂ℓ/∂W_out = Σ_t δaᵗ hᵗᵀ, ∂ℓ/∂b_out = Σ_t δaᵗ, δhᵗ = W_outᵀ δaᵗ, then BPTT through the layer.

``layers=L`` stacks L recurrent layers (as ``torch.nn.LSTM(num_layers=L)``; JZS searched 1–4): layer
ℓ > 1 reads the output hᵗ of layer ℓ − 1 (both directions concatenated when bidirectional), and the
output layer reads the last one. Backward runs through every layer; ∂L/∂(input of layer ℓ) is the
δ the layer below receives (the first layer computes no ∂L/∂x).

Truncated BPTT (:mod:`.minibatch`): ``loss_and_grad(x, target, state)`` starts a unidirectional
network from a given state, one (h, c) per layer, and ``final_state()`` hands the state after the last
step to the next window; no gradient crosses the window's start. ``replica()`` is a second network on
the same parameter vector with its own gradient and caches, for threads over the sequences of a batch.

Parameter names: ``fw.<name>`` (and ``bw.<name>``) for the (first) recurrent layer, names as in
:mod:`.variants`; ``l<ℓ>.fw.<name>`` (``l<ℓ>.bw.<name>``) for layer ℓ ≥ 2; ``out.W`` (K, H) and
``out.b`` (K,). The flat vector holds layer 1, layer 2, …, then the output layer. Output weights are
initialised like the recurrent ones, N(0, init_std²), biases 0.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import MISSING, asdict, dataclass, fields

import numpy as np

from .atomic import atomic_write
from .checks import check_positive_integer, config_diff
from .layer import BiLayer, Direction, Layer, _check_dtype
from .objectives import objective
from .variants import Layout


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that fixes the shape of a network's parameter vector (saved with the parameters)."""

    arch: str            # architecture name, one of ARCHITECTURES
    n_in: int            # inputs per frame
    n_hidden: int        # blocks (cells) per direction
    n_out: int           # output units (classes incl. the CTC blank, or notes)
    loss: str            # "softmax", "bernoulli" or "ctc"
    bidirectional: bool  # a forward and a backward recurrent layer
    dtype: str           # "float64" or "float32"
    blank: int = 0       # the CTC blank's output index (unused by the other losses)
    layers: int = 1      # stacked recurrent layers (files saved before stacking existed have none: 1)


# What a parameter file written before a field existed stands for (e.g. no "layers": one layer).
_SPEC_DEFAULTS = {f.name: f.default for f in fields(NetworkSpec) if f.default is not MISSING}


class Network:
    """``Network(arch="V", n_in=88, n_hidden=50, n_out=88, loss="bernoulli")``; see the module docstring.

    ``net.flat`` holds every parameter; ``net.params`` names views into it. ``loss_and_grad(x, target)``
    returns the sequence's loss and the gradient with ``flat``'s shape — the network's own buffer,
    overwritten by the next call (copy it to keep it). ``net.layers`` holds the recurrent layers (Layer or
    BiLayer), bottom first; ``net.rnn`` is the first, for ``layers=1`` the only one. ``flat=`` (a vector
    of the right size and dtype) makes the network use it as its parameters, uninitialised: how
    :meth:`replica` shares them.
    """

    def __init__(self, arch: str = "V", n_in: int = 1, n_hidden: int = 1, n_out: int = 1,
                 loss: str = "bernoulli", bidirectional: bool = False, dtype=np.float64, seed=0,
                 forget_bias: float | None = None, backend: str = "numba", init_std: float = 0.1,
                 blank: int = 0, layers: int = 1, flat: np.ndarray | None = None):
        self.objective = objective(loss)                # raises for an unknown loss
        check_positive_integer("n_out", n_out)
        if self.objective.uses_blank and not (isinstance(blank, (int, np.integer)) and 0 <= blank < n_out):
            raise ValueError(f"blank={blank!r}: the CTC blank must be an output index in [0, {n_out - 1}]")
        dtype = _check_dtype(dtype)
        check_positive_integer("layers", layers)
        layout = Layout(arch, n_in, n_hidden)          # checks the architecture and the sizes
        self.spec = NetworkSpec(layout.arch.name, layout.n_in, layout.n_hidden, int(n_out), loss,
                                bool(bidirectional), dtype.name, int(blank), int(layers))
        self.arch, self.dtype, self.blank = layout.arch, dtype, int(blank)
        self.loss_name, self.backend = loss, backend
        directions = 2 if bidirectional else 1
        width = directions * n_hidden
        inputs = [layout.n_in] + [width] * (layers - 1)      # what each layer reads
        sizes = [directions * Layout(arch, m, n_hidden).size for m in inputs]
        rnn_size = sum(sizes)
        size = rnn_size + n_out * width + n_out
        shared = flat is not None
        if shared and not (isinstance(flat, np.ndarray) and flat.shape == (size,) and flat.dtype == dtype):
            raise ValueError(f"flat must be a {dtype} vector of {size} parameters, got "
                             f"{getattr(flat, 'dtype', type(flat).__name__)} {getattr(flat, 'shape', '')}")
        # A given vector (a replica's: shared with another network) is used as it is, not initialised.
        self.flat = flat if shared else np.zeros(size, dtype)
        self.grad = np.zeros(size, dtype)
        rng = np.random.default_rng(seed)
        kind = BiLayer if bidirectional else Layer
        starts = np.cumsum([0] + sizes).tolist()         # where each layer's parameters begin
        self.layers = tuple(
            kind(arch, m, n_hidden, dtype=dtype, seed=rng, forget_bias=forget_bias, backend=backend,
                 init_std=init_std, flat=self.flat[a:b], grad_flat=self.grad[a:b],
                 keep_values=shared)
            for m, a, b in zip(inputs, starts[:-1], starts[1:]))
        self.rnn = self.layers[0]
        out_w = slice(rnn_size, rnn_size + n_out * width)
        self.W_out = self.flat[out_w].reshape(n_out, width)
        self.b_out = self.flat[out_w.stop:]
        self._dW_out = self.grad[out_w].reshape(n_out, width)
        self._db_out = self.grad[out_w.stop:]
        if not shared:
            self.W_out[:] = rng.normal(0.0, init_std, self.W_out.shape)
        self.params, self.grads = {}, {}
        for depth, layer in enumerate(self.layers):
            prefix = ("" if depth == 0 else f"l{depth + 1}.") + ("" if bidirectional else "fw.")
            self.params.update({prefix + k: v for k, v in layer.params.items()})
            self.grads.update({prefix + k: v for k, v in layer.grads.items()})
        self.params.update({"out.W": self.W_out, "out.b": self.b_out})
        self.grads.update({"out.W": self._dW_out, "out.b": self._db_out})
        top = self.layers[-1]                          # the layer the output layer reads
        self._directions = (top.directions if bidirectional
                            else (Direction(top, False, slice(0, n_hidden)),))

    def replica(self) -> "Network":
        """A network on this one's parameter vector (``flat`` is shared, not copied) with its own
        gradient buffer and caches: threads can each run ``loss_and_grad`` of another sequence at
        once, and every update of ``flat`` is seen by all. (A fresh ``Network(..., flat=…)`` of the
        same spec.)"""
        return Network(**asdict(self.spec), backend=self.backend, flat=self.flat)

    @property
    def n_params(self) -> int:
        return self.flat.size

    # ------------------------------------------------------------------ forward and backward
    def logits(self, x: np.ndarray) -> np.ndarray:
        """Output pre-activations a = W_out h + b_out of one sequence: (T, n_out). Leaves the network
        untouched (no cache for a backward pass), so threads may call it at once."""
        h = self._below_top(x, keep_cache=False)
        return sum(d.forward(h, keep_cache=False) @ self.W_out[:, d.columns].T
                   for d in self._directions) + self.b_out

    def _below_top(self, x: np.ndarray, keep_cache: bool = True, state=None) -> np.ndarray:
        """The top layer's input: ``x`` passed up through the layers beneath it (x itself for layers=1),
        each from its own initial state when ``state`` (one per layer) is given."""
        for depth, layer in enumerate(self.layers[:-1]):
            x = layer.forward(x, keep_cache) if state is None else layer.forward(x, keep_cache, state[depth])
        return x

    def _check_state(self, state) -> None:
        if state is None:
            return
        if self.spec.bidirectional:
            raise ValueError("state: a bidirectional network has no initial state to carry (its backward "
                             "direction reads the future); truncated BPTT needs one direction")
        if not (isinstance(state, (tuple, list)) and len(state) == len(self.layers)):
            raise ValueError(f"state must be a tuple of one (h0, c0) per layer ({len(self.layers)}), got "
                             f"{state!r:.80}")

    def final_state(self) -> tuple:
        """One (h, c) per layer, bottom first (c None for the gated cells): the state after the last step
        of the last ``loss_and_grad`` — the ``state`` of the next window (unidirectional networks)."""
        if self.spec.bidirectional:
            raise ValueError("final_state: a bidirectional network has no state to carry to a next window")
        return tuple(layer.final_state() for layer in self.layers)

    def loss_and_grad(self, x: np.ndarray, target, state=None) -> tuple[float, np.ndarray]:
        """The sequence's loss (summed over frames) and ∂loss/∂flat (the network's gradient buffer).

        ``state``: one (h0, c0) per layer to start from (a unidirectional network; None: zeros); the
        gradient stops there (truncated BPTT: :mod:`.minibatch`).

        The output layer is split by direction, aᵗ = W_fw y_fwᵗ + W_bw y_bwᵗ + b_out, so each
        direction's recurrent pass and its share of the output GEMMs run together — on its own thread
        when a bidirectional layer is ``concurrent``; only the loss itself is sequential. Stacked layers:
        that split is the top layer's; the layers beneath run whole (each its directions concurrently)."""
        self._check_state(state)
        outputs = {}
        below = self.layers[:-1]
        h_in = self._below_top(x, state=state)

        def forward(d):
            outputs[d] = h = d.forward(h_in) if state is None else d.layer.forward(h_in, True, state[-1])
            return h @ self.W_out[:, d.columns].T

        def backward(d):
            h = outputs[d]
            np.matmul(da.T, h, out=self._dW_out[:, d.columns])
            return d.backward(np.ascontiguousarray(da @ self.W_out[:, d.columns]), need_dx=bool(below))

        a = sum(self._each_direction(forward)) + self.b_out
        loss, da = self.objective.loss_of(a, target, self.blank)
        np.sum(da, axis=0, out=self._db_out)
        dh = self._each_direction(backward)
        if below:       # ∂L/∂(top layer's input): the directions' shares add up; then down the stack
            dh = sum(dh)
            for depth in range(len(below) - 1, -1, -1):
                dh = below[depth].backward(dh, need_dx=depth > 0)
        return loss, self.grad

    def _each_direction(self, work) -> tuple:
        if isinstance(self.layers[-1], BiLayer):
            return self.layers[-1].each_direction(work)
        return (work(self._directions[0]),)

    def predict(self, x: np.ndarray):
        """The task's prediction: per-frame class probabilities (softmax), note probabilities
        (bernoulli), or the best-path label sequence (ctc): the objective's ``prediction``."""
        return self.objective.predict(self.logits(x), self.blank)

    def evaluate(self, inputs, targets, threads: int = 1) -> float:
        """The objective's metric over a set of sequences (``self.objective.label``). ``threads`` > 1
        runs the sequences' forward passes on that many threads (the kernels release the GIL); same result."""
        if threads > 1 and len(inputs) > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                outputs = list(pool.map(self.logits, inputs))
        else:
            outputs = [self.logits(x) for x in inputs]
        return self.objective.score(outputs, targets, self.blank)

    # ------------------------------------------------------------------ save and load
    def save(self, path: str | os.PathLike) -> None:
        """Write every named parameter and the network's spec to ``path`` (.npz), atomically."""
        atomic_write(path, lambda handle: np.savez(handle, __spec__=json.dumps(asdict(self.spec)),
                                                    **self.params))

    def load(self, path: str | os.PathLike) -> None:
        """Load parameters saved by :meth:`save`; the saved spec must equal this network's (nothing is
        changed otherwise)."""
        self._assign(*_read_parameter_file(path), path)

    @classmethod
    def from_file(cls, path: str | os.PathLike, backend: str = "numba") -> "Network":
        """Rebuild a network from a file written by :meth:`save`."""
        spec, arrays = _read_parameter_file(path)
        net = cls(**spec, backend=backend)
        net._assign(spec, arrays, path)
        return net

    def _assign(self, spec: dict, arrays: dict, path) -> None:
        spec = {**_SPEC_DEFAULTS, **spec}               # a field added since the file was written
        if spec != asdict(self.spec):
            diff = config_diff(spec, asdict(self.spec))
            raise ValueError(f"{path}: saved network differs from this one (field: (saved, this)) {diff}")
        for name, view in self.params.items():
            view[...] = arrays[name]

    def __repr__(self) -> str:
        s = self.spec
        return (f"Network(arch={s.arch!r}, n_in={s.n_in}, n_hidden={s.n_hidden}, n_out={s.n_out}, "
                f"loss={s.loss!r}, bidirectional={s.bidirectional}, dtype={s.dtype}, "
                + (f"layers={s.layers}, " if s.layers > 1 else "") + f"n_params={self.n_params})")


def _read_parameter_file(path) -> tuple[dict, dict]:
    """The spec and the named arrays of a file written by :meth:`Network.save`; a ``ValueError`` naming
    the file for anything else (junk, a truncated or damaged .npz, an .npy, another program's .npz)."""
    def not_ours(why):
        return ValueError(f"{path}: not a readable lstm_scratch parameter file ({why}); give a file written "
                          "by Network.save (a run's params.npz)")
    try:
        saved = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:   # numpy's errors name no file
        raise not_ours(f"{type(err).__name__}: {err}") from err
    if not isinstance(saved, np.lib.npyio.NpzFile):
        raise not_ours("a single .npy array, not an .npz archive")
    with saved:
        if "__spec__" not in saved.files:
            raise ValueError(f"{path}: not a lstm_scratch parameter file (no __spec__ entry)")
        try:
            return (json.loads(str(saved["__spec__"])),
                    {name: saved[name] for name in saved.files if name != "__spec__"})
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:   # damaged member
            raise not_ours(f"{type(err).__name__}: {err}") from err
