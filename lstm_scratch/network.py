"""A network of the paper (SPEC §5): one recurrent layer — unidirectional, or a forward and a backward
layer side by side — a dense output layer, and a loss; every parameter in one flat vector.

    hᵗ = [y_fwᵗ | y_bwᵗ]  (or y_fwᵗ alone)        aᵗ = W_out hᵗ + b_out        loss = ℓ(a, target)

with ℓ the softmax cross-entropy per frame (TIMIT), the independent-Bernoulli NLL (music) or CTC
(handwriting), looked up in :mod:`.objectives`; :mod:`.losses` and :mod:`.ctc` fold the output
non-linearity into the loss. Backward:
∂ℓ/∂W_out = Σ_t δaᵗ hᵗᵀ, ∂ℓ/∂b_out = Σ_t δaᵗ, δhᵗ = W_outᵀ δaᵗ, then BPTT through the layer.

Parameter names: ``fw.<name>`` (and ``bw.<name>``) for the recurrent layer, names as in
:mod:`.variants`; ``out.W`` (K, H) and ``out.b`` (K,). Output weights are initialised like the
recurrent ones, N(0, init_std²), biases 0.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

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


class Network:
    """``Network(arch="V", n_in=88, n_hidden=50, n_out=88, loss="bernoulli")``; see the module docstring.

    ``net.flat`` holds every parameter; ``net.params`` names views into it. ``loss_and_grad(x, target)``
    returns the sequence's loss and the gradient with ``flat``'s shape — the network's own buffer,
    overwritten by the next call (copy it to keep it).
    """

    def __init__(self, arch: str = "V", n_in: int = 1, n_hidden: int = 1, n_out: int = 1,
                 loss: str = "bernoulli", bidirectional: bool = False, dtype=np.float64, seed=0,
                 forget_bias: float = 0.0, backend: str = "numba", init_std: float = 0.1,
                 blank: int = 0):
        self.objective = objective(loss)                # raises for an unknown loss
        check_positive_integer("n_out", n_out)
        if self.objective.uses_blank and not (isinstance(blank, (int, np.integer)) and 0 <= blank < n_out):
            raise ValueError(f"blank={blank!r}: the CTC blank must be an output index in [0, {n_out - 1}]")
        dtype = _check_dtype(dtype)
        layout = Layout(arch, n_in, n_hidden)          # checks the architecture and the sizes
        self.spec = NetworkSpec(layout.arch.name, layout.n_in, layout.n_hidden, int(n_out), loss,
                                bool(bidirectional), dtype.name, int(blank))
        self.arch, self.dtype, self.blank = layout.arch, dtype, int(blank)
        self.loss_name = loss
        directions = 2 if bidirectional else 1
        rnn_size = directions * layout.size
        width = directions * n_hidden
        self.flat = np.zeros(rnn_size + n_out * width + n_out, dtype)
        self.grad = np.zeros_like(self.flat)
        rng = np.random.default_rng(seed)
        kind = BiLayer if bidirectional else Layer
        self.rnn = kind(arch, n_in, n_hidden, dtype=dtype, seed=rng, forget_bias=forget_bias,
                        backend=backend, init_std=init_std, flat=self.flat[:rnn_size],
                        grad_flat=self.grad[:rnn_size])
        out_w = slice(rnn_size, rnn_size + n_out * width)
        self.W_out = self.flat[out_w].reshape(n_out, width)
        self.b_out = self.flat[out_w.stop:]
        self._dW_out = self.grad[out_w].reshape(n_out, width)
        self._db_out = self.grad[out_w.stop:]
        self.W_out[:] = rng.normal(0.0, init_std, self.W_out.shape)
        prefix = "" if bidirectional else "fw."
        self.params = {prefix + k: v for k, v in self.rnn.params.items()}
        self.params.update({"out.W": self.W_out, "out.b": self.b_out})
        self.grads = {prefix + k: v for k, v in self.rnn.grads.items()}
        self.grads.update({"out.W": self._dW_out, "out.b": self._db_out})
        self._directions = (self.rnn.directions if bidirectional
                            else (Direction(self.rnn, False, slice(0, n_hidden)),))

    @property
    def n_params(self) -> int:
        return self.flat.size

    # ------------------------------------------------------------------ forward and backward
    def logits(self, x: np.ndarray) -> np.ndarray:
        """Output pre-activations a = W_out h + b_out of one sequence: (T, n_out). Leaves the network
        untouched (no cache for a backward pass), so threads may call it at once."""
        return sum(d.forward(x, keep_cache=False) @ self.W_out[:, d.columns].T
                   for d in self._directions) + self.b_out

    def loss_and_grad(self, x: np.ndarray, target) -> tuple[float, np.ndarray]:
        """The sequence's loss (summed over frames) and ∂loss/∂flat (the network's gradient buffer).

        The output layer is split by direction, aᵗ = W_fw y_fwᵗ + W_bw y_bwᵗ + b_out, so each
        direction's recurrent pass and its share of the output GEMMs run together — on its own thread
        when a bidirectional layer is ``concurrent``; only the loss itself is sequential."""
        outputs = {}

        def forward(d):
            outputs[d] = h = d.forward(x)
            return h @ self.W_out[:, d.columns].T

        def backward(d):
            h = outputs[d]
            np.matmul(da.T, h, out=self._dW_out[:, d.columns])
            d.backward(np.ascontiguousarray(da @ self.W_out[:, d.columns]), need_dx=False)

        a = sum(self._each_direction(forward)) + self.b_out
        loss, da = self.objective.loss_of(a, target, self.blank)
        np.sum(da, axis=0, out=self._db_out)
        self._each_direction(backward)
        return loss, self.grad

    def _each_direction(self, work) -> tuple:
        if isinstance(self.rnn, BiLayer):
            return self.rnn.each_direction(work)
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
        if spec != asdict(self.spec):
            diff = config_diff(spec, asdict(self.spec))
            raise ValueError(f"{path}: saved network differs from this one (field: (saved, this)) {diff}")
        for name, view in self.params.items():
            view[...] = arrays[name]

    def __repr__(self) -> str:
        s = self.spec
        return (f"Network(arch={s.arch!r}, n_in={s.n_in}, n_hidden={s.n_hidden}, n_out={s.n_out}, "
                f"loss={s.loss!r}, bidirectional={s.bidirectional}, dtype={s.dtype}, "
                f"n_params={self.n_params})")


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
