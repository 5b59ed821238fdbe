import nibabel as nib
import numpy as np
import pytest
from conftest import SHARED_NILEARN_DATA
from nilearn.datasets import load_mni152_brain_mask
from nilearn.image import resample_to_img

from nilearn_stca.datasets import SMITH2009_RSN10_NAMES
from nilearn_stca.evaluation import iou_matrix
from nilearn_stca.evaluation.templates import load_rsn_templates

SMITH_FILE = SHARED_NILEARN_DATA / "smith_2009" / "PNAS_Smith09_rsn10.nii.gz"


def _two_blob_maps():
    """Two z-maps on a 2 mm grid: Gaussian blobs peaking at z = 10."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    grid = np.indices((30, 30, 30)).reshape(3, -1).T
    maps = [
        10 * np.exp(-((grid - np.array(c)) ** 2).sum(axis=1) / (2 * 4.0**2)).reshape(30, 30, 30)
        for c in [(8, 10, 12), (20, 18, 16)]
    ]
    return nib.Nifti1Image(np.stack(maps, axis=-1).astype(np.float32), affine)


def test_binarisation_rules():
    maps_img = _two_blob_maps()
    z = load_rsn_templates(maps_img, threshold=3.6)
    data = maps_img.get_fdata()
    np.testing.assert_array_equal(z.masks_img.get_fdata(), data >= 3.6)
    assert z.names == ["network_1", "network_2"] and z.threshold == ">= 3.6"
    half = load_rsn_templates(maps_img, fraction_of_max=0.5, names=["a", "b"])
    np.testing.assert_array_equal(half.masks_img.get_fdata(), data >= 5.0)
    assert half.names == ["a", "b"]
    with pytest.raises(ValueError, match="fraction_of_max must be in"):
        load_rsn_templates(maps_img, fraction_of_max=0)
    with pytest.raises(ValueError, match="names has 1 entries for 2 templates"):
        load_rsn_templates(maps_img, names=["a"])
    with pytest.raises(ValueError, match="Unknown templates='yeo'"):
        load_rsn_templates("yeo")


def test_resampling_to_4mm_keeps_the_networks():
    maps_img = _two_blob_maps()
    target = nib.Nifti1Image(np.ones((15, 15, 15), np.uint8), np.diag([4.0, 4.0, 4.0, 1.0]))
    coarse = load_rsn_templates(maps_img, target_img=target)
    assert coarse.masks_img.shape == (15, 15, 15, 2)
    # The 4 mm networks, brought back to 2 mm by nearest neighbours, overlap the originals.
    back = (
        resample_to_img(
            coarse.masks_img,
            maps_img,
            interpolation="nearest",
            force_resample=True,
            copy_header=True,
        )
        .get_fdata()
        .reshape(-1, 2)
        .T
        > 0
    )
    fine = load_rsn_templates(maps_img).masks_img.get_fdata().reshape(-1, 2).T > 0
    iou = iou_matrix(back, fine)
    assert iou[0, 0] > 0.7 and iou[1, 1] > 0.7
    assert iou[0, 1] == 0 and iou[1, 0] == 0


def test_label_atlas():
    labels = np.zeros((6, 6, 6), np.int16)
    labels[:3] = 2
    labels[4:, 4:] = 7
    atlas = load_rsn_templates(nib.Nifti1Image(labels, np.eye(4)))
    assert atlas.names == ["label_2", "label_7"] and atlas.threshold == "atlas labels"
    masks = atlas.masks_img.get_fdata()
    np.testing.assert_array_equal(masks[..., 0], labels == 2)
    np.testing.assert_array_equal(masks[..., 1], labels == 7)


@pytest.mark.skipif(
    not SMITH_FILE.is_file(),
    reason=f"needs the Smith 2009 maps in {SHARED_NILEARN_DATA} (absent; nothing is downloaded)",
)
def test_smith2009_on_the_4mm_mni_grid(monkeypatch):
    monkeypatch.setenv("NILEARN_DATA", str(SHARED_NILEARN_DATA))
    mask = load_mni152_brain_mask(resolution=4)
    smith = load_rsn_templates("smith2009", target_img=mask)
    assert smith.names == list(SMITH2009_RSN10_NAMES)
    assert smith.masks_img.shape == (*mask.shape, 10)
    voxels = smith.masks_img.get_fdata().reshape(-1, 10).sum(axis=0)
    # Every network keeps a region at 4 mm (measured: 113 to 1,059 voxels per network).
    assert voxels.min() >= 50
    # The same networks at 2 mm hold about 8 times as many voxels (4 mm voxels are 8x larger).
    native = load_rsn_templates("smith2009").masks_img.get_fdata().reshape(-1, 10).sum(axis=0)
    np.testing.assert_allclose(voxels * 8 / native, 1, atol=0.25)
