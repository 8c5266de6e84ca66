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
# # 01 — The vanilla LSTM forward pass, by hand
#
# **What you'll learn**
#
# * the six equations of the vanilla LSTM block of Greff et al., *LSTM: A Search Space Odyssey*
#   (2017) — block input, three gates, cell, output — written as NumPy, one line each;
# * the peephole timing: the input and forget gates peek at the **old** cell cᵗ⁻¹, the output gate
#   at the **new** cell cᵗ;
# * why the layer has 4NM + 4N² + 4N + 3N parameters;
# * that twenty lines of NumPy give exactly what `lstm_scratch.Layer` computes, with both its
#   readable NumPy backend (`backend="reference"`) and its fast Numba kernel (`backend="numba"`).
#
# **How to use it.** Run it as a script, `python tutorials/01_lstm_forward_by_hand.py`, or open it
# as a notebook: `jupytext --to notebook tutorials/01_lstm_forward_by_hand.py` and then
# `jupyter notebook 01_lstm_forward_by_hand.ipynb`. With `LSTM_SCRATCH_FAST=1` it uses smaller
# sizes (that is how the test suite runs it). Every claim below is an `assert`: if the script
# finishes, the claims hold.

# %%
import os

import numpy as np

import lstm_scratch
from lstm_scratch import Layer, n_params
from lstm_scratch.gradcheck import relative_error

FAST = os.environ.get("LSTM_SCRATCH_FAST") == "1"
M, N, T = (3, 4, 6) if FAST else (5, 8, 25)     # inputs per step, blocks, time steps
rng = np.random.default_rng(0)
print(f"lstm_scratch {lstm_scratch.__version__}: M = {M} inputs, N = {N} blocks, T = {T} steps")

# %% [markdown]
# ## 1. The equations
#
# Input xᵗ ∈ R^M, N blocks with one cell each, y⁻¹ = 0 and c⁻¹ = 0. For t = 0 … T−1:
#
# | | pre-activation | activation |
# |---|---|---|
# | block input | z̄ᵗ = W_z xᵗ + R_z yᵗ⁻¹ + b_z | zᵗ = g(z̄ᵗ) |
# | input gate | īᵗ = W_i xᵗ + R_i yᵗ⁻¹ + p_i ⊙ cᵗ⁻¹ + b_i | iᵗ = σ(īᵗ) |
# | forget gate | f̄ᵗ = W_f xᵗ + R_f yᵗ⁻¹ + p_f ⊙ cᵗ⁻¹ + b_f | fᵗ = σ(f̄ᵗ) |
# | cell | | cᵗ = zᵗ ⊙ iᵗ + cᵗ⁻¹ ⊙ fᵗ |
# | output gate | ōᵗ = W_o xᵗ + R_o yᵗ⁻¹ + p_o ⊙ cᵗ + b_o | oᵗ = σ(ōᵗ) |
# | block output | | yᵗ = h(cᵗ) ⊙ oᵗ |
#
# σ is the logistic sigmoid, g = h = tanh, ⊙ is the element-wise product. Read it as a story:
#
# * **z** — what the block *could* write: a squashed mix of the input and the previous output.
# * **i** — how much of z to let in (0 = ignore the input this step, 1 = write all of it).
# * **f** — how much of the old cell to keep (1 = remember, 0 = wipe).
# * **c** — the cell: a gated running sum. It is linear in cᵗ⁻¹, which is what lets gradients
#   survive many steps (tutorial 02).
# * **o** — how much of the squashed cell h(c) to show to the rest of the network.
#
# **Peepholes** p_i, p_f, p_o are *vectors* (one weight per cell, element-wise, no mixing across
# cells). The input and forget gates are computed before the new cell exists, so they can only
# peek at cᵗ⁻¹; the output gate is computed after the cell update and peeks at cᵗ.

