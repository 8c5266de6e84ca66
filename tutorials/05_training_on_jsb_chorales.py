# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 — Training on JSB Chorales
#
# Tutorials 01–04 built the pieces. Here we train them the way the paper does, on its smallest task:
# predicting the next chord of a Bach chorale.
#
# **What you'll learn**
#
# * the data: chorales as piano rolls, input frame t, target frame t + 1 (`lstm_scratch.datasets`);
# * the loss: the Bernoulli negative log-likelihood per time step, and why an untrained network
#   scores 88 · ln 2 ≈ 61 nats;
# * online SGD — one update per sequence — with Nesterov momentum whose step is scaled by (1 − m),
#   shown on a toy quadratic with `lstm_scratch.momentum`;
# * input noise, and early stopping on the validation split (learning curves, best epoch);
# * the effect of the learning rate, the one hyperparameter that matters most in the paper;
# * why the project trains in float64: float32 freezes weights at the low-η end of the search.
#
# **How to use it.** `python tutorials/05_training_on_jsb_chorales.py`, or open it as a notebook
# (`make notebooks` writes `tutorials/05_training_on_jsb_chorales.ipynb` with every figure). The
# data come through `lstm_scratch.datasets.load`: fetched once, checked against the manifest's
# sha256 and cached; with `LSTM_SCRATCH_MIRROR` set (as in the tests) they are copied from that
# directory instead of downloaded. `LSTM_SCRATCH_FAST=1` uses a subset of the chorales, small
# networks and few epochs (under a minute); the default mode takes a few minutes. Every claim is an
# `assert`.

# %%
import dataclasses
import os
import time

import matplotlib.pyplot as plt
import numpy as np

from _figures import show
from lstm_scratch import Network
from lstm_scratch.datasets import TaskData, load
from lstm_scratch.losses import bernoulli_nll
from lstm_scratch.momentum import Momentum
from lstm_scratch.train import TrainConfig, train

FAST = os.environ.get("LSTM_SCRATCH_FAST") == "1"
started = time.perf_counter()
splits = {name: load("jsb", name) for name in ("train", "valid", "test")}
for split in splits.values():
    print(split.summary())

# %% [markdown]
# ## 1. Chorales as piano rolls
#
# A piano roll has one row per time step (a quarter note, for JSB) and one column per piano key,
# MIDI pitches 21–108 (A0–C8): 88 binary units, 1 where the key sounds. The task is next-step
# prediction: at step t the network sees the chord xᵗ = roll[t] and must predict roll[t + 1], one
# independent probability per key. So a chorale of T steps gives T − 1 (input, target) pairs, and
# the target sequence is the input sequence shifted by one step. The chorales are four-part
# harmony: never more than four keys at once.

# %%
train_split = splits["train"]
x, target = train_split.inputs[0], train_split.targets[0]
assert train_split.n_in == train_split.n_out == 88
assert np.array_equal(target[:-1], x[1:])                     # the target is the input, one step on
assert all(set(np.unique(r)) <= {0.0, 1.0} for r in train_split.inputs)
assert max(int(r.sum(axis=1).max()) for r in train_split.inputs) == 4
used = np.flatnonzero(np.vstack(train_split.inputs).any(axis=0))
print(f"keys ever used in training: {train_split.labels[used[0]]}–{train_split.labels[used[-1]]} "
      f"({used.size} of 88); chorale 0 has {len(x)} (input, target) pairs")

low, high = used[0] - 1, used[-1] + 2
window = 32                                                  # the first 32 steps: the shift is visible
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, roll, title in zip(axes, (x, target), ("input xᵗ = roll[t]", "target = roll[t + 1]")):
    ax.imshow(roll[:window, low:high].T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(-0.5, window - 0.5, low - 0.5, high - 0.5))
    ax.grid(axis="x", color="tab:blue", alpha=0.3)
    ax.set_xlabel("time step t (quarter notes)")
    ax.set_title(title, fontsize=10)
ticks = [k for k in range(low, high) if train_split.labels[k].startswith("C") and "#" not in train_split.labels[k]]
axes[0].set_yticks(ticks, [train_split.labels[k] for k in ticks])
axes[0].set_ylabel("piano key")
fig.suptitle(f"05 — JSB chorale 0 of the training split as a piano roll (first {window} steps)")
show(fig, "05_piano_roll")

