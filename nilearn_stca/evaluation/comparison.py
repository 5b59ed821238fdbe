"""``compare``: every method on every subject, statically and window by window, as one table.

Results are streamed: each window's maps are scored and dropped before the next window is
mapped. With ``out_dir``, every (subject, method) cell is written as it runs and kept once
finished, so an interrupted comparison resumes where it stopped. The folder is locked while a
comparison writes there, and a finished cell is reused only if it matches its checksum.
"""

import time
import warnings
from contextlib import nullcontext

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.datasets import load_mni152_brain_mask
from nilearn.image import load_img
from sklearn.base import clone
from tqdm.auto import tqdm

from .._utils.io import atomic_path, atomic_paths
from .._utils.ownership import folder_lock
from ..methods import METHOD_REGISTRY
from ..windows import window_starts
from .bids import with_bids_columns
from .comparison_plan import CONTROLLED_PARAMS, METHODS, plan_comparison, shows_own_progress
from .results_folder import (
    RESULT_COLUMNS,
    CellWriter,
    ComparisonLockedError,
    ResultsFolder,
    check_results_folder,
    static_maps_file,
    write_results,
)
from .tables import STATIC
from .templates import DEFAULT_TEMPLATE_THRESHOLD

__all__ = ["CONTROLLED_PARAMS", "METHODS", "PRESETS", "compare", "paper_protocol"]


def paper_protocol():
    """The settings of Liu et al. (ISBI 2023), as keyword arguments of :func:`compare`.

    Data resampled to the 4 mm MNI152 brain mask (a 49x58x47 grid in the paper; nilearn's
    bundled mask gives 50x59x48), windows of 40 scans at stride 1, maps and templates
    thresholded at z >= 3.6, the 10 resting-state networks of Smith et al. (2009), every
    template matched by maximum IoU, and each method with the paper's settings that the method
    registry names (``Method.paper_settings`` in :mod:`nilearn_stca.methods`): STCA as the
    paper trains it (:data:`~nilearn_stca.stca.decomposition.PAPER_SETTINGS`: 64 maps, the
    guiding autoencoder, learning rate 1e-4); ICA and SDL keep nilearn's 20 maps.
    """
    return {
        "methods": tuple(METHOD_REGISTRY),
        "templates": "smith2009",
        "mask_img": load_mni152_brain_mask(resolution=4),
        "window_length": 40,
        "window_stride": 1,
        "threshold": 3.6,
        "template_threshold": 3.6,
        "strategy": "max",
        "method_params": {
            name: method.paper_params()
            for name, method in METHOD_REGISTRY.items()
            if method.paper_settings is not None
        },
    }


#: Named presets of :func:`compare` (``nilearn-stca compare --preset NAME``).
PRESETS = {"paper": paper_protocol}


# ---------------------------------------------------------------------- one cell
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


def _load_once(img):
    """One run read into memory, so that every method of a subject reads the file once."""
    img = load_img(img)
    return nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header)


def _run_cell(plan, subject, method, img, conf, folder, verbose):
    """Fit one method on one subject's run, score its static and window maps, keep them.

    With windows, the fit and the sweep are one pass (``fit_iter_window_maps``): STCA's
    static maps are made from the windows as they are scored, so none is mapped twice.
    """
    estimator = clone(plan.estimators[method])
    writer = CellWriter(folder, subject, method)
    started = time.perf_counter()
    if not plan.windows:
        estimator.fit([img], confounds=None if conf is None else [conf])
        fit_seconds = time.perf_counter() - started
    else:
        maps = estimator.fit_iter_window_maps(img, confounds=conf, stride=plan.sweep_stride)
        fit_seconds = time.perf_counter() - started
        stride = plan.sweep_stride or estimator.window_stride
        starts = window_starts(img.shape[3], estimator.window_length, stride)
        with tqdm(
            total=len(starts),
            desc=f"{subject} {method} windows",
            leave=False,
            disable=not verbose or shows_own_progress(estimator),
        ) as bar:
            while True:
                started = time.perf_counter()
                try:
                    start, window_maps = next(maps)
                except StopIteration:
                    # STCA's static maps are finished here, from the windows just mapped.
                    fit_seconds += time.perf_counter() - started
                    break
                scores = plan.scoring(window_maps)
                writer.add(
                    result_rows(subject, method, start, scores, time.perf_counter() - started)
                )
                bar.update()
    writer.add(
        result_rows(subject, method, STATIC, plan.scoring(estimator.components_), fit_seconds)
    )
    if folder.path is not None:
        with atomic_path(static_maps_file(folder.path, subject, method)) as partial:
            estimator.components_img_.to_filename(partial)
    return writer.finish()


def _static_first(rows):
    """A cell's rows with its static rows first, then its windows in the order scored."""
    return pd.concat([rows[rows["window"] == STATIC], rows[rows["window"] != STATIC]])


