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
# # 02 — Backpropagation through time, by hand
#
# **What you'll learn**
#
# * how to derive the backward pass of one LSTM step with nothing but the chain rule, gate by gate;
# * that backpropagation through time (BPTT) is that one-step backward run from t = T−1 down to 0,
#   passing two gradients to the left: δyᵗ⁻¹ and δcᵗ⁻¹;
# * how to check any gradient with central finite differences (`lstm_scratch.gradcheck`), how to
#   choose ε, and what a wrong gradient looks like;
# * that the result equals `lstm_scratch.Layer`'s backward (NumPy reference and Numba kernel).
#
# **How to use it.** `python tutorials/02_backprop_through_time.py`, or
# `jupytext --to notebook tutorials/02_backprop_through_time.py` and open the notebook.
# `LSTM_SCRATCH_FAST=1` selects smaller sizes. Every claim is an `assert`.
#
# Prerequisite: tutorial 01 (the forward pass). We repeat its step function here so this file
# stands alone.

# %%
import os

import numpy as np

from lstm_scratch import Layer
from lstm_scratch.gradcheck import check_layer, numerical_gradient, relative_error

FAST = os.environ.get("LSTM_SCRATCH_FAST") == "1"
M, N, T = (3, 4, 5) if FAST else (4, 6, 12)
rng = np.random.default_rng(1)
GATES = "zifo"


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def init_params(M, N, rng, scale=0.5):
    """Non-zero everything — biases and peepholes included — so no gradient term can hide."""
    P = {f"{kind}_{g}": rng.normal(0, scale, (N, M) if kind == "W" else (N, N))
         for kind in "WR" for g in GATES}
    P.update({f"p_{g}": rng.normal(0, scale, N) for g in "ifo"})
    P.update({f"b_{g}": rng.normal(0, scale, N) for g in GATES})
    return P


# %% [markdown]
# ## 1. One step: forward, and what backward needs
#
# A step maps (xᵗ, yᵗ⁻¹, cᵗ⁻¹) to (yᵗ, cᵗ). We keep every intermediate value in a `cache`,
# because each local derivative is cheapest to write through the value it came from:
# σ'(ā) = σ(ā)(1 − σ(ā)) and tanh'(ā) = 1 − tanh²(ā).

# %%
def step_forward(P, x, y_prev, c_prev):
    z = np.tanh(P["W_z"] @ x + P["R_z"] @ y_prev + P["b_z"])
    i = sigmoid(P["W_i"] @ x + P["R_i"] @ y_prev + P["p_i"] * c_prev + P["b_i"])
    f = sigmoid(P["W_f"] @ x + P["R_f"] @ y_prev + P["p_f"] * c_prev + P["b_f"])
    c = z * i + c_prev * f
    o = sigmoid(P["W_o"] @ x + P["R_o"] @ y_prev + P["p_o"] * c + P["b_o"])
    h = np.tanh(c)
    y = h * o
    cache = dict(x=x, y_prev=y_prev, c_prev=c_prev, z=z, i=i, f=f, c=c, o=o, h=h)
    return y, c, cache


