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


def load_4d_run(img, name, window_length):
    """Load one run, checking that it is 4D, at least one window long and finite."""
    img = load_img(img)
    if img.ndim != 4:
        raise ValueError(
            f"{name} is a {img.ndim}D image with shape {img.shape}: STCA needs a 4D fMRI run "
            "(x, y, z, time). Give the 4D series, not a single volume."
        )
    n_scans = img.shape[3]
    if n_scans < window_length:
        raise ValueError(
            f"{name} has {n_scans} scans, fewer than window_length={window_length}: "
            "lower window_length or give a longer run."
        )
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
    mask_img = load_img(mask_img)
    if mask_img.shape[:3] != img.shape[:3] or not np.allclose(mask_img.affine, img.affine):
        raise ValueError(
            f"mask (shape {mask_img.shape[:3]}) and imgs (shape {img.shape[:3]}) are on "
            "different grids: resample one onto the other (nilearn.image.resample_to_img), "
            "or set target_affine and target_shape to resample both."
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
        if img.shape[:3] != first.shape[:3] or not np.allclose(img.affine, first.affine):
            what = "shape" if img.shape[:3] != first.shape[:3] else "affine"
            raise ValueError(
                f"imgs[{i}] is on another grid than imgs[0] (its {what} differs: "
                f"{img.shape[:3]} vs {first.shape[:3]} voxels of "
                f"{tuple(np.round(np.abs(np.diag(img.affine)[:3]), 2))} vs "
                f"{tuple(np.round(np.abs(np.diag(first.affine)[:3]), 2))} mm): "
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


def load_runs_for_fit(estimator, imgs, confounds):
    """``load_runs`` plus the checks every estimator's ``fit`` makes on runs and mask.

    The runs must share one grid, and a given mask must be non-empty and on their grid,
    unless the estimator's ``target_affine`` / ``target_shape`` resample them all.
    """
    runs_and_confounds = load_runs(imgs, confounds, estimator.window_length)
    loaded = [img for img, _ in runs_and_confounds]
    target = (estimator.target_affine, estimator.target_shape)
    check_runs_on_one_grid(loaded, *target)
    check_mask_not_empty(estimator.mask)
    check_same_grid(estimator.mask, loaded[0], *target)
    return runs_and_confounds


def check_integer(value, name, minimum):
    """Check that ``value`` is an integer at least ``minimum`` (scikit-learn's ``check_scalar``).

    ``check_scalar`` takes a bool for an integer (``True`` is ``numbers.Integral``): that is
    refused first, as a probable mistake (e.g. ``n_components=True``).
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not a bool: got {value!r}.")
    check_scalar(value, name, target_type=numbers.Integral, min_val=minimum)


def check_integer_params(estimator, minimums):
    """Check that each named parameter is an integer at least its minimum.

    ``minimums`` maps parameter names to their smallest allowed value.
    """
    for name, minimum in minimums.items():
        check_integer(getattr(estimator, name), name, minimum)


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
