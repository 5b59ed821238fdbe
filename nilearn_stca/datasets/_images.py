"""The simulator's grid and images: the mask it simulates in, and its arrays put back on it."""

import nibabel as nib
import numpy as np
from nibabel.affines import voxel_sizes
from nilearn.datasets import load_mni152_brain_mask
from nilearn.masking import load_mask_img


def load_grid(mask_img, resolution):
    """Return the boolean mask array and the affine of the output grid."""
    if mask_img is None:
        mask_img = load_mni152_brain_mask(resolution=resolution)
    return load_mask_img(mask_img)


def unmask_timeseries(masked_data, mask, affine, t_r):
    """Return a 4D float32 image, zero outside the mask, with TR in header."""
    data = np.zeros((*mask.shape, len(masked_data)), dtype=np.float32)
    data[mask] = masked_data.T
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms((*voxel_sizes(affine), t_r))
    img.header.set_xyzt_units("mm", "sec")
    return img


def unmask_maps(maps, mask, affine):
    """Return the maps (n_networks, n_voxels) as a 4D float32 image, zero outside the mask."""
    data = np.zeros((*mask.shape, len(maps)), dtype=np.float32)
    data[mask] = maps.T
    return nib.Nifti1Image(data, affine)
