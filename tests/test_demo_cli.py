import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nilearn.image import new_img_like

from nilearn_stca import __version__
from nilearn_stca.cli import demo, main
from nilearn_stca.cli.demo import DEMO_MARKER, run_demo
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation import read_results

TINY_SIMULATION = {"n_scans": 30, "resolution": 16, "networks": "procedural", "n_networks": 3}
TINY_STCA = {"n_components": 4, "autoencoder_widths": (4, 4, 8, 8)}
TINY_COMPARISON = {"window_length": 10, "window_stride": 5, "sweep_stride": 10}
FAST = ["--window-length", "10", "--window-stride", "5", "--quiet"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One tiny demo: its output folder (copied by tests that change it) and its table."""
    out = tmp_path_factory.mktemp("demo_run") / "demo"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = run_demo(out, TINY_SIMULATION, TINY_STCA, TINY_COMPARISON, verbose=0)
    return out, table


@pytest.fixture
def demo_output(demo_run):
    """The tiny demo's output folder, which tests copy before changing it."""
    return demo_run[0]


def test_run_demo_writes_every_output(demo_run):
    out, table = demo_run
    names = {p.name for p in out.iterdir()}
    assert {
        "results.csv",
        "report.html",
        "table1_static.md",
        "table1_windows.tex",
        "fig5_iou_over_windows.png",
        "matched_maps_stca.png",
        "planted_networks.nii.gz",
        "parameters.json",
    } <= names
    results = read_results(out / "results.csv")
    assert set(results.method) == {"ica", "sdl", "stca"}
    assert set(results.window) == {"static", 0, 10, 20}  # scored every 10 scans
    assert set(results.template) == {"network_1", "network_2", "network_3"}
    assert table == (out / "table1_static.md").read_text().strip()
    parameters = json.loads((out / "parameters.json").read_text())
    assert parameters["stca"]["learning_rate"] == 1e-3
    # Nothing is left beside the output folder.
    assert [p.name for p in out.parent.iterdir()] == ["demo"]


def test_cli_demo_too_short_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(tmp_path / "x"), "--n-scans", "20", "--quiet"])
    assert exit_info.value.code == 2
    assert "fewer than window_length=40" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------- demo output folder
@pytest.fixture
def tiny_demo(monkeypatch):
    """Make the command line's demo tiny."""
    for name, tiny in [
        ("DEMO_SIMULATION", TINY_SIMULATION),
        ("DEMO_STCA", TINY_STCA),
        ("DEMO_COMPARISON", TINY_COMPARISON),
    ]:
        monkeypatch.setattr(f"nilearn_stca.cli.demo.{name}", {**getattr(demo, name), **tiny})


def _contents(folder):
    return {
        path.relative_to(folder): path.read_bytes() if path.is_file() else None
        for path in folder.rglob("*")
    }


def test_demo_output_is_marked_with_what_the_demo_wrote(demo_output):
    marker = json.loads((demo_output / DEMO_MARKER).read_text())
    assert marker["version"] == __version__
    assert marker["written_by"] == "nilearn-stca demo"
    written = {
        p.relative_to(demo_output).as_posix() for p in demo_output.rglob("*") if p.is_file()
    }
    assert marker["files"] == sorted(written - {DEMO_MARKER})  # every file, recursively
    assert {"report.html", "results.csv", "cells/sub-01_stca.csv"} <= written
    assert "maps/sub-01_method-stca_desc-static_components.nii.gz" in written


