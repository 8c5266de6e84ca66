"""One epoch of JSB-shaped online training for one recurrent layer: our Numba kernels against PyTorch.

Per sequence: the layer's forward, backward from an upstream gradient, and the trainer's own Nesterov
momentum update of its parameters (``lstm_scratch.momentum.Momentum.step``; PyTorch: ``SGD`` with
``nesterov=True``) — what online training with one update per sequence does (SPEC §10). The data
are synthetic but JSB-shaped: 229 sequences with lengths drawn like JSB Chorales' training set
(median 57, 25–129 steps, ~13.5k steps in all), 88 binary inputs. Everything runs on one thread (Numba, BLAS, PyTorch).

Reported per architecture and hidden size N: µs per time step (the best of ``--repeats`` epochs) for our
kernels in float64 and float32, for ``torch.nn.LSTM`` float32 (fused, no peepholes — the speed a PyTorch
user gets for vanilla-like LSTM) and for a PyTorch autograd twin of the same architecture (what a
PyTorch user needs for the variants), and the ratios measured in this run. The machine is shared:
only the ratios mean anything. Also: JIT compile time per dtype and the time from process start to
the first result with a warm on-disk cache (``--startup``).

    python benchmarks/bench_layers.py                      # everything (several minutes)
    python benchmarks/bench_layers.py --archs V --sizes 20 50 --repeats 5 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"        # before numpy / numba / torch are imported: one thread each

N_INPUTS = 88


def jsb_like_lengths(n_sequences, seed):
    """Lengths like JSB Chorales' training set: log-normal around 57 (quartiles ~48 / 65), 25–129."""
    import numpy as np
    rng = np.random.default_rng(seed)
    return np.clip(np.round(57 * np.exp(0.23 * rng.normal(size=n_sequences))), 25, 129).astype(int)


def make_data(n_sequences, n_hidden_max, seed):
    """Binary piano-roll-like inputs (~4 of 88 keys down) and upstream gradients per sequence."""
    import numpy as np
    rng = np.random.default_rng(seed)
    lengths = jsb_like_lengths(n_sequences, seed)
    xs = [(rng.random((T, N_INPUTS)) < 0.045).astype(np.float64) for T in lengths]
    dys = [0.1 * rng.normal(size=(T, n_hidden_max)) for T in lengths]
    return xs, dys


# ---------------------------------------------------------------------------------------------
# Ours
# ---------------------------------------------------------------------------------------------
def time_ours(arch, n_hidden, dtype, xs, dys, repeats, seed=0):
    """Best seconds per epoch (and the number of steps) for our kernels."""
    import numpy as np
    from lstm_scratch import kernels
    from lstm_scratch.timing import time_online_training
    from lstm_scratch.variants import Layout
    layout = Layout(arch, N_INPUTS, n_hidden)
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-0.1, 0.1, layout.size).astype(dtype)
    grad = np.zeros_like(theta)
    params, grads = layout.blocks(theta), layout.blocks(grad)
    xs = [x.astype(dtype) for x in xs]
    dys = [np.ascontiguousarray(dy[:, :n_hidden], dtype=dtype) for dy in dys]

    def gradient(x, dy):
        _, cache = kernels.forward(arch, params, x)
        # like PyTorch here, whose input needs no gradient: a first layer skips ∂L/∂x
        kernels.backward(arch, params, cache, dy, grads, need_dx=False)
        return grad

    # per sequence the trainer's (Nesterov) update step follows; the first sequence warms up untimed
    return time_online_training(gradient, list(zip(xs, dys)), theta, lr=1e-4, momentum=0.9,
                                repeats=repeats)


# ---------------------------------------------------------------------------------------------
# PyTorch: nn.LSTM and autograd twins of every architecture
# ---------------------------------------------------------------------------------------------
def time_torch_lstm(n_hidden, xs, dys, repeats):
    """Best seconds per epoch for torch.nn.LSTM float32 (fused kernel, no peepholes)."""
    import torch
    from lstm_scratch.timing import best_of
    lstm = torch.nn.LSTM(N_INPUTS, n_hidden)
    opt = torch.optim.SGD(lstm.parameters(), lr=1e-4, momentum=0.9, nesterov=True)
    data = [(torch.tensor(x, dtype=torch.float32)[:, None, :],
             torch.tensor(dy[:, :n_hidden], dtype=torch.float32)[:, None, :]) for x, dy in zip(xs, dys)]

    def epoch():
        for x, dy in data:
            out, _ = lstm(x)
            out.backward(dy)
            opt.step()
            opt.zero_grad()

    return best_of(epoch, repeats, warm_up=True)


