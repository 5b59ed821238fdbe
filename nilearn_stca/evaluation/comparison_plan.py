"""Planning a comparison: subjects, methods, settings and scoring, checked before anything runs.

:func:`plan_comparison` turns :func:`~nilearn_stca.evaluation.compare`'s arguments into a
:class:`ComparisonPlan`: every input checked (a bad one fails here, before any file is
written), the estimators configured, the templates on the mask's grid, the settings that a
resumed run must match, and the number of result rows each finished cell holds.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn.image import load_img
from nilearn.maskers import MultiNiftiMasker
from nilearn.masking import apply_mask
from sklearn.base import clone

from .._utils.checks import (
    check_fbn_threshold,
    check_integer,
    check_mask_not_empty,
    check_runs_on_one_grid,
    load_4d_run,
    pair_with_confounds,
    repetition_time,
)
from .._utils.mask_grid import mask_grid_params
from ..methods import METHOD_REGISTRY, method_of
from ..windows import window_starts
from ._run_checks import (
    check_confounds_rows,
    check_mask_inside_runs,
    check_run_files,
    describe_run,
)
from .bids import subject_labels
from .metrics import check_strategy, score_maps
from .templates import load_rsn_templates

#: The methods ``compare`` knows by name.
METHODS = {name: method.estimator_class() for name, method in METHOD_REGISTRY.items()}

#: Estimator parameters ``compare`` sets itself, so that every method sees the same data.
CONTROLLED_PARAMS = (
    "mask",
    "target_affine",
    "target_shape",
    "window_length",
    "window_stride",
    "fbn_threshold",
)

#: Parameters that change how a run executes, not its results: a resumed comparison may differ.
_EXECUTION_PARAMS = ("verbose", "n_jobs", "memory", "memory_level", "device")


def shows_own_progress(estimator):
    """Whether ``estimator``'s method draws its own progress bars (``Method.own_progress``)."""
    method = method_of(estimator)
    return method is not None and method.own_progress


@dataclass(frozen=True)
class Scoring:
    """How maps are scored: binary templates on the mask's grid, the z threshold, matching."""

    template_masks: np.ndarray
    names: list
    threshold: float
    strategy: str

    def __call__(self, z_maps):
        """``score_maps`` of ``z_maps`` (n_maps, n_voxels) against every template."""
        return score_maps(
            z_maps,
            self.template_masks,
            self.names,
            threshold=self.threshold,
            strategy=self.strategy,
        )


@dataclass(frozen=True)
class ComparisonPlan:
    """What a comparison runs: one cell per (subject, method), and how it is scored."""

    subjects: list
    runs: list  # (img, confounds) per subject
    estimators: dict  # name -> unfitted, configured estimator
    templates: object  # Bunch of load_rsn_templates, on the mask's grid
    scoring: Scoring
    windows: bool
    sweep_stride: object  # int or None
    rows_per_cell: dict  # subject -> rows of a finished cell of that subject
    settings: dict  # what a resumed comparison must match

    @property
    def n_cells(self):
        return len(self.subjects) * len(self.estimators)


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
        if name == "stca" and "threshold" in params:
            controlled.append("threshold")  # STCA's deprecated name of fbn_threshold
        if controlled:
            raise ValueError(
                f"method_params[{name!r}] sets {controlled}: compare sets these for every "
                "method; pass them to compare itself (mask_img, window_length, window_stride, "
                "threshold)."
            )
        estimators[name].set_params(**params)
    for est in estimators.values():
        est.set_params(fbn_threshold=threshold)
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