def test_run_demo_refuses_a_folder_it_did_not_write(tmp_path, monkeypatch):
    def simulate(**kwargs):
        raise AssertionError("the folder must be refused before anything is computed")

    monkeypatch.setattr("nilearn_stca.cli.demo.simulate_dynamic_rsfmri", simulate)
    out = tmp_path / "results"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match=r"out_dir .*results: .* choose an empty or new folder"):
        run_demo(out)
    (out / DEMO_MARKER).write_text("not the demo's JSON")  # a damaged marker proves nothing
    with pytest.raises(ValueError, match="choose an empty or new folder"):
        run_demo(out)
    with pytest.raises(ValueError, match="thesis.tex: exists and is not a folder"):
        run_demo(out / "thesis.tex")
    assert _contents(tmp_path) == {
        Path("results"): None,
        Path("results/thesis.tex"): b"years of work",
        Path("results") / DEMO_MARKER: b"not the demo's JSON",
    }


def test_cli_demo_rerun_in_place_replaces_only_the_demos_files(
    demo_output, tiny_demo, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "demo"
    shutil.copytree(demo_output, out)
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "plot.png").write_bytes(b"mine too")
    (out / "results.csv").write_text("damaged")
    # An earlier version of the demo wrote a file this one does not.
    marker = json.loads((out / DEMO_MARKER).read_text())
    marker["files"].append("old_figure.png")
    (out / DEMO_MARKER).write_text(json.dumps(marker))
    (out / "old_figure.png").write_bytes(b"stale")
    monkeypatch.chdir(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["demo", "--out", ".", "--quiet"]) == 0
    capsys.readouterr()
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "mine" / "plot.png").read_bytes() == b"mine too"
    assert not (out / "old_figure.png").exists()
    pd.testing.assert_frame_equal(
        read_results(out / "results.csv").drop(columns="runtime"),
        read_results(demo_output / "results.csv").drop(columns="runtime"),
    )
    names = {p.name for p in out.iterdir()}
    assert names == {p.name for p in demo_output.iterdir()} | {"notes.txt", "mine"}
    assert json.loads((out / DEMO_MARKER).read_text())["files"] == marker["files"][:-1]
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temporary folder left


def test_run_demo_replaces_no_file_it_did_not_write(demo_output, tmp_path):
    out = tmp_path / "demo"
    shutil.copytree(demo_output, out)
    # The user wrote parameters.json: it is in no demo's list.
    marker = json.loads((out / DEMO_MARKER).read_text())
    marker["files"].remove("parameters.json")
    (out / DEMO_MARKER).write_text(json.dumps(marker))
    (out / "parameters.json").write_text("the user's")
    before = _contents(out)
    with warnings.catch_warnings(), pytest.raises(ValueError, match=r": parameters.json were"):
        warnings.simplefilter("ignore")
        run_demo(out, TINY_SIMULATION, TINY_STCA, TINY_COMPARISON, verbose=0)
    assert _contents(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_interrupted_demo_leaves_the_earlier_output(demo_output, tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("nilearn_stca.cli.demo.write_comparison_report", interrupt)
    out = tmp_path / "demo"
    shutil.copytree(demo_output, out)
    before = _contents(out)
    with warnings.catch_warnings(), pytest.raises(KeyboardInterrupt):
        warnings.simplefilter("ignore")
        run_demo(out, TINY_SIMULATION, TINY_STCA, TINY_COMPARISON, verbose=0)
    assert _contents(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_demo_output_folder_has_the_umask_permissions(tiny_demo, tmp_path, capsys):
    old_umask = os.umask(0o027)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(["demo", "--out", str(tmp_path / "demo"), "--quiet"]) == 0
    finally:
        os.umask(old_umask)
    capsys.readouterr()
    assert stat.S_IMODE((tmp_path / "demo").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "demo" / "cells").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "demo" / "report.html").stat().st_mode) == 0o640


# ---------------------------------------------------------------------- compare
@pytest.fixture(scope="module")
def fmriprep_dir(tmp_path_factory):
    """Two subjects laid out as fMRIPrep outputs, with a label atlas of the planted networks."""
    folder = tmp_path_factory.mktemp("derivatives")
    sim = simulate_dynamic_rsfmri(n_subjects=2, **TINY_SIMULATION, snr=3.0)
    rng = np.random.RandomState(0)
    funcs = []
    for subject, img in zip(["sub-01", "sub-02"], sim.func, strict=True):
        func = folder / f"{subject}_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
        img.to_filename(func)
        funcs.append(str(func))
        columns = {}
        for name in ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]:
            motion = rng.randn(30)
            derivative = np.r_[np.nan, np.diff(motion)]
            columns |= {
                name: motion,
                f"{name}_derivative1": derivative,
                f"{name}_power2": motion**2,
                f"{name}_derivative1_power2": derivative**2,
            }
        columns |= {"white_matter": rng.rand(30), "csf": rng.rand(30)}
        columns["cosine00"] = np.cos(np.arange(30) * np.pi / 30)
        stem = f"{subject}_task-rest_desc-confounds_timeseries"
        pd.DataFrame(columns).to_csv(folder / f"{stem}.tsv", sep="\t", index=False, na_rep="n/a")
        (folder / f"{stem}.json").write_text("{}")
    maps = sim.maps_img.get_fdata()
    labels = np.where(maps.max(axis=-1) >= 0.5, maps.argmax(axis=-1) + 1, 0)
    atlas = folder / "atlas.nii.gz"
    new_img_like(sim.mask_img, labels.astype(np.int16)).to_filename(atlas)
    mask = folder / "mask.nii.gz"
    sim.mask_img.to_filename(mask)
    return {"funcs": funcs, "atlas": str(atlas), "mask": str(mask), "folder": folder}