def torch_twin(arch, n_hidden):
    """A PyTorch autograd layer of the same architecture: (parameters, forward(x) -> y). The input
    projection of all steps is one matmul, as in our kernels; the recurrence runs step by step.
    LSTM variants are written here; GRU / MUT1–3 come from ``torch_gated_cells.py``."""
    import numpy as np
    import torch
    from lstm_scratch.variants import Layout, get
    arch = get(arch)
    layout = Layout(arch, N_INPUTS, n_hidden)
    gen = torch.Generator().manual_seed(0)
    P = {name: torch.nn.Parameter(0.2 * torch.rand(shape, generator=gen) - 0.1)
         for name, shape in layout.shapes.items()}
    N = n_hidden
    W = lambda gates: torch.cat([P[f"W_{g}"] for g in gates])        # noqa: E731

    def lstm_forward(x):
        gates = arch.gates
        xw = x @ W(gates).T + torch.cat([P[f"b_{g}"] for g in gates])
        R = torch.cat([P[f"R_{g}"] for g in gates]).T
        col = {g: k for k, g in enumerate(gates)}
        y = c = torch.zeros(N)
        prev = {g: torch.zeros(N) for g in "ifo"}
        act_g = torch.tanh if arch.input_activation else (lambda a: a)
        act_h = torch.tanh if arch.output_activation else (lambda a: a)
        outputs = []
        for t in range(x.shape[0]):
            a = xw[t] + y @ R
            pre = {g: a[col[g] * N:(col[g] + 1) * N] for g in gates}
            if arch.full_gate_recurrence:
                pre = {g: (v if g == "z" else v + sum(P[f"R_{s}{g}"] @ prev[s] for s in "ifo"))
                       for g, v in pre.items()}
            peep = lambda g, cell: pre[g] + P[f"p_{g}"] * cell if f"p_{g}" in P else pre[g]  # noqa
            z = act_g(pre["z"])
            i = torch.sigmoid(peep("i", c)) if "i" in pre else torch.ones(N)
            f = 1 - i if arch.coupled else (torch.sigmoid(peep("f", c)) if "f" in pre else torch.ones(N))
            c = z * i + c * f
            o = torch.sigmoid(peep("o", c)) if "o" in pre else torch.ones(N)
            y = act_h(c) * o
            prev = {"i": i, "f": f, "o": o}
            outputs.append(y)
        return torch.stack(outputs)

    if arch.family == "gated":                   # the gated helper's twin (also its test oracle)
        from torch_gated_cells import TorchGatedTwin
        flat = np.random.default_rng(0).uniform(-0.1, 0.1, layout.size).astype(np.float32)
        twin = TorchGatedTwin(arch, flat, N_INPUTS, n_hidden)
        return list(twin.params.values()), twin.forward
    return list(P.values()), lstm_forward


def time_torch_twin(arch, n_hidden, xs, dys, repeats):
    """Best seconds for the twin over the given sequences (float32, autograd, momentum SGD)."""
    import torch
    from lstm_scratch.timing import best_of
    params, forward = torch_twin(arch, n_hidden)
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9, nesterov=True)
    data = [(torch.tensor(x, dtype=torch.float32), torch.tensor(dy[:, :n_hidden], dtype=torch.float32))
            for x, dy in zip(xs, dys)]

    def epoch():
        for x, dy in data:
            forward(x).backward(dy)
            opt.step()
            opt.zero_grad()

    return best_of(epoch, repeats, warm_up=True)


# ---------------------------------------------------------------------------------------------
# Start-up: compile time and process start to first result with a warm cache
# ---------------------------------------------------------------------------------------------
_FIRST_RESULT = """
import time, numpy as np
from lstm_scratch import kernels
from lstm_scratch.variants import LSTM_VARIANTS
t = time.perf_counter()
for dtype in {dtypes}:
    for arch in {archs}:
        kernels.warmup(arch, dtype)
print(time.perf_counter() - t)
"""


