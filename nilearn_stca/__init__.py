"""Spatial-temporal convolutional attention (STCA) for dynamic functional brain networks."""

from .decomposition import STCADecomposition

__all__ = ["STCADecomposition", "__version__"]

__version__ = "0.1.0.dev0"
