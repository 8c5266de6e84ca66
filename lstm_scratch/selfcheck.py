"""``lstm-odyssey check``: prove on this machine that every architecture's gradients are right, see
how fast the kernels are, and train a few small networks on JSB Chorales end to end.

For each architecture: the finite-difference error of every parameter tensor and of ∂L/∂x for both
backends, the agreement of the Numba kernel with the NumPy reference (float64) and of float32 with
float64; then the time per step of one online training step (forward, BPTT, momentum update) on
JSB-shaped sequences (88 inputs, 25–129 steps), one thread (what it measures, and why it differs
from ``benchmarks/``, is printed under the table); then short JSB runs of a few architectures
through the real data pipeline and trainer (skipped, with the reason, where the data cannot be had).
"""
from __future__ import annotations

import threading
import time

import numpy as np

from .gradcheck import check_layer, random_layer, random_problem, relative_error
from .layer import Layer
from .timing import time_online_training
from .variants import ARCHITECTURES

GRADIENT_TOLERANCE = 1e-6
KERNEL_TOLERANCE = 1e-10
FLOAT32_TOLERANCE = 1e-4
PARAMETER_SEED, PROBLEM_SEED = 1, 2      # M = 3 inputs, N = 4 blocks, T = 6 steps (random_layer's defaults)

GRADIENT_LEGEND = """\
FD ref, FD numba: the largest relative error ‖a − n‖ / max(‖a‖, ‖n‖) between the analytic gradient a
  and central finite differences n (ε = 1e-6), over every parameter tensor and ∂L/∂x, of the NumPy
  reference and of the Numba kernels. numba/ref: the largest relative difference of y, ∂L/∂x and ∂L/∂θ
  between the two; f32/f64: the same for the float32 kernels against float64."""

TIMING_LEGEND = """\
N={n} 64: N = {n} memory blocks, float64 (32: float32). A cell is µs per time step of online training
  through the Layer API (forward, BPTT including ∂L/∂x, the trainer's Nesterov update), the best of
  {repeats} passes over {sequences} random sequences of 25–129 steps, one thread.
These are not the README's benchmark figures, and may be 1.5–3× higher: benchmarks/bench_layers.py
  calls the kernels directly, skips ∂L/∂x (as a first layer and PyTorch do) and runs 229 JSB-length
  sequences (together ~10–30 % less), and on a shared or busy machine absolute times move by 2× or
  more. Compare cells within this table; for ratios against PyTorch measured in one run use
  benchmarks/bench_layers.py (needs torch==2.13.0).
"""


def check_architecture(arch: str) -> dict:
    """Worst gradient errors per backend, numba-vs-reference and float32-vs-float64 differences."""
    row = {"arch": arch}
    outputs = {}
    for backend in ("reference", "numba"):
        layer = random_layer(arch, seed=PARAMETER_SEED, backend=backend)
        x, dy = random_problem(layer, seed=PROBLEM_SEED)          # the same x, Δ for both backends
        row[f"fd_{backend}"] = max(check_layer(layer, x, dy).values())
        y = layer.forward(x)
        dx = layer.backward(dy)
        outputs[backend] = (y, dx, layer.grad_flat.copy())
    row["numba_vs_reference"] = max(relative_error(a, b)
                                    for a, b in zip(outputs["numba"], outputs["reference"]))
    narrow = random_layer(arch, seed=PARAMETER_SEED, dtype=np.float32)
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

    def gradient(x, dy):
        layer.forward(x)
        layer.backward(dy)
        return layer.grad_flat

    seconds = time_online_training(gradient, list(zip(xs, dys)), layer.flat, lr=learning_rate,
                                   momentum=momentum, repeats=repeats)
    return 1e6 * seconds / lengths.sum()


def compile_kernels(notice_after: float = 2.0) -> None:
    """Compile (or load from Numba's on-disk cache) every kernel the check runs, before the tables.

    The first run compiles 13 architectures × 2 dtypes (half a minute to two minutes, longer on a busy
    machine); later runs load them from the cache in a second or two. So that the first run is not
    silent, a notice is printed if this takes longer than ``notice_after`` seconds: only when compiling."""
    from .parallel import warm_up
    notice = threading.Timer(notice_after, print, ["compiling the kernels of the 13 architectures once "
                                                   "(float64 and float32; cached on disk afterwards) …"],
                             {"flush": True})
    notice.daemon = True
    start = time.perf_counter()
    notice.start()
    try:
        for dtype in ("float64", "float32"):
            warm_up(ARCHITECTURES, dtype, loss="bernoulli")     # the check trains on JSB only
    finally:
        notice.cancel()
    if time.perf_counter() - start > notice_after:
        print(f"  compiled in {time.perf_counter() - start:.0f} s\n", flush=True)


def run_selfcheck(quick: bool = False) -> int:
    """Print both tables; return 0 when every architecture passes, 1 otherwise."""
    from .parallel import pin_threads
    pin_threads(1)
    compile_kernels()
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
    print(GRADIENT_LEGEND)
    print(f"tolerances: finite differences {GRADIENT_TOLERANCE:g}, numba vs reference "
          f"{KERNEL_TOLERANCE:g}, float32 vs float64 {FLOAT32_TOLERANCE:g}\n")

    sizes = (50,) if quick else (20, 50, 100, 200)
    print("Online training step, µs per time step (88 inputs, forward + BPTT + momentum update, "
          "1 thread)")
    columns = [(n, dt) for n in sizes for dt in (np.float64, np.float32)]
    n_sequences, repeats = (15 if quick else 40), 5
    print(f"{'arch':6} " + " ".join(f"{f'N={n} ' + np.dtype(dt).name[-2:]:>10}" for n, dt in columns))
    for arch in ARCHITECTURES:
        cells = [time_training_step(arch, n, dt, n_sequences=n_sequences, repeats=repeats)
                 for n, dt in columns]
        print(f"{arch:6} " + " ".join(f"{c:10.1f}" for c in cells))
    print(TIMING_LEGEND.format(n=sizes[0], repeats=repeats, sequences=n_sequences))
    train_jsb_examples(max_epochs=5 if quick else 20)
    print("\nall architectures passed" if all_ok else "\nSOME ARCHITECTURES FAILED")
    return 0 if all_ok else 1


def train_jsb_examples(max_epochs: int, archs=("V", "CIFG", "NP", "NFG", "GRU"), hidden: int = 50) -> None:
    """Short online-SGD runs on JSB Chorales, one per architecture, with one shared setting (not the
    paper's random search: a smoke test of the whole pipeline and a first look at the variants)."""
    from .datasets import load_task
    from .records import summary_line
    from .train import TrainConfig, train
    try:
        data = load_task("jsb")
    except (OSError, ValueError) as err:
        print(f"JSB runs skipped: the data could not be loaded ({err})")
        return
    print(f"JSB Chorales, N={hidden}, lr=1e-2, m=0.9, no noise, at most {max_epochs} epochs, 1 thread "
          "(test NLL per step; Boulanger-Lewandowski's plain RNN: 8.71, uniform guessing: 61.0)")
    for arch in archs:
        config = TrainConfig("jsb", arch=arch, hidden=hidden, lr=1e-2, momentum=0.9,
                             max_epochs=max_epochs, patience=10)
        print("  " + summary_line(train(config, data=data, threads=1, progress=False)))
