"""PyTorch-autograd twins of the gated cells (GRU, MUT1, MUT2, MUT3): the yardstick for the Numba kernel.

What a PyTorch user writes for these cells: the input projection of all steps as one matmul, then the
cell one step at a time, then ``backward()`` through autograd. Same equations, same flat parameter
layout (:class:`lstm_scratch.variants.Layout`) as ``lstm_scratch.kernels.gated``, so one parameter
vector drives both. Test oracle too: ``tests/test_gated_kernel.py`` holds the kernel equal to it.
Needs torch (``pip install .[bench]``); not a dependency of the package.

    twin = TorchGatedTwin("MUT3", flat, n_in=88, n_hidden=50)      # flat: float32/float64 vector
    y, grads, dx = twin.forward_backward(x, dy)   # numpy in/out; grads: {name: array} (Layout names)
"""
from __future__ import annotations

import numpy as np
import torch

from lstm_scratch.variants import Layout, get


class TorchGatedTwin:
    """One gated layer as torch tensors with autograd; parameters copied from ``flat``."""

    def __init__(self, arch, flat: np.ndarray, n_in: int, n_hidden: int):
        self.arch = get(arch)
        if self.arch.family != "gated":
            raise ValueError(f"TorchGatedTwin runs GRU, MUT1, MUT2, MUT3, not {self.arch.name!r}")
        self.layout = Layout(self.arch, n_in, n_hidden)
        self.params = {name: torch.tensor(view, requires_grad=True)
                       for name, view in self.layout.views(np.asarray(flat)).items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(T, M) -> (T, N) with h⁻¹ = 0; the equations of :mod:`lstm_scratch.variants`."""
        a, p = self.arch, self.params
        m = a.mix_gate
        W = torch.cat([p[f"W_{m}"], p["W_r"], p["W_h"]])
        pre = x @ W.T                                   # all steps' input projections in one matmul
        N = p["b_r"].shape[0]
        h = x.new_zeros(N)
        outputs = []
        for t in range(x.shape[0]):
            m_bar = pre[t, :N] + p[f"b_{m}"]
            if a.mix_recurrence == "h":
                m_bar = m_bar + p[f"U_{m}"] @ h
            elif a.mix_recurrence == "tanh":
                m_bar = m_bar + p[f"U_{m}"] @ torch.tanh(h)
            gate = torch.sigmoid(m_bar)
            r = torch.sigmoid(pre[t, N:2 * N] + p["U_r"] @ h + p["b_r"])
            x_h = torch.tanh(pre[t, 2 * N:]) if a.candidate_input_tanh else pre[t, 2 * N:]
            h_tilde = torch.tanh(p["U_h"] @ (r * h) + x_h + p["b_h"])
            if m == "u":                                # GRU: u keeps the old state
                h = gate * h + (1 - gate) * h_tilde
            else:                                       # MUT: z writes the candidate
                h = gate * h_tilde + (1 - gate) * h
            outputs.append(h)
        return torch.stack(outputs)

    def forward_backward(self, x: np.ndarray, dy: np.ndarray):
        """y, {name: ∂L/∂θ}, ∂L/∂x for L = Σ_t dyᵗ · yᵗ, all as numpy arrays."""
        for tensor in self.params.values():
            tensor.grad = None
        xt = torch.tensor(x, requires_grad=True)
        y = self.forward(xt)
        y.backward(torch.as_tensor(dy))
        grads = {name: tensor.grad.numpy() for name, tensor in self.params.items()}
        return y.detach().numpy(), grads, xt.grad.numpy()
