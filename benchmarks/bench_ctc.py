"""CTC forward + backward, ours against ``torch.nn.functional.ctc_loss`` in the same run (not a test).

IAM-OnDB shape by default: T = 700 frames, 82 classes (81 characters + blank), 40 labels; float32
logits; one thread each. Both sides are timed from the pre-softmax logits to their gradient (PyTorch:
log_softmax → ctc_loss → backward). The machine is shared, so each side is timed in interleaved
rounds and the medians are reported with their ratio; the target is ≥ 3× faster than PyTorch.

    python benchmarks/bench_ctc.py [--frames 700] [--classes 82] [--labels 40] [--rounds 15]
"""
import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")   # before numba is imported

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from lstm_scratch.ctc import ctc_loss  # noqa: E402


def time_call(fn, repeats: int) -> float:
    """Mean milliseconds per call over ``repeats`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1e3 * (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=700)
    parser.add_argument("--classes", type=int, default=82)
    parser.add_argument("--labels", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds (median taken)")
    parser.add_argument("--repeats", type=int, default=20, help="calls per round")
    args = parser.parse_args()

    import torch
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(args.frames, args.classes)).astype(np.float32)
    labels = rng.integers(1, args.classes, args.labels)

    x = torch.tensor(logits)[:, None, :]
    target = torch.tensor(labels)[None, :]
    frames, n_labels = torch.tensor([args.frames]), torch.tensor([args.labels])

    def torch_step():
        a = x.detach().requires_grad_(True)
        loss = torch.nn.functional.ctc_loss(torch.log_softmax(a, dim=2), target, frames, n_labels,
                                            blank=0, reduction="sum")
        loss.backward()
        return loss.item(), a.grad

    variants = {"ours (auto)": lambda: ctc_loss(logits, labels),
                "ours (linear)": lambda: ctc_loss(logits, labels, method="linear"),
                "ours (log space)": lambda: ctc_loss(logits, labels, method="log"),
                "torch": torch_step}

    # accuracy against a float64 PyTorch gradient (also compiles and warms up both sides)
    a64 = torch.tensor(logits.astype(np.float64))[:, None, :].requires_grad_(True)
    torch.nn.functional.ctc_loss(torch.log_softmax(a64, dim=2), target, frames, n_labels,
                                 reduction="sum").backward()
    exact = a64.grad[:, 0].numpy()
    (ours_loss, ours_grad), (torch_loss, torch_grad) = ctc_loss(logits, labels), torch_step()
    print(f"T={args.frames} K={args.classes} L={args.labels}, float32 logits, 1 thread; "
          f"loss ours {ours_loss:.4f}, torch {torch_loss:.4f}; max |grad − float64 grad|: "
          f"ours {np.abs(ours_grad - exact).max():.1e}, torch {np.abs(torch_grad[:, 0].numpy() - exact).max():.1e}")
    samples = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            samples[name].append(time_call(fn, args.repeats))
    torch_ms = statistics.median(samples["torch"])
    for name, times in samples.items():
        ms = statistics.median(times)
        print(f"{name:18s} {ms:7.3f} ms   (min {min(times):.3f})   torch / this = {torch_ms / ms:5.2f}×")


if __name__ == "__main__":
    main()