# %% [markdown]
# ## 2. One step: backward
#
# Suppose the rest of the computation hands us δy = ∂L/∂yᵗ and δc_in = ∂L/∂cᵗ (the part of the
# cell's gradient that comes from the future). Walk the forward equations in reverse order; write
# δā for the gradient of a pre-activation ā:
#
# 1. yᵗ = h(cᵗ) ⊙ oᵗ  ⇒  δōᵗ = δyᵗ ⊙ h(cᵗ) ⊙ σ'(ōᵗ),  and cᵗ receives δyᵗ ⊙ oᵗ ⊙ h'(cᵗ).
# 2. ōᵗ contains p_o ⊙ cᵗ (the output peephole reads the **new** cell)  ⇒  cᵗ also receives p_o ⊙ δōᵗ.
#    So δcᵗ = δc_in + δyᵗ ⊙ oᵗ ⊙ h'(cᵗ) + p_o ⊙ δōᵗ.
# 3. cᵗ = zᵗ ⊙ iᵗ + cᵗ⁻¹ ⊙ fᵗ  ⇒  δz̄ᵗ = δcᵗ ⊙ iᵗ ⊙ g'(z̄ᵗ),  δīᵗ = δcᵗ ⊙ zᵗ ⊙ σ'(īᵗ),
#    δf̄ᵗ = δcᵗ ⊙ cᵗ⁻¹ ⊙ σ'(f̄ᵗ).
# 4. Every pre-activation is W_⋆ xᵗ + R_⋆ yᵗ⁻¹ + … + b_⋆, so
#    δxᵗ = Σ_⋆ W_⋆ᵀ δ⋆̄ᵗ,  δyᵗ⁻¹ = Σ_⋆ R_⋆ᵀ δ⋆̄ᵗ,  δW_⋆ = δ⋆̄ᵗ xᵗᵀ,  δR_⋆ = δ⋆̄ᵗ yᵗ⁻¹ᵀ,  δb_⋆ = δ⋆̄ᵗ.
# 5. The old cell reaches the output three ways — through the forget path and the two
#    peepholes: δcᵗ⁻¹ = δcᵗ ⊙ fᵗ + p_i ⊙ δīᵗ + p_f ⊙ δf̄ᵗ; and δp_i = cᵗ⁻¹ ⊙ δīᵗ,
#    δp_f = cᵗ⁻¹ ⊙ δf̄ᵗ, δp_o = cᵗ ⊙ δōᵗ.
#
# The function below returns the parameter gradients, the gradients of the three inputs
# (`x`, `y_prev`, `c_prev`) and, for later use, the deltas δ⋆̄ᵗ.

# %%
def step_backward(P, cache, dy, dc_in):
    s = cache
    d = {}
    d["o_bar"] = dy * s["h"] * s["o"] * (1 - s["o"])                        # 1.
    dc = dc_in + dy * s["o"] * (1 - s["h"] ** 2) + P["p_o"] * d["o_bar"]      # 2.
    d["z_bar"] = dc * s["i"] * (1 - s["z"] ** 2)                              # 3.
    d["i_bar"] = dc * s["z"] * s["i"] * (1 - s["i"])
    d["f_bar"] = dc * s["c_prev"] * s["f"] * (1 - s["f"])
    grads = {"x": 0.0, "y_prev": 0.0, "dc": dc}
    for g in GATES:                                                           # 4.
        delta = d[f"{g}_bar"]
        grads["x"] = grads["x"] + P[f"W_{g}"].T @ delta
        grads["y_prev"] = grads["y_prev"] + P[f"R_{g}"].T @ delta
        grads[f"W_{g}"] = np.outer(delta, s["x"])
        grads[f"R_{g}"] = np.outer(delta, s["y_prev"])
        grads[f"b_{g}"] = delta
    grads["c_prev"] = dc * s["f"] + P["p_i"] * d["i_bar"] + P["p_f"] * d["f_bar"]   # 5.
    grads["p_i"] = s["c_prev"] * d["i_bar"]
    grads["p_f"] = s["c_prev"] * d["f_bar"]
    grads["p_o"] = s["c"] * d["o_bar"]
    grads["deltas"] = d
    return grads


# %% [markdown]
# ## 3. Check the one step against finite differences
#
# Take a scalar loss of the step's two outputs, L = Δy · yᵗ + Δc · cᵗ with fixed random Δy, Δc.
# Then ∂L/∂yᵗ = Δy and ∂L/∂cᵗ = Δc, exactly what `step_backward` takes. Central differences
#
#     ∂L/∂θ_k ≈ (L(θ + ε e_k) − L(θ − ε e_k)) / 2ε
#
# have error O(ε²) from truncation plus O(u/ε) from rounding (u ≈ 1e-16). `numerical_gradient`
# perturbs an array in place, and `relative_error` compares norm-wise, ‖a − n‖ / max(‖a‖, ‖n‖).

# %%
P = init_params(M, N, rng)
x, y_prev, c_prev = rng.normal(size=M), rng.normal(0, 0.5, N), rng.normal(0, 0.5, N)
Dy, Dc = rng.normal(size=N), rng.normal(size=N)


def step_loss():
    y, c, _ = step_forward(P, x, y_prev, c_prev)
    return float(Dy @ y + Dc @ c)