# %% [markdown]
# ## 2. The loss, and the score of an untrained network
#
# The network outputs one logit aᵗ_k per key; yᵗ_k = σ(aᵗ_k) is the probability that key k sounds
# at step t + 1. With independent keys the negative log-likelihood of a chorale is
#
#     L = −Σ_t Σ_k [ ŷᵗ_k ln yᵗ_k + (1 − ŷᵗ_k) ln(1 − yᵗ_k) ],
#
# and the paper reports it **per time step**, L / T summed over the test chorales' steps. An untrained
# network with small weights (N(0, 0.1²), biases 0) has logits near 0, so yᵗ_k ≈ ½ for every key, and
# each key costs ln 2 whether it sounds or not: 88 · ln 2 ≈ 61.0 nats per step, whatever the music.
# (The paper's best networks reach about 8.5.) Even a model with no memory at all does much better
# than 61: predicting each key with its training frequency — the output biases alone can learn
# that — scores about 11.

# %%
chance = 88 * np.log(2)
zero_logits = np.zeros_like(target)
assert np.isclose(bernoulli_nll(zero_logits, target)[0] / len(target), chance)    # exactly, for any target

valid = splits["valid"]
untrained = Network("V", 88, 20, 88, loss="bernoulli", seed=0)
untrained_nll = untrained.evaluate(valid.inputs, valid.targets)
frequency = np.vstack(train_split.targets).mean(axis=0).clip(1e-4, 1 - 1e-4)     # per key
frequency_logits = np.log(frequency / (1 - frequency))
marginal_nll = (sum(bernoulli_nll(np.broadcast_to(frequency_logits, y.shape), y)[0] for y in valid.targets)
                / valid.n_frames)
print(f"88 ln 2 = {chance:.3f};  untrained network on the validation split: {untrained_nll:.3f} nats/step;"
      f"  key frequencies alone: {marginal_nll:.2f}")
assert abs(untrained_nll - chance) < 0.5
assert 10 < marginal_nll < 12

biases_only = Network("V", 88, 20, 88, loss="bernoulli", seed=0)      # output weights 0, biases = logits
biases_only.params["out.W"][...] = 0.0
biases_only.params["out.b"][...] = frequency_logits
assert np.isclose(biases_only.evaluate(valid.inputs, valid.targets), marginal_nll)

# %% [markdown]
# ## 3. Online SGD with Nesterov momentum, scaled by (1 − m)
#
# The paper trains **online**: one gradient step per chorale, the gradient being that of the whole
# chorale's summed loss (full BPTT), the chorales reshuffled every epoch. The step uses Nesterov
# momentum with the learning rate scaled by (1 − m), ε = (1 − m) η:
#
#     v ← m v − ε ∇f(θ + m v),     θ ← θ + v.
#
# Why the (1 − m)? Under a constant gradient g the velocity settles where v = m v − ε g, i.e.
# v = −ε g / (1 − m) = −η g: **each step moves η · g, whatever m**. So η alone sets the speed, and m
# only decides how much the recent gradients are averaged — which is what lets the search sample
# η and m independently. `lstm_scratch.momentum.Momentum` implements it (in the "look-ahead"
# reformulation: it stores Θ = θ + m v, so the gradient is always taken at the stored point). We
# check both claims on toy problems, then watch it on a quadratic f(θ) = ½ (θ₁² + 0.01 θ₂²) whose
# two directions differ 100-fold in curvature.

# %%
eta, g = 0.01, np.array([1.0, -2.0])
for m in (0.0, 0.9, 0.99):
    theta = np.zeros(2)
    optimiser = Momentum(theta, lr=eta, momentum=m)
    for _ in range(3000):
        before = theta.copy()
        optimiser.step(g)
    assert np.allclose(theta - before, -eta * g, rtol=1e-9), m       # step → η·g, independent of m
print("under a constant gradient every m settles at a step of exactly η·g")

curvature = np.array([1.0, 0.01])


def textbook_nesterov(theta, eta, m, steps):
    """v ← m v − ε ∇f(θ + m v), θ ← θ + v on f = ½ Σ curvature·θ²; returns the look-ahead points θ + m v."""
    v, points = np.zeros_like(theta), []
    for _ in range(steps):
        v = m * v - (1 - m) * eta * curvature * (theta + m * v)
        theta = theta + v
        points.append(theta + m * v)
    return np.array(points)


def momentum_path(eta, m, steps, start=(1.0, 1.0)):
    theta = np.array(start, dtype=float)
    optimiser, path = Momentum(theta, lr=eta, momentum=m), []
    for _ in range(steps):
        optimiser.step(curvature * theta)                           # ∇f at the stored point Θ
        path.append(theta.copy())
    return np.array(path)


assert np.allclose(momentum_path(1.5, 0.9, 200), textbook_nesterov(np.ones(2), 1.5, 0.9, 200), rtol=1e-12, atol=1e-15)
print("Momentum's stored point = θ + m·v of the textbook Nesterov iteration")

