"""Nilearn's CanICA and DictLearning fits of one window, on arrays instead of images.

Fitting ``CanICA`` or ``DictLearning`` on a window image (the "plain" path) re-masks the
image, cleans it, reduces it by PCA, then runs FastICA or dictionary learning. The functions
here do the same steps, in the same order and with the same random draws, on the window's
rows of the run already masked by the fitted masker (see nilearn's
``decomposition/_base.py``, ``_multi_pca.py``, ``canica.py`` and ``dict_learning.py``).

Two steps are computed differently:

- FastICA's contrast function. nilearn asks FastICA for ``fun="cube"``, which scikit-learn
  evaluates as ``x ** 3``; numpy computes that power with ``pow``, which takes most of a
  CanICA fit. :func:`_cube` returns the same function and derivative from multiplications,
  so the maps agree with the plain path to rounding error (about 1e-9 relative) instead of
  bit for bit.
- DictLearning's ``dict_learning_online(method="cd")``, which spends most of a window in the
  per-call overhead of scikit-learn's ``Lasso``: :mod:`._online_dictionary` runs the same
  loop on scikit-learn's compiled kernel (the same dictionary and codes, bit for bit) and,
  where asked, gives the voxels whose float32 descent cannot converge their exact lasso
  codes.
"""

import warnings

import numpy as np
from joblib import Parallel, delayed
from nilearn.signal import clean
from scipy import linalg
from scipy.stats import scoreatpercentile
from sklearn.decomposition import dict_learning_online, fastica
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.utils import check_random_state
from sklearn.utils.extmath import randomized_svd, svd_flip

from ._lasso_codes import KERNEL_AVAILABLE
from ._online_dictionary import online_dict_learning


def _cube(x):
    """FastICA's ``"cube"`` contrast, ``x**3`` and the mean of ``3 x**2``, without ``pow``."""
    x_squared = x * x
    derivative = 3 * x_squared.mean(axis=-1)
    return np.multiply(x_squared, x, out=x_squared), derivative


def clean_window(window, standardize, standardize_confounds, detrend):
    """Clean one window as the nilearn estimator's masker does when it is fitted on it.

    The window fits override the whole-run parameters (filtering, ``t_r``, smoothing,
    resampling) with None, so only detrending and standardisation remain.
    """
    return clean(
        window,
        detrend=detrend,
        standardize=standardize,
        standardize_confounds=standardize_confounds,
        t_r=None,
        low_pass=None,
        high_pass=None,
        confounds=None,
    )


def _svd_reduce(X, n_components, random_state):
    """nilearn's ``_fast_svd``: full SVD of small matrices, randomized SVD of large ones."""
    random_state = check_random_state(random_state)
    if max(X.shape) > 500 and 1 <= n_components < 0.8 * min(X.shape):
        return randomized_svd(
            X, n_components=n_components, n_iter="auto", flip_sign=True, random_state=random_state
        )
    U, S, V = linalg.svd(X, full_matrices=False)
    U, V = svd_flip(U, V)
    return U[:, :n_components].copy(), S[:n_components], V[:n_components].copy()


def reduce_window(data, n_components, random_state):
    """Reduce a cleaned window to its ``n_components`` main time components.

    Parameters
    ----------
    data : ndarray, shape (n_scans, n_voxels)
        The cleaned window.
    n_components : int
        Kept components (fewer if the window has fewer scans).
    random_state : int, RandomState or None

    Returns
    -------
    reduced : ndarray, shape (min(n_components, n_scans), n_voxels), Fortran order
        Singular vectors scaled by their singular values, as nilearn's ``_mask_and_reduce``.
    """
    n_samples = min(n_components, data.shape[0])
    U, S, _ = _svd_reduce(data.T, n_samples, random_state)
    U = U.T.copy() * S[:, np.newaxis]
    dtype = np.float64 if U.dtype.type is np.float64 else np.float32
    reduced = np.empty(U.shape, order="F", dtype=dtype)
    reduced[:] = U
    return reduced


def multi_pca(data, n_components, do_cca, random_state):
    """nilearn's ``_MultiPCA._raw_fit``: the main spatial components of the reduced data.

    ``data`` is normalised per row (CCA) in place and restored afterwards, as nilearn does,
    so that a later step (dictionary learning) sees the same, rounded, values.

    Returns
    -------
    components : ndarray, shape (n_voxels, n_components)
    """
    if do_cca:
        norms = np.sqrt(np.sum(data**2, axis=1))
        norms[norms == 0] = 1
        data /= norms[:, np.newaxis]
    components, _, _ = randomized_svd(
        data.T, n_components=n_components, transpose=True, random_state=random_state, n_iter=3
    )
    if do_cca:
        data *= norms[:, np.newaxis]
    return components


def _max_l1_norm(maps):
    return np.sum(np.abs(maps), axis=1).max()


def _threshold_ratio(threshold):
    if isinstance(threshold, float):
        return threshold
    if threshold == "auto":
        return 1.0
    if threshold is not None:
        raise ValueError(f"Threshold must be None, 'auto' or float. You provided {threshold}.")
    return None


