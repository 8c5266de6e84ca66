"""Two-direction concurrency and parallel evaluation on a TIMIT-shaped bidirectional run.

TIMIT shape (SPEC §5): 39 inputs, 61 softmax outputs, utterances of ~300 frames, one forward and one
backward LSTM layer of N = 100 blocks. The same one-epoch training run (``lstm_scratch.train.train``)
is timed with ``threads=1`` (directions one after the other, validation sequence by sequence) and
``threads=2`` (the directions of each training pass on two threads, validation over sequences on two
threads), alternating, in this process. Prints the ratios; the target for the training pass is ≥ 1.6×
on two otherwise idle cores. Results are bit-identical (checked here too).

    python benchmarks/bench_bidirectional.py [--sequences 16] [--repeats 5] [--hidden 100]
"""
from __future__ import annotations

import argparse
import os
import statistics

import numpy as np

from lstm_scratch.datasets import Split
from lstm_scratch.train import TaskData, TrainConfig, train


def timit_shaped(n_sequences: int, seed: int = 0) -> TaskData:
    rng = np.random.default_rng(seed)

    def split(name, count):
        lengths = rng.integers(250, 351, count)
        inputs = [rng.normal(size=(int(t), 39)) for t in lengths]
        targets = [rng.integers(0, 61, int(t)) for t in lengths]
        return Split(task="timit-shaped", name=name, inputs=inputs, targets=targets, ids=list(range(count)),
                     n_in=39, n_out=61, loss="softmax", metric="frame_error", labels=tuple(map(str, range(61))),
                     synthetic=True, source="SYNTHETIC benchmark data, TIMIT-shaped")
    return TaskData(split("train", n_sequences), split("valid", n_sequences), split("test", 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=16, help="training (and validation) utterances")
    parser.add_argument("--repeats", type=int, default=5, help="alternating repetitions per setting")
    parser.add_argument("--hidden", type=int, default=100)
    args = parser.parse_args()
    data = timit_shaped(args.sequences)
    config = TrainConfig("timit-shaped", arch="V", hidden=args.hidden, lr=1e-4, momentum=0.9, max_epochs=1)
    frames = sum(len(x) for x in data.train.inputs)
    timings = {1: [], 2: []}
    results = {}
    train(config, data=data, threads=2, progress=False)            # first call: compile/load everything
    for _ in range(args.repeats):
        for threads in (1, 2):
            record = train(config, data=data, threads=threads, progress=False)
            timings[threads].append((record["history"]["train_seconds"][0], record["history"]["valid_seconds"][0]))
            results[threads] = (record["history"]["train_loss"], record["history"]["valid_metric"], record["test_metric"])
    assert results[1] == results[2], "threads changed the result"
    print(f"TIMIT-shaped bidirectional V, N={args.hidden}, {args.sequences} utterances x ~300 frames "
          f"({frames} training frames), float64; os.cpu_count()={os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    for part, column in (("training pass (two directions)", 0), ("validation (over sequences)", 1)):
        for name, pick in (("min", min), ("median", statistics.median)):
            one, two = pick(t[column] for t in timings[1]), pick(t[column] for t in timings[2])
            print(f"  {part:31s} {name:6s} 1 thread {one:7.3f} s   2 threads {two:7.3f} s   "
                  f"speed-up {one / two:4.2f}x   ({1e6 * one / frames:.0f} vs {1e6 * two / frames:.0f} µs/frame)")
    print(f"  ({args.repeats} alternating repetitions; results bit-identical across thread counts; on a shared "
          "machine the min is the fairer figure)")


if __name__ == "__main__":
    main()
