"""Masked voxel vectors <-> the cropped, padded brain box the network sees.

nilearn maskers give ``(n_samples, n_voxels)`` arrays whose columns follow the mask's
voxels in C order. The network needs dense volumes whose sides are multiples of 16. Instead
of a fixed cube, the box is the mask's bounding box padded (evenly on both sides) up to the
next multiple; voxels outside the mask are zero.
"""

import numpy as np
import torch


class BrainBox:
    """Geometry of the padded bounding box of a 3D brain mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (X, Y, Z)
        Brain mask on the data grid.
    multiple : int, default=16
        Each side of the box is padded up to a multiple of this.
    crop : bool, default=True
        If False, the box is a cube holding the whole data grid, its side the grid's
        longest padded up to ``multiple`` (64 for the 49 x 58 x 47 grid of 4 mm MNI data):
        the plain layout the benchmarks compare against.

    Attributes
    ----------
    shape : tuple of int
        Shape of the padded box.
    region : tuple of slice
        Where the mask's bounding box lies inside the box.
    n_voxels : int
        Number of voxels in the mask.
    flat_indices : ndarray of int
        For each mask voxel (in the masker's C order), its index in the flattened box.
    """

    def __init__(self, mask, multiple=16, crop=True):
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 3 or not mask.any():
            raise ValueError("The brain mask must be a non-empty 3D array.")
        coords = np.nonzero(mask)
        if crop:
            low = np.array([c.min() for c in coords])
            extent = np.array([c.max() for c in coords]) - low + 1
        else:
            low, extent = np.zeros(3, dtype=int), np.array(mask.shape)
        self.shape = tuple(int(-(-e // multiple) * multiple) for e in extent)
        if not crop:
            self.shape = (max(self.shape),) * 3
        offset = (np.array(self.shape) - extent) // 2 - low
        box_coords = tuple(c + o for c, o in zip(coords, offset, strict=True))
        self.region = tuple(slice(int(c.min()), int(c.max()) + 1) for c in box_coords)
        self.flat_indices = np.ravel_multi_index(box_coords, self.shape)
        self.n_voxels = int(mask.sum())

    def mask_tensor(self, device="cpu", dtype=torch.float32):
        """The mask as a dense (X, Y, Z) tensor of zeros and ones."""
        flat = torch.zeros(int(np.prod(self.shape)), dtype=dtype, device=device)
        flat[torch.as_tensor(self.flat_indices, device=device)] = 1
        return flat.reshape(self.shape)

    def to_box(self, vectors):
        """Scatter masked vectors ``(..., n_voxels)`` into boxes ``(..., X, Y, Z)``.

        Accepts a numpy array or a tensor; returns a tensor on the input's device.
        """
        vectors = torch.as_tensor(vectors)
        self._check_n_voxels(vectors.shape[-1])
        lead = vectors.shape[:-1]
        flat = vectors.new_zeros((*lead, int(np.prod(self.shape))))
        flat[..., torch.as_tensor(self.flat_indices, device=vectors.device)] = vectors
        return flat.reshape(*lead, *self.shape)

    def to_vectors(self, boxes):
        """Gather boxes ``(..., X, Y, Z)`` back into masked vectors ``(..., n_voxels)``."""
        if tuple(boxes.shape[-3:]) != self.shape:
            raise ValueError(f"Expected boxes of spatial shape {self.shape}, got {boxes.shape}.")
        flat = boxes.reshape(*boxes.shape[:-3], -1)
        return flat[..., torch.as_tensor(self.flat_indices, device=boxes.device)]

    def _check_n_voxels(self, n):
        if n != self.n_voxels:
            raise ValueError(f"Expected {self.n_voxels} masked voxels, got {n}.")