def _fastica(data, seed, fun=_cube):
    """One of CanICA's FastICA restarts; its convergence warnings stay in the worker, as
    the window fits' warnings in the main process (they would repeat at every window)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fastica(data, whiten="arbitrary-variance", fun=fun, random_state=seed)


def unmix(components, n_init, threshold, random_state, n_jobs=1, fun=_cube):
    """nilearn's ``CanICA._unmix_components``: FastICA restarts, sparsest result, threshold.

    Parameters
    ----------
    components : ndarray, shape (n_voxels, n_components)
        Output of :func:`multi_pca`.
    n_init : int
        FastICA restarts, each with its own seed drawn from ``random_state``.
    threshold : None, "auto" or float
        CanICA's threshold on the raw maps.
    random_state : int, RandomState or None
    n_jobs : int, default=1
    fun : callable or "cube", default=_cube
        FastICA's contrast: :func:`_cube` (the same as scikit-learn's "cube" to rounding,
        faster) or "cube" itself (bit for bit).

    Returns
    -------
    maps : ndarray, shape (n_components, n_voxels), of ``components``' dtype
        Each map flipped so that its peak is positive.
    """
    seeds = check_random_state(random_state).randint(np.iinfo(np.int32).max, size=n_init)
    # As nilearn: FastICA is unstable in float32.
    data = components.astype(np.float64)
    results = Parallel(n_jobs=n_jobs)(delayed(_fastica)(data, seed, fun) for seed in seeds)
    # The sparsest result (smallest largest-L1-norm map), the first one on ties.
    maps = min((sources.T for _, _, sources in results), key=_max_l1_norm)
    ratio = _threshold_ratio(threshold)
    if ratio is not None:
        percentile = 100.0 - (100.0 / len(maps)) * ratio
        # A percentile <= 0 means no threshold (nilearn warns about it).
        if percentile > 0:
            abs_maps = np.abs(maps)
            maps[abs_maps < scoreatpercentile(abs_maps, percentile)] = 0.0
    maps = maps.astype(components.dtype)
    for component in maps:
        if component.max() < -component.min():
            component *= -1
    return maps


def canica_maps(
    reduced, *, n_components, do_cca, n_init, threshold, random_state, n_jobs=1, fun=_cube
):
    """nilearn's ``CanICA._raw_fit`` on a reduced window: :func:`multi_pca`, :func:`unmix`.

    Returns
    -------
    maps : ndarray, shape (n_components, n_voxels)
    """
    components = multi_pca(reduced, n_components, do_cca, random_state)
    return unmix(components, n_init, threshold, random_state, n_jobs, fun)


def _initial_loadings(components, data):
    """nilearn's ``_compute_loadings``: time courses of the initial maps, unit norm."""
    ridge = Ridge(fit_intercept=False, alpha=1e-8)
    ridge.fit(components.T, np.asarray(data.T))
    loadings = ridge.coef_.T
    norms = np.sqrt(np.sum(loadings**2, axis=0))
    norms[norms == 0] = 1
    loadings /= norms[np.newaxis, :]
    return loadings


def _initial_maps(reduced, n_components, random_state, n_jobs, fun):
    """nilearn's ``DictLearning._init_dict`` without ``dict_init``: one unthresholded CanICA."""
    return canica_maps(
        reduced,
        n_components=n_components,
        do_cca=True,
        n_init=1,
        threshold=float(n_components),
        random_state=random_state,
        n_jobs=n_jobs,
        fun=fun,
    )


def dict_learning_maps(
    reduced,
    *,
    n_components,
    alpha,
    batch_size,
    method,
    n_epochs,
    random_state,
    n_jobs=1,
    verbose=0,
    exact_codes=False,
):
    """nilearn's ``DictLearning._raw_fit`` on a reduced window.

    Parameters
    ----------
    reduced : ndarray, shape (n_samples, n_voxels)
        Output of :func:`reduce_window`.
    n_components, alpha, batch_size, method, n_epochs, random_state, n_jobs, verbose
        DictLearning's parameters of the same names.
    exact_codes : bool, default=False
        The final codes of :func:`._online_dictionary.online_dict_learning` (``method="cd"``
        with the compiled kernel only; scikit-learn's own codes otherwise).

    Returns
    -------
    maps : ndarray, shape (n_components, n_voxels)
        Unit-norm maps, each flipped so that it has more positive than negative voxels.
    """
    # The dictionary amplifies rounding: nilearn's own numbers need scikit-learn's "cube".
    fun = _cube if exact_codes else "cube"
    init_maps = _initial_maps(reduced, n_components, random_state, n_jobs, fun)
    scale = (init_maps**2).sum(axis=1)
    scale[scale == 0] = 1
    init_maps /= scale[:, np.newaxis]
    loadings = _initial_loadings(init_maps, reduced)
    max_iter = ((reduced.shape[1] - 1) // batch_size + 1) * n_epochs
    params = {
        "alpha": alpha,
        "dict_init": loadings,
        "max_iter": max_iter,
        "batch_size": batch_size,
        "random_state": random_state,
        "verbose": max(0, int(verbose) - 1),
    }
    if method == "cd" and KERNEL_AVAILABLE:
        code, _ = online_dict_learning(reduced.T, n_components, exact_codes=exact_codes, **params)
    else:
        code, _ = dict_learning_online(
            reduced.T,
            n_components,
            method=method,
            return_code=True,
            shuffle=True,
            n_jobs=1,
            **params,
        )
    maps = code.T
    norms = np.sqrt(np.sum(maps**2, axis=1))
    norms[norms == 0] = 1
    maps /= norms[:, np.newaxis]
    for component in maps:
        if np.sum(component > 0) < np.sum(component < 0):
            component *= -1
    return maps
