"""``lstm-odyssey check``: prove on this machine that every architecture's gradients are right, see
how fast the kernels are, and train a few small networks on JSB Chorales end to end.

For each architecture: the finite-difference error of every parameter tensor and of ∂L/∂x for both
backends, the agreement of the Numba kernel with the NumPy reference (float64) and of float32 with
float64; then the time per step of one online training step (forward, BPTT, momentum update) on
JSB-shaped sequences (88 inputs, ~60 steps), one thread; then short JSB runs of a few architectures
through the real data pipeline and trainer (skipped, with the reason, where the data cannot be had).
"""
from __future__ import annotations

import time

import numpy as np

from .gradcheck import check_layer, relative_error
from .layer import Layer
from .momentum import Momentum
from .variants import ARCHITECTURES

GRADIENT_TOLERANCE = 1e-6
KERNEL_TOLERANCE = 1e-10
FLOAT32_TOLERANCE = 1e-4


def _random_layer(arch, backend, dtype=np.float64, n_in=3, n_hidden=4):
    layer = Layer(arch, n_in, n_hidden, dtype=dtype, backend=backend)
    layer.flat[:] = np.random.default_rng(1).normal(0.0, 0.5, layer.n_params).astype(dtype)
    return layer


def _problem(n_in=3, n_hidden=4, steps=6):
    rng = np.random.default_rng(2)
    return rng.normal(size=(steps, n_in)), rng.normal(size=(steps, n_hidden))


def check_architecture(arch: str) -> dict:
    """Worst gradient errors per backend, numba-vs-reference and float32-vs-float64 differences."""
    x, dy = _problem()
    row = {"arch": arch}
    outputs = {}
    for backend in ("reference", "numba"):
        layer = _random_layer(arch, backend)
        row[f"fd_{backend}"] = max(check_layer(layer, x, dy).values())
        y = layer.forward(x)
        dx = layer.backward(dy)
        outputs[backend] = (y, dx, layer.grad_flat.copy())
    row["numba_vs_reference"] = max(relative_error(a, b)
                                    for a, b in zip(outputs["numba"], outputs["reference"]))
    narrow = _random_layer(arch, "numba", np.float32)
    y32 = narrow.forward(x.astype(np.float32))
    dx32 = narrow.backward(dy.astype(np.float32))
    row["float32_vs_float64"] = max(relative_error(a, b) for a, b in
                                    zip(outputs["numba"], (y32, dx32, narrow.grad_flat)))
    row["ok"] = (max(row["fd_reference"], row["fd_numba"]) <= GRADIENT_TOLERANCE
                 and row["numba_vs_reference"] <= KERNEL_TOLERANCE
                 and row["float32_vs_float64"] <= FLOAT32_TOLERANCE)
    return row


def time_training_step(arch: str, n_hidden: int, dtype, n_sequences: int = 40, n_in: int = 88,
                       momentum: float = 0.9, learning_rate: float = 1e-3, repeats: int = 5) -> float:
    """Best-of-``repeats`` µs per time step of online training on JSB-shaped random piano rolls:
    forward, BPTT from a random upstream gradient, and the trainer's own update
    (:class:`lstm_scratch.momentum.Momentum`, Nesterov, ε = (1 − m)·η)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(25, 130, n_sequences)
    xs = [(rng.random((T, n_in)) < 0.05).astype(dtype) for T in lengths]
    dys = [rng.normal(0.0, 1.0, (T, n_hidden)).astype(dtype) for T in lengths]
    layer = Layer(arch, n_in, n_hidden, dtype=dtype)
    opt = Momentum(layer.flat, learning_rate, momentum)      # the trainer's (Nesterov) update step
    layer.forward(xs[0])                       # compile (or load from the cache) before timing
    layer.backward(dys[0])
    opt.step(layer.grad_flat)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for x, dy in zip(xs, dys):
            layer.forward(x)
            layer.backward(dy)
            opt.step(layer.grad_flat)
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / lengths.sum()


def run_selfcheck(quick: bool = False) -> int:
    """Print both tables; return 0 when every architecture passes, 1 otherwise."""
    from .parallel import pin_threads
    pin_threads(1)
    print("Gradient checks (float64; finite differences on every tensor, T=6, M=3, N=4)")
    header = f"{'arch':6} {'FD ref':>9} {'FD numba':>9} {'numba/ref':>10} {'f32/f64':>9}  verdict"
    print(header)
    print("-" * len(header))
    all_ok = True
    for arch in ARCHITECTURES:
        r = check_architecture(arch)
        all_ok &= r["ok"]
        print(f"{arch:6} {r['fd_reference']:9.1e} {r['fd_numba']:9.1e} {r['numba_vs_reference']:10.1e} "
              f"{r['float32_vs_float64']:9.1e}  {'ok' if r['ok'] else 'FAILED'}")
    print(f"tolerances: finite differences {GRADIENT_TOLERANCE:g}, numba vs reference "
          f"{KERNEL_TOLERANCE:g}, float32 vs float64 {FLOAT32_TOLERANCE:g}\n")

    sizes = (50,) if quick else (20, 50, 100, 200)
    print("Online training step, µs per time step (88 inputs, forward + BPTT + momentum update, "
          "1 thread)")
    columns = [(n, dt) for n in sizes for dt in (np.float64, np.float32)]
    print(f"{'arch':6} " + " ".join(f"{f'N={n} ' + np.dtype(dt).name[-2:]:>10}" for n, dt in columns))
    for arch in ARCHITECTURES:
        cells = [time_training_step(arch, n, dt, n_sequences=15 if quick else 40) for n, dt in columns]
        print(f"{arch:6} " + " ".join(f"{c:10.1f}" for c in cells))
    print("\nFor ratios against PyTorch run benchmarks/bench_layers.py (needs torch==2.13.0).\n")
    train_jsb_examples(max_epochs=5 if quick else 20)
    print("\nall architectures passed" if all_ok else "\nSOME ARCHITECTURES FAILED")
    return 0 if all_ok else 1


def train_jsb_examples(max_epochs: int, archs=("V", "CIFG", "NP", "NFG", "GRU"), hidden: int = 50) -> None:
    """Short online-SGD runs on JSB Chorales, one per architecture, with one shared setting (not the
    paper's random search: a smoke test of the whole pipeline and a first look at the variants)."""
    from .datasets import load
    from .records import summary_line
    from .train import TaskData, TrainConfig, train
    try:
        data = TaskData(*(load("jsb", split) for split in ("train", "valid", "test")))
    except (OSError, ValueError) as err:
        print(f"JSB runs skipped: the data could not be loaded ({err})")
        return
    print(f"JSB Chorales, N={hidden}, lr=1e-2, m=0.9, no noise, at most {max_epochs} epochs, 1 thread "
          "(test NLL per step; Boulanger-Lewandowski's plain RNN: 8.71, uniform guessing: 61.0)")
    for arch in archs:
        config = TrainConfig("jsb", arch=arch, hidden=hidden, lr=1e-2, momentum=0.9,
                             max_epochs=max_epochs, patience=10)
        print("  " + summary_line(train(config, data=data, threads=1, progress=False)))