# %% [markdown]
# With a fixed η the long-run speed is the same for every m (previous cell), so what does momentum
# buy? **Stability at larger η.** Plain gradient descent on a direction of curvature a diverges
# once η·a > 2. With momentum the same η is taken in smaller, averaged pieces, and the threshold
# moves far out: for Nesterov momentum with the (1 − m) scaling it is η·a < 2(1 + m) / ((1 − m)(1 + 2m)),
# ≈ 13.6 for m = 0.9. On the quadratic: η = 2.5 makes plain SGD explode along the steep direction,
# while with m = 0.9 the same η converges — and η = 10 converges much faster than the largest η plain
# SGD can take, because the shallow direction is what limits the speed.

# %%
steps = 300


def loss_along(path):
    return 0.5 * (path ** 2 * curvature).sum(axis=1)


with np.errstate(over="ignore", invalid="ignore"):
    runs = {"m = 0, η = 1.9": loss_along(momentum_path(1.9, 0.0, steps)),
            "m = 0, η = 2.5 (diverges)": loss_along(momentum_path(2.5, 0.0, steps)),
            "m = 0.9, η = 2.5": loss_along(momentum_path(2.5, 0.9, steps)),
            "m = 0.9, η = 10": loss_along(momentum_path(10.0, 0.9, steps))}
    threshold = 2 * (1 + 0.9) / ((1 - 0.9) * (1 + 2 * 0.9))
    just_below, just_above = (loss_along(momentum_path(eta, 0.9, 3000)) for eta in (13.0, 14.0))
for label, curve in runs.items():
    print(f"{label:26} f after {steps} steps: {curve[-1]:.3e}")
assert not runs["m = 0, η = 2.5 (diverges)"][-1] < 1.0             # overflowed or grew
assert runs["m = 0.9, η = 2.5"][-1] < runs["m = 0, η = 1.9"][-1]
assert runs["m = 0.9, η = 10"][-1] < 1e-3 * runs["m = 0, η = 1.9"][-1]
assert 13 < threshold < 14 and just_below[-1] < 1e-3 and not just_above[-1] < 1.0

fig, ax = plt.subplots(figsize=(7, 4))
for label, curve in runs.items():
    ax.semilogy(np.arange(1, steps + 1), np.where(np.isfinite(curve), curve, np.nan), label=label)
ax.set_ylim(1e-12, 1e6)
ax.set_xlabel("update")
ax.set_ylabel("f(θ) = ½ (θ₁² + 0.01 θ₂²)")
ax.set_title("05 — Nesterov momentum with the (1 − m) scaling on a toy quadratic", fontsize=10)
ax.legend(fontsize=8)
show(fig, "05_momentum_quadratic")

# %% [markdown]
# ## 4. Training runs through the public API
#
# `lstm_scratch.train.train(TrainConfig(...), data=...)` runs exactly the loop above on a network:
# online Nesterov SGD, one update per chorale in a fresh random order each epoch, the validation
# split scored after every epoch. We pass the data ourselves (`TaskData`) so that we can use a
# subset: `TrainConfig(task="jsb")` with `data=None` would load all three splits itself.
# `threads=1` keeps each run on one core.

# %%
def subset(split, n):
    return dataclasses.replace(split, inputs=split.inputs[:n], targets=split.targets[:n], ids=split.ids[:n])


n_valid = 30 if FAST else 76
data = TaskData(subset(splits["train"], 40 if FAST else 229), subset(valid, n_valid),
                subset(splits["test"], n_valid))
hidden = 20 if FAST else 50

# %% [markdown]
# ## 5. Input noise
#
# `TrainConfig(noise=σ)` adds fresh Gaussian noise N(0, σ²) to every training input each time it is
# presented; the validation and test inputs stay clean. It is one of the paper's hyperparameters (σ
# uniform on [0, 1] in the search), meant as a regulariser: a network that never sees its input
# exactly cannot rely on every detail of it. We train the same network (same seed — the noise has
# its own random stream, so the initial weights and the order of the chorales are the same) with
# σ = 0 and σ = 1, and then score both on validation inputs with σ = 1 noise added. The run
# directory (`out=`) keeps the best parameters as `params.npz`, which `Network.from_file` reads.
# The network trained with noise loses less when its input is noisy.

# %%
import tempfile

