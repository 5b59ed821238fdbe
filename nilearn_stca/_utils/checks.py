"""Input checks shared by the estimators: devices, image lists, 4D runs, confounds."""

import numbers
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn.image import load_img
from sklearn.utils import check_scalar


def resolve_device(device):
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``... into an available torch device."""
    # Imported here: the baselines' worker processes use this module, never torch.
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"Unknown device={device!r}: use 'auto', 'cpu' or 'cuda' (optionally 'cuda:N')."
        ) from error
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unknown device={device!r}: use 'auto', 'cpu' or 'cuda'.")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available here; "
            "use device='auto' (CUDA when present, else CPU) or device='cpu'."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was requested but MPS is not available here.")
    return resolved


def pair_with_confounds(imgs, confounds):
    """``[(img, confounds_entry), ...]`` for one image or a list of them (one per subject)."""
    if isinstance(imgs, (str, Path)) or not hasattr(imgs, "__iter__"):
        imgs = [imgs]
    imgs = list(imgs)
    if not imgs:
        raise ValueError("imgs is an empty list: give one 4D Niimg-like per subject.")
    if confounds is None:
        confounds = [None] * len(imgs)
    elif len(confounds) != len(imgs):
        raise ValueError(
            f"confounds has {len(confounds)} entries for {len(imgs)} images: "
            "give one confounds entry (or None) per image."
        )
    return list(zip(imgs, confounds, strict=True))


def repetition_time(imgs):
    """The repetition time (s) the runs' NIfTI headers give, if they all give the same one.

    The fourth zoom, in the header's time unit (seconds or milliseconds); None where a
    header gives no time unit or a zoom <= 0, or where the runs disagree.
    """
    values = set()
    for img in imgs:
        header = img.header
        zooms = header.get_zooms()
        unit = header.get_xyzt_units()[1] if hasattr(header, "get_xyzt_units") else "unknown"
        if len(zooms) < 4 or unit not in ("sec", "msec") or not zooms[3] > 0:
            return None
        values.add(round(float(zooms[3]) / (1000.0 if unit == "msec" else 1.0), 6))
    return values.pop() if len(values) == 1 else None


def load_4d_run(img, name, window_length, window_option="window_length"):
    """Load one run, checking that it is 4D, at least one window long and finite.

    ``window_option`` names how the caller's user changes the window length (the Python
    parameter by default, a command-line option...), or is None where it cannot be changed:
    the advice for a run shorter than a window is then to give a longer run.
    """
    img = load_img(img)
    if img.ndim != 4:
        raise ValueError(
            f"{name} is a {img.ndim}D image with shape {img.shape}: a 4D fMRI run "
            "(x, y, z, time) is needed. Give the 4D series, not a single volume."
        )
    check_enough_scans(name, img.shape[3], window_length, window_option)
    data = np.asanyarray(img.dataobj)
    if not np.isfinite(data).all():
        raise ValueError(
            f"{name} contains NaN or infinite values: replace them (e.g. "
            "math_img('np.nan_to_num(img)', img=...)) before fitting."
        )
    if not data.any():
        raise ValueError(
            f"{name} is all zeros: it holds no signal to decompose. Check that the file is "
            "the preprocessed BOLD run, not an empty output of an earlier step."
        )
    return img


def check_enough_scans(name, n_scans, window_length, window_option="window_length"):
    """Refuse a run of fewer scans than one window; see :func:`load_4d_run`."""
    if n_scans >= window_length:
        return
    fix = f"give a longer run (at least {window_length} scans)"
    if window_option is not None:
        fix = f"lower {window_option} or {fix}"
    raise ValueError(
        f"{name} has {n_scans} scans, fewer than window_length={window_length}: {fix}."
    )


def _voxel_sizes(affine):
    """The voxel sizes (mm) of an affine, whatever its rotation."""
    return np.sqrt(np.sum(np.asarray(affine)[:3, :3] ** 2, axis=0))


def _plain(values, separator=" x "):
    """Numbers as a person writes them: ``4 x 4 x 4``, ``2.5 x 2.5 x 3``."""
    return separator.join(f"{float(value):.4g}" for value in values)


def grid_difference(img, reference):
    """What differs between the grids of two images, in plain numbers, or None.

    Returns
    -------
    difference : str or None
        ``"shape differs: ..."``, ``"affine differs: ..."`` or ``"shape and affine differ:
        ..."``, then what differs as ``"<img's>, not <reference's>"``: shapes (voxels), voxel
        sizes (mm), orientation, origins (mm); None on one grid.
    """
    shape, reference_shape = tuple(img.shape[:3]), tuple(reference.shape[:3])
    affine, reference_affine = np.asarray(img.affine), np.asarray(reference.affine)
    same_shape = shape == reference_shape
    same_affine = np.allclose(affine, reference_affine)
    if same_shape and same_affine:
        return None
    details = []
    if not same_shape:
        details.append(f"{_plain(shape)} voxels, not {_plain(reference_shape)}")
    if not same_affine:
        details.extend(_affine_differences(affine, reference_affine))
    what = {
        (False, False): "shape and affine differ",
        (False, True): "shape differs",
        (True, False): "affine differs",
    }[(same_shape, same_affine)]
    return f"{what}: " + "; ".join(details)


def _affine_differences(affine, reference_affine):
    """How two affines differ: voxel size, orientation, origin (mm)."""
    sizes, reference_sizes = _voxel_sizes(affine), _voxel_sizes(reference_affine)
    differences = []
    if not np.allclose(sizes, reference_sizes):
        differences.append(f"voxels of {_plain(sizes)} mm, not {_plain(reference_sizes)} mm")
    elif not np.allclose(affine[:3, :3], reference_affine[:3, :3]):
        differences.append("voxels of the same size in another orientation")
    origin, reference_origin = affine[:3, 3], reference_affine[:3, 3]
    if not np.allclose(origin, reference_origin):
        differences.append(
            f"origin at ({_plain(origin, ', ')}) mm, not ({_plain(reference_origin, ', ')}) mm"
        )
    return differences or ["another affine"]


def check_same_grid(mask, img, target_affine=None, target_shape=None):
    """Refuse a given mask on another grid than ``img`` unless a target grid is set.

    Every method follows this rule, so that no estimator resamples the data silently onto a
    mask that was meant for other data.

    Parameters
    ----------
    mask : Niimg-like, NiftiMasker, MultiNiftiMasker or None
        The ``mask`` parameter of an estimator.
    img : Nifti1Image
        The first run, loaded.
    target_affine, target_shape : default=None
        The estimator's target grid; when either is set, both data and mask are resampled
        to it and no check is made.
    """
    if mask is None or target_affine is not None or target_shape is not None:
        return
    mask_img = getattr(mask, "mask_img", mask)
    if mask_img is None:
        return
    difference = grid_difference(load_img(mask_img), img)
    if difference is not None:
        raise ValueError(
            f"mask and imgs are on different grids (the mask's {difference}): resample one "
            "onto the other (nilearn.image.resample_to_img), or set target_affine and "
            "target_shape to resample both."
        )


def check_runs_on_one_grid(imgs, target_affine=None, target_shape=None, fix=None):
    """Refuse runs on different grids (shape or affine) unless a target grid is set.

    ``imgs`` are loaded 4D images; ``fix`` is the advice given, by default to resample the
    runs or to set ``target_affine`` and ``target_shape``.
    """
    if target_affine is not None or target_shape is not None or len(imgs) < 2:
        return
    first = imgs[0]
    for i, img in enumerate(imgs[1:], start=1):
        difference = grid_difference(img, first)
        if difference is not None:
            raise ValueError(
                f"imgs[{i}] is on another grid than imgs[0] (its {difference}): "
                + (
                    fix
                    or "resample the runs onto one grid (nilearn.image.resample_to_img), or "
                    "set target_affine and target_shape to resample every run."
                )
            )


def check_mask_not_empty(mask, name="mask"):
    """Refuse a given mask (image, or masker holding one) with no non-zero voxel."""
    mask_img = getattr(mask, "mask_img", mask)
    if mask_img is None:
        return
    if not np.any(np.asanyarray(load_img(mask_img).dataobj)):
        raise ValueError(
            f"{name} is empty (no non-zero voxel): give a brain mask, or {name}=None to "
            "compute one from the data."
        )


def empty_computed_mask_error(mask_strategy):
    """The error for a mask that nilearn computed from the data and found empty."""
    return ValueError(
        f"the mask computed from imgs with mask_strategy={mask_strategy!r} is empty: give a "
        "brain mask (mask=..., e.g. nilearn.datasets.load_mni152_brain_mask()) or another "
        "mask_strategy."
    )


def check_fbn_threshold(value, name="threshold"):
    """Check the z threshold of the FBNs: a finite number >= 0 (the positive tail's cut)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number (a z value such as 3.6), got {value!r}.")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite z value >= 0 (the paper's 3.6), got {value!r}.")


