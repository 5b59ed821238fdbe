"""The networks the simulator plants: Smith et al. (2009)'s ten RSN maps, or procedural ones.

Procedural networks are a few smooth Gaussian blobs each, mirrored across the midline
like most resting-state networks, drawn inside the mask; they stand in for the Smith maps
where those are absent (no nilearn data directory) or do not fit the mask.
"""

from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.affines import apply_affine, voxel_sizes
from nilearn.datasets import fetch_atlas_smith_2009, get_data_dirs
from nilearn.image import check_niimg_4d, index_img, resample_img, resample_to_img
from scipy.ndimage import distance_transform_edt

#: Names of the 10 resting-state networks of Smith et al. (2009), in the
#: order of the maps of ``PNAS_Smith09_rsn10.nii.gz``.
SMITH2009_RSN10_NAMES = (
    "medial visual",
    "occipital pole visual",
    "lateral visual",
    "default mode",
    "cerebellum",
    "sensorimotor",
    "auditory",
    "executive control",
    "right frontoparietal",
    "left frontoparietal",
)

_SMITH2009_FILE = Path("smith_2009") / "PNAS_Smith09_rsn10.nii.gz"
# With networks="auto", the Smith maps are used only if the mask holds at
# least this fraction of each of them (e.g. not for a small region of interest).
_MIN_AUTO_COVERAGE = 0.5
_NETWORK_SOURCES = ("auto", "smith2009", "procedural")

# Ground-truth maps.
_MAP_THRESHOLD = 0.05  # map values below this are set to 0
CORE_THRESHOLD = 0.5  # voxels where a map reaches this define the SNR
# Procedural blob FWHM, as a fraction of the cubic root of the mask volume:
# 15-25 mm for the MNI152 brain mask.
_BLOB_FWHM_FRACTION = (0.12, 0.2)
_MIN_BLOB_FWHM_VOXELS = 2.0
_N_CANDIDATE_CENTRES = 30


def check_networks(networks):
    """Return the networks option, or the user maps as a 4D image."""
    if isinstance(networks, str) and networks in _NETWORK_SOURCES:
        return networks
    if isinstance(networks, (str, Path)) and not Path(networks).is_file():
        raise ValueError(
            f"networks must be one of {_NETWORK_SOURCES} or a 4D Niimg-like "
            f"object of network maps, got {networks!r}."
        )
    return check_niimg_4d(networks)


def network_maps(networks, n_networks, mask, affine, rng):
    """Return the masked maps (n_networks, n_voxels), names and source."""
    if not isinstance(networks, str):
        maps = _resample_to_mask(networks, mask, affine)
        _check_no_empty_map(maps, "the maps given in networks")
        names = [f"network_{k + 1}" for k in range(len(maps))]
        return maps, names, "custom"

    smith_names = list(SMITH2009_RSN10_NAMES[:n_networks])
    if networks == "smith2009":
        if n_networks > len(SMITH2009_RSN10_NAMES):
            raise ValueError(
                f"n_networks must be at most {len(SMITH2009_RSN10_NAMES)} with "
                f"networks='smith2009', got {n_networks}. Use networks='procedural' "
                "for more networks."
            )
        data_dir = _find_smith2009_data_dir()
        if data_dir is None:
            raise ValueError(
                f"networks='smith2009' requires the Smith 2009 maps, but {_SMITH2009_FILE} "
                f"was not found in any nilearn data directory ({get_data_dirs()}). Set the "
                "NILEARN_DATA environment variable to a folder containing it, run "
                "nilearn.datasets.fetch_atlas_smith_2009() once with internet access, or "
                "use networks='procedural'."
            )
        maps = _resample_to_mask(_load_smith2009_img(data_dir, n_networks), mask, affine)
        _check_no_empty_map(maps, "the Smith 2009 maps")
        return maps, smith_names, "smith2009"

    if networks == "auto" and n_networks <= len(SMITH2009_RSN10_NAMES):
        data_dir = _find_smith2009_data_dir()
        if data_dir is not None:
            maps_img = _load_smith2009_img(data_dir, n_networks)
            if _mask_coverage(maps_img, mask, affine).min() >= _MIN_AUTO_COVERAGE:
                return _resample_to_mask(maps_img, mask, affine), smith_names, "smith2009"

    maps = _procedural_maps(n_networks, mask, affine, rng)
    names = [f"network_{k + 1}" for k in range(n_networks)]
    return maps, names, "procedural"


def _find_smith2009_data_dir():
    """Return the nilearn data directory holding the Smith 2009 maps.

    Returns None if no directory has them, so that nothing is downloaded.
    """
    for data_dir in get_data_dirs():
        if (Path(data_dir) / _SMITH2009_FILE).is_file():
            return data_dir
    return None


def _load_smith2009_img(data_dir, n_networks):
    atlas = fetch_atlas_smith_2009(data_dir=data_dir, resting=True, dimension=10, verbose=0)
    return index_img(atlas.maps, slice(0, n_networks))


