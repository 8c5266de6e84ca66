"""One epoch of JSB-shaped online training of the whole model — recurrent layer, 88 sigmoid outputs,
Bernoulli NLL, momentum update — ours (``lstm_scratch.Network``) against PyTorch in the same run.

PyTorch reference: ``nn.LSTM`` (fused, float32, no peepholes) + ``nn.Linear`` + ``BCEWithLogitsLoss``
(summed) + ``torch.optim.SGD`` with Nesterov momentum, one update per sequence, one thread. Ours:
``Network(arch, 88, N, 88, loss="bernoulli")``, ``loss_and_grad`` and the trainer's own Nesterov update
(``lstm_scratch.momentum.Momentum.step``).
Same synthetic JSB-shaped data as ``bench_layers.py`` (229 sequences, ~13.5k steps). Only the ratios
mean anything: the machine is shared.

    python benchmarks/bench_model.py                       # V at N = 20, 50, 100, 200
    python benchmarks/bench_model.py --archs V CIFG GRU --sizes 50 --repeats 5
"""
from __future__ import annotations

import argparse
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"        # before numpy / numba / torch are imported: one thread each

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_layers import N_INPUTS, jsb_like_lengths  # noqa: E402


def make_data(n_sequences, seed):
    """Piano-roll-like inputs (~4 of 88 keys down) and the next frame as the target."""
    import numpy as np
    rng = np.random.default_rng(seed)
    rolls = [(rng.random((T + 1, N_INPUTS)) < 0.045).astype(np.float64)
             for T in jsb_like_lengths(n_sequences, seed)]
    return [r[:-1] for r in rolls], [r[1:] for r in rolls]


def time_ours(arch, n_hidden, dtype, xs, ts, repeats):
    from lstm_scratch import Network
    from lstm_scratch.timing import time_online_training
    net = Network(arch, N_INPUTS, n_hidden, N_INPUTS, loss="bernoulli", dtype=dtype, seed=0)
    sequences = [(x.astype(dtype), t.astype(dtype)) for x, t in zip(xs, ts)]

    def gradient(x, t):
        return net.loss_and_grad(x, t)[1]

    # per sequence the trainer's (Nesterov) update step follows; one untimed epoch first
    return time_online_training(gradient, sequences, net.flat, lr=1e-4, momentum=0.9, repeats=repeats,
                                warm_up=len(sequences))


def time_torch(n_hidden, xs, ts, repeats):
    import torch
    from lstm_scratch.timing import best_of
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(N_INPUTS, n_hidden)
    out = torch.nn.Linear(n_hidden, N_INPUTS)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    params = list(lstm.parameters()) + list(out.parameters())
    optimiser = torch.optim.SGD(params, lr=1e-4, momentum=0.9, nesterov=True)
    xs = [torch.tensor(x, dtype=torch.float32).unsqueeze(1) for x in xs]
    ts = [torch.tensor(t, dtype=torch.float32) for t in ts]

    def epoch():
        for x, t in zip(xs, ts):
            optimiser.zero_grad(set_to_none=False)
            h, _ = lstm(x)
            loss = loss_fn(out(h[:, 0]), t)
            loss.backward()
            optimiser.step()
    return best_of(epoch, repeats, warm_up=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["V"], metavar="ARCH")
    parser.add_argument("--sizes", nargs="+", type=int, default=[20, 50, 100, 200], metavar="N")
    parser.add_argument("--repeats", type=int, default=3, help="epochs per measurement; the best counts")
    parser.add_argument("--sequences", type=int, default=229, help="sequences per epoch (JSB: 229)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import numpy as np
    xs, ts = make_data(args.sequences, args.seed)
    steps = sum(len(x) for x in xs)
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("torch not installed (pip install torch==2.13.0): PyTorch columns left out")
    print(f"whole model, one epoch: {len(xs)} sequences, {steps} steps, 88 in / 88 sigmoid out, 1 thread")
    print(f"{'arch':6} {'N':>4} {'ours f64':>10} {'ours f32':>10} {'torch f32':>10} "
          f"{'torch/f32':>10} {'torch/f64':>10}   (µs per step)")
    for n_hidden in args.sizes:
        reference = time_torch(n_hidden, xs, ts, args.repeats) if have_torch else None
        for arch in args.archs:
            f64 = time_ours(arch, n_hidden, np.float64, xs, ts, args.repeats)
            f32 = time_ours(arch, n_hidden, np.float32, xs, ts, args.repeats)
            us = [1e6 * s / steps for s in (f64, f32)]
            if reference is None:
                print(f"{arch:6} {n_hidden:4d} {us[0]:10.2f} {us[1]:10.2f}")
                continue
            ref_us = 1e6 * reference / steps
            print(f"{arch:6} {n_hidden:4d} {us[0]:10.2f} {us[1]:10.2f} {ref_us:10.2f} "
                  f"{reference / f32:9.2f}x {reference / f64:9.2f}x")


if __name__ == "__main__":
    main()
