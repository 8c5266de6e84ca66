"""float64, float32 and ``mixed`` (float32 network, float64 master weights and velocity) on JSB: does
float32 freeze the low-learning-rate end of the search (SPEC §6), does mixed follow float64, and what
does each save?

For every (η, m): three copies of one network, started from the same (float32-representable) weights,
trained on JSB's training split in the same order for ``--epochs`` epochs without input noise — one
Nesterov update per sequence, as the trainer does (``Momentum`` for float64 / float32,
``MasterMomentum`` for mixed). Reported: the validation NLL of each; the share of parameters float64
moved that stayed exactly where they started (frozen); the distance from float64's parameters relative
to the distance float64 travelled; training seconds per epoch and float64's time over each. Only the
ratios within one run mean anything: the machine is shared. Needs JSB (fetched on first use, or
``LSTM_SCRATCH_MIRROR``).

    python benchmarks/bench_mixed.py                                   # N = 63, 5 epochs, η 1e-6 and 1e-5
    python benchmarks/bench_mixed.py --hidden 20 --epochs 10 --settings 1e-6,0.99 1e-4,0.9
"""
from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"        # before numpy / numba are imported: one thread each

MODES = ("float64", "float32", "mixed")


def run(setting, hidden, epochs, data, seed):
    """{mode: (master parameters as float64, valid NLL, train seconds per epoch)} and the start."""
    import numpy as np
    from lstm_scratch import Network
    from lstm_scratch.momentum import MasterMomentum, Momentum
    lr, m = setting
    start = Network("V", 88, hidden, 88, loss="bernoulli", dtype="float32", seed=seed).flat
    runs = {}
    for mode in MODES:
        net = Network("V", 88, hidden, 88, loss="bernoulli", dtype="float64" if mode == "float64" else "float32")
        net.flat[:] = start
        runs[mode] = (net, (MasterMomentum if mode == "mixed" else Momentum)(net.flat, lr, m))
        first = data["float64" if mode == "float64" else "float32"].train      # compile before timing;
        runs[mode][1].step(0 * net.loss_and_grad(first.inputs[0], first.targets[0])[1])   # a zero step
    seconds = dict.fromkeys(MODES, 0.0)
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(data["float64"].train.inputs))
        for mode, (net, opt) in runs.items():
            train = data["float64" if mode == "float64" else "float32"].train
            t0 = time.perf_counter()
            for index in order:
                opt.step(net.loss_and_grad(train.inputs[index], train.targets[index])[1])
            seconds[mode] += time.perf_counter() - t0
    out = {}
    for mode, (net, opt) in runs.items():
        valid = data["float64" if mode == "float64" else "float32"].valid
        out[mode] = (opt.theta.astype(np.float64), net.evaluate(valid.inputs, valid.targets), seconds[mode] / epochs)
    return out, start.astype(np.float64)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=63, help="N (63: the search's median)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--settings", nargs="+", default=["1e-6,0.99", "1e-6,0.9", "1e-5,0.99", "1e-5,0.9"],
                        metavar="LR,M", help="learning rate and momentum pairs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import numpy as np
    from lstm_scratch.datasets import load_task
    data = {dtype: load_task("jsb", dtype) for dtype in ("float64", "float32")}
    print(f"JSB, V, N = {args.hidden}, {args.epochs} epochs, no input noise, 1 thread")
    for text in args.settings:
        lr, m = (float(v) for v in text.split(","))
        out, start = run((lr, m), args.hidden, args.epochs, data, args.seed)
        exact, _, exact_s = out["float64"]
        moved = exact != start
        travel = np.linalg.norm(exact - start)
        cells = []
        for mode in MODES:
            theta, nll, s = out[mode]
            cell = f"{mode}: NLL {nll:.6f}, {s:.2f} s/epoch"
            if mode != "float64":
                frozen = np.mean((theta == start)[moved])
                cell += (f" ({exact_s / s:.2f}× float64's speed), frozen {frozen:.2%}, "
                         f"off float64 by {np.linalg.norm(theta - exact) / travel:.1e}")
            cells.append(cell)
        print(f"η = {lr:g}, m = {m:g} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