def load_runs(imgs, confounds, window_length):
    """Load and check every run: ``[(img, confounds_entry), ...]``, one pair per subject."""
    pairs = pair_with_confounds(imgs, confounds)
    name = "imgs" if len(pairs) == 1 else "imgs[{}]"
    return [
        (load_4d_run(img, name.format(i), window_length), conf)
        for i, (img, conf) in enumerate(pairs)
    ]


def load_mask(mask):
    """The mask image an estimator's ``mask`` gives (an image, or a masker holding one), checked.

    It must be 3D (a 4D image of a single volume counts as 3D, as in nilearn) and hold a
    non-zero voxel.

    Returns
    -------
    mask_img : Nifti1Image or None
        None where ``mask`` gives no image: the masker computes the mask from the data.
    """
    mask_img = getattr(mask, "mask_img", mask)
    if mask_img is None:
        return None
    name = "mask" if mask_img is mask else "mask.mask_img"
    mask_img = load_img(mask_img)
    if mask_img.ndim != 3 and not (mask_img.ndim == 4 and mask_img.shape[3] == 1):
        raise ValueError(
            f"{name} is a {mask_img.ndim}D image of shape {mask_img.shape}: give a 3D brain "
            "mask, e.g. one of its volumes (nilearn.image.index_img(mask, 0)) or their "
            "union (nilearn.image.math_img('np.any(img, axis=-1)', img=mask))."
        )
    check_mask_not_empty(mask_img, name)
    return mask_img


