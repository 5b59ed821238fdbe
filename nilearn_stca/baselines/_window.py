"""Shared machinery of the baselines: static fit, sliding-window refits, post-processing."""

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._checks import load_4d_run, pair_with_confounds
from ..maps import flip_to_positive_tail, threshold_fbn_img, zscore_maps
from ..windows import window_starts

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


class _WindowedDecomposition(TransformerMixin, BaseEstimator):
    """Base of the baselines: a nilearn decomposition run statically and on every window.

    Subclasses set ``_nilearn_class`` (a nilearn decomposition estimator) and
    ``_nilearn_params`` (the names of its constructor parameters stored on ``self``), and may
    override :meth:`_window_overrides` to change parameters for the window refits.
    """

    _nilearn_class = None
    _nilearn_params = ()

    # ------------------------------------------------------------------ helpers
    def _validate_params(self):
        for name, minimum in (("n_components", 1), ("window_length", 2), ("window_stride", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {value!r}.")
            if value < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {value}.")
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
        pairs = pair_with_confounds(imgs, confounds)
        name = "imgs" if len(pairs) == 1 else "imgs[{}]"
        loaded = [
            load_4d_run(img, name.format(i), self.window_length)
            for i, (img, _) in enumerate(pairs)
        ]
        conf = None if confounds is None else [c for _, c in pairs]
        estimator = self._make_estimator().fit(loaded, confounds=conf)
        self.estimator_ = estimator
        self.masker_ = estimator.masker_
        self.mask_img_ = estimator.mask_img_
        self.components_ = postprocess_maps(estimator.components_)
        self.components_img_ = self.masker_.inverse_transform(self.components_)
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "components_")

    # ------------------------------------------------------------------ dynamic maps
    def _masked_run(self, img, confounds=None):
        check_is_fitted(self)
        img = load_4d_run(img, "img", self.window_length)
        return np.asarray(self.masker_.transform(img, confounds=confounds), dtype=np.float32)

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

    def _empty_window_hint(self):
        return "Windows may be too short for this method's parameters."

    def iter_window_maps(self, img, confounds=None):
        """Yield the maps of every sliding window of one run, one window at a time.

        Each window (``window_length`` scans, starts ``window_stride`` scans apart) of the
        run cleaned by ``masker_`` gets its own fit of a fresh nilearn estimator on
        ``mask_img_``.

        Parameters
        ----------
        img : Niimg-like
            One 4D run, on the fitted mask's grid (or resampled to it by ``masker_``).
        confounds : CSV path, ndarray, DataFrame or None, default=None
            Regressed out of the whole run before it is cut into windows.

        Yields
        ------
        start_scan : int
            First scan of the window.
        maps : ndarray of float32, shape (n_components, n_voxels)
            The window's maps, sign-flipped to a positive heavy tail and z-scored per map
            over the mask. A window where the method finds no component gives all-zero maps
            and a ``RuntimeWarning``; it is not skipped. Only one window's maps are held at a
            time; use ``masker_.inverse_transform(maps)`` for an image.
        """
        run = self._masked_run(img, confounds)
        for start in window_starts(len(run), self.window_length, self.window_stride):
            yield int(start), self._window_maps(run, int(start))

    def window_maps_img(self, img, start_scan, confounds=None):
        """The maps of the window starting at ``start_scan``, as a 4D image.

        Parameters
        ----------
        img : Niimg-like
            One 4D run.
        start_scan : int
            First scan of the window, between 0 and ``n_scans - window_length``.
        confounds : CSV path, ndarray, DataFrame or None, default=None

        Returns
        -------
        maps_img : Nifti1Image
            The same maps as :meth:`iter_window_maps` gives for this window.
        """
        run = self._masked_run(img, confounds)
        last = len(run) - self.window_length
        if isinstance(start_scan, bool) or not isinstance(start_scan, (int, np.integer)):
            raise TypeError(f"start_scan must be an integer, got {start_scan!r}.")
        if not 0 <= start_scan <= last:
            raise ValueError(
                f"start_scan={start_scan} is outside the run: a window of {self.window_length} "
                f"scans must start between 0 and {last}."
            )
        return self.masker_.inverse_transform(self._window_maps(run, int(start_scan)))

    def fbns_img(self, img=None, start_scan=None, confounds=None):
        """Binary FBNs (z >= ``fbn_threshold``): static if no image is given, else one window's.

        Parameters
        ----------
        img : Niimg-like, default=None
            One 4D run; None for the static FBNs of ``components_img_``.
        start_scan : int, default=None
            Required with ``img``: the window whose FBNs to return.
        confounds : CSV path, ndarray, DataFrame or None, default=None

        Returns
        -------
        fbn_img : Nifti1Image
            1 inside each network, 0 elsewhere (uint8), one volume per map.
        """
        check_is_fitted(self)
        if img is None:
            return threshold_fbn_img(self.components_img_, self.fbn_threshold)
        if start_scan is None:
            raise ValueError("start_scan is required with img: which window's FBNs to return.")
        return threshold_fbn_img(
            self.window_maps_img(img, start_scan, confounds), self.fbn_threshold
        )
