"""The one rule for a given mask: the data are masked with it and resampled onto its grid."""

from nilearn.image import load_img


def mask_grid_params(mask):
    """The estimator parameters that mask with ``mask`` and resample the data onto its grid.

    Used wherever a mask is given (``compare``, the nipype nodes, ``nilearn-stca
    stability``), so that every method sees the same voxels however the runs are sampled.

    Parameters
    ----------
    mask : str, Path or Niimg-like object
        A 3D brain mask.

    Returns
    -------
    params : dict
        ``mask`` as given, then ``target_affine`` and ``target_shape`` of its grid: for an
        estimator's constructor or its ``set_params``.
    """
    mask_img = load_img(mask)
    return {"mask": mask, "target_affine": mask_img.affine, "target_shape": mask_img.shape[:3]}