def load_runs_for_fit(estimator, imgs, confounds):
    """``load_runs`` plus the checks every estimator's ``fit`` makes on runs and mask.

    The mask, when given, is checked first (:func:`load_mask`). The runs must share one
    grid, and the mask must be on their grid, unless the estimator's ``target_affine`` /
    ``target_shape`` resample them all.
    """
    mask_img = load_mask(estimator.mask)
    runs_and_confounds = load_runs(imgs, confounds, estimator.window_length)
    loaded = [img for img, _ in runs_and_confounds]
    target = (estimator.target_affine, estimator.target_shape)
    check_runs_on_one_grid(loaded, *target)
    check_same_grid(mask_img, loaded[0], *target)
    return runs_and_confounds


def check_n_components(n_components, bound, what, why, fix=""):
    """Refuse more maps than the data can give: ``n_components <= bound``.

    ``what`` names the bound (e.g. "the 640 voxels of the mask"), ``why`` says why no more
    maps can be found; ``fix`` is another way out than a lower ``n_components``.
    """
    if n_components > bound:
        raise ValueError(
            f"n_components={n_components} is more than {what}: {why}. Give n_components "
            f"<= {bound}{fix}."
        )


def cleaning_dof(standardize, detrend):
    """Degrees of freedom the cleaning of a run or window removes from each voxel's series.

    Detrending removes its mean and linear trend (2); standardizing alone, its mean (1).
    """
    if detrend:
        return 2
    return 0 if standardize is None or standardize is False else 1


def check_integer(value, name, minimum):
    """Check that ``value`` is an integer at least ``minimum`` (scikit-learn's ``check_scalar``).

    ``check_scalar`` takes a bool for an integer (``True`` is ``numbers.Integral``): that is
    refused first, as a probable mistake (e.g. ``n_components=True``).
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not a bool: got {value!r}.")
    check_scalar(value, name, target_type=numbers.Integral, min_val=minimum)


def mask_run(masker, img, confounds=None):
    """One run through a fitted (Multi)NiftiMasker, as float32 (n_scans, n_voxels).

    ``MultiNiftiMasker.transform`` takes a single image's confounds only inside a list.
    """
    confounds = None if confounds is None else [confounds]
    return np.asarray(masker.transform(img, confounds=confounds), dtype=np.float32)


def read_confounds(path):
    """A confounds table with a header line: tab-separated for ``.tsv``, comma for ``.csv``.

    Other names are read with the separator pandas detects. Every column is regressed out,
    so missing values (e.g. the ``n/a`` that start fMRIPrep's derivative columns) are refused.

    Returns
    -------
    confounds : pandas.DataFrame
    """
    path = str(path)
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such confounds file.")
    if path.endswith(".tsv"):
        table = pd.read_csv(path, sep="\t")
    elif path.endswith(".csv"):
        table = pd.read_csv(path, sep=",")
    else:
        table = pd.read_csv(path, sep=None, engine="python")
    if table.isna().any().any():
        raise ValueError(
            f"{path} has missing values: fill them (fMRIPrep's derivative columns start with "
            "n/a) or select columns without them."
        )
    return table
