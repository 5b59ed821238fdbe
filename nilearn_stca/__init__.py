"""Spatial-temporal convolutional attention (STCA) for dynamic functional brain networks."""

from .decomposition import STCADecomposition
from .sweep import WindowSweep, load_window_sweep, write_window_sweep

__all__ = [
    "STCADecomposition",
    "WindowSweep",
    "load_window_sweep",
    "write_window_sweep",
    "__version__",
]

__version__ = "0.1.0.dev0"
