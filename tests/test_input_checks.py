"""Bad inputs give one clear error that names the parameter, before anything is computed or
written: every case through the Python API of each method, the CLI and the nipype nodes."""

import json
import os
import warnings

import nibabel as nib
import numpy as np
import pytest
from conftest import TINY_STCA
from nilearn.image import index_img
from nilearn.maskers import NiftiMasker

from nilearn_stca import STCADecomposition, load_window_sweep, write_window_sweep
from nilearn_stca.baselines import ICADecomposition, SDLDecomposition
from nilearn_stca.cli import main
from nilearn_stca.interfaces import ICA, SDL, STCA

ESTIMATORS = {
    "stca": lambda **kw: STCADecomposition(**{**TINY_STCA, **kw}),
    "ica": lambda **kw: ICADecomposition(**{"n_components": 3, "n_init": 1, **kw}),
    "sdl": lambda **kw: SDLDecomposition(**{"n_components": 3, **kw}),
}
THRESHOLD_PARAM = {"stca": "fbn_threshold", "ica": "fbn_threshold", "sdl": "fbn_threshold"}
NODES = {"stca": STCA, "ica": ICA, "sdl": SDL}

BAD_THRESHOLDS = [
    (float("nan"), ValueError, "must be a finite z value >= 0"),
    (-5.0, ValueError, "must be a finite z value >= 0"),
    (float("inf"), ValueError, "must be a finite z value >= 0"),
    ("abc", TypeError, "must be a number"),
    (True, TypeError, "must be a number"),
]


