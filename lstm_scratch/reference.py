"""Readable NumPy forward and backward passes for every architecture, one time step at a time.

This is the textbook: each gate's backward sits next to its forward, in the paper's symbols, so a
reader can hold one against the other. It is also the oracle the Numba kernels are tested against.
It is slow on purpose; use ``backend="numba"`` for work.

Interface (shared with :mod:`lstm_scratch.kernels`)::

    y, cache = forward(arch, params, x)          # x: (T, M)            -> y: (T, N)
    dx = backward(arch, params, cache, dy, grads)  # dy = ∂L/∂y: (T, N)  -> dx = ∂L/∂x: (T, M)
                                                   # need_dx=False: returns None
    h, c = final_state(arch, cache)                # the state after the last step (c: None for gated)

The initial state is zero unless ``forward(..., h0=, c0=)`` gives one (truncated BPTT carries it from
one window to the next; c0 only for the LSTM family); ``backward(..., need_dstate=True)`` returns
``dx, dh0, dc0`` (∂L/∂ of the initial state; dc0 None for gated cells).

``params`` and ``grads`` are dicts of named arrays (:meth:`Layout.views`); ``backward`` overwrites
every array in ``grads``. Shapes and dtypes are checked by :class:`lstm_scratch.Layer`, not here.
"""
from __future__ import annotations

import numpy as np

from .variants import Architecture, get


