"""Spatial-temporal convolutional attention (STCA) for dynamic functional brain networks."""

from ._moved import serve_moved_modules
from ._utils.lazy import lazy_attributes

# Loaded on first use (PEP 562), so that ``nilearn_stca.baselines``, ``evaluation`` and the
# baselines' worker processes do not import torch.
_LAZY = {
    "STCADecomposition": "stca.decomposition",
    "PAPER_SETTINGS": "stca.decomposition",
    "WindowSweep": "windows.sweep",
    "load_window_sweep": "windows.sweep",
    "write_window_sweep": "windows.sweep",
}

__all__ = [*_LAZY, "__version__"]

__version__ = "0.1.0.dev0"


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

# The old names of moved modules (``nilearn_stca.dynamics``...), for one release.
serve_moved_modules()
