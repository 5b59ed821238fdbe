"""The array ("fast") window path of the baselines against nilearn fitted on each window."""

import copy
import warnings

import numpy as np
import pytest
from nilearn.decomposition._base import _mask_and_reduce
from nilearn.maskers import MultiNiftiMasker
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from nilearn_stca.baselines import ICADecomposition, SDLDecomposition
from nilearn_stca.baselines._array_fits import _cube, clean_window, reduce_window
from nilearn_stca.baselines._lasso_codes import KERNEL_AVAILABLE
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation.truth import score_against_truth

STARTS = [0, 20, 40]
METHODS = [ICADecomposition, SDLDecomposition]
# 2 FastICA restarts instead of 10, and CanICA's full maps (threshold=None), as in
# test_baselines.py.
PARAMS = {ICADecomposition: {"n_init": 2, "threshold": None}, SDLDecomposition: {}}


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def sim():
    return simulate_dynamic_rsfmri(
        n_scans=80, resolution=8, snr=3.0, networks="procedural", random_state=0
    )


@pytest.fixture(scope="module")
def fitted(sim):
    estimators = {}
    for cls in METHODS:
        est = cls(random_state=0, window_length=40, window_stride=20, **PARAMS[cls])
        estimators[cls] = _quiet(est.fit, sim.func[0])
    return estimators