def sigmoid(a):
    """σ(a) = 1 / (1 + e^{−a}), written through tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def forward(arch: str | Architecture, params: dict, x: np.ndarray, h0: np.ndarray | None = None,
            c0: np.ndarray | None = None):
    """Run one sequence forward from the state (h0, c0) (None: zeros); return the outputs and what
    backward needs."""
    arch = get(arch)
    N = params["b_z" if arch.family == "lstm" else "b_h"].shape[0]
    h0 = np.zeros(N, dtype=x.dtype) if h0 is None else h0
    if arch.family == "lstm":
        return _lstm_forward(arch, params, x, h0, np.zeros(N, dtype=x.dtype) if c0 is None else c0)
    if c0 is not None:
        raise ValueError(f"c0: {arch.name} has no cell state; give h0 alone")
    return _gated_forward(arch, params, x, h0)


def final_state(arch: str | Architecture, cache) -> tuple:
    """(h, c) after the last step (c is None for the gated cells)."""
    last = cache["steps"][-1]
    return (last["y"], last["c"]) if get(arch).family == "lstm" else (last["h"], None)


def backward(arch: str | Architecture, params: dict, cache, dy: np.ndarray, grads: dict,
             need_dx: bool = True, need_dstate: bool = False):
    """Full backpropagation through time; fill ``grads`` and return ∂L/∂x (None without ``need_dx``);
    with ``need_dstate``, (∂L/∂x, ∂L/∂h0, ∂L/∂c0) (∂L/∂c0 None for the gated cells)."""
    arch = get(arch)
    dx, dh0, dc0 = (_lstm_backward if arch.family == "lstm" else _gated_backward)(arch, params, cache, dy,
                                                                                   grads)
    dx = dx if need_dx else None
    return (dx, dh0, dc0) if need_dstate else dx


# ---------------------------------------------------------------------------------------------
# LSTM family (SPEC §2–3)
# ---------------------------------------------------------------------------------------------
def _activations(arch):
    """The block input activation g, the output activation h, and their derivatives."""
    tanh = (np.tanh, lambda a, fa: 1.0 - fa * fa)
    identity = (lambda a: a, lambda a, fa: np.ones_like(a))
    return (tanh if arch.input_activation else identity), (tanh if arch.output_activation else identity)


def _lstm_forward(arch, p, x, y0, c0):
    """For t = 0 … T−1, from y⁻¹ = ``y0``, c⁻¹ = ``c0`` (and i⁻¹ = f⁻¹ = o⁻¹ = 0 for FGR: not carried)::

        z̄ᵗ = W_z xᵗ + R_z yᵗ⁻¹ + b_z                   zᵗ = g(z̄ᵗ)
        īᵗ = W_i xᵗ + R_i yᵗ⁻¹ + p_i ⊙ cᵗ⁻¹ + b_i       iᵗ = σ(īᵗ)      (≡ 1 without input gate)
        f̄ᵗ = W_f xᵗ + R_f yᵗ⁻¹ + p_f ⊙ cᵗ⁻¹ + b_f       fᵗ = σ(f̄ᵗ)      (≡ 1 without, 1 − iᵗ if coupled)
        cᵗ = zᵗ ⊙ iᵗ + cᵗ⁻¹ ⊙ fᵗ
        ōᵗ = W_o xᵗ + R_o yᵗ⁻¹ + p_o ⊙ cᵗ + b_o         oᵗ = σ(ōᵗ)      (≡ 1 without output gate)
        yᵗ = h(cᵗ) ⊙ oᵗ

    FGR adds Σ_a R_ab aᵗ⁻¹ (a ∈ {i, f, o}) to each gate pre-activation b̄ᵗ.
    """
    (g, _), (h, _) = _activations(arch)
    T, N = x.shape[0], p["b_z"].shape[0]
    zeros = np.zeros(N, dtype=x.dtype)
    ones = np.ones(N, dtype=x.dtype)
    steps = []                                     # one dict of named vectors per time step
    y_prev, c_prev = y0, c0
    gates_prev = {"i": zeros, "f": zeros, "o": zeros}

    def pre_activation(gate, xt, y_prev, peek, gates_prev):
        """b̄ = W_b x + R_b yᵗ⁻¹ [+ p_b ⊙ peek] [+ Σ_a R_ab aᵗ⁻¹] + b_b"""
        a = p[f"W_{gate}"] @ xt + p[f"R_{gate}"] @ y_prev + p[f"b_{gate}"]
        if f"p_{gate}" in p:
            a = a + p[f"p_{gate}"] * peek
        if arch.full_gate_recurrence and gate != "z":
            for src in "ifo":
                a = a + p[f"R_{src}{gate}"] @ gates_prev[src]
        return a

    for t in range(T):
        s = {"c_prev": c_prev, "y_prev": y_prev, "gates_prev": gates_prev}
        s["z_bar"] = pre_activation("z", x[t], y_prev, None, gates_prev)
        s["z"] = g(s["z_bar"])
        if arch.input_gate:
            s["i_bar"] = pre_activation("i", x[t], y_prev, c_prev, gates_prev)
            s["i"] = sigmoid(s["i_bar"])
        else:
            s["i"] = ones
        if arch.coupled:
            s["f"] = 1.0 - s["i"]
        elif arch.forget_gate:
            s["f_bar"] = pre_activation("f", x[t], y_prev, c_prev, gates_prev)
            s["f"] = sigmoid(s["f_bar"])
        else:
            s["f"] = ones
        s["c"] = s["z"] * s["i"] + c_prev * s["f"]
        if arch.output_gate:
            s["o_bar"] = pre_activation("o", x[t], y_prev, s["c"], gates_prev)
            s["o"] = sigmoid(s["o_bar"])
        else:
            s["o"] = ones
        s["h"] = h(s["c"])
        s["y"] = s["h"] * s["o"]
        steps.append(s)
        y_prev, c_prev = s["y"], s["c"]
        gates_prev = {"i": s["i"], "f": s["f"], "o": s["o"]}
    y = np.stack([s["y"] for s in steps])
    return y, {"x": x, "steps": steps}


def _lstm_backward(arch, p, cache, dy, grads):
    """From t = T−1 down to 0, all t+1 terms zero at the end (SPEC §2)::

        δyᵗ = Δᵗ + Σ_b R_bᵀ δb̄ᵗ⁺¹
        δōᵗ = δyᵗ ⊙ h(cᵗ) ⊙ σ'(ōᵗ)
        δcᵗ = δyᵗ ⊙ oᵗ ⊙ h'(cᵗ) + p_o ⊙ δōᵗ + p_i ⊙ δīᵗ⁺¹ + p_f ⊙ δf̄ᵗ⁺¹ + δcᵗ⁺¹ ⊙ fᵗ⁺¹
        δf̄ᵗ = δcᵗ ⊙ cᵗ⁻¹ ⊙ σ'(f̄ᵗ)      δīᵗ = δcᵗ ⊙ zᵗ ⊙ σ'(īᵗ)      δz̄ᵗ = δcᵗ ⊙ iᵗ ⊙ g'(z̄ᵗ)
        δxᵗ = Σ_b W_bᵀ δb̄ᵗ

    CIFG: fᵗ = 1 − iᵗ, so the forget path's gradient δcᵗ ⊙ cᵗ⁻¹ reaches īᵗ with a minus sign.
    FGR: gate a at t also receives Σ_b R_abᵀ δb̄ᵗ⁺¹ before its own σ'.
    Returns δx and the initial state's gradients, the t = −1 terms of the same recursion:
    δy⁻¹ = Σ_b R_bᵀ δb̄⁰,  δc⁻¹ = δc⁰ ⊙ f⁰ + p_i ⊙ δī⁰ + p_f ⊙ δf̄⁰.
    """
    (_, g_prime), (_, h_prime) = _activations(arch)
    x, steps = cache["x"], cache["steps"]
    T = len(steps)
    for array in grads.values():
        array[...] = 0.0
    dx = np.zeros_like(x)
    N = p["b_z"].shape[0]
    zeros = np.zeros(N, dtype=x.dtype)
    dbar_next = {}                                  # δb̄ᵗ⁺¹ of every gate b present
    dc_next, f_next = zeros, zeros

    def from_next(name):
        return dbar_next.get(name, zeros)

    for t in reversed(range(T)):
        s = steps[t]
        dbar = {}
        # δyᵗ: the gradient from above plus what every gate sent back through R at t+1
        dy_t = dy[t] + sum((p[f"R_{b}"].T @ d for b, d in dbar_next.items()), zeros)
        # FGR: what each gate's value aᵗ sent into the gates at t+1
        dgate_rec = {a: sum((p[f"R_{a}{b}"].T @ from_next(b) for b in "ifo"), zeros)
                     if arch.full_gate_recurrence else zeros for a in "ifo"}

        # y = h(c) ⊙ o
        if arch.output_gate:
            do = dy_t * s["h"] + dgate_rec["o"]
            dbar["o"] = do * s["o"] * (1.0 - s["o"])
        dc = dy_t * s["o"] * h_prime(s["c"], s["h"]) + dc_next * f_next
        if "p_o" in p:
            dc = dc + p["p_o"] * dbar["o"]
        if "p_i" in p:
            dc = dc + p["p_i"] * from_next("i")
        if "p_f" in p:
            dc = dc + p["p_f"] * from_next("f")
        # c = z ⊙ i + cᵗ⁻¹ ⊙ f
        di = dc * s["z"] + dgate_rec["i"]
        df = dc * s["c_prev"] + dgate_rec["f"]
        if arch.coupled:
            di = di - df                            # f = 1 − i
        elif arch.forget_gate:
            dbar["f"] = df * s["f"] * (1.0 - s["f"])
        if arch.input_gate:
            dbar["i"] = di * s["i"] * (1.0 - s["i"])
        dbar["z"] = dc * s["i"] * g_prime(s["z_bar"], s["z"])

        # parameter gradients of step t, and δxᵗ
        for b, d in dbar.items():
            grads[f"W_{b}"] += np.outer(d, x[t])
            grads[f"R_{b}"] += np.outer(d, s["y_prev"])
            grads[f"b_{b}"] += d
            dx[t] += p[f"W_{b}"].T @ d
            if arch.full_gate_recurrence and b != "z":
                for a in "ifo":
                    grads[f"R_{a}{b}"] += np.outer(d, s["gates_prev"][a])
        if "p_i" in p:
            grads["p_i"] += s["c_prev"] * dbar["i"]
        if "p_f" in p:
            grads["p_f"] += s["c_prev"] * dbar["f"]
        if "p_o" in p:
            grads["p_o"] += s["c"] * dbar["o"]
        dbar_next, dc_next, f_next = dbar, dc, s["f"]
    dy0 = sum((p[f"R_{b}"].T @ d for b, d in dbar_next.items()), zeros)
    dc0 = dc_next * f_next + sum((p[f"p_{b}"] * dbar_next[b] for b in "if" if f"p_{b}" in p), zeros)
    return dx, dy0, dc0


# ---------------------------------------------------------------------------------------------
# Gated family: GRU, the JZS mutants and the plain tanh RNN (SPEC §4)
# ---------------------------------------------------------------------------------------------
def _gated_forward(arch, p, x, h0):
    """With h = hᵗ⁻¹, h⁻¹ = ``h0``, and m the mixing gate (u for GRU, z for MUT1–3)::

        m̄ = W_m x + [U_m h | U_m tanh(h) | nothing] + b_m        m = σ(m̄)
        r̄ = W_r x + U_r h + b_r                                   r = σ(r̄)      (TANH: r ≡ 1)
        h̄ = U_h (r ⊙ h) + [W_h x | tanh(W_h x) for MUT1] + b_h   h̃ = tanh(h̄)
        hᵗ = k ⊙ h + (1 − k) ⊙ h̃,   k = m (GRU: u keeps the old state), k = 1 − m (MUT: z writes h̃),
                                    k ≡ 0 without mixing gate (TANH: hᵗ = tanh(W_h x + U_h h + b_h))
    """
    m = arch.mix_gate
    T, N = x.shape[0], p["b_h"].shape[0]
    h_prev = h0
    steps = []
    for t in range(T):
        s = {"h_prev": h_prev}
        s["m_in"] = {"none": None, "h": h_prev, "tanh": np.tanh(h_prev)}[arch.mix_recurrence]
        if m:
            m_bar = p[f"W_{m}"] @ x[t] + p[f"b_{m}"]
            if s["m_in"] is not None:
                m_bar = m_bar + p[f"U_{m}"] @ s["m_in"]
            s["m"] = sigmoid(m_bar)
        if arch.reset_gate:
            s["r"] = sigmoid(p["W_r"] @ x[t] + p["U_r"] @ h_prev + p["b_r"])
        else:
            s["r"] = np.ones(N, dtype=x.dtype)
        s["x_h"] = p["W_h"] @ x[t]
        if arch.candidate_input_tanh:
            s["x_h"] = np.tanh(s["x_h"])
        s["h_tilde"] = np.tanh(p["U_h"] @ (s["r"] * h_prev) + s["x_h"] + p["b_h"])
        if m == "u":
            s["k"] = s["m"]
        elif m == "z":
            s["k"] = 1.0 - s["m"]
        else:
            s["k"] = np.zeros(N, dtype=x.dtype)
        s["h"] = s["k"] * h_prev + (1.0 - s["k"]) * s["h_tilde"]
        steps.append(s)
        h_prev = s["h"]
    return np.stack([s["h"] for s in steps]), {"x": x, "steps": steps}


def _gated_backward(arch, p, cache, dy, grads):
    """Backward of :func:`_gated_forward`, step by step::

        δk = δhᵗ ⊙ (h − h̃)      δh̃ = δhᵗ ⊙ (1 − k)      δh ← δhᵗ ⊙ k
        δm̄ = ±δk ⊙ σ'(m̄)        δh̄ = δh̃ ⊙ (1 − h̃²)
        δ(r ⊙ h) = U_hᵀ δh̄  →  δr̄ = δ(r ⊙ h) ⊙ h ⊙ σ'(r̄),  δh += δ(r ⊙ h) ⊙ r
        δh += U_rᵀ δr̄ + [U_mᵀ δm̄ | (U_mᵀ δm̄) ⊙ (1 − tanh²(h))]
        δx = W_mᵀ δm̄ + W_rᵀ δr̄ + W_hᵀ [δh̄ | δh̄ ⊙ (1 − tanh²(W_h x)) for MUT1]

    TANH (k ≡ 0, r ≡ 1) keeps only what involves h̃:  δh̄ = δhᵗ ⊙ (1 − h̃²),  δh = U_hᵀ δh̄,
    δx = W_hᵀ δh̄.  Returns δx, δh⁻¹ (what step 0 sends back) and None (no cell state).
    """
    m = arch.mix_gate
    x, steps = cache["x"], cache["steps"]
    for array in grads.values():
        array[...] = 0.0
    dx = np.zeros_like(x)
    dh_next = np.zeros_like(steps[0]["h_prev"])
    for t in reversed(range(len(steps))):
        s = steps[t]
        h = s["h_prev"]
        dh_t = dy[t] + dh_next
        dk = dh_t * (h - s["h_tilde"])
        dh = dh_t * s["k"]
        dh_bar = dh_t * (1.0 - s["k"]) * (1.0 - s["h_tilde"] ** 2)
        drh = p["U_h"].T @ dh_bar
        dbar = {}                                   # δ of each gate's pre-activation, for W, U and b
        if m:
            dbar[m] = (dk if m == "u" else -dk) * s["m"] * (1.0 - s["m"])
        if arch.reset_gate:
            dbar["r"] = drh * h * s["r"] * (1.0 - s["r"])
            dh += drh * s["r"] + p["U_r"].T @ dbar["r"]
            grads["U_r"] += np.outer(dbar["r"], h)
        else:
            dh += drh                               # r ≡ 1
        if m and s["m_in"] is not None:
            dm_in = p[f"U_{m}"].T @ dbar[m]
            dh += dm_in if arch.mix_recurrence == "h" else dm_in * (1.0 - s["m_in"] ** 2)
            grads[f"U_{m}"] += np.outer(dbar[m], s["m_in"])
        dx_h = dh_bar * (1.0 - s["x_h"] ** 2) if arch.candidate_input_tanh else dh_bar
        for name, d in (*dbar.items(), ("h", dx_h)):
            grads[f"W_{name}"] += np.outer(d, x[t])
            dx[t] += p[f"W_{name}"].T @ d
        for name, d in (*dbar.items(), ("h", dh_bar)):
            grads[f"b_{name}"] += d
        grads["U_h"] += np.outer(dh_bar, s["r"] * h)
        dh_next = dh
    return dx, dh_next, None
