import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from nilearn.image import load_img
from threadpoolctl import threadpool_limits

from nilearn_stca.evaluation import compare, read_results
from nilearn_stca.interfaces.workflows import init_comparison_wf

FAST_PARAMS = {
    "ica": {"n_init": 1},
    "stca": {"n_components": 4, "autoencoder_widths": (4, 4, 8, 8)},
}
SETTINGS = {
    "window_length": 20,
    "window_stride": 10,
    "sweep_stride": 20,  # windows at scans 0 and 20
    "template_threshold": 0.5,
}
IOU_COLUMNS = ["subject", "method", "window", "template", "component", "iou", "dice"]
METHODS = ("ica", "sdl", "stca")


@pytest.fixture(scope="module")
def files(sim, tmp_path_factory):
    """Two simulated runs, their planted maps (the templates) and mask, as NIfTI files."""
    folder = tmp_path_factory.mktemp("data")
    runs = [str(folder / f"sub-0{i + 1}_bold.nii.gz") for i in range(2)]
    for img, path in zip(sim.func, runs, strict=True):
        img.to_filename(path)
    sim.maps_img.to_filename(folder / "maps.nii.gz")
    sim.mask_img.to_filename(folder / "mask.nii.gz")
    return SimpleNamespace(
        runs=runs, templates=str(folder / "maps.nii.gz"), mask=str(folder / "mask.nii.gz")
    )


def _workflow(files, root, method_params=FAST_PARAMS, **kwargs):
    wf = init_comparison_wf(
        files.runs,
        templates=files.templates,
        method_params=method_params,
        out_dir=root / "out",
        base_dir=root / "work",
        **{**SETTINGS, **kwargs},
    )
    wf.config["execution"]["poll_sleep_duration"] = 0.2  # tiny nodes: poll often
    return wf


def _run(wf, plugin="MultiProc"):
    plugin_args = {"n_procs": 2} if plugin == "MultiProc" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's warnings on tiny data
        wf.run(plugin=plugin, plugin_args=plugin_args)


@contextmanager
def _one_thread():
    """As the workflow's nodes: one thread (more than the cores slows PyTorch down badly)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


def _sorted(table):
    table = table[IOU_COLUMNS].assign(window=table.window.astype(str))
    return table.sort_values(["subject", "method", "window", "template"], ignore_index=True)


def test_workflow_gives_the_results_and_folder_of_compare(files, tmp_path):
    _run(_workflow(files, tmp_path))
    with warnings.catch_warnings(), _one_thread():
        warnings.simplefilter("ignore")
        expected = compare(
            files.runs,
            templates=files.templates,
            method_params=FAST_PARAMS,
            out_dir=tmp_path / "compare",
            verbose=0,
            **SETTINGS,
        )
    out_dir = tmp_path / "out"
    results = read_results(out_dir / "results.csv")
    assert set(results.method) == set(METHODS) and set(results.window) == {"static", 0, 20}
    pd.testing.assert_frame_equal(_sorted(results), _sorted(expected))
    assert results.iou.max() > 0  # something was compared
    static = results.window == "static"
    assert (results.runtime[static] > 0).all() and results.runtime[~static].isna().all()

    maps = sorted(p.name for p in (out_dir / "maps").iterdir())
    assert maps == [
        f"sub-0{s}_method-{m}_desc-static_components.nii.gz" for s in (1, 2) for m in METHODS
    ]
    assert (out_dir / "dataset_description.json").read_bytes() == (
        tmp_path / "compare" / "dataset_description.json"
    ).read_bytes()
    tsv = pd.read_csv(out_dir / "results.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(tsv.columns) == list(results.columns)
    np.testing.assert_array_equal(tsv.iou.astype(float), results.iou)
    for name in ["templates.nii.gz"] + [f"maps/{m}" for m in maps]:
        np.testing.assert_array_equal(
            load_img(out_dir / name).get_fdata(),
            load_img(tmp_path / "compare" / name).get_fdata(),
        )
    for name in ("report.html", "table1_static.md", "table1_windows.csv"):
        assert (out_dir / name).is_file()
    settings = json.loads((out_dir / "comparison.json").read_text())
    assert settings["engine"] == "nipype" and settings["subjects"] == ["sub-01", "sub-02"]
    assert settings["methods"]["stca"]["STCA"]["random_state"] == 0
    node = tmp_path / "work" / "comparison_wf" / "_subject_sub-01" / "stca"
    assert (node / "model.pkl").is_file() and (node / "fbns.nii.gz").is_file()  # all kept


def _node_files(root):
    """``{path: mtime}`` of every file in the nodes' folders (outputs and nipype results)."""
    work = root / "work" / "comparison_wf"
    return {
        str(path.relative_to(work)): path.stat().st_mtime_ns
        for path in work.rglob("*")
        if path.is_file() and path.parent != work
    }


