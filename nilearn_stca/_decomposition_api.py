"""nilearn's decomposition API on the static maps, shared by STCA and the baselines.

``transform``, ``inverse_transform``, ``score`` and ``n_elements_`` mean what they mean on
nilearn's ``CanICA`` and ``DictLearning``, computed from this package's ``components_`` (the
z-scored, sign-flipped maps every method reports), so that ``fit_transform``,
``RegionExtractor`` and ``ConnectivityMeasure`` scripts work with every method alike.
"""

import warnings

import numpy as np
from nilearn.image import index_img, load_img
from nilearn.maskers import NiftiMapsMasker
from sklearn.utils.validation import check_is_fitted

from ._utils.checks import mask_run, pair_with_confounds


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


class DecompositionAPIMixin:
    """``transform``, ``inverse_transform``, ``score`` and ``n_elements_`` of a fitted method.

    The class using it sets ``masker_``, ``mask_img_``, ``components_`` and
    ``components_img_`` in ``fit``, then calls :meth:`_fit_maps_masker`.
    """

    def _fit_maps_masker(self):
        """``maps_masker_``: a NiftiMapsMasker on the maps of ``components_img_`` that are not
        all zeros (nilearn's masker drops those, which would shift the columns)."""
        if self._nonzero_maps.size == 0:
            self.maps_masker_ = None
            return
        self.maps_masker_ = NiftiMapsMasker(
            index_img(self.components_img_, self._nonzero_maps),
            mask_img=self.mask_img_,
            resampling_target="maps",
            standardize=None,
            memory=getattr(self, "memory", None),
            memory_level=getattr(self, "memory_level", 0),
        ).fit()

    def _warn_zero_maps(self, hint):
        """Warn, naming ``n_components``, where some static maps (not all) are all zeros.

        A fit that finds fewer maps than asked for gives all-zero maps in their place;
        ``hint`` says why this method may, and what to change.
        """
        n_maps = len(self.components_)
        n_zero = n_maps - len(self._nonzero_maps)
        if 0 < n_zero < n_maps:
            warnings.warn(
                f"{type(self).__name__}: {n_zero} of the n_components={n_maps} static maps "
                f"are all zeros. {hint}",
                RuntimeWarning,
                stacklevel=3,
            )

    @property
    def _nonzero_maps(self):
        return np.flatnonzero(np.any(self.components_ != 0, axis=1))

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