def startup_times(archs, dtypes):
    """(compile seconds per dtype with an empty cache, warm-cache process start → first result)."""
    out = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        for dtype in dtypes:
            code = _FIRST_RESULT.format(dtypes=f"[np.{dtype}]", archs=list(archs))
            seconds = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                     capture_output=True, text=True).stdout.split()[-1]
            out[f"compile_seconds_{dtype}"] = float(seconds)
        code = _FIRST_RESULT.format(dtypes=f"[np.{dtypes[0]}]", archs=[archs[0]])
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        out["warm_start_to_first_result_seconds"] = time.perf_counter() - start
    return out


# ---------------------------------------------------------------------------------------------
def main(argv=None):
    from lstm_scratch.variants import ARCHITECTURES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHITECTURES), metavar="ARCH",
                        help=f"architectures (default: all of {' '.join(ARCHITECTURES)})")
    parser.add_argument("--sizes", nargs="+", type=int, default=[20, 50, 100, 200], metavar="N")
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"],
                        choices=["float64", "float32"])
    parser.add_argument("--repeats", type=int, default=3, help="epochs per measurement; the best counts")
    parser.add_argument("--sequences", type=int, default=229, help="sequences per epoch (JSB: 229)")
    parser.add_argument("--twin-sequences", type=int, default=20,
                        help="sequences for the (slow) PyTorch autograd twins; µs/step is per step")
    parser.add_argument("--no-torch", action="store_true", help="skip every PyTorch measurement")
    parser.add_argument("--startup", action="store_true",
                        help="also measure JIT compile time per dtype and warm-cache start-up")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import numpy as np
    if not args.no_torch:
        import torch
        torch.set_num_threads(1)
    xs, dys = make_data(args.sequences, max(args.sizes), args.seed)
    steps = int(sum(len(x) for x in xs))
    twin_steps = int(sum(len(x) for x in xs[:args.twin_sequences]))
    rows = []
    print(f"{len(xs)} sequences, {steps} steps, {N_INPUTS} inputs; 1 thread; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}")
    for n_hidden in args.sizes:
        ref = None if args.no_torch else time_torch_lstm(n_hidden, xs, dys, args.repeats) / steps * 1e6
        for arch in args.archs:
            row = {"arch": arch, "N": n_hidden, "torch_lstm_f32_us": ref}
            for dtype in args.dtypes:
                row[f"ours_{dtype}_us"] = time_ours(arch, n_hidden, getattr(np, dtype), xs, dys,
                                                    args.repeats) / steps * 1e6
                row[f"ours_{dtype}_s_per_epoch"] = row[f"ours_{dtype}_us"] * steps / 1e6
            if not args.no_torch:
                row["torch_twin_f32_us"] = time_torch_twin(arch, n_hidden, xs[:args.twin_sequences],
                                                           dys, args.repeats) / twin_steps * 1e6
            rows.append(row)
            _print_row(row, args.dtypes, header=len(rows) == 1)
    result = {"steps_per_epoch": steps, "rows": rows}
    if args.startup:
        result.update(startup_times(args.archs, args.dtypes))
        for key, value in result.items():
            if "seconds" in key:
                print(f"{key}: {value:.2f}")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(result, fh, indent=1)
        os.replace(tmp, args.json)
    return 0


def _print_row(row, dtypes, header):
    cols = [f"ours {d[5:]} µs" for d in dtypes] + ["nn.LSTM32 µs", "twin32 µs"]
    cols += [f"LSTM/{d[5:]}" for d in dtypes] + [f"twin/{d[5:]}" for d in dtypes]
    if header:
        print(f"{'arch':>5} {'N':>4} " + " ".join(f"{c:>13}" for c in cols))
    ours = [row[f"ours_{d}_us"] for d in dtypes]
    ref, twin = row["torch_lstm_f32_us"], row.get("torch_twin_f32_us")
    fmt = lambda v: f"{v:13.2f}" if v is not None else f"{'-':>13}"    # noqa: E731
    ratios = [ref / o if ref else None for o in ours] + [twin / o if twin else None for o in ours]
    print(f"{row['arch']:>5} {row['N']:>4} " + " ".join(fmt(v) for v in ours + [ref, twin] + ratios),
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
