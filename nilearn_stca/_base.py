"""The base of the three estimators, as nilearn's ``_BaseDecomposition`` is to ``CanICA``.

:class:`BaseWindowedDecomposition` holds the parameters they share, checks them from one
table of rules, fits the mask, and gives nilearn's decomposition API on the static maps
(``transform``, ``inverse_transform``, ``score``, ``n_elements_``, so that ``fit_transform``,
``RegionExtractor`` and ``ConnectivityMeasure`` scripts work with every method alike) and
the window API (maps per sliding window, FBNs).
"""

import warnings

import numpy as np
from nilearn.image import index_img, load_img
from nilearn.maskers import NiftiMapsMasker
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._param_rules import (
    MASKER_RULES,
    WINDOW_RULES,
    check_filter_params,
    check_param_table,
    check_stride,
    check_target_grid,
)
from ._utils.checks import (
    check_n_components,
    empty_computed_mask_error,
    load_4d_run,
    mask_run,
    pair_with_confounds,
)
from ._utils.docs import fill_doc
from .maps import threshold_fbn_img
from .windows import window_starts

#: ``fbn_threshold``'s default (the paper's z threshold).
DEFAULT_FBN_THRESHOLD = 3.6


def explained_variance(data, components, per_component=False):
    """Share of the variance of ``data`` (n_samples, n_voxels) explained by ``components``.

    nilearn's definition (``CanICA.score``, ``DictLearning.score``), so that scores compare
    across packages. All maps: each sample is regressed on the unit-norm maps over voxels
    with an intercept, and the residual is the sample minus the maps' part alone (the
    intercept is fitted, not removed); the score is ``1 - ||residual||^2 / ||data||^2``.
    One map (``per_component``): ``1 - var(data - projection on that map) / var(data)``,
    variances over all entries. Scores below 0 are reported as 0.
    """
    data = np.asarray(data, dtype=np.float64)
    components = np.asarray(components, dtype=np.float64)
    norms = np.linalg.norm(components, axis=1)
    norms[norms == 0] = 1
    unit = components / norms[:, None]
    if per_component:
        loadings = data @ unit.T
        full = np.var(data)
        residual = [np.var(data - np.outer(loadings[:, i], unit[i])) for i in range(len(unit))]
        return np.maximum(0.0, 1.0 - np.array(residual) / full)
    # Least squares with an intercept: centre the maps and the samples over voxels.
    centred_maps = unit - unit.mean(axis=1, keepdims=True)
    centred_data = data - data.mean(axis=1, keepdims=True)
    coef = np.linalg.lstsq(centred_maps.T, centred_data.T, rcond=None)[0]
    residual = data - coef.T @ unit
    return max(0.0, 1.0 - np.sum(residual**2) / np.sum(data**2))


