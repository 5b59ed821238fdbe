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
    "ica": lambda **kw: ICADecomposition(n_components=3, n_init=1, **kw),
    "sdl": lambda **kw: SDLDecomposition(n_components=3, **kw),
}
THRESHOLD_PARAM = {"stca": "threshold", "ica": "fbn_threshold", "sdl": "fbn_threshold"}
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


CLI_CASES = {
    "threshold nan": (["--threshold", "nan"], "threshold must be a finite z value"),
    "threshold negative": (["--threshold", "-5"], "threshold must be a finite z value"),
    "all-zero run": (["--zero-run"], "is all zeros"),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_refuses_bad_input_in_one_line(case, run_files, tmp_path, capsys):
    extra, message = CLI_CASES[case]
    func = run_files["func"]
    if extra == ["--zero-run"]:
        func, extra = run_files["zero"], []
    out = tmp_path / "out"
    argv = ["compare", str(func), "--out", str(out), "--mask", str(run_files["mask"])]
    argv += ["--methods", "sdl", "--templates", str(run_files["mask"]), "--window-length", "10"]
    status, err = _cli(argv + extra, capsys)
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
