"""Checks of the runs of a comparison made before anything is fitted or written.

Each names the run (and its file) and says what to give instead: a folder given as a run,
confounds with another number of rows than their run has scans, and a given
mask reaching outside a run's field of view (resampled onto the mask's grid, the run would
be zero there).
"""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn.image import load_img


def describe_run(img, name):
    """``name`` followed by the run's file in brackets, if it was given as a file."""
    return f"{name} ({str(img)!r})" if isinstance(img, (str, Path)) else name


def check_run_files(imgs, name="imgs"):
    """Refuse a run given as the path of a folder.

    Parameters
    ----------
    imgs : list
        The runs (paths or images).
    name : str, default="imgs"
        How errors call the list.
    """
    for i, img in enumerate(imgs):
        if isinstance(img, (str, Path)) and Path(img).is_dir():
            raise ValueError(
                f"{name}[{i}] ({str(img)!r}) is a folder: give the 4D NIfTI file of the run "
                "(e.g. its *_bold.nii.gz)."
            )


def _is_number(text):
    try:
        return not math.isnan(float(text))
    except ValueError:
        return False


def confounds_rows(confounds):
    """Number of rows (scans) of a confounds entry: CSV/TSV path, array or DataFrame.

    A file is counted as nilearn reads it (``numpy.genfromtxt``): blank lines and lines
    starting with ``#`` are skipped, and the first line is a header where its first cell is
    not a number.
    """
    if not isinstance(confounds, (str, Path)):
        return len(confounds) if isinstance(confounds, pd.DataFrame) else np.shape(confounds)[0]
    lines = [
        line.strip()
        for line in Path(confounds).read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return 0
    first_cell = re.split(r"[\s,;]+", lines[0])[0]
    return len(lines) - (0 if _is_number(first_cell) else 1)


def confounds_length_error(confounds_name, n_rows, run_name, n_scans):
    """The error for confounds that do not give one row per scan of their run."""
    return ValueError(
        f"{confounds_name} has {n_rows} rows for the {n_scans} scans of {run_name}: give one "
        "row of confounds per scan of its run, runs and confounds in the same order."
    )


def check_confounds_rows(pairs, n_scans):
    """Refuse confounds whose rows are not the scans of their run.

    Parameters
    ----------
    pairs : list of (img, confounds entry or None)
        The runs as given (paths name them in errors) and their confounds.
    n_scans : list of int
        Scans of each run.
    """
    for i, ((img, confounds), scans) in enumerate(zip(pairs, n_scans, strict=True)):
        if confounds is None:
            continue
        rows = confounds_rows(confounds)
        if rows != scans:
            raise confounds_length_error(
                describe_run(confounds, f"confounds[{i}]"),
                rows,
                describe_run(img, f"imgs[{i}]"),
                scans,
            )


def voxels_outside(mask_img, img):
    """``(outside, total)``: voxels of ``mask_img`` outside the field of view of ``img``.

    A voxel is outside where its centre, in ``img``'s voxel coordinates, is below 0 or
    beyond the last voxel on some axis: there, resampling ``img`` onto the mask's grid
    (nilearn's ``resample_img``) fills zeros. Only the images' headers are read for ``img``.
    """
    mask_img = load_img(mask_img)
    mask = np.asanyarray(mask_img.dataobj).reshape(mask_img.shape[:3]) != 0
    ijk = np.array(np.nonzero(mask), dtype=float)
    world = mask_img.affine[:3, :3] @ ijk + mask_img.affine[:3, 3:]
    to_run = np.linalg.inv(img.affine)
    coords = to_run[:3, :3] @ world + to_run[:3, 3:]
    last = np.array(img.shape[:3], dtype=float)[:, None] - 1
    tolerance = 1e-6  # voxel centres on the edge, up to rounding of the affines
    outside = ((coords < -tolerance) | (coords > last + tolerance)).any(axis=0)
    return int(outside.sum()), int(mask.sum())


def check_mask_inside_runs(mask_img, imgs, names, mask_name="mask_img"):
    """Refuse a mask with voxels outside the field of view of a run.

    Parameters
    ----------
    mask_img : Niimg-like
        The mask every run is resampled onto.
    imgs : list of Nifti1Image
        The runs (their headers are enough).
    names : list of str
        How errors call each run (e.g. ``"imgs[1] ('/data/sub-02_bold.nii.gz')"``).
    mask_name : str, default="mask_img"
        How errors call the mask.
    """
    mask_img = load_img(mask_img)
    for img, name in zip(imgs, names, strict=True):
        outside, total = voxels_outside(mask_img, img)
        if outside:
            raise ValueError(
                f"{mask_name} has {outside} of its {total} voxels outside the field of view of "
                f"{name}: resampled onto the mask's grid, that run would be zero there. Give a "
                "mask inside every run's field of view (e.g. nilearn.masking.intersect_masks("
                "..., threshold=1) of the mask and each run's brain mask resampled onto it with "
                "interpolation='nearest')."
            )
