"""Input checks shared by the estimators: devices, image lists, 4D runs, confounds."""

from pathlib import Path

import numpy as np
import pandas as pd
from nilearn.image import load_img


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
    if not np.isfinite(np.asanyarray(img.dataobj)).all():
        raise ValueError(
            f"{name} contains NaN or infinite values: replace them (e.g. "
            "math_img('np.nan_to_num(img)', img=...)) before fitting."
        )
    return img


def load_runs(imgs, confounds, window_length):
    """Load and check every run: ``[(img, confounds_entry), ...]``, one pair per subject."""
    pairs = pair_with_confounds(imgs, confounds)
    name = "imgs" if len(pairs) == 1 else "imgs[{}]"
    return [
        (load_4d_run(img, name.format(i), window_length), conf)
        for i, (img, conf) in enumerate(pairs)
    ]


def check_integer_params(estimator, minimums):
    """Check that each named parameter is an integer at least its minimum.

    ``minimums`` maps parameter names to their smallest allowed value.
    """
    for name, minimum in minimums.items():
        value = getattr(estimator, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}.")
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}.")


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