# ---------------------------------------------------------------------- the comparison
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
        One 4D run per subject (e.g. fMRIPrep's ``*_desc-preproc_bold.nii.gz``), each
        given once.
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
        One entry per image, with one row per scan of its image, regressed out by every
        method (e.g. from :func:`nilearn.interfaces.fmriprep.load_confounds`).
    mask_img : Niimg-like, default=None
        The brain mask every method uses; the data are resampled to its grid, so it must
        lie inside every run's field of view (a run would be zero where it does not). If
        None, one EPI mask is computed from all ``imgs``
        (:class:`nilearn.maskers.MultiNiftiMasker`).
    subjects : sequence of str, default=None
        One label per run. If None, from BIDS file names: ``sub-<label>`` followed by the
        other entities in which the runs differ (e.g. ``_ses-<label>``, ``_run-<index>``);
        where no file name has a ``sub-`` entity, ``sub-01``, ``sub-02``... in order. Runs
        whose names do not tell them apart are refused: name them with ``subjects`` (see
        :func:`~nilearn_stca.evaluation.bids.subject_labels`).
    n_components : int, default=None
        Maps per method; if None each method keeps its own (``method_params`` or default).
    method_params : dict, default=None
        ``{method: {parameter: value}}`` set on that method's estimator, e.g.
        ``{"stca": {"n_epochs": 2}}``. Parameters ``compare`` sets itself (the mask, target
        grid, ``window_length``, ``window_stride`` and ``fbn_threshold``) are refused here.
        Entries for a known method that is not in ``methods`` are ignored.
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
        Folder for incremental results: a new or empty folder, or the folder of an earlier
        comparison (it holds its ``comparison.json``); any other folder is refused, so that
        no file there is overwritten. Written: ``comparison.json`` (the settings, first),
        ``cells/`` (one CSV per finished subject x method; rows are appended to
        ``*.csv.partial`` while a cell runs), ``checksums/`` (the row count and SHA-256 of
        each finished cell's CSV),
        ``maps/<subject>_method-<method>_desc-static_components.nii.gz`` (each cell's
        static maps, named as BIDS derivatives), ``templates.nii.gz`` (the binary templates on
        the mask's grid) and, at the end, ``results.csv``, the same table as
        ``results.tsv`` and ``dataset_description.json`` (the folder is a BIDS derivative
        dataset). A rerun with the same settings and ``out_dir`` reuses every finished cell
        that matches its checksum, and recomputes one that does not with a warning; other
        settings in the same ``out_dir``, or a ``templates.nii.gz`` there that is not this
        comparison's, raise an error. While a comparison runs, ``out_dir`` holds a lock file
        ``.lock``: a second comparison into the same ``out_dir`` raises
        :class:`ComparisonLockedError` (a ``ValueError``), and the lock of a comparison that
        no longer runs on this host is taken over with a warning.
    random_state : int or None, default=0
        Seed given to every method.
    verbose : int, default=1
        Progress bars if > 0.

    Returns
    -------
    results : pandas.DataFrame
        One row per (subject, method, window, template): ``subject``, ``sub``, ``ses``
        and ``run`` (the BIDS entities of the run's file name, empty where absent),
        ``method``,
        ``window`` ("static" or the window's first scan), ``template``, ``component`` (the
        matched map, -1 if none), ``iou``, ``dice`` and ``runtime`` (seconds: the fit for a
        static row; mapping and scoring that window for a window row, where a method that
        maps windows in batches charges a batch to its first window). The fit and the
        window sweep are one pass: STCA's static maps are made from the windows as they are
        scored, so its static runtime is the training and the grouping of the window maps,
        and the mapping of the windows is charged to the window rows.
    """
    plan = plan_comparison(
        imgs,
        methods,
        templates,
        windows,
        confounds=confounds,
        mask_img=mask_img,
        subjects=subjects,
        n_components=n_components,
        method_params=method_params,
        window_length=window_length,
        window_stride=window_stride,
        sweep_stride=sweep_stride,
        threshold=threshold,
        template_threshold=template_threshold,
        template_names=template_names,
        strategy=strategy,
        random_state=random_state,
        verbose=verbose,
    )
    templates_img = plan.templates.masks_img
    if out_dir is None:
        lock = nullcontext()
    else:
        # Refused before the lock creates anything; checked again once it is held.
        check_results_folder(out_dir, plan.settings, templates_img)
        lock = folder_lock(out_dir, "compare run", name="out_dir", error=ComparisonLockedError)
    with lock:
        folder = ResultsFolder(out_dir, plan.settings, templates_img)
        tables = []
        with tqdm(total=plan.n_cells, desc="compare", disable=not verbose) as bar:
            for subject, (img, conf) in zip(plan.subjects, plan.runs, strict=True):
                loaded = None
                for method in plan.estimators:
                    rows, why = folder.load_cell(subject, method, plan.rows_per_cell[subject])
                    if rows is None:
                        if why is not None:
                            warnings.warn(
                                f"Recomputing the finished cell {subject} x {method} of "
                                f"out_dir={str(folder.path)!r}: {why}.",
                                stacklevel=2,
                            )
                        loaded = _load_once(img) if loaded is None else loaded
                        rows = _run_cell(plan, subject, method, loaded, conf, folder, verbose)
                    tables.append(_static_first(rows))
                    bar.update()
        results = with_bids_columns(
            pd.concat(tables, ignore_index=True)[RESULT_COLUMNS],
            plan.subjects,
            [img for img, _ in plan.runs],
        )
        if folder.path is not None:
            with atomic_paths() as stage:
                write_results(results, folder.path, stage)
    return results