_, _, cache = step_forward(P, x, y_prev, c_prev)
analytic = step_backward(P, cache, Dy, Dc)
wrt = dict(P, x=x, y_prev=y_prev, c_prev=c_prev)
step_errors = {name: relative_error(analytic[name], numerical_gradient(step_loss, array))
               for name, array in wrt.items()}
print("one step, relative error per tensor:")
print("  " + "  ".join(f"{k}={v:.0e}" for k, v in step_errors.items()))
assert max(step_errors.values()) < 1e-7

# %% [markdown]
# ## 4. The whole sequence: BPTT
#
# Now yᵗ feeds two things: the loss directly (Δᵗ = ∂L/∂yᵗ from the layer above) and step t+1
# (through R_⋆ yᵗ). The cell cᵗ feeds only step t+1. So run the step backward from the last step
# to the first, handing each step the sum of its two incoming gradients:
#
#     δyᵗ = Δᵗ + (δyᵗ from step t+1) = Δᵗ + Σ_⋆ R_⋆ᵀ δ⋆̄ᵗ⁺¹
#     δc_in = (δcᵗ from step t+1) = δcᵗ⁺¹ ⊙ fᵗ⁺¹ + p_i ⊙ δīᵗ⁺¹ + p_f ⊙ δf̄ᵗ⁺¹
#
# with zeros beyond the last step. Substitute and you get exactly the backward equations of the
# paper (SPEC §2). Parameters are shared by all steps, so their gradients are **sums** over t.

# %%
def forward(P, X):
    y, c = np.zeros(N), np.zeros(N)
    Y, caches = [], []
    for x_t in X:
        y, c, cache = step_forward(P, x_t, y, c)
        Y.append(y)
        caches.append(cache)
    return np.array(Y), caches


def bptt(P, caches, dY, step_backward=step_backward):
    grads = {name: np.zeros_like(value) for name, value in P.items()}
    dX = np.zeros((len(caches), caches[0]["x"].size))
    deltas = []
    dy_next, dc_next = np.zeros(N), np.zeros(N)          # nothing flows back from beyond T−1
    for t in reversed(range(len(caches))):
        g = step_backward(P, caches[t], dY[t] + dy_next, dc_next)
        for name in grads:
            grads[name] += g[name]
        dX[t] = g["x"]
        deltas.append(g["deltas"])
        dy_next, dc_next = g["y_prev"], g["c_prev"]
    return grads, dX, deltas[::-1]


X = rng.normal(size=(T, M))
dY = rng.normal(size=(T, N))                  # Δᵗ: the gradient arriving from above


def sequence_loss():
    """L = Σ_t Δᵗ · yᵗ — any loss has some Δ; this one makes ∂L/∂y = Δ exactly."""
    return float(np.sum(forward(P, X)[0] * dY))


Y, caches = forward(P, X)
grads, dX, deltas = bptt(P, caches, dY)
seq_errors = {name: relative_error(grads[name], numerical_gradient(sequence_loss, P[name]))
              for name in P}
seq_errors["x"] = relative_error(dX, numerical_gradient(sequence_loss, X))
worst = max(seq_errors, key=seq_errors.get)
print(f"BPTT over T = {T}: worst relative error {seq_errors[worst]:.1e} ({worst})")
assert max(seq_errors.values()) < 1e-7

# %% [markdown]
# **Weight gradients are matrix products.** Since δW_⋆ = Σ_t δ⋆̄ᵗ xᵗᵀ, stacking the deltas of all
# steps into a (T, N) matrix D_⋆ gives δW_⋆ = D_⋆ᵀ X and δR_⋆ = D_⋆ᵀ Y₋₁ (Y shifted down one
# step). The fast kernel uses exactly this: only δyᵗ⁻¹ = Σ R_⋆ᵀ δ⋆̄ᵗ must be sequential; the weight
# gradients are a few large GEMMs after the loop.

# %%
Y_prev = np.vstack([np.zeros(N), Y[:-1]])
for g in GATES:
    D = np.array([d[f"{g}_bar"] for d in deltas])            # (T, N)
    assert np.allclose(grads[f"W_{g}"], D.T @ X, rtol=1e-12, atol=1e-14)
    assert np.allclose(grads[f"R_{g}"], D.T @ Y_prev, rtol=1e-12, atol=1e-14)
print("δW = Dᵀ X and δR = Dᵀ Y₋₁ for all four gates")