def _both_paths(est, run, starts):
    """Plain and fast maps of the same windows.

    The plain path runs with one BLAS thread, as the fast path does: the rounding of BLAS
    depends on its number of threads, and FastICA amplifies it into different maps.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        plain = _quiet(list, est._iter_run_maps_plain(run, starts))
    fast = _quiet(list, est._iter_run_maps(run, starts))
    return plain, fast


@pytest.fixture(scope="module")
def both_paths(fitted, sim):
    results = {}
    for cls, est in fitted.items():
        run = est._masked_run(sim.func[0])
        results[cls] = (run, *_both_paths(est, run, STARTS))
    return results


def _fit_on_tiny_run(tiny_run, cls, **params):
    """``cls(mask=..., **params)`` fitted on the tiny run, and the run masked by it."""
    img, mask = tiny_run
    est = _quiet(cls(mask=mask, **params).fit, img)
    return est, est._masked_run(img)


def _assert_same_windows(windows, expected, atol=None):
    """The same window starts, and maps equal (``atol`` None) or within ``atol``."""
    assert [start for start, _ in windows] == [start for start, _ in expected]
    for (_, maps), (_, expected_maps) in zip(windows, expected, strict=True):
        if atol is None:
            np.testing.assert_array_equal(maps, expected_maps)
        else:
            np.testing.assert_allclose(maps, expected_maps, atol=atol)


def _mean_iou(maps, sim, est):
    return score_against_truth(maps, sim.maps_img, est.mask_img_).iou.mean()


# ---------------------------------------------------------------------- steps
def test_cube_is_sklearn_cube():
    x = np.random.RandomState(0).randn(5, 300)
    value, derivative = _cube(x.copy())
    np.testing.assert_allclose(value, x**3, rtol=1e-14)
    np.testing.assert_allclose(derivative, (3 * x**2).mean(axis=-1), rtol=1e-14)


@pytest.mark.parametrize("cls", METHODS)
def test_window_cleaning_and_reduction_equal_nilearn(cls, fitted, both_paths):
    est = fitted[cls]
    run = both_paths[cls][0]
    window = run[20:60]
    # What the nilearn estimator fitted on the window image does: mask, clean, reduce.
    masker = MultiNiftiMasker(
        mask_img=est.mask_img_, standardize="zscore_sample", detrend=True
    ).fit()
    window_img = est.masker_.inverse_transform(window)
    expected = _quiet(masker.transform, window_img)
    cleaned = _quiet(clean_window, window, "zscore_sample", True, True)
    np.testing.assert_array_equal(cleaned, expected)
    assert cleaned.shape == (40, run.shape[1])
    expected_reduced = _quiet(
        _mask_and_reduce, masker, [window_img], n_components=est.n_components, random_state=0
    )
    reduced = reduce_window(cleaned, est.n_components, 0)
    np.testing.assert_array_equal(reduced, expected_reduced)
    assert reduced.flags.f_contiguous


# ---------------------------------------------------------------------- maps
@pytest.mark.parametrize("cls", METHODS)
def test_fast_maps_have_the_plain_shapes(cls, fitted, both_paths):
    run, plain, fast = both_paths[cls]
    assert [start for start, _ in fast] == [start for start, _ in plain] == STARTS
    for (_, plain_maps), (_, fast_maps) in zip(plain, fast, strict=True):
        assert fast_maps.shape == plain_maps.shape == (fitted[cls].n_components, run.shape[1])
        assert fast_maps.dtype == plain_maps.dtype == np.float32


# Measured (80 scans, 8 mm, snr=3, one BLAS thread): ICA maps equal to 1.2e-7, SDL maps to
# 9.5e-7 (z units). With window_coding="exact", SDL's maps move: the voxels whose float32
# lasso cannot converge get their exact codes and FastICA's cube, computed without pow,
# changes the rounding of the dictionary's CanICA initialisation, which the dictionary
# learning amplifies more on some inputs than on others. Spread (2026-12-04,
# benchmarks/threshold_spreads.py, seeds 0-9 x {as simulated, 2 inputs times
# 1 + 1e-6 N(0, 1)}): fast - plain 9.5e-7 to 1.9e-6; exact - plain 0.002 to 0.63 in z (0.005
# here, 0.038 on another machine), the windows' mean IoU within 0.0007.
@pytest.mark.parametrize(("cls", "atol"), [(ICADecomposition, 1e-4), (SDLDecomposition, 1e-4)])
def test_fast_maps_equal_plain_maps(cls, atol, both_paths):
    _, plain, fast = both_paths[cls]
    _assert_same_windows(fast, plain, atol=atol)


def test_exact_window_coding_moves_sdl_maps_a_little(fitted, both_paths, sim):
    run, plain, _ = both_paths[SDLDecomposition]
    exact = copy.copy(fitted[SDLDecomposition]).set_params(window_coding="exact")
    windows = _quiet(list, exact._iter_run_maps(run, STARTS))
    _assert_same_windows(windows, plain, atol=1.0)
    difference = max(np.abs(a - b).max() for (_, a), (_, b) in zip(windows, plain, strict=True))
    if KERNEL_AVAILABLE:  # the exact codes need the compiled kernel (scikit-learn >= 1.8)
        assert difference > 1e-3  # not nilearn's numbers
    iou = [_mean_iou(maps, sim, exact) for _, maps in windows]
    plain_iou = [_mean_iou(maps, sim, exact) for _, maps in plain]
    np.testing.assert_allclose(iou, plain_iou, atol=0.02)


# Measured: SDL windows mean IoU about 0.3 on both paths; CanICA on 40-scan windows recovers
# little of the planted networks (mean IoU near 0), on both paths too. Spread of SDL's
# (2026-12-04, benchmarks/threshold_spreads.py, seeds 0-9 x {as simulated, 2 inputs times
# 1 + 1e-6 N(0, 1)}): 0.35 to 0.39.
@pytest.mark.parametrize("cls", METHODS)
def test_fast_iou_against_planted_networks_matches_plain(cls, fitted, both_paths, sim):
    est = fitted[cls]
    _, plain, fast = both_paths[cls]
    plain_iou = np.array([_mean_iou(maps, sim, est) for _, maps in plain])
    fast_iou = np.array([_mean_iou(maps, sim, est) for _, maps in fast])
    assert abs(fast_iou.mean() - plain_iou.mean()) <= 0.01
    np.testing.assert_allclose(fast_iou, plain_iou, atol=0.02)
    if cls is SDLDecomposition:
        assert fast_iou.mean() >= 0.2


@pytest.mark.parametrize("cls", METHODS)
def test_window_api_uses_the_fast_path(cls, fitted, both_paths, sim, monkeypatch):
    est = fitted[cls]
    _, _, fast = both_paths[cls]

    def no_nilearn_estimator(*args, **kwargs):
        raise AssertionError("the fast path must not build a nilearn estimator")

    monkeypatch.setattr(est, "_make_estimator", no_nilearn_estimator)
    windows = _quiet(list, est.iter_window_maps(sim.func[0]))
    assert [start for start, _ in windows] == STARTS
    _assert_same_windows(windows, fast)


# ---------------------------------------------------------------------- parameters
def test_random_state_instances_are_drawn_from_as_by_nilearn(tiny_run):
    est, run = _fit_on_tiny_run(
        tiny_run, SDLDecomposition, n_components=3, alpha=1.0, window_length=20, window_stride=15
    )
    # The same generator state before both paths: every window draws from it in turn.
    est.set_params(random_state=np.random.RandomState(3))
    with threadpool_limits(limits=1, user_api="blas"):
        plain = _quiet(list, est._iter_run_maps_plain(run, [0, 15, 30]))
    est.set_params(random_state=np.random.RandomState(3))
    fast = _quiet(list, est._iter_run_maps(run, [0, 15, 30]))
    _assert_same_windows(fast, plain, atol=0.05)
    assert not np.array_equal(fast[0][1], fast[1][1])


def test_lars_dictionary_learning_as_nilearn(tiny_run):
    # method="lars" runs scikit-learn's dict_learning_online itself on the array path.
    est, run = _fit_on_tiny_run(
        tiny_run,
        SDLDecomposition,
        n_components=3,
        alpha=1.0,
        method="lars",
        random_state=0,
        window_length=20,
    )
    plain, fast = _both_paths(est, run, [0, 30])
    assert all(np.any(maps) for _, maps in fast)
    _assert_same_windows(fast, plain, atol=1e-3)


@pytest.mark.parametrize("dtype", [None, "float64", "auto"])
def test_dtype_as_nilearn(dtype, tiny_run):
    est, run = _fit_on_tiny_run(
        tiny_run,
        ICADecomposition,
        n_components=3,
        n_init=2,
        random_state=0,
        window_length=20,
        dtype=dtype,
    )
    plain, fast = _both_paths(est, run, [0, 30])
    _assert_same_windows(fast, plain, atol=1e-4)


def test_plain_and_fast_paths_warn_on_empty_windows(tiny_run):
    est, run = _fit_on_tiny_run(
        tiny_run, SDLDecomposition, n_components=3, alpha=1.0, window_alpha=1e6, window_length=20
    )
    for path in (est._iter_run_maps, est._iter_run_maps_plain):
        with pytest.warns(
            RuntimeWarning, match="no component found in the window starting at scan 5 "
        ):
            ((start, maps),) = list(path(run, [5]))
        assert start == 5
        assert maps.shape == (3, run.shape[1])
        assert not maps.any()


# ---------------------------------------------------------------------- worker processes
# SDL runs windows in worker processes, ICA its FastICA restarts (nilearn's use of n_jobs).
@pytest.mark.parametrize(("cls", "window_jobs"), [(SDLDecomposition, 2), (ICADecomposition, 1)])
def test_worker_processes_give_the_same_maps(cls, window_jobs, fitted, both_paths):
    run, _, in_turn = both_paths[cls]
    # An unfitted clone: the windows need only the parameters and the masked run.
    est = clone(fitted[cls]).set_params(n_jobs=2)
    assert est._n_window_jobs(len(STARTS)) == window_jobs
    in_workers = _quiet(list, est._iter_run_maps(run, STARTS))
    assert [start for start, _ in in_workers] == STARTS
    _assert_same_windows(in_workers, in_turn)


def test_worker_processes_keep_the_empty_window_warning(tiny_run):
    est, run = _fit_on_tiny_run(
        tiny_run,
        SDLDecomposition,
        n_components=3,
        alpha=1.0,
        window_alpha=1e6,
        window_length=20,
        n_jobs=2,
    )
    with pytest.warns(RuntimeWarning, match="no component found in the window") as record:
        windows = list(est._iter_run_maps(run, [0, 10]))
    assert [start for start, _ in windows] == [0, 10]
    messages = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert [m.split("starting at scan ")[1].split(" ")[0] for m in messages] == ["0", "10"]


def test_random_state_instance_keeps_windows_in_turn():
    est = SDLDecomposition(n_jobs=2, random_state=np.random.RandomState(0))
    assert est._n_window_jobs(5) == 1
    assert est.set_params(random_state=0)._n_window_jobs(5) == 2
    assert est._n_window_jobs(1) == 1
