"""The windows folder of a method node: one NIfTI file of z-maps per sliding window."""

import re
import shutil
from pathlib import Path

from .._io import atomic_path

_WINDOW_FILE = "window-{start:05d}_maps.nii.gz"
_WINDOW_PATTERN = re.compile(r"window-(\d+)_maps\.nii\.gz")


# ---------------------------------------------------------------------- windows folder
def write_window_maps(estimator, imgs, out_dir, confounds=None, stride=None):
    """Write the maps of every sliding window of each run, one file per window, streamed.

    Parameters
    ----------
    estimator : fitted STCADecomposition, ICADecomposition or SDLDecomposition
    imgs : list of str or Path
        The runs; with one run the files go to ``out_dir`` itself, with several to
        ``out_dir/run-01``, ``out_dir/run-02``...
    out_dir : str or Path
        Emptied first, so a rerun leaves no window of an earlier run.
    confounds : list of (str, Path or None), default=None
        One entry per run, as for the estimator's ``iter_window_maps``.
    stride : int, default=None
        Scans between mapped windows; the estimator's ``window_stride`` if None.

    Returns
    -------
    out_dir : Path
    """
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    confounds = [None] * len(imgs) if confounds is None else list(confounds)
    for i, (img, conf) in enumerate(zip(imgs, confounds, strict=True)):
        run_dir = out_dir if len(imgs) == 1 else out_dir / f"run-{i + 1:02d}"
        run_dir.mkdir(parents=True)
        for start, maps in estimator.iter_window_maps(img, confounds=conf, stride=stride):
            with atomic_path(run_dir / _WINDOW_FILE.format(start=start)) as partial:
                estimator.masker_.inverse_transform(maps).to_filename(partial)
    return out_dir


def list_window_files(windows_dir):
    """The window files of a folder written by :func:`write_window_maps`, by start scan.

    Parameters
    ----------
    windows_dir : str or Path
        A folder of ``window-<start>_maps.nii.gz`` files (one run's windows).

    Returns
    -------
    windows : list of (int, Path)
        ``(start_scan, file)`` for every window, in increasing ``start_scan``.
    """
    windows_dir = Path(windows_dir)
    found = [(_WINDOW_PATTERN.fullmatch(path.name), path) for path in windows_dir.iterdir()]
    windows = sorted((int(match.group(1)), path) for match, path in found if match)
    if not windows and any(windows_dir.glob("run-*")):
        raise ValueError(
            f"{windows_dir} holds the windows of several runs (run-* subfolders): score one "
            "run at a time, giving its run-* subfolder."
        )
    return windows


# ---------------------------------------------------------------------- estimator parameters
