"""Baseline decompositions with the STCA window API: sliding-window ICA and SDL (nilearn)."""

from .ica import ICADecomposition
from .sdl import SDLDecomposition

__all__ = ["ICADecomposition", "SDLDecomposition"]
