import nibabel as nib
import numpy as np
import pytest

from nilearn_stca.maps import flip_to_positive_tail, threshold_fbn_img, threshold_maps, zscore_maps


def test_zscore_maps():
    rng = np.random.RandomState(0)
    maps = rng.randn(3, 500) * [[2], [5], [0.1]] + [[1], [-3], [7]]
    z = zscore_maps(maps)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1)
    np.testing.assert_allclose(z[1], (maps[1] - maps[1].mean()) / maps[1].std())
    np.testing.assert_array_equal(zscore_maps(np.ones((1, 4))), 0)


def test_flip_to_positive_tail():
    rng = np.random.RandomState(0)
    maps = rng.randn(2, 1000) * 0.1
    maps[0, :20] = 5.0
    maps[1, :20] = -5.0
    flipped = flip_to_positive_tail(maps)
    np.testing.assert_array_equal(flipped[0], maps[0])
    np.testing.assert_array_equal(flipped[1], -maps[1])


def test_threshold():
    z = np.array([[3.59, 3.6, 10.0, -4.0]])
    np.testing.assert_array_equal(threshold_maps(z), [[False, True, True, False]])
    img = nib.Nifti1Image(z.reshape(1, 1, 4, 1).astype(np.float32), np.eye(4))
    fbns = threshold_fbn_img(img)
    np.testing.assert_array_equal(fbns.get_fdata().ravel(), [0, 1, 1, 0])
    kept = threshold_fbn_img(img, threshold=3.0, binarize=False)
    np.testing.assert_allclose(kept.get_fdata().ravel(), [3.59, 3.6, 10.0, 0], rtol=1e-6)


@pytest.mark.parametrize("threshold", [2.3, 3.6])
def test_threshold_maps_and_image_agree(threshold):
    rng = np.random.RandomState(1)
    z = zscore_maps(rng.standard_t(3, size=(2, 64)))
    img = nib.Nifti1Image(z.T.reshape(4, 4, 4, 2), np.eye(4))
    from_img = threshold_fbn_img(img, threshold).get_fdata().reshape(64, 2).T.astype(bool)
    np.testing.assert_array_equal(from_img, threshold_maps(z, threshold))
