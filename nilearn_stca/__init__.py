"""Spatial-temporal convolutional attention (STCA) for dynamic functional brain networks."""

import importlib

# Loaded on first use (PEP 562), so that ``nilearn_stca.baselines``, ``evaluation`` and the
# baselines' worker processes do not import torch.
_LAZY = {
    "STCADecomposition": "stca.decomposition",
    "PAPER_SETTINGS": "stca.decomposition",
    "WindowSweep": "sweep",
    "load_window_sweep": "sweep",
    "write_window_sweep": "sweep",
}

__all__ = [*_LAZY, "__version__"]

__version__ = "0.1.0.dev0"


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})
