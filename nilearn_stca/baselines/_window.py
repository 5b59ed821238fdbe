"""Shared machinery of the baselines: static fit, sliding-window refits, post-processing."""

import warnings

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from nilearn.maskers import NiftiMasker
from nilearn.maskers.masker_validation import check_embedded_masker
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from .._base import BaseWindowedDecomposition
from .._param_rules import dtype
from .._utils.checks import load_runs_for_fit
from ..maps import flip_to_positive_tail, zscore_maps
from ._array_fits import clean_window, reduce_window

#: Parameters of the wrapped nilearn estimator that act on the whole run. The windows are cut
#: from the run already cleaned by ``masker_``, so their refits must not apply them twice.
_WHOLE_RUN_PARAMS = {
    "smoothing_fwhm": None,
    "low_pass": None,
    "high_pass": None,
    "t_r": None,
    "target_affine": None,
    "target_shape": None,
}


def postprocess_maps(components):
    """Flip each map so its heavy tail is positive, then z-score it over the mask (float32)."""
    return zscore_maps(flip_to_positive_tail(np.asarray(components, dtype=np.float64))).astype(
        np.float32
    )


class _NilearnWindowedDecomposition(BaseWindowedDecomposition):
    """Base of the baselines: a nilearn decomposition run statically and on every window.

    Subclasses set ``_nilearn_class`` (a nilearn decomposition estimator, whose parameters
    they have, under the same names) and may override :meth:`_window_overrides` to change
    parameters for the window refits.
    """

    _nilearn_class = None
    _param_rules = {**BaseWindowedDecomposition._param_rules, "dtype": dtype}
    #: Whether ``n_jobs`` > 1 decomposes several windows at once (else the subclass uses
    #: ``n_jobs`` inside each window, as the nilearn estimator does).
    _windows_in_parallel = True

    # ------------------------------------------------------------------ helpers
    def _make_estimator(self, **overrides):
        own = self._get_param_names()
        params = {
            name: getattr(self, name)
            for name in self._nilearn_class._get_param_names()
            if name in own
        }
        params.update(overrides)
        return self._nilearn_class(**params)

    def _window_overrides(self):
        """Constructor overrides of the nilearn estimator fitted on each window."""
        return {}

    def _window_n_components(self):
        """The maps a window's fit looks for: ``n_components``, unless the window overrides
        it (fewer, where a window holds fewer time components; the rest are zeros)."""
        return self._window_overrides().get("n_components", self.n_components)

    def _static_overrides(self, n_scans):
        """Constructor overrides of the static fit, on runs of ``n_scans`` scans in all."""
        return {}

    # ------------------------------------------------------------------ fitting
    def _fit(self, imgs, confounds):
        """Decompose all subjects together with the wrapped nilearn estimator."""
        self._check_params()
        runs_and_confounds = load_runs_for_fit(self, imgs, confounds)
        loaded = [img for img, _ in runs_and_confounds]
        conf = None if confounds is None else [c for _, c in runs_and_confounds]
        overrides = self._static_overrides(sum(img.shape[3] for img in loaded))
        # nilearn's own masker (``check_embedded_masker``) is fitted here, before the static
        # fit, so that n_components is checked against the voxels of the mask before any work.
        masker_type = "nii" if type(self.mask) is NiftiMasker else "multi_nii"
        masker = check_embedded_masker(self._make_estimator(), masker_type=masker_type)
        mask_img = self._fit_mask(masker, loaded)
        if self.mask is None:
            overrides["mask"] = mask_img  # computed once, by _fit_mask
        estimator = self._make_estimator(**overrides)
        try:
            estimator.fit(loaded, confounds=conf)
            components = postprocess_maps(estimator.components_)
        except ValueError as error:
            if "No component found" not in str(error):
                raise
            warnings.warn(
                f"{type(self).__name__}: no component found in the static fit; its maps are "
                f"all zeros. {self._empty_window_hint(static=True)}",
                RuntimeWarning,
                stacklevel=3,
            )
            n_voxels = int(np.count_nonzero(np.asanyarray(estimator.mask_img_.dataobj)))
            components = np.zeros((self.n_components, n_voxels), dtype=np.float32)
        self.estimator_ = estimator
        self.masker_ = estimator.masker_
        self.mask_img_ = estimator.mask_img_
        self._set_components(components)

    # ------------------------------------------------------------------ dynamic maps
    def _window_maps_plain(self, run, start):
        """Fit a fresh nilearn estimator on the image of one window of a cleaned, masked run.

        The reference of :meth:`_window_maps_fast`, which gives the same maps (see
        :mod:`._array_fits`) without the image round-trip and re-masking.
        """
        window_img = self.masker_.inverse_transform(run[start : start + self.window_length])
        estimator = self._make_estimator(
            mask=self.mask_img_, **_WHOLE_RUN_PARAMS, **self._window_overrides()
        )
        try:
            with warnings.catch_warnings():
                # nilearn's own warnings about its masker would repeat at every window.
                warnings.simplefilter("ignore", UserWarning)
                estimator.fit(window_img)
            components = estimator.components_
        except ValueError as error:
            if "No component found" not in str(error):
                raise
            components = np.zeros((self.n_components, run.shape[1]))
        return self._finish_window_maps(components, start, run.shape[1])

    def _window_maps_fast(self, run, start):
        """The maps of one window, computed as nilearn would but on arrays."""
        components = self._window_components(run[start : start + self.window_length])
        return self._finish_window_maps(components, start, run.shape[1])

    def _window_components(self, window):
        """The raw maps of one window of the cleaned, masked run.

        The window's rows are cleaned, reduced and decomposed by the functions of
        :mod:`._array_fits`, the array version of the nilearn estimator's fit. Only the
        parameters are used, so a parameters-only clone computes it in a worker process.
        """
        dtype = self._masker_dtype()
        if dtype is not None:
            # The window image of the plain path has the dtype of ``masker_``'s output.
            window = window.astype(dtype)
        # A window's matrices are small (n_components or window_length rows): BLAS threads
        # gain nothing there, and numpy's and scipy's two OpenBLAS pools, called in turn at
        # every FastICA iteration, made a window up to 40 times slower on 2 busy cores.
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            # nilearn's warnings about the parameters (and deprecations of their values)
            # are those of the static fit, and would repeat at every window.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            data = clean_window(window, self.standardize, self.standardize_confounds, self.detrend)
            reduced = reduce_window(data, self._window_n_components(), self.random_state)
            return self._decompose_window(reduced)

    def _n_window_jobs(self, n_windows):
        """Worker processes for ``n_windows`` windows: 1 unless windows can run independently.

        A ``RandomState`` instance is drawn from by each window in turn, as by a loop over
        nilearn estimators, so its windows stay in one process.
        """
        if (
            not self._windows_in_parallel
            or n_windows < 2
            or isinstance(self.random_state, np.random.RandomState)
        ):
            return 1
        return min(effective_n_jobs(self.n_jobs), n_windows)

    def _masker_dtype(self):
        """The dtype of ``masker_``'s images and masked windows (None: that of the data)."""
        if self.dtype is None:
            return None
        if self.dtype == "auto":
            return np.dtype(np.float32)
        dtype = np.dtype(self.dtype)
        # nilearn keeps integer dtypes away from its masker.
        return dtype if dtype.kind == "f" else None

    def _decompose_window(self, reduced):
        """Maps of one reduced window (rows of :func:`._array_fits.reduce_window`)."""
        raise NotImplementedError

    def _finish_window_maps(self, components, start, n_voxels):
        """Post-process one window's maps; all zeros, with a warning, if it has none."""
        if not np.any(components):
            warnings.warn(
                f"{type(self).__name__}: no component found in the window starting at scan "
                f"{start} ({self.window_length} scans); its maps are all zeros. "
                f"{self._empty_window_hint()}",
                RuntimeWarning,
                stacklevel=4,
            )
            return np.zeros((self.n_components, n_voxels), dtype=np.float32)
        maps = postprocess_maps(components)
        if len(maps) < self.n_components:
            padding = np.zeros((self.n_components - len(maps), maps.shape[1]), np.float32)
            maps = np.vstack([maps, padding])
        return maps

    def _empty_window_hint(self, static=False):
        if static:
            return "The run may be too short or too noisy for this method's parameters."
        return "Windows may be too short for this method's parameters."

    def _iter_run_maps(self, run, starts):
        """Yield ``(start, maps)`` for each window start, in order, by the array path.

        Where :meth:`_n_window_jobs` allows more than one process, the windows are
        decomposed in that many worker processes (each window in one, with one thread), a
        few windows ahead of the consumer.
        """
        starts = [int(start) for start in starts]
        n_jobs = self._n_window_jobs(len(starts))
        if n_jobs == 1:
            for start in starts:
                yield start, self._window_maps_fast(run, start)
            return
        worker = clone(self).set_params(n_jobs=1)
        windows = (run[start : start + self.window_length] for start in starts)
        # max_nbytes=None: each task pickles its window, not a memory map of the whole run.
        parallel = Parallel(n_jobs=n_jobs, return_as="generator", max_nbytes=None)
        components = parallel(delayed(worker._window_components)(window) for window in windows)
        for start, window_components in zip(starts, components, strict=True):
            yield start, self._finish_window_maps(window_components, start, run.shape[1])

    def _iter_run_maps_plain(self, run, starts):
        """:meth:`_iter_run_maps` with a nilearn estimator fitted on each window's image."""
        for start in starts:
            yield int(start), self._window_maps_plain(run, int(start))
