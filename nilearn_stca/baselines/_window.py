"""Shared machinery of the baselines: static fit, sliding-window refits, post-processing."""

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._checks import check_integer_params, load_runs
from .._window_api import WindowMapsMixin
from ..maps import flip_to_positive_tail, zscore_maps

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


class _WindowedDecomposition(WindowMapsMixin, TransformerMixin, BaseEstimator):
    """Base of the baselines: a nilearn decomposition run statically and on every window.

    Subclasses set ``_nilearn_class`` (a nilearn decomposition estimator) and
    ``_nilearn_params`` (the names of its constructor parameters stored on ``self``), and may
    override :meth:`_window_overrides` to change parameters for the window refits.
    """

    _nilearn_class = None
    _nilearn_params = ()
    _fbn_threshold_param = "fbn_threshold"

    # ------------------------------------------------------------------ helpers
    def _validate_params(self):
        check_integer_params(self, {"n_components": 1, "window_length": 2, "window_stride": 1})
        threshold = self.fbn_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
            raise TypeError(f"fbn_threshold must be a number, got {threshold!r}.")
        if not np.isfinite(threshold):
            raise ValueError(f"fbn_threshold must be finite, got {threshold!r}.")

    def _make_estimator(self, **overrides):
        params = {name: getattr(self, name) for name in self._nilearn_params}
        params.update(overrides)
        return self._nilearn_class(**params)

    def _window_overrides(self):
        """Constructor overrides of the nilearn estimator fitted on each window."""
        return {}

    # ------------------------------------------------------------------ fitting
    def fit(self, imgs, y=None, confounds=None):
        """Decompose all subjects together with the wrapped nilearn estimator.

        Parameters
        ----------
        imgs : Niimg-like or list of Niimg-like
            One 4D run per subject, each at least ``window_length`` scans long.
        y : None
            Ignored, for scikit-learn compatibility.
        confounds : list of (CSV path, ndarray, DataFrame or None), default=None
            One entry per image, passed to :func:`nilearn.signal.clean`.

        Returns
        -------
        self : object
        """
        del y
        self._validate_params()
        runs_and_confounds = load_runs(imgs, confounds, self.window_length)
        loaded = [img for img, _ in runs_and_confounds]
        conf = None if confounds is None else [c for _, c in runs_and_confounds]
        estimator = self._make_estimator()
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
                stacklevel=2,
            )
            n_voxels = int(np.count_nonzero(np.asanyarray(estimator.mask_img_.dataobj)))
            components = np.zeros((self.n_components, n_voxels), dtype=np.float32)
        self.estimator_ = estimator
        self.masker_ = estimator.masker_
        self.mask_img_ = estimator.mask_img_
        self.components_ = components
        self.components_img_ = self.masker_.inverse_transform(self.components_)
        return self

    # ------------------------------------------------------------------ dynamic maps
    def _window_maps(self, run, start):
        """Fit a fresh nilearn estimator on one window of a cleaned, masked run."""
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
        if not np.any(components):
            warnings.warn(
                f"{type(self).__name__}: no component found in the window starting at scan "
                f"{start} ({self.window_length} scans); its maps are all zeros. "
                f"{self._empty_window_hint()}",
                RuntimeWarning,
                stacklevel=3,
            )
            return np.zeros((self.n_components, run.shape[1]), dtype=np.float32)
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
        for start in starts:
            yield int(start), self._window_maps(run, int(start))
