"""Every architecture's hand-written BPTT against central finite differences (float64):
every parameter tensor and ∂L/∂x, unidirectional and bidirectional, both backends — the 13 of the
Odyssey table and JZS's own rows (TANH, LSTM, LSTM-F/-I/-O/-B)."""
import pytest

from lstm_scratch.gradcheck import check_layer
from lstm_scratch.variants import ALL_ARCHITECTURES, Layout

from conftest import N_HIDDEN, N_IN, random_layer, random_problem

TOLERANCE = 1e-6


def _cases(bidirectional):
    for arch in ALL_ARCHITECTURES:
        names = list(Layout(arch, N_IN, N_HIDDEN).shapes) + ["dx"]
        if bidirectional:
            names = [f"{d}.{n}" for d in ("fw", "bw") for n in names if n != "dx"] + ["dx"]
        for name in names:
            yield pytest.param(arch, name, id=f"{arch}-{name}")


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("arch, tensor", list(_cases(bidirectional=False)))
def test_grad(backend, arch, tensor):
    layer = random_layer(arch, backend=backend)
    x, dy = random_problem(layer)
    error = check_layer(layer, x, dy, names=[tensor])[tensor]
    assert error <= TOLERANCE, f"{arch} {tensor}: relative error {error:.2e}"


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("arch, tensor", list(_cases(bidirectional=True)))
def test_grad_bidirectional(backend, arch, tensor):
    layer = random_layer(arch, bidirectional=True, backend=backend)
    x, dy = random_problem(layer)
    error = check_layer(layer, x, dy, names=[tensor])[tensor]
    assert error <= TOLERANCE, f"{arch} {tensor}: relative error {error:.2e}"
