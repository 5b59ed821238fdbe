import numpy as np
import pytest
import torch
from nilearn.datasets import load_mni152_brain_mask
from nilearn.image import resample_img
from nilearn.maskers import NiftiMasker

from nilearn_stca.stca._grid import BrainBox


def _shift(x, y, z):
    affine = np.eye(4)
    affine[:3, 3] = np.array([x, y, z]) / 4
    return affine


def test_odd_grid_round_trip_with_nilearn_masker():
    # The paper's 4 mm grid (49 x 58 x 47), with odd sides on every axis.
    mask_img = resample_img(
        load_mni152_brain_mask(resolution=4),
        target_affine=np.diag([4, 4, 4, 1]) @ _shift(-96, -132, -78),
        target_shape=(49, 58, 47),
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    mask = np.asanyarray(mask_img.dataobj) > 0
    assert mask.shape == (49, 58, 47)
    assert mask.sum() > 20_000
    box = BrainBox(mask)
    assert all(side % 16 == 0 for side in box.shape)
    assert all(side < 64 for side in box.shape[:1])  # cropped, not a fixed cube

    masker = NiftiMasker(mask_img=mask_img).fit()
    rng = np.random.RandomState(0)
    vectors = rng.randn(3, mask.sum()).astype(np.float32)
    boxes = box.to_box(vectors)
    assert boxes.shape == (3, *box.shape)
    np.testing.assert_array_equal(box.to_vectors(boxes).numpy(), vectors)

    # The box holds each voxel at its place: compare with the dense volume from nilearn.
    volume = masker.inverse_transform(vectors[0]).get_fdata()
    dense = boxes[0].numpy()
    assert np.count_nonzero(dense) == np.count_nonzero(volume)
    np.testing.assert_allclose(np.sort(dense[dense != 0]), np.sort(volume[volume != 0]))

    # The plain layout: the whole grid in a 64^3 cube, the same voxels.
    cube = BrainBox(mask, crop=False)
    assert cube.shape == (64, 64, 64)
    np.testing.assert_array_equal(cube.to_vectors(cube.to_box(vectors)).numpy(), vectors)
    assert dense.sum() == pytest.approx(volume.sum(), rel=1e-5)
    # Neighbouring voxels stay neighbours: a shift along z in the volume is one along z in the box.
    i, j, k = np.argwhere(mask[:, :, :-1] & mask[:, :, 1:])[0]
    location = lambda ijk: np.ravel_multi_index(ijk, mask.shape)  # noqa: E731
    order = np.cumsum(mask.ravel()) - 1
    a, b = order[location((i, j, k))], order[location((i, j, k + 1))]
    assert box.flat_indices[b] - box.flat_indices[a] == 1


def test_outside_mask_is_zero_and_mask_tensor():
    mask = np.zeros((5, 7, 3), bool)
    mask[1:4, 2:6, 1] = True
    box = BrainBox(mask)
    assert box.shape == (16, 16, 16)
    boxes = box.to_box(torch.ones(2, 12))
    assert boxes.sum() == 24
    torch.testing.assert_close(boxes[0], box.mask_tensor())


def test_bad_inputs():
    with pytest.raises(ValueError, match="non-empty 3D"):
        BrainBox(np.zeros((4, 4, 4), bool))
    box = BrainBox(np.ones((4, 4, 4), bool))
    with pytest.raises(ValueError, match="64 masked voxels"):
        box.to_box(np.zeros((2, 10), np.float32))