# %% [markdown]
# ## 5. Choosing ε
#
# Too large and the truncation error O(ε²) dominates; too small and rounding O(u/ε) does. The
# sweet spot for float64 central differences is around ε ≈ u^{1/3} ≈ 1e-5…1e-6.

# %%
eps_errors = {eps: relative_error(grads["W_f"], numerical_gradient(sequence_loss, P["W_f"], eps=eps))
              for eps in (1e-1, 1e-3, 1e-6, 1e-9, 1e-12)}
print("ε → relative error of δW_f:", {f"{k:.0e}": f"{v:.1e}" for k, v in eps_errors.items()})
assert eps_errors[1e-6] < 1e-7
assert eps_errors[1e-6] < eps_errors[1e-1] / 100          # truncation error at large ε
assert eps_errors[1e-6] < eps_errors[1e-12] / 100         # rounding error at tiny ε

# %% [markdown]
# ## 6. The library agrees
#
# `Layer.backward(dY)` runs the same BPTT and fills `layer.grads` (named like our dict) and returns
# ∂L/∂x. `check_layer(layer, X, dY)` does our section 4 for a library layer: it uses the same
# L = Σ_t Δᵗ · yᵗ and returns one relative error per tensor (plus `"dx"`).

# %%
for backend in ("reference", "numba"):
    layer = Layer("V", M, N, backend=backend)
    for name, value in P.items():
        layer.params[name][...] = value
    layer.forward(X)
    dX_lib = layer.backward(dY)
    agreement = max([relative_error(grads[n], layer.grads[n]) for n in P] + [relative_error(dX, dX_lib)])
    fd = check_layer(layer, X, dY)
    print(f"{backend:>9}: ours vs library {agreement:.1e};  library vs finite differences "
          f"{max(fd.values()):.1e} (worst of {len(fd)} tensors)")
    assert agreement < 1e-12
    assert max(fd.values()) < 1e-7

# %% [markdown]
# ## 7. A gradient check catches a wrong gradient
#
# Two bugs that are easy to make and hard to see by reading:
#
# * **peephole timing** — the input-gate peephole reads cᵗ⁻¹, but the buggy gradient uses the new
#   cell: δp_i = cᵗ ⊙ δīᵗ. Only δp_i is wrong.
# * **cut carousel** — forgetting the δcᵗ ⊙ fᵗ term in δcᵗ⁻¹, i.e. no gradient flows along the
#   cell from one step to the previous. The last step's contribution is still right and the
#   code still "learns" something, which makes this bug plausible-looking; but every tensor's
#   gradient is wrong.
#
# We reuse `bptt` with a buggy step and compare against the same finite differences.

# %%
def backward_peephole_bug(P, cache, dy, dc_in):
    g = step_backward(P, cache, dy, dc_in)
    g["p_i"] = cache["c"] * g["deltas"]["i_bar"]                         # bug: cᵗ instead of cᵗ⁻¹
    return g


def backward_cut_carousel(P, cache, dy, dc_in):
    g = step_backward(P, cache, dy, dc_in)
    g["c_prev"] = g["c_prev"] - g["dc"] * cache["f"]                    # bug: drop δcᵗ ⊙ fᵗ
    return g


numeric = {name: numerical_gradient(sequence_loss, P[name]) for name in P}
for label, buggy in (("peephole timing", backward_peephole_bug), ("cut carousel", backward_cut_carousel)):
    bad, _, _ = bptt(P, caches, dY, step_backward=buggy)
    errors = {name: relative_error(bad[name], numeric[name]) for name in P}
    flagged = sorted(name for name, e in errors.items() if e > 1e-4)
    print(f"{label:>16}: tensors flagged (error > 1e-4): {flagged}; worst {max(errors.values()):.1e}")
    if label == "peephole timing":
        assert flagged == ["p_i"]
    else:
        assert len(flagged) >= 10 and errors["b_z"] > 1e-3

