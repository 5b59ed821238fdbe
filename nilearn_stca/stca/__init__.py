"""STCA itself: the network, its training, its maps, and the estimator that wraps them.

- :mod:`.network`: the STCA block, the guiding autoencoder and the regression decoder,
  plain ``torch.nn`` modules;
- :mod:`._grid`: masked vectors <-> the brain's bounding box padded for the poolings;
- :mod:`._spectral`: the block's convolutions through the FFT, on the brain alone;
- :mod:`._training`: the torch loops, training over windows and attention logits out;
- :mod:`.static_maps`: the static maps from the window maps;
- :mod:`.decomposition`: :class:`STCADecomposition` and :data:`PAPER_SETTINGS`;
- :mod:`._persistence`, :mod:`._model_folder`: ``save`` and ``load``.
"""

from .decomposition import PAPER_SETTINGS, STCADecomposition

__all__ = ["PAPER_SETTINGS", "STCADecomposition"]
