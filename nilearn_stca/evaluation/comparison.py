"""``compare``: every method on every subject, statically and window by window, as one table.

Results are streamed: each window's maps are scored and dropped before the next window is
mapped. With ``out_dir``, every (subject, method) cell is written as it runs and kept once
finished, so an interrupted comparison resumes where it stopped. The folder is locked while a
comparison writes there, and a finished cell is reused only if it matches its checksum.
"""

import hashlib
import re
import time
import warnings
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn.datasets import load_mni152_brain_mask
from nilearn.image import load_img
from nilearn.maskers import MultiNiftiMasker
from nilearn.masking import apply_mask
from sklearn.base import clone
from tqdm.auto import tqdm

from .._checks import (
    check_fbn_threshold,
    check_integer,
    check_mask_not_empty,
    check_runs_on_one_grid,
    load_4d_run,
    pair_with_confounds,
)
from .._io import atomic_path, folder_lock
from ..baselines import ICADecomposition, SDLDecomposition
from ..stca.decomposition import PAPER_SETTINGS, STCADecomposition
from ..windows import window_starts
from .metrics import score_maps
from .results_folder import (
    RESULT_COLUMNS,
    RESULTS_FILE,
    TEMPLATES_FILE,
    CellWriter,
    ComparisonLockedError,
    ResultsFolder,
)
from .tables import STATIC
from .templates import DEFAULT_TEMPLATE_THRESHOLD, load_rsn_templates

#: The methods ``compare`` knows by name.
METHODS = {"ica": ICADecomposition, "sdl": SDLDecomposition, "stca": STCADecomposition}

#: Estimator parameters ``compare`` sets itself, so that every method sees the same data.
CONTROLLED_PARAMS = ("mask", "target_affine", "target_shape", "window_length", "window_stride")

#: Parameters that change how a run executes, not its results: a resumed comparison may differ.
_EXECUTION_PARAMS = ("verbose", "n_jobs", "memory", "memory_level", "device")


def paper_protocol():
    """The settings of Liu et al. (ISBI 2023), as keyword arguments of :func:`compare`.

    Data resampled to the 4 mm MNI152 brain mask (a 49x58x47 grid in the paper; nilearn's
    bundled mask gives 50x59x48), windows of 40 scans at stride 1, maps and templates
    thresholded at z >= 3.6, the 10 resting-state networks of Smith et al. (2009), every
    template matched by maximum IoU, and STCA as the paper trains it
    (:data:`~nilearn_stca.stca.decomposition.PAPER_SETTINGS`: 64 maps, the guiding autoencoder,
    learning rate 1e-4); ICA and SDL keep nilearn's 20 maps.
    """
    return {
        "methods": ("ica", "sdl", "stca"),
        "templates": "smith2009",
        "mask_img": load_mni152_brain_mask(resolution=4),
        "window_length": 40,
        "window_stride": 1,
        "threshold": 3.6,
        "template_threshold": 3.6,
        "strategy": "max",
        "method_params": {"stca": dict(PAPER_SETTINGS)},
    }


#: Named presets of :func:`compare` (``nilearn-stca compare --preset NAME``).
PRESETS = {"paper": paper_protocol}


# ---------------------------------------------------------------------- inputs
def subject_labels(imgs, subjects=None):
    """One label per run: ``subjects`` checked, or BIDS ``sub-`` labels, or sub-01, sub-02..."""
    if subjects is not None:
        labels = [str(s) for s in subjects]
        if len(labels) != len(imgs):
            raise ValueError(f"subjects has {len(labels)} labels for {len(imgs)} images.")
    else:
        found = [
            re.search(r"sub-[A-Za-z0-9]+", Path(img).name)
            if isinstance(img, (str, Path))
            else None
            for img in imgs
        ]
        labels = [m.group(0) if m else None for m in found]
        if None in labels or len(set(labels)) < len(labels):
            labels = [f"sub-{i + 1:02d}" for i in range(len(imgs))]
    if len(set(labels)) < len(labels):
        raise ValueError(f"subjects must be unique, got {labels}.")
    bad = [label for label in labels if not re.fullmatch(r"[A-Za-z0-9._-]+", label)]
    if bad:
        raise ValueError(f"subject labels may hold letters, digits, '.', '_' and '-' only: {bad}")
    return labels