def plan_comparison(
    imgs,
    methods,
    templates,
    windows,
    *,
    confounds,
    mask_img,
    subjects,
    n_components,
    method_params,
    window_length,
    window_stride,
    sweep_stride,
    threshold,
    template_threshold,
    template_names,
    strategy,
    random_state,
    verbose,
):
    """Check :func:`~nilearn_stca.evaluation.compare`'s arguments and plan its cells.

    Every run is read once here to check it (a file, not a folder; given once; 4D, finite,
    not all zeros, long enough; its confounds one row per scan; on one grid, or with a
    given mask inside its field of view), then released; nothing is written.

    Returns
    -------
    plan : ComparisonPlan
    """
    pairs = pair_with_confounds(imgs, confounds)
    check_run_files([img for img, _ in pairs])
    labels = subject_labels([img for img, _ in pairs], subjects)
    loaded = [load_4d_run(img, f"imgs[{i}]", window_length) for i, (img, _) in enumerate(pairs)]
    n_scans = [img.shape[3] for img in loaded]
    check_confounds_rows(pairs, n_scans)
    t_r = repetition_time(loaded)
    if mask_img is None:
        check_runs_on_one_grid(
            loaded,
            fix="resample the runs onto one grid (nilearn.image.resample_to_img), or give "
            "mask_img: every run is resampled onto its grid.",
        )
    else:
        check_mask_not_empty(mask_img, name="mask_img")
        names = [describe_run(img, f"imgs[{i}]") for i, (img, _) in enumerate(pairs)]
        check_mask_inside_runs(mask_img, loaded, names)
    check_strategy(strategy)
    check_fbn_threshold(threshold)
    threshold = float(threshold)
    if sweep_stride is not None:
        check_integer(sweep_stride, "sweep_stride", 1)
    estimators = _make_estimators(methods, method_params, n_components, threshold, random_state)
    if mask_img is None:
        mask_img = MultiNiftiMasker(mask_strategy="epi").fit(loaded).mask_img_
        if not np.any(np.asanyarray(mask_img.dataobj)):
            raise ValueError(
                "the brain mask computed from imgs (nilearn's 'epi' strategy) is empty: give "
                "mask_img (e.g. nilearn.datasets.load_mni152_brain_mask())."
            )
    del loaded
    mask_img = load_img(mask_img)
    n_voxels = int(np.count_nonzero(np.asanyarray(mask_img.dataobj)))
    for est in estimators.values():
        est.set_params(
            **mask_grid_params(mask_img),
            window_length=window_length,
            window_stride=window_stride,
            # A method's own bars (STCA's training and window sweep) are shown; the
            # baselines' nilearn estimators would print at every window.
            verbose=verbose if shows_own_progress(est) else max(0, verbose - 1),
        )
        est._check_params()  # a bad parameter fails now, before anything is written
        for run_scans in sorted(set(n_scans)):  # each run is fitted on its own
            est._check_n_components_for_data([run_scans], n_voxels)
    if not isinstance(templates, Mapping):
        templates = load_rsn_templates(
            templates, target_img=mask_img, threshold=template_threshold, names=template_names
        )
    scoring = Scoring(
        apply_mask(templates.masks_img, mask_img).astype(bool),
        list(templates.names),
        threshold,
        strategy,
    )
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
        "templates": {"names": scoring.names, "masks": _describe(templates.masks_img)},
        "threshold": threshold,
        "window_length": window_length,
        "window_stride": window_stride,
        "windows": bool(windows),
        "sweep_stride": sweep_stride,
        "strategy": strategy,
        "t_r": t_r,  # from the headers; dwell times in seconds in the report's Dynamics
    }
    # Rows of a finished cell: one per template for the static maps and each scored window.
    stride = sweep_stride or window_stride
    n_windows = [len(window_starts(n, window_length, stride)) if windows else 0 for n in n_scans]
    rows_per_cell = {
        s: len(scoring.names) * (1 + w) for s, w in zip(labels, n_windows, strict=True)
    }
    return ComparisonPlan(
        subjects=labels,
        runs=pairs,
        estimators=estimators,
        templates=templates,
        scoring=scoring,
        windows=bool(windows),
        sweep_stride=sweep_stride,
        rows_per_cell=rows_per_cell,
        settings=settings,
    )
