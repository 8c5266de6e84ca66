"""lstm_scratch — a from-scratch NumPy/Numba reproduction of *LSTM: A Search Space Odyssey*
(Greff et al. 2017) and the gated cells of Józefowicz, Zaremba & Sutskever (2015).

The names below are loaded on first use (PEP 562): ``import lstm_scratch`` alone imports neither NumPy
nor Numba, so :mod:`lstm_scratch.analysis` reads study files on a machine that never touches a kernel,
and a worker may set its thread variables after importing the package. ``lstm_scratch.Network``,
``lstm_scratch.ctc`` and the like work as before; the kernel modules point Numba at a writable cache
themselves (:mod:`.jit_cache`).
"""
import importlib
import importlib.util

__version__ = "0.1.0"

# public name -> the submodule that defines it
_EXPORTS = {
    "ARCHITECTURES": "variants", "LSTM_VARIANTS": "variants", "JZS_ARCHITECTURES": "variants",
    "ALL_ARCHITECTURES": "variants", "Architecture": "variants", "n_params": "variants",
    "Layer": "layer", "BiLayer": "layer", "Network": "network",
}
_SUBMODULES = ("ctc", "losses")

__all__ = sorted(_EXPORTS) + list(_SUBMODULES) + ["__version__"]


def __getattr__(name: str):
    """``lstm_scratch.NAME``: an exported name or a submodule, imported now (then cached here)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)      # lstm_scratch.ctc, lstm_scratch.train, …
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
