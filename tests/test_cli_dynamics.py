"""``nilearn-stca states`` and ``nilearn-stca stability``: outputs, and one-line exit-2 errors."""

import json
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from nilearn_stca import write_window_sweep
from nilearn_stca.baselines import SDLDecomposition
from nilearn_stca.cli import main
from nilearn_stca.states import write_states


@pytest.fixture(scope="module")
def inputs(sim, tmp_path_factory):
    """The two-subject simulation as files, and SDL's sweeps of it (4 windows each)."""
    root = tmp_path_factory.mktemp("cli_dynamics")
    files = {"mask": root / "mask.nii.gz", "funcs": []}
    sim.mask_img.to_filename(files["mask"])
    # The planted networks as a label atlas: each voxel to its strongest network.
    maps = sim.maps_img.get_fdata()
    labels = np.where(maps.max(axis=3) > 0.5, maps.argmax(axis=3) + 1, 0).astype(np.int16)
    files["atlas"] = str(root / "atlas.nii.gz")
    nib.Nifti1Image(labels, sim.maps_img.affine).to_filename(files["atlas"])
    files["sweeps"] = []
    for i, img in enumerate(sim.func, start=1):
        func = root / f"sub-0{i}_bold.nii.gz"
        img.to_filename(func)
        files["funcs"].append(str(func))
        sdl = SDLDecomposition(
            n_components=3,
            window_length=20,
            window_stride=10,
            mask=sim.mask_img,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nilearn's warnings on small data
            write_window_sweep(sdl, img, root / f"sub-0{i}", fit=True)
        files["sweeps"].append(str(root / f"sub-0{i}"))
    return files


def _run(argv, capsys):
    assert main(argv) == 0
    return capsys.readouterr().out


def test_states_writes_every_file(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["states", *inputs["sweeps"], "--out", str(out), "--n-states", "2", "--t-r", "2"]
    printed = _run([*argv, "--quiet"], capsys)
    assert f"states: {out}" in printed
    sequences = pd.read_csv(out / "states_sequences.tsv", sep="\t")
    assert list(sequences.method.unique()) == ["sdl"]
    assert sequences.groupby("subject").size().to_dict() == {"sub-01": 4, "sub-02": 4}
    metrics = pd.read_csv(out / "states_metrics.tsv", sep="\t")
    np.testing.assert_allclose(metrics.groupby("subject").temporal_fraction.sum(), 1)
    # Dwell times in seconds: windows every 10 scans of 2 s.
    np.testing.assert_allclose(metrics.persistence_seconds, metrics.persistence * 20)
    assert (out / "method-sdl_desc-states_maps.nii.gz").is_file()
    record = json.loads((out / "states.json").read_text())
    assert record["settings"]["t_r"] == 2.0 and record["methods"]["sdl"]["n_states"] == 2


def test_states_of_the_templates_presence(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["states", *inputs["sweeps"], "--out", str(out), "--features", "presence"]
    _run([*argv, "--templates", inputs["atlas"], "--n-states", "2", "--quiet"], capsys)
    profiles = pd.read_csv(out / "method-sdl_state_profiles.tsv", sep="\t", index_col="state")
    assert profiles.shape == (2, 3) and list(profiles.columns) == ["label_1", "label_2", "label_3"]


def test_states_of_template_maps_at_their_threshold(inputs, sim, tmp_path, capsys):
    """The planted maps (scaled to 1) as 4D templates, at --template-threshold 0.5."""
    maps_file = tmp_path / "maps.nii.gz"
    sim.maps_img.to_filename(maps_file)
    argv = ["states", *inputs["sweeps"], "--features", "presence", "--n-states", "2"]
    argv += ["--templates", str(maps_file), "--template-threshold", "0.5", "--quiet"]
    _run([*argv, "--out", str(tmp_path / "maps")], capsys)
    expected = write_states(
        inputs["sweeps"],
        tmp_path / "direct",
        n_states=2,
        features="presence",
        templates=str(maps_file),
        template_threshold=0.5,
    )
    written = pd.read_csv(tmp_path / "maps" / "states_sequences.tsv", sep="\t")
    pd.testing.assert_frame_equal(written, expected.sequences, check_dtype=False)
    record = json.loads((tmp_path / "maps" / "states.json").read_text())
    assert record["settings"]["template_threshold"] == 0.5


@pytest.mark.filterwarnings("ignore:FastICA did not converge")
def test_stability_writes_every_file(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["stability", inputs["funcs"][0], "--method", "ica", "--out", str(out)]
    argv += ["--n-runs", "2", "--n-components", "3", "--mask", str(inputs["mask"]), "--quiet"]
    printed = _run(argv, capsys)
    assert "stability_index" in printed and f"stability: {out}" in printed
    table = pd.read_csv(out / "stability.tsv", sep="\t")
    assert len(table) == 3 and table.n_maps.sum() == 6
    record = json.loads((out / "stability.json").read_text())
    assert record["settings"]["method"] == "ica" and len(record["random_states"]) == 2
    # Other settings are refused before anything is fitted.
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--seed", "1"])
    assert exit_info.value.code == 2
    assert "holds another run" in capsys.readouterr().err


def _not_a_sweep(inputs, tmp_path):
    (tmp_path / "empty").mkdir()
    argv = ["states", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]
    return argv, "not a window sweep folder (no sweep.json)"


def _missing_sweep(inputs, tmp_path):
    argv = ["states", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]
    return argv, "nowhere: no such folder"


def _damaged_sweep(inputs, tmp_path):
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "sweep.json").write_text("{")
    argv = ["states", str(tmp_path / "damaged"), "--out", str(tmp_path / "out")]
    return argv, "sweep.json is not valid JSON"


def _one_state(inputs, tmp_path):
    argv = ["states", *inputs["sweeps"], "--out", str(tmp_path / "out"), "--n-states", "1"]
    return argv, "argument --n-states: must be >= 2, got 1"


def _more_states_than_windows(inputs, tmp_path):
    argv = ["states", *inputs["sweeps"], "--out", str(tmp_path / "out"), "--n-states", "9"]
    return argv, "n_states must be an integer from 2 to the number of windows (8)"


def _templates_without_presence(inputs, tmp_path):
    argv = ["states", *inputs["sweeps"], "--out", str(tmp_path / "out")]
    return [*argv, "--templates", inputs["atlas"]], "--templates is used by --features presence"


def _template_threshold_without_presence(inputs, tmp_path):
    argv = ["states", *inputs["sweeps"], "--out", str(tmp_path / "out")]
    return [*argv, "--template-threshold", "0.5"], "--template-threshold is used by --features"


def _negative_t_r(inputs, tmp_path):
    argv = ["states", *inputs["sweeps"], "--out", str(tmp_path / "out"), "--t-r", "-2"]
    return argv, "argument --t-r: must be a positive number, got -2"


def _sweep_twice(inputs, tmp_path):
    argv = ["states", inputs["sweeps"][0], inputs["sweeps"][0], "--out", str(tmp_path / "out")]
    return argv, "given more than once"


def _one_run(inputs, tmp_path):
    argv = ["stability", inputs["funcs"][0], "--method", "ica", "--out", str(tmp_path / "out")]
    return [*argv, "--n-runs", "1"], "argument --n-runs: must be >= 2, got 1"


def _unknown_method(inputs, tmp_path):
    argv = ["stability", inputs["funcs"][0], "--method", "pca", "--out", str(tmp_path / "out")]
    return argv, "argument --method: invalid choice: 'pca'"


def _missing_func(inputs, tmp_path):
    missing = str(tmp_path / "sub-09_bold.nii.gz")
    argv = ["stability", missing, "--method", "ica", "--out", str(tmp_path / "out")]
    return argv, "sub-09_bold.nii.gz: no such file"


def _mask_as_func(inputs, tmp_path):
    argv = ["stability", str(inputs["mask"]), "--method", "sdl", "--out", str(tmp_path / "out")]
    return argv, "a 3D image"


def _out_under_a_file(inputs, tmp_path):
    (tmp_path / "file").write_text("")
    argv = ["states", *inputs["sweeps"], "--out", str(tmp_path / "file" / "out")]
    return argv, "is a file, not a folder"


CASES = [
    _not_a_sweep,
    _missing_sweep,
    _damaged_sweep,
    _one_state,
    _more_states_than_windows,
    _templates_without_presence,
    _template_threshold_without_presence,
    _negative_t_r,
    _sweep_twice,
    _one_run,
    _unknown_method,
    _missing_func,
    _mask_as_func,
    _out_under_a_file,
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__.strip("_"))
def test_errors_are_one_line_exit_2_and_write_nothing(case, inputs, tmp_path, capsys):
    argv, message = case(inputs, tmp_path)
    before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")}
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nilearn-stca: error: "), err
    assert message in err and "Traceback" not in err
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")} == before