noise_rng = np.random.default_rng(5)
noisy_valid_inputs = [x + noise_rng.normal(0.0, 1.0, x.shape) for x in data.valid.inputs]
damage = {}
with tempfile.TemporaryDirectory() as runs_dir:
    for sigma in (0.0, 1.0):
        out = os.path.join(runs_dir, f"noise_{sigma}")
        record = train(TrainConfig("jsb", hidden=hidden, lr=1e-2, momentum=0.9, noise=sigma,
                                   max_epochs=4 if FAST else 10, patience=100), out=out, data=data, threads=1)
        net = Network.from_file(os.path.join(out, "params.npz"))
        clean_nll = net.evaluate(data.valid.inputs, data.valid.targets)
        noisy_nll = net.evaluate(noisy_valid_inputs, data.valid.targets)
        damage[sigma] = noisy_nll - clean_nll
        assert np.isclose(clean_nll, record["best_valid_metric"])        # the kept parameters
        print(f"trained with σ = {sigma}: validation NLL {clean_nll:.2f} on clean inputs, {noisy_nll:.2f} "
              f"with σ = 1 noise (+{damage[sigma]:.2f})")
assert damage[1.0] < damage[0.0]

# %% [markdown]
# ## 6. Early stopping
#
# After every epoch the trainer scores the validation split and keeps a copy of the parameters
# with the best score so far. It stops when `patience` epochs pass without a better one, and the
# test split is scored **once**, with the kept parameters. Online SGD with a fixed η makes the
# validation metric jumpy from epoch to epoch, so the rule is not "stop when it first goes up" but
# "give up after `patience` epochs without a new best" — the paper uses 15 of at most 150 epochs.
# A short run on a dozen chorales:

# %%
few = TaskData(subset(splits["train"], 12), subset(valid, n_valid), subset(splits["test"], n_valid))
patience = 6 if FAST else 15
stopped = train(TrainConfig("jsb", hidden=60 if FAST else 100, lr=1e-2, momentum=0.9, max_epochs=80 if FAST else 150,
                            patience=patience, seed=2), data=few, threads=1)
history = stopped["history"]
best = stopped["best_epoch"]
print(f"outcome {stopped['outcome']} after {stopped['epochs']} epochs; best epoch {best} "
      f"(validation {stopped['best_valid_metric']:.2f}); test with those parameters: {stopped['test_metric']:.2f}")
assert stopped["outcome"] == "early_stopped"
assert stopped["epochs"] - best == patience
assert best == 1 + int(np.argmin(history["valid_metric"]))
assert min(history["valid_metric"][best:]) >= stopped["best_valid_metric"]
assert stopped["test_metric"] is not None

epochs = np.arange(1, stopped["epochs"] + 1)
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(epochs, history["train_loss"], label="training loss (noisy, moving parameters)")
ax.plot(epochs, history["valid_metric"], label="validation NLL per step")
ax.axvline(best, color="grey", linestyle="--")
ax.plot(best, stopped["best_valid_metric"], "k*", markersize=12, label=f"best epoch {best}: parameters kept")
ax.axvspan(best, epochs[-1], color="grey", alpha=0.1, label=f"patience: {patience} epochs without improvement")
ax.set_xlabel("epoch")
ax.set_ylabel("nats per time step")
ax.set_ylim(min(history["valid_metric"] + history["train_loss"]) - 0.5, max(history["valid_metric"]) + 1.5)
ax.set_title("05 — early stopping on 12 training chorales (first epochs' training loss off the top)", fontsize=10)
ax.legend(fontsize=8)
show(fig, "05_early_stopping")

# %% [markdown]
# ## 7. The learning rate
#
# The paper's main finding about hyperparameters: the learning rate matters most, by far, and the
# range to search is wide (η log-uniform on [10⁻⁶, 10⁻²]). Three short runs that differ only in η:
# too small and, within the budget, the network lags far behind (in fast mode it does not even
# reach what the key frequencies alone score); larger and it passes the key frequencies within an
# epoch or two and keeps learning beyond them. (Not shown: much larger still and a run diverges — the trainer then ends
# it with outcome `diverged`.)

# %%
rates = (1e-4, 1e-3, 1e-2)
lr_runs = {lr: train(TrainConfig("jsb", hidden=hidden, lr=lr, momentum=0.9, max_epochs=8 if FAST else 25,
                                 patience=100), data=data, threads=1) for lr in rates}
final = {lr: record["best_valid_metric"] for lr, record in lr_runs.items()}
print("best validation NLL per step:", {f"η = {lr:g}": round(v, 2) for lr, v in final.items()})
assert final[1e-4] > final[1e-3] > final[1e-2]
assert final[1e-4] > marginal_nll or not FAST
assert final[1e-2] < marginal_nll                         # it learned more than the key frequencies

