"""Post-processing of component maps shared by every method: sign, z-score, threshold."""

import warnings

import numpy as np
from nilearn.image import math_img
from scipy.stats import skew, zscore


def zscore_maps(maps):
    """Z-score each map over its voxels.

    Parameters
    ----------
    maps : ndarray, shape (n_maps, n_voxels)
        One map per row, e.g. the masked voxels of a brain.

    Returns
    -------
    z_maps : ndarray, shape (n_maps, n_voxels)
        Each row minus its mean, divided by its standard deviation (ddof=0). A constant map
        becomes all zeros instead of NaN.
    """
    maps = np.asarray(maps)
    with warnings.catch_warnings():
        # A constant map has no spread; it is set to zero below.
        warnings.simplefilter("ignore", RuntimeWarning)
        z_maps = zscore(maps, axis=1)
    return np.nan_to_num(z_maps, nan=0.0, posinf=0.0, neginf=0.0)


def flip_to_positive_tail(maps):
    """Flip the sign of each map whose heavier tail is negative (negative skewness).

    ICA and dictionary-learning maps have an arbitrary sign; after this, the network of a
    map is in its positive tail, as it is for the STCA attention maps.
    """
    maps = np.asarray(maps)
    signs = np.where(skew(maps, axis=1) < 0, -1, 1)
    return maps * signs[:, None]


def threshold_maps(z_maps, threshold=3.6):
    """Binary networks: the voxels of each z-map at or above ``threshold``.

    Parameters
    ----------
    z_maps : ndarray, shape (n_maps, n_voxels)
        Maps z-scored over the brain (see :func:`zscore_maps`).
    threshold : float, default=3.6
        The paper's z threshold.

    Returns
    -------
    fbns : ndarray of bool, shape (n_maps, n_voxels)
    """
    return np.asarray(z_maps) >= threshold


def threshold_fbn_img(z_maps_img, threshold=3.6, binarize=True):
    """Threshold a 3D or 4D z-map image into functional brain networks (FBNs).

    Parameters
    ----------
    z_maps_img : Niimg-like
        Maps z-scored over the brain, e.g. ``components_img_`` or a window's maps.
    threshold : float, default=3.6
        The paper's z threshold.
    binarize : bool, default=True
        If True, return 1 inside each FBN and 0 elsewhere (uint8); otherwise keep the
        z values inside the FBNs and set the rest to 0.

    Returns
    -------
    fbn_img : Nifti1Image
    """
    if binarize:
        return math_img(f"(img >= {float(threshold)!r}).astype('uint8')", img=z_maps_img)
    return math_img(f"np.where(img >= {float(threshold)!r}, img, 0)", img=z_maps_img)