def _in_node(files_by_path, node, name=None):
    """The files of ``node``'s folders (every subject's), or only those called ``name``."""
    return {
        path: mtime
        for path, mtime in files_by_path.items()
        if Path(path).parts[-2] == node and name in (None, Path(path).name)
    }


def test_rerun_after_a_crash_computes_only_the_unfinished_nodes(files, tmp_path):
    cheap = {"methods": ("ica", "sdl"), "windows": False}  # static maps only
    crashing = {**FAST_PARAMS, "sdl": {"window_alpha": -1.0}}  # SDL refuses it when fitting
    with pytest.raises(RuntimeError):
        _run(_workflow(files, tmp_path, crashing, **cheap))
    after_crash = _node_files(tmp_path)
    assert len(_in_node(after_crash, "ica", "components.nii.gz")) == 2
    assert len(_in_node(after_crash, "ica_iou", "iou.csv")) == 2
    assert not _in_node(after_crash, "sdl", "components.nii.gz")
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "work" / "crash").iterdir())  # crash files beside the work

    _run(_workflow(files, tmp_path, **cheap))  # fixed
    after_fix = _node_files(tmp_path)
    finished = {
        path: mtime
        for node in ("prepare", "ica", "ica_iou")
        for path, mtime in _in_node(after_crash, node).items()
    }
    assert len(finished) > 10
    assert {path: after_fix[path] for path in finished} == finished  # not recomputed
    assert len(_in_node(after_fix, "sdl", "components.nii.gz")) == 2
    results = read_results(tmp_path / "out" / "results.csv")
    assert list(results.method.unique()) == ["ica", "sdl"]

    out_files = {path: path.stat().st_mtime_ns for path in (tmp_path / "out").rglob("*")}
    _run(_workflow(files, tmp_path, **cheap), plugin="Linear")  # killed, then run again
    # Only the DataSink runs again (nipype always runs a sink); it copies nothing that changed.
    assert _without_sink(_node_files(tmp_path)) == _without_sink(after_fix)
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "out").rglob("*")} == out_files


def _without_sink(node_files):
    return {path: mtime for path, mtime in node_files.items() if not path.startswith("sink/")}


def test_nodes_take_one_thread_unless_told(files, tmp_path):
    wf = _workflow(files, tmp_path, {"stca": {"num_threads": 2, "n_epochs": 3}})
    assert wf.get_node("stca").inputs.num_threads == 2
    assert wf.get_node("stca").inputs.n_epochs == 3
    assert wf.get_node("stca").n_procs == 2
    assert wf.get_node("ica").n_procs == wf.get_node("sdl").n_procs == 1
    assert wf.get_node("ica").inputs.random_state == 0
    assert wf.get_node("sdl").inputs.fbn_threshold == 3.6


def test_confounds_and_mask_reach_every_node(files, tmp_path):
    confounds = [tmp_path / f"confounds_{i}.tsv" for i in range(2)]
    for path in confounds:
        path.write_text("a\n" + "\n".join(["0.0"] * 50) + "\n")
    wf = _workflow(files, tmp_path, confounds_files=confounds, mask_file=files.mask)
    run = wf.get_node("run")
    assert run.inputs.confounds_files == [str(p.resolve()) for p in confounds]
    assert wf.get_node("prepare").inputs.mask_file == files.mask
    for method in METHODS:
        links = wf._graph.get_edge_data(run, wf.get_node(method))["connect"]
        assert ("confounds_file", "confounds_files") in links


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ["pca"]}, r"Unknown method\(s\) \['pca'\]"),
        ({"method_params": {"sdl": {"window_length": 10}}}, "the workflow sets these"),
        ({"method_params": {"stca": {"threshold": 2.0}}}, r"sets \['threshold'\]"),
        ({"method_params": {"sdl": {"mask_strategy": "background"}}}, "does not take"),
        ({"method_params": {"gica": {}}}, "not among the methods"),
        ({"strategy": "greedy"}, "Unknown strategy"),
        ({"subjects": ["a", "a"]}, "subjects must be unique"),
        ({"confounds_files": ["missing.tsv"]}, "is not a file"),
    ],
)
def test_bad_arguments(files, kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        init_comparison_wf(files.runs, out_dir=tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