# %% [markdown]
# ## 8. Watching the gradient flow back through time
#
# Put a loss on the **last** step only (Δᵗ = 0 for t < T−1) and record ‖δcᵗ‖ = ‖∂L/∂cᵗ‖ as BPTT
# walks back. Along the cell the gradient is multiplied by fᵗ at every step (item 5 above: δcᵗ⁻¹ =
# δcᵗ ⊙ fᵗ + …). With small weights, as at initialisation (N(0, 0.1²), biases 0), fᵗ ≈ σ(0) = 0.5,
# so ‖δcᵗ‖ should fall by about half per step (a little less: the gates vary with the input, and
# the recurrent paths through yᵗ⁻¹ add a bit). With the forget gate pinned open (b_f = +40, i.e.
# fᵗ = 1: the original LSTM without forget gate, the constant error carousel) it does not decay: it
# wanders, as each step's input changes what the peepholes and recurrent paths add, but it stays
# within a factor of 4 of its value at the last step all the way back to t = 0.

# %%
import matplotlib.pyplot as plt

from _figures import show

T_flow = 30 if FAST else 60
X_flow = rng.normal(size=(T_flow, M))
dY_flow = np.zeros((T_flow, N))
dY_flow[-1] = rng.normal(size=N)


def cell_gradient_norms(P):
    """‖∂L/∂cᵗ‖ for t = 0 … T−1 when only the last output receives a gradient."""
    norms = []

    def recording_step(P, cache, dy, dc_in):
        g = step_backward(P, cache, dy, dc_in)
        norms.append(np.linalg.norm(g["dc"]))
        return g

    bptt(P, forward(P, X_flow)[1], dY_flow, step_backward=recording_step)
    return np.array(norms[::-1])                     # bptt visits t = T−1 first


P_small = init_params(M, N, np.random.default_rng(7), scale=0.1)
P_small.update({f"b_{g}": np.zeros(N) for g in GATES})
P_open = dict(P_small, b_f=np.full(N, 40.0))         # σ(40) = 1.0 in float64: f ≡ 1
flows = {"with forget gate (f ≈ 0.5)": cell_gradient_norms(P_small),
         "forget gate pinned open (f ≡ 1)": cell_gradient_norms(P_open)}
lag = T_flow - 1 - np.arange(T_flow)                 # steps between cᵗ and the loss
decay = {label: np.exp(np.polyfit(lag, np.log(norms), 1)[0]) for label, norms in flows.items()}
for label, norms in flows.items():
    print(f"{label:32}: ‖δc^(T−1)‖ = {norms[-1]:.2e}, ‖δc⁰‖ = {norms[0]:.2e}, "
          f"factor per step {decay[label]:.3f}")
with_gate, open_gate = flows.values()
assert 0.4 < decay["with forget gate (f ≈ 0.5)"] < 0.65
assert with_gate[0] < 1e-6 * with_gate[-1]           # gone after a few dozen steps
assert 0.95 < decay["forget gate pinned open (f ≡ 1)"] < 1.05
assert np.all((open_gate > open_gate[-1] / 4) & (open_gate < 4 * open_gate[-1]))   # no decay

fig, ax = plt.subplots(figsize=(7, 4))
for label, norms in flows.items():
    ax.semilogy(np.arange(T_flow), norms, marker=".", label=label)
ax.semilogy(np.arange(T_flow), with_gate[-1] * 0.5 ** lag, "k:", label="0.5^(T−1−t)")
ax.set_xlabel("time step t (the loss is at the last step)")
ax.set_ylabel("‖∂L/∂cᵗ‖")
ax.set_title("02 — the gradient flowing back through time along the cell")
ax.legend(fontsize=8)
show(fig, "02_gradient_through_time")

# %% [markdown]
# ## Summary
#
# * One step's backward is five groups of lines, read off the forward equations in reverse.
# * BPTT = that step backward from T−1 to 0, passing δyᵗ⁻¹ and δcᵗ⁻¹ left; parameter gradients
#   are sums over t, i.e. matrix products of the stacked deltas.
# * Finite differences with ε ≈ 1e-6 agree to ~1e-9 relative; a wrong term shows up at 1e-3 or
#   worse, in exactly the tensors it touches.
# * Our gradients equal `Layer(backend="reference")` and `Layer(backend="numba")` to ~1e-15.
# * Along the cell the gradient is multiplied by the forget gate at every step: at f ≈ 0.5 it halves
#   per step, with f ≡ 1 it reaches the first step undiminished.

# %%
print("all claims of tutorial 02 hold")