def _mask_coverage(maps_img, mask, affine):
    """Fraction of the positive part of each map that lies inside the mask.

    Computed on the grid of the maps, so that a mask whose field of view
    misses part of the maps does not count as covering them.
    """
    mask_on_maps = resample_img(
        nib.Nifti1Image(mask.astype(np.uint8), affine),
        target_affine=maps_img.affine,
        target_shape=maps_img.shape[:3],
        interpolation="nearest",
    )
    maps = np.clip(maps_img.get_fdata(dtype=np.float32), 0, None)
    inside = maps[mask_on_maps.get_fdata() > 0].sum(axis=0)
    return inside / maps.reshape(-1, maps.shape[-1]).sum(axis=0)


def _resample_to_mask(maps_img, mask, affine):
    """Resample maps to the grid and clean them, see `_normalize_maps`."""
    target = nib.Nifti1Image(mask.astype(np.uint8), affine)
    resampled = resample_to_img(maps_img, target, interpolation="continuous")
    return _normalize_maps(resampled.get_fdata(dtype=np.float32)[mask].T)


def _normalize_maps(maps):
    """Keep the positive part, scale each map to a max of 1, zero tails.

    Maps that are zero everywhere are left unchanged.
    """
    maps = np.clip(maps, 0, None).astype(np.float32)
    peaks = maps.max(axis=1, keepdims=True)
    np.divide(maps, peaks, out=maps, where=peaks > 0)
    maps[maps < _MAP_THRESHOLD] = 0
    return maps


def _check_no_empty_map(maps, what):
    empty = np.flatnonzero(maps.max(axis=1) == 0)
    if empty.size:
        raise ValueError(
            f"Maps {empty.tolist()} of {what} are empty inside the mask "
            "(0-based indices). Use a mask that covers them, or "
            "networks='procedural'."
        )


def _procedural_maps(n_networks, mask, affine, rng):
    """Draw smooth networks of Gaussian blobs spread over the mask.

    Each network is a pair of blobs mirrored about the mid-sagittal plane
    of the mask, plus, for about half of them, a blob on that plane. Blob
    centres are chosen by best-candidate sampling (the farthest from the
    existing centres among a few random mask voxels, away from the mask
    border) to limit overlaps. Blob sizes scale with the mask volume, with a
    floor of 2 voxels, so that small grids still hold distinct networks.
    """
    sizes = voxel_sizes(affine)
    coords = apply_affine(affine, np.argwhere(mask))
    # pad so that the grid border counts as outside the mask
    depth = distance_transform_edt(np.pad(mask, 1), sampling=sizes)[1:-1, 1:-1, 1:-1][mask]
    midline = coords[:, 0].mean()
    is_medial = np.abs(coords[:, 0] - midline) <= sizes[0]
    fwhm_range = np.maximum(
        np.array(_BLOB_FWHM_FRACTION) * np.cbrt(mask.sum() * np.prod(sizes)),
        _MIN_BLOB_FWHM_VOXELS * sizes.mean(),
    )
    sigma_range = fwhm_range / np.sqrt(8 * np.log(2))

    centres = np.empty((0, 3))
    maps = np.zeros((n_networks, len(coords)), dtype=np.float32)
    for k in range(n_networks):
        sigma = rng.uniform(*sigma_range)
        candidates = _candidate_centres(coords, depth >= sigma, rng)
        mirrored = _mirror(candidates, midline)
        score = np.minimum.reduce(
            [
                _distance_to_nearest(candidates, centres),
                _distance_to_nearest(mirrored, centres),
                # favours lateral centres, so that the pair is two blobs
                2 * np.abs(candidates[:, 0] - midline),
            ]
        )
        best = np.argmax(score)
        blob_centres = [candidates[best], mirrored[best]]
        blob_sigmas = [sigma, sigma]
        if rng.random() < 0.5 and is_medial.any():
            sigma = rng.uniform(*sigma_range)
            candidates = _candidate_centres(coords, is_medial & (depth >= sigma), rng)
            best = np.argmax(_distance_to_nearest(candidates, centres))
            blob_centres.append(candidates[best])
            blob_sigmas.append(sigma)
        for centre, sigma in zip(blob_centres, blob_sigmas, strict=True):
            squared_distance = np.sum((coords - centre) ** 2, axis=1)
            maps[k] += np.exp(-squared_distance / (2 * sigma**2))
        centres = np.vstack([centres, *blob_centres])
    return _normalize_maps(maps)


def _candidate_centres(coords, eligible, rng):
    """Draw random candidate centres, among eligible voxels if any."""
    pool = coords[eligible] if eligible.any() else coords
    return pool[rng.choice(len(pool), _N_CANDIDATE_CENTRES)]


def _mirror(points, midline):
    mirrored = points.copy()
    mirrored[:, 0] = 2 * midline - mirrored[:, 0]
    return mirrored


def _distance_to_nearest(points, centres):
    if not len(centres):
        return np.full(len(points), np.inf)
    distances = np.linalg.norm(points[:, None] - centres[None], axis=-1)
    return distances.min(axis=1)
