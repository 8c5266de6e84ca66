"""lstm_scratch — a from-scratch NumPy/Numba reproduction of *LSTM: A Search Space Odyssey*
(Greff et al. 2017) and the gated cells of Józefowicz, Zaremba & Sutskever (2015)."""
from .jit_cache import ensure_cache_dir

ensure_cache_dir()      # before any cache=True kernel is decorated: a read-only install must not crash
from . import ctc, losses  # noqa: E402
from .layer import BiLayer, Layer
from .network import Network
from .variants import ARCHITECTURES, LSTM_VARIANTS, Architecture, n_params

__version__ = "0.1.0"
__all__ = ["ARCHITECTURES", "LSTM_VARIANTS", "Architecture", "BiLayer", "Layer", "Network", "ctc",
           "losses", "n_params", "__version__"]