def test_cli_compare_with_fmriprep_confounds(fmriprep_dir, tmp_path, capsys):
    out = tmp_path / "comparison"
    argv = ["compare", *fmriprep_dir["funcs"], "--out", str(out), "--methods", "sdl", "stca"]
    argv += ["--templates", fmriprep_dir["atlas"], "--mask", fmriprep_dir["mask"]]
    argv += ["--confounds", "fmriprep", "--n-components", "4", "--sweep-stride", "10", *FAST]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| template" in printed and "label_1" in printed
    results = read_results(out / "results.csv")
    assert list(results.subject.unique()) == ["sub-01", "sub-02"]  # from the BIDS names
    assert set(results.method) == {"sdl", "stca"}
    assert set(results.window) == {"static", 0, 10, 20}
    assert set(results.template) == {"label_1", "label_2", "label_3"}
    settings = json.loads((out / "comparison.json").read_text())
    assert all(c is not None for c in settings["confounds"])
    assert (out / "report.html").stat().st_size > 10_000


def _cli_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    assert err.startswith("nilearn-stca: error: ")
    return err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--methods", "pca"], "invalid choice: 'pca'"),
        (["--preset", "smith"], "invalid choice: 'smith'"),
        (["--window-length", "0"], "must be >= 2 scans"),
        (["--confounds", "a.tsv"], "1 files for 2 FUNC"),
        (["--confounds", "a.tsv", "b.tsv"], "a.tsv: no such confounds file"),
        (["--mask", "no_mask.nii.gz"], "no_mask.nii.gz: no such file"),
        (["--window-length", "31"], "fewer than window_length=31"),
        (["--n-jobs", "0"], "must be >= 1, or -1 for all CPUs, got 0"),
    ],
)
def test_cli_compare_bad_options(fmriprep_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    err = _cli_error(["compare", *fmriprep_dir["funcs"], "--out", str(out), *extra], capsys)
    assert message in err
    assert not out.exists()


def test_cli_compare_bad_files(fmriprep_dir, tmp_path, capsys):
    out = tmp_path / "out"
    missing = str(tmp_path / "sub-09_bold.nii.gz")
    assert "sub-09_bold.nii.gz: no such file" in _cli_error(
        ["compare", missing, "--out", str(out)], capsys
    )
    assert "a 3D image" in _cli_error(["compare", fmriprep_dir["mask"], "--out", str(out)], capsys)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert "not a NIfTI image" in _cli_error(["compare", str(text), "--out", str(out)], capsys)
    assert "exists and is not a folder" in _cli_error(
        ["compare", fmriprep_dir["funcs"][0], "--out", str(text)], capsys
    )
    assert not out.exists()


def test_cli_compare_refuses_another_comparisons_folder(fmriprep_dir, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["compare", fmriprep_dir["funcs"][0], "--out", str(out), "--methods", "sdl"]
    base += ["--templates", fmriprep_dir["atlas"], "--mask", fmriprep_dir["mask"], "--no-windows"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*base, *FAST]) == 0
    capsys.readouterr()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    err = _cli_error([*base, *FAST, "--threshold", "2.5"], capsys)
    assert "holds a comparison with other settings" in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_cli_paper_preset_settings(fmriprep_dir):
    from nilearn_stca.cli import _compare_kwargs, build_parser

    func = fmriprep_dir["funcs"][0]
    args = build_parser().parse_args(["compare", func, "--out", "o", "--preset", "paper"])
    kwargs = _compare_kwargs(args)
    assert kwargs["window_length"] == 40 and kwargs["window_stride"] == 1
    assert kwargs["threshold"] == 3.6 and kwargs["templates"] == "smith2009"
    assert kwargs["method_params"]["stca"]["n_components"] == 64
    assert kwargs["mask_img"].shape == (50, 59, 48)  # nilearn's 4 mm MNI152 brain mask
    args = build_parser().parse_args(
        ["compare", func, "--out", "o", "--preset", "paper", "--window-length", "30"]
    )
    assert _compare_kwargs(args)["window_length"] == 30  # explicit options win
    args = build_parser().parse_args(["compare", func, "--out", "o"])
    assert "template_threshold" not in _compare_kwargs(args)  # compare's own default
    args = build_parser().parse_args(
        ["compare", func, "--out", "o", "--template-threshold", "0.5"]
    )
    assert _compare_kwargs(args)["template_threshold"] == 0.5


def test_cli_n_jobs_reaches_every_method(fmriprep_dir):
    from nilearn_stca.cli import _compare_kwargs, build_parser

    func = fmriprep_dir["funcs"][0]
    args = build_parser().parse_args(["compare", func, "--out", "o", "--n-jobs", "2"])
    params = _compare_kwargs(args)["method_params"]
    assert params["ica"]["n_jobs"] == params["sdl"]["n_jobs"] == params["stca"]["n_jobs"] == 2
    args = build_parser().parse_args(
        ["compare", func, "--out", "o", "--methods", "sdl", "stca", "--n-jobs", "-1"]
    )
    params = _compare_kwargs(args)["method_params"]
    assert params.keys() == {"sdl", "stca"}
    assert params["sdl"]["n_jobs"] == params["stca"]["n_jobs"] == -1


def test_cli_compare_nipype_gives_the_same_table(fmriprep_dir, tmp_path, capsys):
    base = ["compare", *fmriprep_dir["funcs"], "--methods", "sdl", "--sweep-stride", "10"]
    base += ["--templates", fmriprep_dir["atlas"], "--mask", fmriprep_dir["mask"]]
    base += ["--confounds", "fmriprep", *FAST]
    tables = []
    for extra in ([], ["--nipype", "--n-procs", "2"]):
        out = tmp_path / ("nipype" if extra else "python")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main([*base, "--out", str(out), *extra]) == 0
        assert (out / "report.html").is_file()
        tables.append(read_results(out / "results.csv").drop(columns="runtime"))
    capsys.readouterr()
    assert (tmp_path / "nipype" / "work" / "inputs" / "confounds_run-02.tsv").is_file()
    order = ["subject", "method", "window", "template"]
    python, nipype = (t.sort_values(order, key=lambda c: c.astype(str)) for t in tables)
    pd.testing.assert_frame_equal(python.reset_index(drop=True), nipype.reset_index(drop=True))
