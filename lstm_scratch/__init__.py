"""lstm_scratch — a from-scratch NumPy/Numba reproduction of *LSTM: A Search Space Odyssey*."""
from .variants import ARCHITECTURES, LSTM_VARIANTS, Architecture

__version__ = "0.1.0"
__all__ = ["ARCHITECTURES", "LSTM_VARIANTS", "Architecture", "__version__"]