def _zero_run(tiny_run):
    img, mask = tiny_run
    return nib.Nifti1Image(np.zeros(img.shape, np.float32), img.affine), mask


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def _cli(argv, capsys):
    """Run the CLI; return (exit status, stderr lines)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return exit_info.value.code, err


def _run_node(node, folder):
    folder.mkdir()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return _quiet(node.run)
    finally:
        os.chdir(cwd)


# ---------------------------------------------------------------------- Python API
@pytest.mark.parametrize("method", ESTIMATORS)
@pytest.mark.parametrize(("threshold", "error", "message"), BAD_THRESHOLDS)
def test_bad_threshold_is_refused_before_fitting(method, threshold, error, message, tiny_run):
    img, mask = tiny_run
    name = THRESHOLD_PARAM[method]
    est = ESTIMATORS[method](mask=mask, **{name: threshold})
    with pytest.raises(error, match=f"{name} {message}"):
        est.fit(img)
    assert not hasattr(est, "masker_")  # refused before masking, let alone training


@pytest.mark.parametrize("method", ESTIMATORS)
def test_all_zero_run_is_refused(method, tiny_run):
    img, mask = _zero_run(tiny_run)
    est = ESTIMATORS[method](mask=mask)
    with pytest.raises(ValueError, match="imgs is all zeros"):
        est.fit(img)
    assert not hasattr(est, "masker_")


@pytest.mark.parametrize("method", ESTIMATORS)
def test_mask_on_another_grid_is_refused_by_every_method(method, tiny_run):
    img, mask = tiny_run
    shifted = nib.Nifti1Image(np.asanyarray(mask.dataobj), mask.affine @ np.diag([2, 2, 2, 1]))
    est = ESTIMATORS[method](mask=shifted)
    with pytest.raises(ValueError) as caught:
        est.fit(img)
    assert str(caught.value) == (
        "mask and imgs are on different grids (the mask's affine differs: voxels of 8 x 8 x 8 "
        "mm, not 4 x 4 x 4 mm): resample one onto the other (nilearn.image.resample_to_img), "
        "or set target_affine and target_shape to resample both."
    )
    assert not hasattr(est, "masker_")
    # With a target grid both are resampled onto it, by every method alike.
    est = _quiet(
        ESTIMATORS[method](mask=shifted, target_affine=img.affine, target_shape=img.shape[:3]).fit,
        img,
    )
    assert est.components_img_.shape[:3] == img.shape[:3]


def _with_value(img, value):
    data = np.asanyarray(img.dataobj).copy()
    data[5, 5, 5, 3] = value
    return nib.Nifti1Image(data, img.affine)


def _cropped(img):
    return nib.Nifti1Image(np.asanyarray(img.dataobj)[:10], img.affine)


def _rescaled(img):
    return nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine @ np.diag([0.75] * 3 + [1]))


def _moved(img):
    affine = img.affine.copy()
    affine[0, 3] = 8.0
    return nib.Nifti1Image(np.asanyarray(img.dataobj), affine)


def _empty(mask):
    return nib.Nifti1Image(np.zeros(mask.shape, np.uint8), mask.affine)


def _stacked(*masks):
    """A 4D image of the given 3D masks, one volume each."""
    return nib.Nifti1Image(
        np.stack([np.asanyarray(m.dataobj) for m in masks], axis=-1), masks[0].affine
    )


def _cube(mask, size):
    """A cube mask of ``size**3`` voxels on the grid of ``mask``."""
    data = np.zeros(mask.shape, np.uint8)
    data[4 : 4 + size, 4 : 4 + size, 4 : 4 + size] = 1
    return nib.Nifti1Image(data, mask.affine)


def _masker_of(mask_img):
    return NiftiMasker(mask_img=mask_img)


#: case -> (what replaces the run and the parameters, the error's type, its text). Each case
#: gets one line that names the parameter (or the input) and the fix, before any fitting.
API_CASES = {
    "NaN voxel": (
        lambda img, mask: (_with_value(img, np.nan), {}),
        ValueError,
        "contains NaN or infinite",
    ),
    "Inf voxel": (
        lambda img, mask: (_with_value(img, np.inf), {}),
        ValueError,
        "contains NaN or infinite",
    ),
    "3D run": (
        lambda img, mask: (index_img(img, 0), {}),
        ValueError,
        r"^imgs is a 3D image with shape \(12, 12, 12\): a 4D fMRI run \(x, y, z, time\) is "
        "needed",
    ),
    "runs on two grids": (
        lambda img, mask: ([img, _cropped(img)], {"mask": None}),
        ValueError,
        r"^imgs\[1\] is on another grid than imgs\[0\] \(its shape differs: 10 x 12 x 12 "
        r"voxels, not 12 x 12 x 12\): resample the runs onto one grid "
        r"\(nilearn.image.resample_to_img\)",
    ),
    "runs with two voxel sizes": (
        lambda img, mask: ([img, _rescaled(img)], {"mask": None}),
        ValueError,
        r"^imgs\[1\] is on another grid than imgs\[0\] \(its affine differs: voxels of "
        r"3 x 3 x 3 mm, not 4 x 4 x 4 mm\): .*set target_affine and target_shape",
    ),
    "runs with two origins": (
        lambda img, mask: ([img, _moved(img)], {"mask": None}),
        ValueError,
        r"\(its affine differs: origin at \(8, 0, 0\) mm, not \(0, 0, 0\) mm\)",
    ),
    "empty mask": (
        lambda img, mask: (img, {"mask": _empty(mask)}),
        ValueError,
        "mask is empty .*give a brain mask, or mask=None",
    ),
    "empty computed mask": (
        lambda img, mask: (img, {"mask": None}),  # the EPI strategy finds no brain in noise
        ValueError,
        "mask computed from imgs with mask_strategy='epi' is empty: give a brain mask",
    ),
    "4D mask of two equal volumes": (
        lambda img, mask: (img, {"mask": _stacked(mask, mask)}),
        ValueError,
        r"^mask is a 4D image of shape \(12, 12, 12, 2\): give a 3D brain mask, e.g. one of "
        r"its volumes \(nilearn.image.index_img\(mask, 0\)\) or their union "
        r"\(nilearn.image.math_img\('np.any\(img, axis=-1\)', img=mask\)\)\.$",
    ),
    "4D mask of two different volumes": (
        lambda img, mask: (img, {"mask": _stacked(mask, _cube(mask, 3))}),
        ValueError,
        r"^mask is a 4D image of shape \(12, 12, 12, 2\): give a 3D brain mask",
    ),
    "masker holding a 4D mask": (
        lambda img, mask: (img, {"mask": _masker_of(_stacked(mask, mask))}),
        ValueError,
        r"^mask.mask_img is a 4D image of shape \(12, 12, 12, 2\): give a 3D brain mask",
    ),
    "window longer than the run": (
        lambda img, mask: (img, {"window_length": 60}),
        ValueError,
        r"^imgs has 50 scans, fewer than window_length=60: lower window_length or give a "
        r"longer run \(at least 60 scans\)\.$",
    ),
    "window_length 0": (
        lambda img, mask: (img, {"window_length": 0}),
        ValueError,
        r"window_length == 0, must be >= [12]",
    ),
    "window_length negative": (
        lambda img, mask: (img, {"window_length": -3}),
        ValueError,
        r"window_length == .+, must be >= 2",
    ),
    "window_stride 0": (
        lambda img, mask: (img, {"window_stride": 0}),
        ValueError,
        r"window_stride == 0, must be >= [12]",
    ),
    "n_components 0": (
        lambda img, mask: (img, {"n_components": 0}),
        ValueError,
        r"n_components == 0, must be >= [12]",
    ),
    "n_components above the voxels of the mask": (
        lambda img, mask: (img, {"mask": _cube(mask, 2), "n_components": 9}),
        ValueError,
        r"^n_components=9 is more than the 8 voxels of the mask: .*there cannot be more "
        r"independent .*than voxels.*Give n_components <= 8\.$",
    ),
    "low_pass without t_r": (
        lambda img, mask: (img, {"low_pass": 0.1}),
        ValueError,
        "^low_pass filters the runs, which needs t_r: give t_r",
    ),
    "high_pass above low_pass": (
        lambda img, mask: (img, {"low_pass": 0.05, "high_pass": 0.1, "t_r": 2.0}),
        ValueError,
        "^high_pass=0.1 must be below low_pass=0.05",
    ),
    "target_shape without target_affine": (
        lambda img, mask: (img, {"target_shape": (12, 12, 12)}),
        ValueError,
        "^target_shape needs a 4x4 target_affine",
    ),
    "target_shape of 2 sizes": (
        lambda img, mask: (img, {"target_shape": (12, 12), "target_affine": img.affine}),
        ValueError,
        r"^target_shape must be None or 3 integers >= 1, got \(12, 12\)",
    ),
    "standardize unknown": (
        lambda img, mask: (img, {"standardize": "zscore"}),
        ValueError,
        "^standardize must be one of 'zscore_sample', 'psc', True, False, None, got 'zscore'",
    ),
    "mask_strategy unknown": (
        lambda img, mask: (img, {"mask": None, "mask_strategy": "brain"}),
        ValueError,
        "^mask_strategy must be one of 'background', 'epi', .*got 'brain'",
    ),
    "smoothing_fwhm negative": (
        lambda img, mask: (img, {"smoothing_fwhm": -1.0}),
        ValueError,
        r"^smoothing_fwhm == -1.0, must be >= 0",
    ),
    "smoothing_fwhm nan": (
        lambda img, mask: (img, {"smoothing_fwhm": float("nan")}),
        ValueError,
        r"^smoothing_fwhm == nan, must be finite",
    ),
    "t_r 0": (lambda img, mask: (img, {"t_r": 0.0}), ValueError, r"^t_r == 0.0, must be > 0"),
    "memory_level negative": (
        lambda img, mask: (img, {"memory_level": -1}),
        ValueError,
        r"^memory_level == -1, must be >= 0",
    ),
    "verbose negative": (
        lambda img, mask: (img, {"verbose": -1}),
        ValueError,
        r"^verbose == -1, must be >= 0",
    ),
    "n_jobs 0": (
        lambda img, mask: (img, {"n_jobs": 0}),
        ValueError,
        "^n_jobs must be None, a positive integer or -1",
    ),
    "random_state negative": (
        lambda img, mask: (img, {"random_state": -1}),
        ValueError,
        r"^random_state must be None, an integer from 0 to 2\*\*32 - 1",
    ),
    "detrend not a bool": (
        lambda img, mask: (img, {"detrend": "yes"}),
        TypeError,
        "^detrend must be True or False, got 'yes'",
    ),
    "mask_args not a dict": (
        lambda img, mask: (img, {"mask_args": [1]}),
        TypeError,
        r"^mask_args must be None or a dict, got \[1\]",
    ),
    "memory a number": (
        lambda img, mask: (img, {"memory": 3}),
        TypeError,
        r"^memory must be None, a folder \(str or Path\) or a joblib.Memory, got 3",
    ),
}


@pytest.mark.parametrize("case", API_CASES)
@pytest.mark.parametrize("method", ESTIMATORS)
def test_bad_input_table_python_api(method, case, tiny_run):
    img, mask = tiny_run
    make, error, message = API_CASES[case]
    data, params = make(img, mask)
    est = ESTIMATORS[method](**{"mask": mask, **params})
    with pytest.raises(error, match=message) as caught:
        _quiet(est.fit, data)
    assert type(caught.value) is error
    assert "\n" not in str(caught.value)
    assert "np.float64" not in str(caught.value)
    if method != "stca":
        assert "STCA" not in str(caught.value)  # the baselines' errors name no other method
    assert not hasattr(est, "masker_")  # refused before masking, let alone fitting


#: case -> (method, parameters, error type, text): the parameters of one method, passed on
#: to nilearn (the baselines) or its own (STCA), checked before any work.
PARAM_CASES = {
    "ICA: CanICA's threshold nan": (
        "ica",
        {"threshold": float("nan")},
        ValueError,
        r"^threshold == nan, must be finite",
    ),
    "ICA: CanICA's threshold an integer": (
        "ica",
        {"threshold": 2},
        TypeError,
        r"^threshold must be None, 'auto' or a float \(CanICA refuses integers\), got 2: "
        r"give 2.0",
    ),
    "ICA: CanICA's threshold a word": (
        "ica",
        {"threshold": "high"},
        TypeError,
        "^threshold must be None, 'auto' or a number, got 'high'",
    ),
    "ICA: n_init 0": ("ica", {"n_init": 0}, ValueError, r"^n_init == 0, must be >= 1"),
    "ICA: do_cca a word": (
        "ica",
        {"do_cca": "yes"},
        TypeError,
        "^do_cca must be True or False, got 'yes'",
    ),
    "ICA: dtype unknown": (
        "ica",
        {"dtype": "float99"},
        TypeError,
        "^dtype must be None, 'auto' or a numpy dtype such as 'float32', got 'float99'",
    ),
    # The probe: 61 maps from 60 scans gave 60, silently.
    "ICA: n_components above the run's time components": (
        "ica",
        {"n_components": 49},
        ValueError,
        r"^n_components=49 is more than the 48 time components of the run \(50 scans\): "
        r"CanICA reduces each run to n_components time components, .*numerical noise\. "
        r"Give n_components <= 48\.$",
    ),
    "ICA: n_components above the time components, standardized only": (
        "ica",
        {"n_components": 50, "detrend": False},
        ValueError,
        r"^n_components=50 is more than the 49 time components of the run",
    ),
    "ICA: n_components 100000": (
        "ica",
        {"n_components": 100000},
        ValueError,
        r"^n_components=100000 is more than the 48 time components of the run",
    ),
    "ICA: window_length 2 detrended": (
        "ica",
        {"window_length": 2},
        ValueError,
        r"^window_length=2 leaves no time component in a window .*give window_length >= 3",
    ),
    "SDL: batch_size 0": ("sdl", {"batch_size": 0}, ValueError, r"^batch_size == 0, must be >= 1"),
    "SDL: n_epochs 0": ("sdl", {"n_epochs": 0}, ValueError, r"^n_epochs == 0, must be >= 1"),
    "SDL: n_epochs 0.5": (
        "sdl",
        {"n_epochs": 0.5},
        TypeError,
        "^n_epochs must be an instance of int",
    ),
    "SDL: reduction_ratio 0": (
        "sdl",
        {"reduction_ratio": 0.0},
        ValueError,
        r"^reduction_ratio == 0.0, must be > 0",
    ),
    "SDL: reduction_ratio 1.5": (
        "sdl",
        {"reduction_ratio": 1.5},
        ValueError,
        r"^reduction_ratio == 1.5, must be <= 1",
    ),
    "SDL: method unknown": (
        "sdl",
        {"method": "omp"},
        ValueError,
        "^method must be one of 'cd', 'lars', got 'omp'",
    ),
    "SDL: alpha nan": (
        "sdl",
        {"alpha": float("nan")},
        ValueError,
        "^alpha == nan, must be finite",
    ),
    "SDL: window_alpha inf": (
        "sdl",
        {"window_alpha": float("inf")},
        ValueError,
        "^window_alpha == inf, must be finite",
    ),
    "SDL: window_coding unknown": (
        "sdl",
        {"window_coding": "fast"},
        ValueError,
        "^window_coding must be one of 'nilearn', 'exact', got 'fast'. 'nilearn' gives",
    ),
    "SDL: dict_init of 2 maps for 3": (
        "sdl",
        {"dict_init": "two maps"},
        ValueError,
        r"^dict_init has 2 maps \(shape \(12, 12, 12, 2\)\) for n_components=3: give one",
    ),
    # The probe: 2000 maps on 640 voxels gave 1432 all-zero maps.
    "SDL: n_components 2000": (
        "sdl",
        {"n_components": 2000},
        ValueError,
        r"^n_components=2000 is more than the 810 voxels of the mask: the maps are the "
        r"dictionary's codes of the voxels.*Give n_components <= 810\.$",
    ),
    "STCA: learning_rate nan": (
        "stca",
        {"learning_rate": float("nan")},
        ValueError,
        "^learning_rate == nan, must be finite",
    ),
    "STCA: learning_rate a word": (
        "stca",
        {"learning_rate": "fast"},
        TypeError,
        "^learning_rate must be a number, got 'fast'",
    ),
    "STCA: static_maps unknown": (
        "stca",
        {"static_maps": "median"},
        ValueError,
        "^static_maps must be one of 'clustered', 'mean', got 'median'",
    ),
    "STCA: batch_size 0": (
        "stca",
        {"batch_size": 0},
        ValueError,
        r"^batch_size == 0, must be >= 1",
    ),
    # The probe: 100000 on 640 voxels took all 24 GB of the machine.
    "STCA: n_components 100000": (
        "stca",
        {"n_components": 100000},
        ValueError,
        r"^n_components=100000 is more than the 810 voxels of the mask: each of STCA's "
        r"channels gives one attention map over the voxels of the mask.*<= 810\.$",
    ),
    "STCA: fbn_threshold and its deprecated alias differ": (
        "stca",
        {"fbn_threshold": 3.0, "threshold": 2.0},
        ValueError,
        r"^fbn_threshold=3.0 and threshold=2.0 are both given: threshold is the deprecated "
        r"name of fbn_threshold; give fbn_threshold alone\.$",
    ),
}


@pytest.mark.parametrize("case", PARAM_CASES)
def test_bad_parameter_table(case, tiny_run):
    img, mask = tiny_run
    method, params, error, message = PARAM_CASES[case]
    if params.get("dict_init") == "two maps":
        params = {**params, "dict_init": _stacked(mask, mask)}
    est = ESTIMATORS[method](mask=mask, **params)
    with pytest.raises(error, match=message) as caught:
        _quiet(est.fit, img)
    assert type(caught.value) is error
    assert "\n" not in str(caught.value)
    assert not hasattr(est, "masker_")
    assert not hasattr(est, "network_")  # STCA: refused before the network is built


def test_deprecated_threshold_alone_or_equal_warns_and_is_used(tiny_run):
    img, mask = tiny_run
    for params in ({"threshold": 2.0}, {"threshold": 2.0, "fbn_threshold": 2.0}):
        est = STCADecomposition(**{**TINY_STCA, **params}, mask=mask)
        with pytest.warns(FutureWarning, match="use fbn_threshold=2.0"):
            est._check_params()
        assert est._fbn_threshold() == 2.0


def test_ica_windows_give_at_most_their_time_components(tiny_run):
    # A window of 10 detrended scans holds 8 time components: ICA asked for 12 maps gives 8
    # per window (the 2 more nilearn's CanICA would give are noise) and 4 all-zero maps, and
    # says so by name; the static fit on 50 scans gives all 12.
    img, mask = tiny_run
    est = ICADecomposition(
        n_components=12, window_length=10, window_stride=20, n_init=1, mask=mask, random_state=0
    )
    with pytest.warns(RuntimeWarning) as caught:
        est.fit(img)
    messages = [str(w.message) for w in caught if "ICADecomposition" in str(w.message)]
    assert messages == [
        "ICADecomposition: n_components=12 is more than the 8 time components of a window of "
        "window_length=10 scans: each window gives 8 maps, and its other 4 are all zeros. "
        "Give n_components <= 8, or a longer window_length, for n_components maps per window."
    ]
    assert np.all(np.any(est.components_ != 0, axis=1))
    windows = dict(est.iter_window_maps(img))
    assert sorted(windows) == [0, 20, 40]
    for maps in windows.values():
        assert maps.shape == (12, 810)
        np.testing.assert_array_equal(np.any(maps != 0, axis=1), [True] * 8 + [False] * 4)
    # The window image through nilearn's CanICA (n_components=8) gives the same maps.
    run = est._masked_run(img)
    for start, maps in est._iter_run_maps_plain(run, sorted(windows)):
        np.testing.assert_allclose(maps, windows[start], atol=1e-4)


def test_sdl_warns_by_name_when_some_static_maps_are_all_zeros(tiny_run):
    # 60 atoms at alpha 5 for the 64 voxels of a cube: the dictionary leaves 24 to 33 unused
    # (measured 2026-12-04 over seeds 0-2 x {as is, inputs times 1 + 1e-6 N(0, 1)}, with
    # scikit-learn 1.9.1 and 1.5.2). 40 atoms at alpha 2, used before, left 0 to 2 unused.
    img, mask = tiny_run
    est = SDLDecomposition(
        n_components=60, alpha=5.0, mask=_cube(mask, 4), smoothing_fwhm=None, random_state=0
    )
    with pytest.warns(RuntimeWarning, match="SDLDecomposition: ") as caught:
        est.fit(img)
    n_zero = int(np.sum(~np.any(est.components_ != 0, axis=1)))
    assert 10 <= n_zero < 60
    assert (
        f"SDLDecomposition: {n_zero} of the n_components=60 static maps are all zeros. The "
        "dictionary learning left those atoms unused (no voxel's code uses them at this "
        "alpha): lower n_components, or alpha."
    ) in [str(w.message) for w in caught]


def test_window_maps_of_a_short_run_ask_for_a_longer_run(fitted, tiny_run):
    # window_length is the fitted model's: a longer run is the only fix.
    img, _ = tiny_run
    short = nib.Nifti1Image(np.asanyarray(img.dataobj)[..., :5], img.affine)
    with pytest.raises(ValueError) as caught:
        next(fitted.iter_window_maps(short))
    assert str(caught.value) == (
        "img has 5 scans, fewer than window_length=10: give a longer run (at least 10 scans)."
    )


def test_grid_difference_in_plain_numbers(tiny_run):
    from nilearn_stca._utils.checks import grid_difference

    img, _ = tiny_run
    assert grid_difference(img, img) is None
    flipped = nib.Nifti1Image(np.asanyarray(img.dataobj), np.diag([-4.0, 4.0, 4.0, 1.0]))
    assert grid_difference(flipped, img) == (
        "affine differs: voxels of the same size in another orientation"
    )
    both = _rescaled(_cropped(img))
    assert grid_difference(both, img) == (
        "shape and affine differ: 10 x 12 x 12 voxels, not 12 x 12 x 12; voxels of 3 x 3 x 3 "
        "mm, not 4 x 4 x 4 mm"
    )


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("cuda", "CUDA is not available here; use device='auto'"),
        ("gpu", "Unknown device='gpu': use 'auto', 'cpu' or 'cuda'"),
    ],
)
def test_bad_device_is_refused(device, message, tiny_run, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    img, mask = tiny_run
    est = STCADecomposition(**{**TINY_STCA, "device": device}, mask=mask)
    with pytest.raises(ValueError, match=message):
        est.fit(img)
    assert not hasattr(est, "masker_")


@pytest.mark.parametrize("method", ESTIMATORS)
@pytest.mark.parametrize(
    "call",
    ["transform", "score", "iter_window_maps", "fbns_img", "inverse_transform"],
)
def test_use_before_fit_says_not_fitted(method, call, tiny_run):
    from sklearn.exceptions import NotFittedError

    img, _ = tiny_run
    est = ESTIMATORS[method]()
    argument = [np.zeros((50, 3))] if call == "inverse_transform" else img
    with pytest.raises(NotFittedError, match="not fitted yet. Call 'fit'"):
        result = getattr(est, call)(argument) if call != "fbns_img" else est.fbns_img()
        next(iter(result))


@pytest.mark.parametrize("method", ESTIMATORS)
def test_integer_data_gives_the_maps_of_the_same_values_as_floats(method, tiny_run):
    # Scanners write int16: accepted, and the maps are those of the same values as floats.
    img, mask = tiny_run
    values = np.round((np.asanyarray(img.dataobj) - 100) * 50 + 1000)
    as_int = nib.Nifti1Image(values.astype(np.int16), img.affine)
    as_float = nib.Nifti1Image(values.astype(np.float32), img.affine)
    maps = [
        _quiet(ESTIMATORS[method](mask=mask, random_state=0).fit, run).components_
        for run in (as_int, as_float)
    ]
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5)


@pytest.mark.parametrize(
    "widths", [(4.7, 4, 8, 8), (4, 4, 8), (4, 4, 8, 0), "4488", (True, 4, 8, 8)]
)
def test_autoencoder_widths_must_be_four_positive_integers(widths, tiny_run):
    img, mask = tiny_run
    with pytest.raises((TypeError, ValueError), match="autoencoder_widths"):
        STCADecomposition(**{**TINY_STCA, "autoencoder_widths": widths}, mask=mask).fit(img)


def test_diverging_training_names_the_step_and_the_learning_rate(tiny_run):
    img, mask = tiny_run
    est = STCADecomposition(**{**TINY_STCA, "learning_rate": 1e12, "n_epochs": 5}, mask=mask)
    with pytest.raises(ValueError, match=r"diverged: the loss became (nan|inf) at step \d+ .*"):
        est.fit(img)
    with pytest.raises(ValueError, match="Lower learning_rate"):
        est.fit(img)


# ---------------------------------------------------------------------- CLI
@pytest.fixture
def run_files(tiny_run, tmp_path):
    img, mask = tiny_run
    paths = {"func": tmp_path / "sub-01_bold.nii.gz", "mask": tmp_path / "mask.nii.gz"}
    img.to_filename(paths["func"])
    mask.to_filename(paths["mask"])
    zero, _ = _zero_run(tiny_run)
    paths["zero"] = tmp_path / "sub-02_bold.nii.gz"
    zero.to_filename(paths["zero"])
    return paths


def _write(img, folder, name):
    path = folder / name
    img.to_filename(path)
    return str(path)


#: case -> (argv change, error text). ``func``/``mask`` in the change are replaced by an
#: image written for the case; other entries are appended to the command line.
CLI_CASES = {
    "threshold nan": ({"extra": ["--threshold", "nan"]}, "threshold must be a finite z value"),
    "threshold negative": ({"extra": ["--threshold", "-5"]}, "threshold must be a finite z"),
    "all-zero run": ({"func": lambda run: (_zero_run(run)[0],)}, "is all zeros"),
    "NaN voxel": ({"func": lambda run: (_with_value(run[0], np.nan),)}, "NaN or infinite"),
    "empty mask": ({"mask": lambda run: _empty(run[1])}, "mask_img is empty"),
    "runs on two grids": (
        {"func": lambda run: (run[0], _cropped(run[0])), "no_mask": True},
        "imgs[1] is on another grid than imgs[0]",
    ),
    "window longer than the run": (
        {"extra": ["--window-length", "60"]},
        "fewer than window_length=60",
    ),
    "window length 1": ({"extra": ["--window-length", "1"]}, "--window-length: must be >= 2"),
    "window stride 0": ({"extra": ["--window-stride", "0"]}, "--window-stride: must be >= 1"),
    "sweep stride 0": ({"extra": ["--sweep-stride", "0"]}, "--sweep-stride: must be >= 1"),
    "n components 0": ({"extra": ["--n-components", "0"]}, "--n-components: must be >= 1"),
    "device cuda without CUDA": (
        {"extra": ["--methods", "stca", "--device", "cuda"]},
        "CUDA is not available here",
    ),
    "unknown device": ({"extra": ["--methods", "stca", "--device", "gpu"]}, "Unknown device"),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_refuses_bad_input_in_one_line(case, run_files, tiny_run, tmp_path, capsys):
    import torch

    change, message = CLI_CASES[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    funcs = [str(run_files["func"])]
    if "func" in change:
        imgs = change["func"](tiny_run)
        funcs = [_write(img, inputs, f"sub-0{i + 1}_bold.nii.gz") for i, img in enumerate(imgs)]
    mask = str(run_files["mask"])
    if "mask" in change:
        mask = _write(change["mask"](tiny_run), inputs, "empty_mask.nii.gz")
    out = tmp_path / "out"
    argv = ["compare", *funcs, "--out", str(out), "--methods", "sdl", "--window-length", "10"]
    argv += ["--templates", str(run_files["mask"])]
    if not change.get("no_mask"):
        argv += ["--mask", mask]
    cuda = torch.cuda.is_available
    torch.cuda.is_available = lambda: False
    try:
        status, err = _cli(argv + change.get("extra", []), capsys)
    finally:
        torch.cuda.is_available = cuda
    assert status == 2
    assert len(err) == 1 and err[0].startswith("nilearn-stca: error:"), err
    assert message in err[0]
    assert not out.exists()


# ---------------------------------------------------------------------- nipype nodes
@pytest.mark.parametrize("method", NODES)
def test_nodes_refuse_a_bad_threshold_and_write_no_maps(method, run_files, tmp_path):
    name = THRESHOLD_PARAM[method]
    node = NODES[method](
        in_files=[str(run_files["func"])],
        mask_file=str(run_files["mask"]),
        window_length=10,
        window_stride=5,
        n_components=3,
        **{name: -5.0},
    )
    with pytest.raises(ValueError, match=f"{name} must be a finite z value"):
        _run_node(node, tmp_path / "node")
    assert not list((tmp_path / "node").glob("*.nii.gz"))


@pytest.mark.parametrize("method", NODES)
def test_nodes_refuse_an_all_zero_run(method, run_files, tmp_path):
    node = NODES[method](
        in_files=[str(run_files["zero"])],
        mask_file=str(run_files["mask"]),
        window_length=10,
        window_stride=5,
        n_components=3,
    )
    with pytest.raises(ValueError, match="all zeros"):
        _run_node(node, tmp_path / "node")
    assert not list((tmp_path / "node").glob("*.nii.gz"))


NODE_CASES = {
    "NaN voxel": ({"func": lambda run: _with_value(run[0], np.nan)}, "NaN or infinite"),
    "empty mask": ({"mask": lambda run: _empty(run[1])}, "mask is empty"),
    "window longer than the run": ({"window_length": 60}, "fewer than window_length=60"),
    "window_length 1": ({"window_length": 1}, r"window_length == .+, must be >= 2"),
    "window_stride 0": ({"window_stride": 0}, r"window_stride == .+, must be >= 1"),
    "n_components 0": ({"n_components": 0}, r"n_components == .+, must be >= 1"),
    "4D mask": (
        {"mask": lambda run: _stacked(run[1], run[1])},
        r"mask is a 4D image of shape \(12, 12, 12, 2\): give a 3D brain mask",
    ),
    "n_components above what the data give": (
        {"n_components": 5000},
        r"^n_components=5000 is more than the \d+ (voxels of the mask|time components)",
    ),
}


@pytest.mark.parametrize("case", NODE_CASES)
@pytest.mark.parametrize("method", NODES)
def test_bad_input_table_nipype_nodes(method, case, run_files, tiny_run, tmp_path):
    change, message = dict(NODE_CASES[case][0]), NODE_CASES[case][1]
    inputs = {"window_length": 10, "window_stride": 5, "n_components": 3}
    func, mask = str(run_files["func"]), str(run_files["mask"])
    if "func" in change:
        func = _write(change.pop("func")(tiny_run), tmp_path, "bad_bold.nii.gz")
    if "mask" in change:
        mask = _write(change.pop("mask")(tiny_run), tmp_path, "bad_mask.nii.gz")
    node = NODES[method](in_files=[func], mask_file=mask, **{**inputs, **change})
    with pytest.raises(ValueError, match=message):
        _run_node(node, tmp_path / "node")
    assert not [p for p in (tmp_path / "node").rglob("*") if p.suffix in (".gz", ".pkl", ".csv")]


@pytest.mark.parametrize("method", NODES)
def test_nodes_offer_only_the_standardize_values_nilearn_takes(method):
    from traits.api import TraitError

    with pytest.raises(TraitError, match="'standardize' trait"):
        NODES[method](standardize="zscore")  # nilearn 0.14 refuses it
    assert NODES[method](standardize="psc").inputs.standardize == "psc"


#: case -> (method, the run's scans, extra arguments, error text) of ``nilearn-stca
#: stability``, which has no window option: the method's window_length (40) is fixed.
STABILITY_CLI_CASES = {
    "run shorter than the method's window": (
        "ica",
        30,
        [],
        "short_bold.nii.gz has 30 scans, fewer than window_length=40: give a longer run (at "
        "least 40 scans).",
    ),
    "n components above the voxels of the mask": (
        "sdl",
        50,
        ["--n-components", "9"],
        "n_components=9 is more than the 8 voxels of the mask",
    ),
}


@pytest.mark.parametrize("case", STABILITY_CLI_CASES)
def test_stability_cli_refuses_bad_input_in_one_line(case, tiny_run, tmp_path, capsys):
    img, mask = tiny_run
    method, n_scans, extra, message = STABILITY_CLI_CASES[case]
    func = _write(
        nib.Nifti1Image(np.asanyarray(img.dataobj)[..., :n_scans], img.affine),
        tmp_path,
        "short_bold.nii.gz",
    )
    small_mask = _write(_cube(mask, 2), tmp_path, "mask.nii.gz")
    out = tmp_path / "out"
    argv = ["stability", func, "--method", method, "--out", str(out), "--n-runs", "2"]
    status, err = _cli([*argv, "--mask", small_mask, "--quiet", *extra], capsys)
    assert status == 2
    assert len(err) == 1 and err[0].startswith("nilearn-stca: error:"), err
    assert message in err[0]
    assert "lower window_length" not in err[0]  # there is no such option here
    assert not out.exists()


def test_compare_refuses_sweep_stride_0_before_writing(tiny_run, tmp_path):
    from nilearn_stca.evaluation import compare

    img, mask = tiny_run
    with pytest.raises(ValueError, match=r"sweep_stride == .+, must be >= 1"):
        compare(
            img,
            methods=("sdl",),
            templates=mask,
            mask_img=mask,
            window_length=10,
            sweep_stride=0,
            out_dir=tmp_path / "out",
        )
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- window sweeps
@pytest.fixture(scope="module")
def sweep_dir(fitted, tiny_run, tmp_path_factory):
    img, _ = tiny_run
    path = tmp_path_factory.mktemp("sweeps") / "sweep"
    write_window_sweep(fitted, img, path)
    return path


def _edited_copy(sweep_dir, tmp_path, edit):
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in sweep_dir.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    metadata = json.loads((copy / "sweep.json").read_text())
    edit(metadata, copy)
    (copy / "sweep.json").write_text(json.dumps(metadata))
    return copy


def _set_file(metadata, copy, name):
    metadata["maps"]["file"] = name


SWEEP_EDITS = {
    "too few starts": (lambda m, c: m.update(starts=m["starts"][:2]), "2 window starts"),
    "too many starts": (lambda m, c: m.update(starts=m["starts"] + [99]), "window starts"),
    "file outside": (lambda m, c: _set_file(m, c, "../outside.npy"), "not a file name inside"),
    "absolute file": (lambda m, c: _set_file(m, c, str(c / "maps.npy")), "not a file name"),
    "other shape": (lambda m, c: m["maps"].update(shape=[1, 2, 3]), "sweep.json records"),
    "missing key": (lambda m, c: m.pop("starts"), "incomplete or damaged"),
    "mask outside": (lambda m, c: m.update(mask="../mask.nii.gz"), "not a file name inside"),
}


@pytest.mark.parametrize("case", SWEEP_EDITS)
def test_load_window_sweep_refuses_an_inconsistent_folder(case, sweep_dir, tmp_path):
    edit, message = SWEEP_EDITS[case]
    (tmp_path / "outside.npy").write_bytes((sweep_dir / "maps.npy").read_bytes())
    (tmp_path / "mask.nii.gz").write_bytes((sweep_dir / "mask.nii.gz").read_bytes())
    copy = _edited_copy(sweep_dir, tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        load_window_sweep(copy)


def test_load_window_sweep_accepts_its_own_folder(sweep_dir, fitted, tiny_run):
    sweep = load_window_sweep(sweep_dir)
    assert len(list(sweep)) == len(sweep.starts) == 9


@pytest.mark.parametrize("command", ["compare", "demo"])
def test_cli_out_that_is_an_existing_file_is_refused_and_kept(
    command, run_files, tmp_path, capsys
):
    out = tmp_path / "results.txt"
    out.write_text("my thesis")
    argv = [command, "--out", str(out)]
    if command == "compare":
        argv = ["compare", str(run_files["func"]), "--out", str(out), "--methods", "sdl"]
    status, err = _cli(argv, capsys)
    assert status == 2 and len(err) == 1
    assert "--out" in err[0] and "exists and is not a folder" in err[0]
    assert out.read_text() == "my thesis"