# %%
def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def init_params(M, N, rng, scale=0.5):
    """Random parameters with the paper's names. Biases and peepholes are NON-zero on purpose: a
    bug that only touches them would hide behind zeros (see numpy-ml issue #42)."""
    P = {}
    for gate in "zifo":
        P[f"W_{gate}"] = rng.normal(0, scale, (N, M))
        P[f"R_{gate}"] = rng.normal(0, scale, (N, N))
    for gate in "ifo":
        P[f"p_{gate}"] = rng.normal(0, scale, N)
    for gate in "zifo":
        P[f"b_{gate}"] = rng.normal(0, scale, N)
    return P


def lstm_step(P, x, y_prev, c_prev):
    """One time step of the vanilla LSTM (peepholes included). Returns y, c and the gates."""
    z = np.tanh(P["W_z"] @ x + P["R_z"] @ y_prev + P["b_z"])                          # block input
    i = sigmoid(P["W_i"] @ x + P["R_i"] @ y_prev + P["p_i"] * c_prev + P["b_i"])     # peeks at cᵗ⁻¹
    f = sigmoid(P["W_f"] @ x + P["R_f"] @ y_prev + P["p_f"] * c_prev + P["b_f"])     # peeks at cᵗ⁻¹
    c = z * i + c_prev * f                                                            # cell
    o = sigmoid(P["W_o"] @ x + P["R_o"] @ y_prev + P["p_o"] * c + P["b_o"])          # peeks at cᵗ (new!)
    y = np.tanh(c) * o                                                                # block output
    return y, c, dict(z=z, i=i, f=f, o=o)


def lstm_forward(P, X):
    """Run a whole sequence X (T, M) from y⁻¹ = c⁻¹ = 0; return Y (T, N), C (T, N) and the gates."""
    N = P["b_z"].shape[0]
    y, c = np.zeros(N), np.zeros(N)
    Y, C, gates = [], [], []
    for x in X:
        y, c, g = lstm_step(P, x, y, c)
        Y.append(y)
        C.append(c)
        gates.append(g)
    return np.array(Y), np.array(C), gates


P = init_params(M, N, rng)
X = rng.normal(size=(T, M))
Y, C, gates = lstm_forward(P, X)
print("y shape", Y.shape, "  first output y⁰ =", np.round(Y[0], 4))

# %% [markdown]
# A first sanity check that follows straight from the equations: the output is a tanh times a
# sigmoid, so |yᵗ| < 1 always, and all three gates lie strictly between 0 and 1. The cell is *not*
# squashed — it can grow beyond 1 (section 4 makes it do so).

# %%
assert np.all(np.abs(Y) < 1.0)
assert all(np.all((g[k] > 0) & (g[k] < 1)) for g in gates for k in "ifo")

# %% [markdown]
# ## 2. Counting parameters
#
# Four weight matrices from the input (W_z, W_i, W_f, W_o: N×M each), four recurrent matrices
# (R_⋆: N×N), four bias vectors (N each) and three peephole vectors (N each):
#
#     4NM + 4N² + 4N + 3N.
#
# There is no peephole for z: the block input is not a gate.

# %%
count = sum(v.size for v in P.values())
formula = 4 * N * M + 4 * N * N + 4 * N + 3 * N
print(f"parameters: counted {count}, formula 4NM + 4N² + 4N + 3N = {formula}, "
      f"library n_params('V', M, N) = {n_params('V', M, N)}")
assert count == formula == n_params("V", M, N)

# %% [markdown]
# ## 3. The library computes the same thing
#
# `lstm_scratch.Layer` keeps every parameter in one flat vector (`layer.flat`) and exposes named
# views into it (`layer.params["W_z"]`, …) — the names used above. We copy our parameters in and
# compare outputs. `backend="reference"` is the readable NumPy implementation in
# `lstm_scratch/reference.py`; `backend="numba"` is the fast kernel, which projects the inputs of all
# time steps with one matrix product before the recurrence and computes tanh through exp. Both
# should agree with our version to rounding error (~1e-15).