def _make_estimators(methods, method_params, n_components, threshold, random_state):
    """``{name: unfitted estimator}`` with the parameters every method shares set."""
    method_params = dict(method_params or {})
    if isinstance(methods, Mapping):
        estimators = {str(name): clone(est) for name, est in methods.items()}
    else:
        if isinstance(methods, str):
            methods = [methods]
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(
                f"Unknown method(s) {unknown or methods!r}: choose among {sorted(METHODS)}, or "
                "pass a dict {name: estimator}."
            )
        estimators = {name: METHODS[name]() for name in methods}
    for name, params in method_params.items():
        if name not in estimators:
            if name in METHODS:
                continue  # settings of a known method that is not compared this time
            raise ValueError(f"method_params names {name!r}, which is not among the methods.")
        controlled = sorted(set(params) & set(CONTROLLED_PARAMS))
        if controlled:
            raise ValueError(
                f"method_params[{name!r}] sets {controlled}: compare sets these for every "
                "method; pass them to compare itself (mask_img, window_length, window_stride)."
            )
        estimators[name].set_params(**params)
    for est in estimators.values():
        est.set_params(**{est._fbn_threshold_param: threshold})
        if n_components is not None:
            est.set_params(n_components=n_components)
        if random_state is not None:
            est.set_params(random_state=random_state)
    return estimators


