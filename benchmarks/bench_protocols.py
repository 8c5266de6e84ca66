"""µs per training step of JZS's minibatch protocol against the paper's online protocol, on one task.

    python benchmarks/bench_protocols.py                       # xml, LSTM, N = 64, 1 and 2 threads
    python benchmarks/bench_protocols.py --task arithmetic --arch GRU --hidden 128 --sequences 400

One training epoch over the first ``--sequences`` training sequences (float64), timed after a warm-up
epoch; a step is one frame of one sequence (forward + backward + its share of the update). Online: one
update per sequence, full BPTT (threads only matter for evaluation, which is not timed). jzs: batches of
20, windows of 35, norm clipping at 5, on 1 and 2 threads (threads over the sequences of a batch). The
best of ``--repeats`` epochs is reported, with the ratio to online measured in the same run: only ratios
within one run mean anything on a shared machine.
"""
from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"        # before numpy is imported: BLAS stays at one thread, as in training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="xml")
    parser.add_argument("--arch", default="LSTM")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--sequences", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np

    from lstm_scratch.datasets import load_task
    from lstm_scratch.minibatch import DEFAULTS, MinibatchEpoch
    from lstm_scratch.momentum import Momentum
    from lstm_scratch.network import Network
    from lstm_scratch.parallel import pinned_threads

    data = load_task(args.task, "float64")
    inputs = [np.asarray(x, np.float64) for x in data.train.inputs[:args.sequences]]
    targets = list(data.train.targets[:args.sequences])
    steps = sum(len(x) for x in inputs)
    order = np.random.default_rng(0).permutation(len(inputs))
    net = Network(args.arch, data.train.n_in, args.hidden, data.train.n_out, loss=data.train.loss, seed=0)
    start = net.flat.copy()

    def online():
        opt = Momentum(net.flat, 1e-3, 0.9)
        for i in order:
            opt.step(net.loss_and_grad(inputs[i], targets[i])[1])

    def jzs(threads):
        def epoch():
            runner = MinibatchEpoch(net, DEFAULTS["batch"], DEFAULTS["unroll"], DEFAULTS["clip_norm"], threads)
            try:
                runner.run(Momentum(net.flat, 0.1, 0.0), 0.1, inputs, targets, order, 0.0, None)
            finally:
                runner.close()
        return epoch

    def best_us(epoch) -> float:
        times = []
        for _ in range(args.repeats + 1):              # the first epoch warms up (compiles, caches)
            net.flat[:] = start
            t0 = time.perf_counter()
            epoch()
            times.append(time.perf_counter() - t0)
        return 1e6 * min(times[1:]) / steps

    print(f"{args.task}: {len(inputs)} sequences, {steps} steps, {args.arch} N={args.hidden}, "
          f"{net.n_params} parameters, float64")
    with pinned_threads(2):
        reference = best_us(online)
        print(f"online (1 update per sequence)      {reference:7.2f} µs/step   1.00×")
        for threads in (1, 2):
            us = best_us(jzs(threads))
            label = f"{threads} thread{'s' if threads > 1 else ' '}"
            print(f"jzs (batch 20, unroll 35) {label}  {us:7.2f} µs/step   {us / reference:.2f}×")


if __name__ == "__main__":
    main()
