"""Bad inputs give one clear error that names the parameter, before anything is computed or
written: every case through the Python API of each method, the CLI and the nipype nodes."""

import json
import os
import warnings

import nibabel as nib
import numpy as np
import pytest
from conftest import TINY_STCA

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
    with pytest.raises(ValueError, match="different grids.*target_affine and target_shape"):
        ESTIMATORS[method](mask=shifted).fit(img)
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


def _empty(mask):
    return nib.Nifti1Image(np.zeros(mask.shape, np.uint8), mask.affine)


#: case -> (what replaces the run and the parameters, the error's text). Each case gets one
#: line that names the parameter (or the input) and the fix.
API_CASES = {
    "NaN voxel": (lambda img, mask: (_with_value(img, np.nan), {}), "contains NaN or infinite"),
    "Inf voxel": (lambda img, mask: (_with_value(img, np.inf), {}), "contains NaN or infinite"),
    "runs on two grids": (
        lambda img, mask: ([img, _cropped(img)], {"mask": None}),
        r"imgs\[1\] is on another grid than imgs\[0\] \(its shape differs.*resample_to_img",
    ),
    "runs with two affines": (
        lambda img, mask: ([img, _rescaled(img)], {"mask": None}),
        r"imgs\[1\] is on another grid .*its affine differs.*set target_affine and target_shape",
    ),
    "empty mask": (
        lambda img, mask: (img, {"mask": _empty(mask)}),
        "mask is empty .*give a brain mask, or mask=None",
    ),
    "empty computed mask": (
        lambda img, mask: (img, {"mask": None}),  # the EPI strategy finds no brain in noise
        "mask computed from imgs with mask_strategy='epi' is empty: give a brain mask",
    ),
    "window longer than the run": (
        lambda img, mask: (img, {"window_length": 60}),
        "imgs has 50 scans, fewer than window_length=60: lower window_length",
    ),
    "window_length 0": (
        lambda img, mask: (img, {"window_length": 0}),
        r"window_length == 0, must be >= [12]",
    ),
    "window_length negative": (
        lambda img, mask: (img, {"window_length": -3}),
        r"window_length == .+, must be >= 2",
    ),
    "window_stride 0": (
        lambda img, mask: (img, {"window_stride": 0}),
        r"window_stride == 0, must be >= [12]",
    ),
    "n_components 0": (
        lambda img, mask: (img, {"n_components": 0}),
        r"n_components == 0, must be >= [12]",
    ),
}


@pytest.mark.parametrize("case", API_CASES)
@pytest.mark.parametrize("method", ESTIMATORS)
def test_bad_input_table_python_api(method, case, tiny_run):
    img, mask = tiny_run
    make, message = API_CASES[case]
    data, params = make(img, mask)
    est = ESTIMATORS[method](**{"mask": mask, **params})
    with pytest.raises(ValueError, match=message) as caught:
        _quiet(est.fit, data)
    assert "\n" not in str(caught.value)
    assert not hasattr(est, "components_")


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