fig, ax = plt.subplots(figsize=(7, 4))
for lr, record in lr_runs.items():
    curve = record["history"]["valid_metric"]
    ax.plot(np.arange(1, len(curve) + 1), curve, marker=".", label=f"η = {lr:g}")
ax.axhline(marginal_nll, color="grey", linestyle=":", label="key frequencies alone")
ax.set_xlabel("epoch")
ax.set_ylabel("validation NLL per time step")
ax.set_title(f"05 — the effect of the learning rate (N = {hidden}, m = 0.9)", fontsize=10)
ax.legend(fontsize=8)
show(fig, "05_learning_rate")

# %% [markdown]
# ## 8. Why float64: float32 freezes the low-η end
#
# At the low end of the search, η = 10⁻⁶ with m = 0.99, the first update of a weight is
# Θ ← Θ − (1 + m) ε g with ε = (1 − m) η = 10⁻⁸ (the look-ahead form of section 3). float32 has 24
# significant bits: next to a weight of 0.1 the representable numbers are 2⁻²⁷ ≈ 7.5 · 10⁻⁹ apart,
# so any change smaller than half of that rounds away — the weight does not move at all. In float64
# the spacing is 2⁻⁵⁶ ≈ 1.4 · 10⁻¹⁷ and the same update is kept.

# %%
m_low, eta_low = 0.99, 1e-6
grad = 0.1
update = (1 + m_low) * (1 - m_low) * eta_low * grad
spacing32 = np.spacing(np.float32(0.1))
print(f"update {update:.2e}; float32 spacing at 0.1: {spacing32:.2e}; float64: {np.spacing(0.1):.2e}")
assert np.float32(0.1) - np.float32(update) == np.float32(0.1)        # rounded away
assert np.float64(0.1) - update != 0.1                                # kept
assert update < spacing32 / 2

# %% [markdown]
# In a real run the gradients vary over many orders of magnitude (summed over a chorale, most are
# far below 1, a few far above), and the velocity slowly accumulates; so some weights still move.
# We train the same network, from the same initial parameters, on the same chorales, once in
# float64 and once in float32 (`Network(dtype=...)`, and the float32 `Momentum` state the trainer's
# `dtype="float32"` uses), and count the weights that float64 moves but float32 leaves exactly where
# they started. At η = 10⁻⁶, m = 0.99 that is a sizeable fraction; at η = 10⁻⁴, m = 0.9 it is
# almost none. This is why float64 is the default and float32 an opt-in speed mode (SPEC §6).

# %%
def frozen_fraction(eta, m, n_sequences):
    """Fraction of the weights that an online run moves in float64 but that stay bit-identical in float32."""
    start = Network("V", 88, 20, 88, loss="bernoulli", seed=0).flat.copy()
    moved = {}
    for dtype in (np.float64, np.float32):
        net = Network("V", 88, 20, 88, loss="bernoulli", seed=0, dtype=dtype)
        net.flat[:] = start
        optimiser = Momentum(net.flat, lr=eta, momentum=m)
        for x, y in zip(train_split.inputs[:n_sequences], train_split.targets[:n_sequences]):
            optimiser.step(net.loss_and_grad(x.astype(dtype), y.astype(dtype))[1])
        moved[dtype] = net.flat != start.astype(dtype)
    return float(np.mean(moved[np.float64] & ~moved[np.float32]) / np.mean(moved[np.float64]))


n_sequences = 30 if FAST else 100
frozen = {(eta, m): frozen_fraction(eta, m, n_sequences) for eta, m in ((1e-6, 0.99), (1e-4, 0.9))}
for (eta, m), fraction in frozen.items():
    print(f"η = {eta:g}, m = {m}: {fraction:.1%} of the weights that float64 moves stay frozen in float32 "
          f"({n_sequences} updates)")
assert frozen[1e-6, 0.99] > 0.10
assert frozen[1e-4, 0.9] < 0.01

# %% [markdown]
# ## Summary
#
# * A chorale is an 88-key piano roll; the target is the input shifted one step.
# * The Bernoulli NLL per step is 88 · ln 2 ≈ 61 for an untrained network and about 11 with the key
#   frequencies alone.
# * Online SGD makes one Nesterov-momentum update per chorale; with the (1 − m) scaling every m
#   settles at a step of η·g, and momentum buys stability at large η.
# * Input noise is a training-only perturbation; early stopping keeps the best-validation
#   parameters and stops after `patience` epochs without improvement.
# * The learning rate decides most of what a run reaches; float32 would freeze its low end.
#
# Next: tutorial 06 runs a small random search over these hyperparameters and analyses it.

# %%
print(f"all claims of tutorial 05 hold ({time.perf_counter() - started:.0f} s)")