def _describe(value):
    """A JSON-able fingerprint of a parameter value: what a resumed run must match."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"array": list(value.shape), "sha1": _sha1(value)}
    if isinstance(value, pd.DataFrame):
        return {"table": list(value.shape), "sha1": _sha1(value.to_numpy(dtype=float))}
    if hasattr(value, "get_params"):
        return {type(value).__name__: _describe(value.get_params(deep=False))}
    if hasattr(value, "dataobj"):
        data = np.asanyarray(value.dataobj)
        return {"image": list(data.shape), "sha1": _sha1(data, value.affine)}
    return repr(value)


def _sha1(*arrays):
    digest = hashlib.sha1()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _describe_file_or_img(value):
    if isinstance(value, (str, Path)):
        path = Path(value).resolve()
        stat = path.stat()
        return {"file": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return _describe(value)


# ---------------------------------------------------------------------- the comparison
def result_rows(subject, method, window, scores, runtime):
    """Rows of the results table for one (subject, method, window) from ``score_maps``."""
    return pd.DataFrame(
        {
            "subject": subject,
            "method": method,
            "window": pd.Series([window] * len(scores), dtype=object),
            "template": scores["template"].to_numpy(),
            "component": scores["component"].to_numpy(),
            "iou": scores["iou"].to_numpy(),
            "dice": scores["dice"].to_numpy(),
            "runtime": runtime,
        }
    )[RESULT_COLUMNS]


def _run_cell(
    estimator,
    img,
    conf,
    subject,
    method,
    template_masks,
    names,
    score_kwargs,
    windows,
    sweep_stride,
    folder,
    verbose,
):
    writer = CellWriter(folder, subject, method)
    started = time.perf_counter()
    estimator.fit([img], confounds=None if conf is None else [conf])
    fit_seconds = time.perf_counter() - started
    static = score_maps(estimator.components_, template_masks, names, **score_kwargs)
    writer.add(result_rows(subject, method, STATIC, static, fit_seconds))
    if windows:
        maps = estimator.iter_window_maps(img, confounds=conf, stride=sweep_stride)
        stride = sweep_stride or estimator.window_stride
        starts = window_starts(load_img(img).shape[3], estimator.window_length, stride)
        with tqdm(
            total=len(starts),
            desc=f"{subject} {method} windows",
            leave=False,
            disable=not verbose or isinstance(estimator, STCADecomposition),
        ) as bar:
            while True:
                started = time.perf_counter()
                try:
                    start, window_maps = next(maps)
                except StopIteration:
                    break
                scores = score_maps(window_maps, template_masks, names, **score_kwargs)
                writer.add(
                    result_rows(subject, method, start, scores, time.perf_counter() - started)
                )
                bar.update()
    if folder.path is not None:
        with atomic_path(folder.path / "maps" / f"{subject}_{method}.nii.gz") as partial:
            estimator.components_img_.to_filename(partial)
    return writer.finish()


def compare(
    imgs,
    methods=("ica", "sdl", "stca"),
    templates="smith2009",
    windows=True,
    *,
    confounds=None,
    mask_img=None,
    subjects=None,
    n_components=None,
    method_params=None,
    window_length=40,
    window_stride=1,
    sweep_stride=None,
    threshold=3.6,
    template_threshold=DEFAULT_TEMPLATE_THRESHOLD,
    template_names=None,
    strategy="max",
    out_dir=None,
    random_state=0,
    verbose=1,
):
    """Fit every method on every subject and score its maps against RSN templates.

    Each subject is decomposed on its own by each method. The static maps of a fit, and
    (with ``windows``) the maps of every sliding window, are z-scored, thresholded at
    ``threshold`` and each template is matched to a map by IoU, as in Liu et al. (2023).

    Parameters
    ----------
    imgs : Niimg-like or list of Niimg-like
        One 4D run per subject (e.g. fMRIPrep's ``*_desc-preproc_bold.nii.gz``).
    methods : sequence of {"ica", "sdl", "stca"} or dict, default=("ica", "sdl", "stca")
        Method names, or ``{name: estimator}`` with unfitted estimators of this package
        (cloned for each subject) to set any parameter.
    templates : "smith2009", Niimg-like or Bunch, default="smith2009"
        Reference networks: see :func:`~nilearn_stca.evaluation.load_rsn_templates`, or its
        result. Resampled to the mask's grid.
    windows : bool, default=True
        Also score the maps of every sliding window (the dynamic comparison); if False,
        only the static maps.
    confounds : list of (CSV path, ndarray, DataFrame or None), default=None
        One entry per image, regressed out by every method (e.g. from
        :func:`nilearn.interfaces.fmriprep.load_confounds`).
    mask_img : Niimg-like, default=None
        The brain mask every method uses; the data are resampled to its grid. If None, one
        EPI mask is computed from all ``imgs`` (:class:`nilearn.maskers.MultiNiftiMasker`).
    subjects : sequence of str, default=None
        Subject labels; the ``sub-<label>`` of BIDS file names if all have a distinct one,
        else ``sub-01``, ``sub-02``...
    n_components : int, default=None
        Maps per method; if None each method keeps its own (``method_params`` or default).
    method_params : dict, default=None
        ``{method: {parameter: value}}`` set on that method's estimator, e.g.
        ``{"stca": {"n_epochs": 2}}``. Parameters ``compare`` sets itself (the mask, target
        grid, ``window_length`` and ``window_stride``) are refused here. Entries for a known
        method that is not in ``methods`` are ignored.
    window_length, window_stride : int, default=40, 1
        Sliding windows of every method (and STCA's training windows).
    sweep_stride : int, default=None
        Scans between scored windows; ``window_stride`` if None. E.g. 10 scores every 10th
        window for a quick look; STCA still trains on every ``window_stride``-th window.
    threshold : float, default=3.6
        z threshold of every method's maps: a finite number >= 0.
    template_threshold, template_names
        ``threshold`` and ``names`` of :func:`~nilearn_stca.evaluation.load_rsn_templates`.
    strategy : {"max", "hungarian"}, default="max"
        Matching of templates to maps (see :func:`~nilearn_stca.evaluation.match_components`).
    out_dir : str or Path, default=None
        Folder for incremental results: ``comparison.json`` (the settings), ``cells/`` (one
        CSV per finished subject x method; rows are appended to ``*.csv.partial`` while a
        cell runs), ``checksums/`` (the row count and SHA-256 of each finished cell's CSV),
        ``maps/`` (each cell's static maps), ``templates.nii.gz`` (the binary templates on
        the mask's grid) and ``results.csv`` at the end. A rerun with the same settings and
        ``out_dir`` reuses every finished cell that matches its checksum, and recomputes
        one that does not with a warning; other settings in the same ``out_dir`` raise an
        error. While a comparison runs, ``out_dir`` holds a lock file ``.lock``: a second
        comparison into the same ``out_dir`` raises :class:`ComparisonLockedError` (a
        ``ValueError``), and the lock of a comparison that no longer runs on this host is
        taken over with a warning.
    random_state : int or None, default=0
        Seed given to every method.
    verbose : int, default=1
        Progress bars if > 0.

    Returns
    -------
    results : pandas.DataFrame
        One row per (subject, method, window, template): ``subject``, ``method``,
        ``window`` ("static" or the window's first scan), ``template``, ``component`` (the
        matched map, -1 if none), ``iou``, ``dice`` and ``runtime`` (seconds: the fit for a
        static row; mapping that window for a window row, where a method that maps windows
        in batches charges a batch to its first window).
    """
    pairs = pair_with_confounds(imgs, confounds)
    labels = subject_labels([img for img, _ in pairs], subjects)
    loaded = [load_4d_run(img, f"imgs[{i}]", window_length) for i, (img, _) in enumerate(pairs)]
    n_scans = [img.shape[3] for img in loaded]
    if mask_img is None:
        check_runs_on_one_grid(
            loaded,
            fix="resample the runs onto one grid (nilearn.image.resample_to_img), or give "
            "mask_img: every run is resampled onto its grid.",
        )
    else:
        check_mask_not_empty(mask_img, name="mask_img")
    if strategy not in ("max", "hungarian"):
        raise ValueError(f"Unknown strategy={strategy!r}: use 'max' or 'hungarian'.")
    check_fbn_threshold(threshold)
    threshold = float(threshold)
    if sweep_stride is not None:
        check_integer(sweep_stride, "sweep_stride", 1)
    estimators = _make_estimators(methods, method_params, n_components, threshold, random_state)
    if mask_img is None:
        masker = MultiNiftiMasker(mask_strategy="epi").fit(loaded)
        mask_img = masker.mask_img_
        if not np.any(np.asanyarray(mask_img.dataobj)):
            raise ValueError(
                "the brain mask computed from imgs (nilearn's 'epi' strategy) is empty: give "
                "mask_img (e.g. nilearn.datasets.load_mni152_brain_mask())."
            )
    mask_img = load_img(mask_img)
    for est in estimators.values():
        est.set_params(
            mask=mask_img,
            target_affine=mask_img.affine,
            target_shape=mask_img.shape[:3],
            window_length=window_length,
            window_stride=window_stride,
            # STCA's own bars show its training and window sweep; the baselines' nilearn
            # estimators would print at every window.
            verbose=verbose if isinstance(est, STCADecomposition) else max(0, verbose - 1),
        )
        est._validate_params()  # a bad parameter fails now, before anything is written
    if not isinstance(templates, Mapping):
        templates = load_rsn_templates(
            templates, target_img=mask_img, threshold=template_threshold, names=template_names
        )
    template_masks = apply_mask(templates.masks_img, mask_img).astype(bool)
    names = list(templates.names)

    settings = {
        "subjects": labels,
        "imgs": [_describe_file_or_img(img) for img, _ in pairs],
        "confounds": [_describe_file_or_img(c) if c is not None else None for _, c in pairs],
        "methods": {
            name: {
                type(est).__name__: {
                    key: _describe(value)
                    for key, value in est.get_params(deep=False).items()
                    if key not in _EXECUTION_PARAMS
                }
            }
            for name, est in estimators.items()
        },
        "templates": {"names": names, "masks": _describe(templates.masks_img)},
        "threshold": threshold,
        "window_length": window_length,
        "window_stride": window_stride,
        "windows": bool(windows),
        "sweep_stride": sweep_stride,
        "strategy": strategy,
    }
    # Rows of a finished cell: one per template for the static maps and each scored window.
    stride = sweep_stride or window_stride
    n_windows = [len(window_starts(n, window_length, stride)) if windows else 0 for n in n_scans]
    n_rows = {s: len(names) * (1 + w) for s, w in zip(labels, n_windows, strict=True)}
    lock = (
        nullcontext()
        if out_dir is None
        else folder_lock(out_dir, "compare run", name="out_dir", error=ComparisonLockedError)
    )
    with lock:
        folder = ResultsFolder(out_dir, settings)
        if folder.path is not None and not (folder.path / TEMPLATES_FILE).exists():
            with atomic_path(folder.path / TEMPLATES_FILE) as partial:
                templates.masks_img.to_filename(partial)
        score_kwargs = {"threshold": threshold, "strategy": strategy}
        tables = []
        cells = [(s, p, m) for s, p in zip(labels, pairs, strict=True) for m in estimators]
        for subject, (img, conf), method in tqdm(cells, desc="compare", disable=not verbose):
            rows, why = folder.load_cell(subject, method, n_rows[subject])
            if rows is not None:
                tables.append(rows)
                continue
            if why is not None:
                warnings.warn(
                    f"Recomputing the finished cell {subject} x {method} of "
                    f"out_dir={str(folder.path)!r}: {why}.",
                    stacklevel=2,
                )
            tables.append(
                _run_cell(
                    clone(estimators[method]),
                    img,
                    conf,
                    subject,
                    method,
                    template_masks,
                    names,
                    score_kwargs,
                    windows,
                    sweep_stride,
                    folder,
                    verbose,
                )
            )
        results = pd.concat(tables, ignore_index=True)[RESULT_COLUMNS]
        if folder.path is not None:
            with atomic_path(folder.path / RESULTS_FILE) as partial:
                results.to_csv(partial, index=False)
    return results