# %%
results = {}
for backend in ("reference", "numba"):
    layer = Layer(arch="V", n_in=M, n_hidden=N, backend=backend)
    assert layer.n_params == formula
    for name, value in P.items():
        layer.params[name][...] = value            # a view: this writes into layer.flat
    Y_lib = layer.forward(X)
    results[backend] = relative_error(Y, Y_lib)
    print(f"{backend:>9}: ‖y_ours − y_lib‖ / ‖y‖ = {results[backend]:.2e}")
    assert results[backend] < 1e-12, backend
print(layer)

# %% [markdown]
# The flat vector stores the parameters in the order W_z W_i W_f W_o, R_z … R_o, p_i p_f p_o,
# b_z … b_o, so all input weights together form one (4N, M) matrix: the kernel multiplies the
# whole sequence by it in a single matrix product.

# %%
offsets = layer.layout.offsets
print("first entries of the flat layout:", list(offsets.items())[:5])
stacked_W = layer.flat[:4 * N * M].reshape(4 * N, M)
assert np.array_equal(stacked_W, np.vstack([P[f"W_{g}"] for g in "zifo"]))

# %% [markdown]
# ## 4. What the gates do — three experiments you can check by eye
#
# **(a) Peephole timing.** At t = 0 the old cell is c⁻¹ = 0, so the input and forget peepholes
# contribute nothing, whereas the output gate already sees c⁰. Changing p_i or p_f therefore leaves
# y⁰ unchanged, changing p_o does not. From t = 1 on, all three matter.

# %%
def first_outputs_after(change):
    Q = {k: v.copy() for k, v in P.items()}
    Q[change] = Q[change] + 1.0
    return lstm_forward(Q, X)[0]

for name in ("p_i", "p_f", "p_o"):
    Y_changed = first_outputs_after(name)
    d0, d1 = np.abs(Y_changed[0] - Y[0]).max(), np.abs(Y_changed[1] - Y[1]).max()
    print(f"{name} + 1:  |Δy⁰| = {d0:.2e}   |Δy¹| = {d1:.2e}")
    if name == "p_o":
        assert d0 > 1e-3
    else:
        assert d0 == 0.0
    assert d1 > 1e-6

# %% [markdown]
# Getting the timing wrong is a real bug, not a detail: letting the output gate peek at the old
# cell gives a different network.

# %%
def step_wrong_timing(P, x, y_prev, c_prev):
    y, c, g = lstm_step(P, x, y_prev, c_prev)
    o_wrong = sigmoid(P["W_o"] @ x + P["R_o"] @ y_prev + P["p_o"] * c_prev + P["b_o"])   # cᵗ⁻¹: wrong
    return np.tanh(c) * o_wrong, c

y, c, Y_wrong = np.zeros(N), np.zeros(N), []
for x in X:
    y, c = step_wrong_timing(P, x, y, c)
    Y_wrong.append(y)
timing_error = relative_error(np.array(Y_wrong), Y)
print(f"output gate peeking at cᵗ⁻¹ instead of cᵗ changes y by {timing_error:.1%} (relative)")
assert timing_error > 1e-2

# %% [markdown]
# **(b) The forget gate decides the memory span.** Pin it with a large bias: σ(40) rounds to
# exactly 1 in float64 and σ(−40) ≈ 4e-18. With f ≡ 1 the cell is a pure accumulator,
# cᵗ = Σ_{τ≤t} z^τ ⊙ i^τ; with f ≡ 0 it remembers only the current step, cᵗ = zᵗ ⊙ iᵗ.

# %%
for bias, label in ((+40.0, "f ≡ 1 (keep)"), (-40.0, "f ≡ 0 (wipe)")):
    Q = {k: v.copy() for k, v in P.items()}
    Q["b_f"][:] = bias
    _, C_q, g_q = lstm_forward(Q, X)
    written = np.array([g["z"] * g["i"] for g in g_q])          # what each step writes, zᵗ ⊙ iᵗ
    expected = np.cumsum(written, axis=0) if bias > 0 else written
    print(f"{label}: max |c − expected| = {np.abs(C_q - expected).max():.1e}")
    assert np.allclose(C_q, expected, rtol=0, atol=1e-12)      # rounding of the sums only

