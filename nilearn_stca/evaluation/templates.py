"""Reference resting-state network templates, resampled to the data's grid and binarised."""

import numpy as np
from nilearn.datasets import fetch_atlas_smith_2009
from nilearn.image import load_img, new_img_like, resample_to_img
from sklearn.utils import Bunch

from ..datasets import SMITH2009_RSN10_NAMES
from ..maps import threshold_fbn_img

#: z threshold of the binarised templates, on the templates' own z scale (as the paper's maps).
DEFAULT_TEMPLATE_THRESHOLD = 3.6


def _labels_to_maps(labels_img):
    """A 3D label atlas (0 = background) as a 4D image of one binary map per label."""
    labels = np.asanyarray(labels_img.dataobj).astype(int)
    values = np.unique(labels[labels > 0])
    maps = np.stack([labels == value for value in values], axis=-1).astype(np.float32)
    return new_img_like(labels_img, maps, copy_header=False), [f"label_{v}" for v in values]


def load_rsn_templates(
    templates="smith2009",
    target_img=None,
    threshold=DEFAULT_TEMPLATE_THRESHOLD,
    fraction_of_max=None,
    names=None,
    data_dir=None,
):
    """Load resting-state network templates, resample them and binarise them.

    Parameters
    ----------
    templates : "smith2009" or Niimg-like, default="smith2009"
        "smith2009": the 10 resting-state networks of Smith et al. (2009), through
        :func:`nilearn.datasets.fetch_atlas_smith_2009` (offline when nilearn's data folder,
        e.g. ``NILEARN_DATA``, holds them; otherwise nilearn downloads them). Or any 4D image
        of network maps (one per volume), or a 3D label atlas (one network per label, e.g.
        Yeo 2011).
    target_img : Niimg-like, default=None
        Image whose grid the templates are resampled to (e.g. the data's mask). Maps are
        resampled with continuous interpolation, label atlases with nearest neighbours.
    threshold : float, default=3.6
        A network is the set of voxels whose map is at least this (positive tail only), on
        the maps' own scale: z for the Smith maps. The shared offline copy of the Smith maps
        is thresholded at z >= 2.3, which changes nothing at 3.6. Not used for label atlases,
        whose networks are their labels.
    fraction_of_max : float in (0, 1], default=None
        If given, binarise each map at this fraction of its own maximum instead (maps only).
    names : sequence of str, default=None
        Network names; the Smith 2009 names for "smith2009", else ``network_1``... (or
        ``label_<value>`` for an atlas).
    data_dir : str, default=None
        nilearn data folder for "smith2009".

    Returns
    -------
    templates : sklearn.utils.Bunch
        ``maps_img`` (4D, resampled maps), ``masks_img`` (4D uint8, the binary networks),
        ``names`` (list of str) and ``threshold`` (a description of the binarisation).
    """
    if isinstance(templates, str) and templates == "smith2009":
        atlas = fetch_atlas_smith_2009(data_dir=data_dir, resting=True, dimension=10, verbose=0)
        maps_img = load_img(atlas.maps)
        default_names = list(SMITH2009_RSN10_NAMES)
    elif isinstance(templates, str) and not templates.endswith((".nii", ".nii.gz")):
        raise ValueError(
            f"Unknown templates={templates!r}: use 'smith2009' or a 4D image (or 3D label "
            "atlas) of networks."
        )
    else:
        maps_img = load_img(templates)
        default_names = None
    is_atlas = maps_img.ndim == 3
    if is_atlas:
        maps_img, default_names = _labels_to_maps(maps_img)
    if default_names is None:
        default_names = [f"network_{i + 1}" for i in range(maps_img.shape[3])]
    names = list(names) if names is not None else default_names
    if len(names) != maps_img.shape[3]:
        raise ValueError(f"names has {len(names)} entries for {maps_img.shape[3]} templates.")
    if target_img is not None:
        maps_img = resample_to_img(
            maps_img,
            target_img,
            interpolation="nearest" if is_atlas else "continuous",
            force_resample=True,
            copy_header=True,
        )
    if is_atlas:
        masks_img = threshold_fbn_img(maps_img, 0.5)  # one-hot label maps
        rule = "atlas labels"
    elif fraction_of_max is not None:
        if not 0 < fraction_of_max <= 1:
            raise ValueError(f"fraction_of_max must be in (0, 1], got {fraction_of_max!r}.")
        data = maps_img.get_fdata(dtype=np.float32)
        peaks = data.reshape(-1, data.shape[-1]).max(axis=0)
        masks = data >= fraction_of_max * peaks
        masks &= data > 0
        masks_img = new_img_like(maps_img, masks.astype(np.uint8), copy_header=False)
        rule = f">= {fraction_of_max} x each map's maximum"
    else:
        masks_img = threshold_fbn_img(maps_img, threshold)
        rule = f">= {threshold}"
    return Bunch(maps_img=maps_img, masks_img=masks_img, names=names, threshold=rule)