class BaseWindowedDecomposition(TransformerMixin, BaseEstimator):
    """Base of the estimators: static maps from all runs, and maps per sliding window.

    A subclass lists all its parameters in its ``__init__`` (scikit-learn reads them from
    its signature) and passes the shared ones to ``super().__init__``. Its ``_fit(imgs,
    confounds)`` sets ``masker_`` and ``mask_img_`` (:meth:`_fit_mask`), then the maps
    (:meth:`_set_components`); its ``_iter_run_maps(run, starts)`` yields ``(start,
    maps)`` for the given window starts of one masked, cleaned run.
    """

    #: The rules of :mod:`nilearn_stca._param_rules` :meth:`_check_params` applies, in order.
    _param_rules = {**WINDOW_RULES, **MASKER_RULES}
    #: Why the maps cannot outnumber the voxels of the mask.
    _voxel_bound_reason = "there cannot be more independent maps than voxels"
    #: What to change where the fit found fewer static maps than ``n_components``.
    _zero_maps_hint = "The data hold fewer components than that: lower n_components."

    def __init__(
        self,
        *,
        n_components,
        window_length,
        window_stride,
        fbn_threshold,
        mask,
        smoothing_fwhm,
        standardize,
        standardize_confounds,
        detrend,
        low_pass,
        high_pass,
        t_r,
        target_affine,
        target_shape,
        mask_strategy,
        mask_args,
        memory,
        memory_level,
        n_jobs,
        verbose,
        random_state,
    ):
        self.n_components = n_components
        self.window_length = window_length
        self.window_stride = window_stride
        self.fbn_threshold = fbn_threshold
        self.mask = mask
        self.smoothing_fwhm = smoothing_fwhm
        self.standardize = standardize
        self.standardize_confounds = standardize_confounds
        self.detrend = detrend
        self.low_pass = low_pass
        self.high_pass = high_pass
        self.t_r = t_r
        self.target_affine = target_affine
        self.target_shape = target_shape
        self.mask_strategy = mask_strategy
        self.mask_args = mask_args
        self.memory = memory
        self.memory_level = memory_level
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_is_fitted__(self):
        return hasattr(self, "components_")

    # ------------------------------------------------------------------ fitting
    def _check_params(self):
        """Refuse a bad parameter in one line (not scikit-learn's ``_validate_params``)."""
        check_param_table(self, self._param_rules)
        check_filter_params(self)
        check_target_grid(self)

    def _check_n_components_for_data(self, n_scans, n_voxels):
        """Refuse more maps than the data give (runs of ``n_scans``, ``n_voxels`` in the mask)."""
        del n_scans  # here, the maps are bounded by the voxels only
        check_n_components(
            self.n_components,
            n_voxels,
            f"the {n_voxels} voxels of the mask",
            self._voxel_bound_reason,
        )

    def _fit_mask(self, masker, loaded):
        """Fit ``masker`` (on the runs ``loaded`` where it computes the mask), refuse an empty
        mask, check ``n_components`` against the runs and the mask; return the mask image."""
        try:
            if getattr(masker, "mask_img", None) is None:
                masker.fit(loaded)
            else:
                masker.fit()
        except ValueError as error:
            if "mask is invalid as it is empty" in str(error):
                raise empty_computed_mask_error(masker.mask_strategy) from error
            raise
        mask_data = np.asanyarray(masker.mask_img_.dataobj)
        if not np.any(mask_data):
            raise empty_computed_mask_error(masker.mask_strategy)
        self._check_n_components_for_data(
            [img.shape[3] for img in loaded], int(np.count_nonzero(mask_data))
        )
        return masker.mask_img_

    @fill_doc
    def fit(self, imgs, y=None, confounds=None):
        """Compute the static maps ``components_`` from every run of every subject.

        %(fit_parameters)s

        Returns
        -------
        self : object
        """
        del y
        self._fit(imgs, confounds)
        return self

    def _set_components(self, components):
        """Set ``components_``, their image and ``maps_masker_``; warn where some maps (not
        all) are all zeros: the fit found fewer maps than ``n_components``."""
        self.components_ = components
        self.components_img_ = self.masker_.inverse_transform(components)
        self._fit_maps_masker()
        n_zero = len(components) - len(self._nonzero_maps)
        if 0 < n_zero < len(components):
            warnings.warn(
                f"{type(self).__name__}: {n_zero} of the n_components={len(components)} "
                f"static maps are all zeros. {self._zero_maps_hint}",
                RuntimeWarning,
                stacklevel=4,
            )

    def _fit_maps_masker(self):
        """``maps_masker_``: a NiftiMapsMasker on the maps of ``components_img_`` that are not
        all zeros (nilearn's masker drops those, which would shift the columns)."""
        self.maps_masker_ = None
        if self._nonzero_maps.size:
            self.maps_masker_ = NiftiMapsMasker(
                index_img(self.components_img_, self._nonzero_maps),
                mask_img=self.mask_img_,
                resampling_target="maps",
                standardize=None,
                memory=self.memory,
                memory_level=self.memory_level,
            ).fit()

    @property
    def _nonzero_maps(self):
        return np.flatnonzero(np.any(self.components_ != 0, axis=1))

    # ------------------------------------------------------------------ static maps API
    @property
    def n_elements_(self):
        """Number of maps, i.e. of columns of :meth:`transform` (as in nilearn)."""
        check_is_fitted(self)
        return len(self.components_)

    def transform(self, imgs, confounds=None):
        """Project each run on the static maps (least squares), as nilearn's decompositions.

        Parameters
        ----------
        imgs : Niimg-like or list of Niimg-like
            One 4D run per subject.
        confounds : list of (CSV path, ndarray, DataFrame or None), default=None
            One entry per image, regressed out by ``maps_masker_``.

        Returns
        -------
        loadings : list of ndarray, shape (n_scans, n_components) each
            The column of a map that is all zeros (a fit that found fewer maps) is zero.
        """
        check_is_fitted(self)
        return [
            self._transform_one(img, conf) for img, conf in pair_with_confounds(imgs, confounds)
        ]

    def _transform_one(self, img, confounds):
        if self.maps_masker_ is None:
            n_scans = load_img(img).shape[3]
            return np.zeros((n_scans, len(self.components_)), dtype=np.float32)
        signals = self.maps_masker_.transform(img, confounds=confounds)
        loadings = np.zeros((len(signals), len(self.components_)), dtype=signals.dtype)
        loadings[:, self._nonzero_maps] = signals
        return loadings

    def inverse_transform(self, loadings):
        """Images ``loadings @ components_``, one per list entry of (n_scans, n_components).

        Returns
        -------
        imgs : list of Nifti1Image
        """
        check_is_fitted(self)
        if not isinstance(loadings, list):
            raise TypeError(
                f"loadings must be a list of numpy arrays, got {type(loadings).__name__}: "
                "wrap a single array in a list, as transform returns one per run."
            )
        return [self._inverse_transform_one(np.asarray(loading)) for loading in loadings]

    def _inverse_transform_one(self, loading):
        n_maps = len(self.components_)
        if loading.ndim != 2 or loading.shape[1] != n_maps:
            raise ValueError(
                f"loadings must be arrays of shape (n_scans, {n_maps}), one column per map; "
                f"got shape {loading.shape}."
            )
        if self.maps_masker_ is None:
            return self.masker_.inverse_transform(
                np.zeros((len(loading), self.components_.shape[1]))
            )
        return self.maps_masker_.inverse_transform(loading[:, self._nonzero_maps])

    def score(self, imgs, y=None, confounds=None, per_component=False):
        """Share of the variance of the masked, cleaned data explained by ``components_``.

        Parameters
        ----------
        imgs : Niimg-like or list of Niimg-like
        y : None
            Ignored, for scikit-learn compatibility.
        confounds : list of (CSV path, ndarray, DataFrame or None), default=None
        per_component : bool, default=False
            Return one share per map (each map alone) instead of the share of all of them.

        Returns
        -------
        score : float, or ndarray of shape (n_components,) if ``per_component``
        """
        del y
        check_is_fitted(self)
        data = np.vstack(
            [
                mask_run(self.masker_, img, conf)
                for img, conf in pair_with_confounds(imgs, confounds)
            ]
        )
        return explained_variance(data, self.components_, per_component=per_component)

    # ------------------------------------------------------------------ window API
    def _fbn_threshold(self):
        """The z threshold of the FBNs."""
        return self.fbn_threshold

    def _masked_run(self, img, confounds=None):
        check_is_fitted(self)
        # The fitted window_length cannot change here: a shorter run is the only way out.
        img = load_4d_run(img, "img", self.window_length, window_option=None)
        return mask_run(self.masker_, img, confounds)

    def iter_window_maps(self, img, confounds=None, stride=None):
        """Yield the maps of every sliding window of one run, one window at a time.

        Parameters
        ----------
        img : Niimg-like
            One 4D run, on the fitted mask's grid (or resampled to it by ``masker_``).
        confounds : CSV path, ndarray, DataFrame or None, default=None
            Regressed out of the whole run (by ``masker_``) before it is cut into windows.
        stride : int, default=None
            Scans between the starts of consecutive windows; ``window_stride`` if None. A
            larger stride maps fewer windows (e.g. every 10th for a quick look) without
            changing how the model was fitted.

        Yields
        ------
        start_scan : int
            First scan of the window; windows start ``stride`` scans apart.
        maps : ndarray of float32, shape (n_components, n_voxels)
            The window's maps, z-scored per map over the mask. Only one window's maps (or one
            small batch) are held at a time, so memory does not grow with the number of
            windows; ``masker_.inverse_transform(maps)`` gives an image.
        """
        stride = check_stride(stride, self.window_stride)
        run = self._masked_run(img, confounds)
        yield from self._iter_run_maps(run, window_starts(len(run), self.window_length, stride))

    def fit_iter_window_maps(self, img, confounds=None, stride=None):
        """Fit on one run, then iterate over the maps of its windows.

        The same as ``fit(img, confounds=[confounds])`` followed by
        ``iter_window_maps(img, confounds, stride)`` (see there); the fit happens when this
        method is called.
        """
        if stride is not None:
            check_stride(stride, None)  # a bad stride fails before the fit, not after
        self.fit([img], confounds=None if confounds is None else [confounds])
        return self.iter_window_maps(img, confounds, stride)

    def window_maps_img(self, img, start_scan, confounds=None):
        """The maps of the window starting at ``start_scan``, as a 4D image.

        ``start_scan`` may be any scan from 0 to ``n_scans - window_length``, on the stride
        or not; the maps are those :meth:`iter_window_maps` gives for that window.
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
        ((_, maps),) = self._iter_run_maps(run, [int(start_scan)])
        return self.masker_.inverse_transform(maps)

    def fbns_img(self, img=None, start_scan=None, confounds=None):
        """Binary FBNs (z at or above the threshold): static maps, or one window's.

        Parameters
        ----------
        img : Niimg-like, default=None
            One 4D run; None for the FBNs of the static ``components_img_``.
        start_scan : int, default=None
            Required with ``img``: the window whose FBNs to return.
        confounds : CSV path, ndarray, DataFrame or None, default=None

        Returns
        -------
        fbn_img : Nifti1Image
            1 inside each network, 0 elsewhere (uint8), one volume per map.
        """
        check_is_fitted(self)
        threshold = self._fbn_threshold()
        if img is None:
            return threshold_fbn_img(self.components_img_, threshold)
        if start_scan is None:
            raise ValueError("start_scan is required with img: which window's FBNs to return.")
        return threshold_fbn_img(self.window_maps_img(img, start_scan, confounds), threshold)