# %% [markdown]
# **(c) The cell is unbounded, the output is not.** Feed a constant input that drives z and i to 1
# and keep f at 1: the cell counts up by one per step, while yᵗ = tanh(cᵗ) ⊙ oᵗ stays inside (−1, 1).

# %%
Q = {k: np.zeros_like(v) for k, v in P.items()}
Q["b_z"][:] = Q["b_i"][:] = Q["b_f"][:] = 40.0       # z ≈ 1, i ≈ 1, f ≈ 1 whatever the input
Y_count, C_count, _ = lstm_forward(Q, np.zeros((T, M)))
print("cell of block 0 over time:", np.round(C_count[:, 0], 3))
assert np.allclose(C_count[:, 0], np.arange(1, T + 1))
assert C_count.max() > 1 and np.abs(Y_count).max() < 1

# %% [markdown]
# **(d) Watching the gates.** The same random block over a longer sequence: the three gates as
# heat maps (one row per block, one column per time step), and block 0's cell and output. The output
# gate is an envelope for the output: since |h(c)| < 1, |yᵗ| = |tanh(cᵗ)| · oᵗ < oᵗ, so y stays inside
# the shaded band ±o; the cell c has no such bound (experiment (c) drove it to T).

# %%
import matplotlib.pyplot as plt

from _figures import show

T_long = 40 if FAST else 80
X_long = rng.normal(size=(T_long, M))
Y_long, C_long, gates_long = lstm_forward(P, X_long)
O_long = np.array([g["o"] for g in gates_long])
assert np.all(np.abs(Y_long) < O_long)                      # the envelope of the figure

fig, axes = plt.subplots(4, 1, figsize=(9, 7.5), sharex=True,
                         gridspec_kw={"height_ratios": [1, 1, 1, 1.6]})
for ax, gate, title in zip(axes, "ifo", ("input gate i", "forget gate f", "output gate o")):
    image = ax.imshow(np.array([g[gate] for g in gates_long]).T, aspect="auto", vmin=0, vmax=1,
                      cmap="viridis", interpolation="nearest")
    ax.set_ylabel("block")
    ax.set_title(title, loc="left", fontsize=10)
fig.colorbar(image, ax=axes, label="gate value (0 = closed, 1 = open)", fraction=0.03, shrink=0.6, anchor=(0, 1))
t = np.arange(T_long)
axes[3].fill_between(t, -O_long[:, 0], O_long[:, 0], color="tab:orange", alpha=0.25, label="±o (output gate)")
axes[3].plot(t, C_long[:, 0], color="tab:blue", label="cell c")
axes[3].plot(t, Y_long[:, 0], color="black", label="output y = tanh(c)·o")
axes[3].axhline(0, color="grey", linewidth=0.5)
axes[3].set_xlabel("time step t")
axes[3].set_title("block 0", loc="left", fontsize=10)
axes[3].legend(loc="upper left", fontsize=8, ncol=3)
fig.suptitle("01 — gate activations of a random vanilla LSTM over a sequence")
show(fig, "01_gates_over_time")

# %% [markdown]
# ## Summary
#
# * The vanilla LSTM step is six lines; peepholes are element-wise and i, f read cᵗ⁻¹, o reads cᵗ.
# * One layer has 4NM + 4N² + 4N + 3N parameters.
# * Our NumPy forward equals `Layer(arch="V", backend="reference")` and the Numba kernel to ~1e-15.
# * Next: tutorial 02 derives the backward pass and checks it with finite differences.

# %%
print("all claims of tutorial 01 hold:",
      {k: f"{v:.1e}" for k, v in results.items()})
