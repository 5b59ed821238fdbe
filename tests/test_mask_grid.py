"""A given mask: the data are masked with it and resampled onto its grid, everywhere."""

import nibabel as nib
import numpy as np

from nilearn_stca._utils.mask_grid import mask_grid_params


def test_mask_grid_params_keep_the_mask_and_give_its_grid(tmp_path):
    img = nib.Nifti1Image(np.ones((4, 5, 6, 1), "uint8"), np.diag([2.0, 3.0, 4.0, 1.0]))
    path = tmp_path / "mask.nii.gz"
    img.to_filename(path)
    for mask in (img, path, str(path)):
        params = mask_grid_params(mask)
        assert list(params) == ["mask", "target_affine", "target_shape"]
        assert params["mask"] is mask
        np.testing.assert_array_equal(params["target_affine"], nib.load(path).affine)
        assert params["target_shape"] == (4, 5, 6)
