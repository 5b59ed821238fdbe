import json
import warnings
from html import unescape

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.masking import apply_mask

from nilearn_stca._utils.checks import repetition_time
from nilearn_stca.baselines import SDLDecomposition
from nilearn_stca.evaluation import (
    compare,
    format_table,
    paper_comparison,
    read_results,
    score_maps,
    table1,
    write_comparison_report,
)
from nilearn_stca.evaluation import comparison as compare_module

FAST_PARAMS = {
    "ica": {"n_init": 1},
    "stca": {"n_components": 4, "autoencoder_widths": (4, 4, 8, 8)},
}
WINDOW = {"window_length": 20, "window_stride": 10}
STARTS = [0, 10, 20, 30]  # 50 scans, windows of 20 every 10 scans


def _compare(sim, **kwargs):
    params = {
        "templates": sim.maps_img,
        "template_threshold": 0.5,
        "template_names": sim.network_names,
        "mask_img": sim.mask_img,
        "method_params": FAST_PARAMS,
        "verbose": 0,
        **WINDOW,
        **kwargs,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's warnings on tiny data
        return compare(sim.func, **params)


@pytest.fixture(scope="module")
def compared(sim, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("compare")
    return _compare(sim, out_dir=out_dir), out_dir


def test_one_row_per_subject_method_window_template(compared, sim):
    results, _ = compared
    assert list(results.columns) == [
        "subject",
        "sub",
        "ses",
        "run",
        "method",
        "window",
        "template",
        "component",
        "iou",
        "dice",
        "runtime",
    ]
    expected = pd.MultiIndex.from_product(
        [["sub-01", "sub-02"], ["ica", "sdl", "stca"], ["static", *STARTS], sim.network_names]
    )
    keys = pd.MultiIndex.from_frame(results[["subject", "method", "window", "template"]])
    assert len(results) == len(expected)
    assert set(keys) == set(expected)
    assert results.iou.between(0, 1).all()
    assert (results.dice >= results.iou - 1e-12).all()
    assert (results.runtime > 0).all()
    assert results.loc[results.method == "stca", "component"].between(-1, 3).all()


def test_rows_equal_a_direct_fit_and_score(compared, sim):
    results, _ = compared
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SDLDecomposition(mask=sim.mask_img, random_state=0, **WINDOW).fit(sim.func[1])
        windows = dict(est.iter_window_maps(sim.func[1]))
    truth = apply_mask(sim.maps_img, sim.mask_img) >= 0.5
    rows = results[(results.subject == "sub-02") & (results.method == "sdl")]
    for window, maps in [("static", est.components_), *windows.items()]:
        expected = score_maps(maps, truth, sim.network_names, threshold=3.6)
        got = rows[rows.window == window]
        np.testing.assert_array_equal(got.component, expected.component)
        np.testing.assert_allclose(got.iou, expected.iou)
        np.testing.assert_allclose(got.dice, expected.dice)


def test_out_dir_holds_cells_maps_and_results(compared):
    results, out_dir = compared
    assert sorted(p.name for p in (out_dir / "cells").iterdir()) == [
        f"sub-0{s}_{m}.csv" for s in (1, 2) for m in ("ica", "sdl", "stca")
    ]
    assert sorted(p.name for p in (out_dir / "maps").iterdir()) == [
        f"sub-0{s}_method-{m}_desc-static_components.nii.gz"
        for s in (1, 2)
        for m in ("ica", "sdl", "stca")
    ]
    pd.testing.assert_frame_equal(read_results(out_dir / "results.csv"), results)
    tsv = pd.read_csv(out_dir / "results.tsv", sep="\t", dtype=str, keep_default_na=False)
    csv = pd.read_csv(out_dir / "results.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(tsv, csv)
    description = json.loads((out_dir / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "nilearn-stca"


def test_rerun_reuses_every_finished_cell(compared, sim, monkeypatch):
    results, out_dir = compared
    monkeypatch.setattr(compare_module, "_run_cell", _fail_if_called)
    again = _compare(sim, out_dir=out_dir)
    pd.testing.assert_frame_equal(again, results)


def _fail_if_called(*args, **kwargs):
    raise AssertionError("a finished cell was recomputed")


def test_each_run_is_read_once_for_all_its_methods(compared, sim, tmp_path, monkeypatch):
    results, _ = compared
    reads = []
    load_once = compare_module._load_once
    monkeypatch.setattr(
        compare_module, "_load_once", lambda img: reads.append(img) or load_once(img)
    )
    again = _compare(sim)
    assert len(reads) == len(sim.func)  # 2 subjects x 3 methods, 2 reads
    pd.testing.assert_frame_equal(again.drop(columns="runtime"), results.drop(columns="runtime"))


def _plan(sim, methods, **kwargs):
    from nilearn_stca.evaluation.comparison_plan import plan_comparison

    params = {
        "confounds": None,
        "mask_img": sim.mask_img,
        "subjects": None,
        "n_components": 3,
        "method_params": FAST_PARAMS,
        "window_length": 20,
        "window_stride": 10,
        "sweep_stride": None,
        "threshold": 3.6,
        "template_threshold": 0.5,
        "template_names": sim.network_names,
        "strategy": "max",
        "random_state": 0,
        "verbose": 0,
        **kwargs,
    }
    return plan_comparison(sim.func, methods, sim.maps_img, True, **params)


def test_plan_counts_the_rows_of_every_cell_before_running(sim):
    plan = _plan(sim, ("ica", "sdl"))
    assert plan.subjects == ["sub-01", "sub-02"] and plan.n_cells == 4
    assert plan.rows_per_cell == {"sub-01": 3 * (1 + 4), "sub-02": 3 * (1 + 4)}
    assert plan.scoring.template_masks.shape == (3, int(sim.mask_img.get_fdata().sum()))
    assert set(plan.estimators) == {"ica", "sdl"}
    assert all(est.window_length == 20 for est in plan.estimators.values())


def test_verbose_reaches_only_the_methods_that_draw_their_own_progress(sim):
    from nilearn_stca import STCADecomposition
    from nilearn_stca.baselines import ICADecomposition

    class TunedSTCA(STCADecomposition):
        pass

    named = _plan(sim, ("ica", "sdl", "stca"), verbose=2)
    assert {name: est.verbose for name, est in named.estimators.items()} == {
        "ica": 1,
        "sdl": 1,
        "stca": 2,
    }
    # Estimators under names of one's own are known by their class, subclasses included.
    given = {"mine": TunedSTCA(**FAST_PARAMS["stca"]), "canica": ICADecomposition(n_init=1)}
    plan = _plan(sim, given, method_params=None, verbose=1)
    assert {name: est.verbose for name, est in plan.estimators.items()} == {
        "mine": 1,
        "canica": 0,
    }


def test_resume_after_interruption_recomputes_only_unfinished_cells(
    compared, sim, tmp_path, monkeypatch
):
    results, _ = compared
    out_dir = tmp_path / "interrupted"
    original = SDLDecomposition._iter_run_maps
    seen = []

    def interrupted(self, run, starts):
        for start, maps in original(self, run, starts):
            seen.append(start)
            if len(seen) == 2 + len(STARTS):  # second subject's SDL, second window
                raise KeyboardInterrupt
            yield start, maps

    monkeypatch.setattr(SDLDecomposition, "_iter_run_maps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _compare(sim, out_dir=out_dir)
    monkeypatch.undo()
    cells = sorted(p.name for p in (out_dir / "cells").iterdir())
    assert cells == [
        "sub-01_ica.csv",
        "sub-01_sdl.csv",
        "sub-01_stca.csv",
        "sub-02_ica.csv",
        "sub-02_sdl.csv.partial",
    ]
    partial = pd.read_csv(out_dir / "cells" / "sub-02_sdl.csv.partial")
    # Rows are written as they come; the static rows come once the sweep has ended.
    assert list(partial.window) == [0] * 3
    assert not (out_dir / "results.csv").exists()

    ran = []
    run_cell = compare_module._run_cell
    monkeypatch.setattr(
        compare_module,
        "_run_cell",
        lambda plan, subject, method, *rest: (
            ran.append((subject, method)) or run_cell(plan, subject, method, *rest)
        ),
    )
    resumed = _compare(sim, out_dir=out_dir)
    assert ran == [("sub-02", "sdl"), ("sub-02", "stca")]
    assert not list((out_dir / "cells").glob("*.partial"))
    # Same numbers as the uninterrupted run (runtimes aside).
    columns = ["subject", "method", "window", "template", "component", "iou", "dice"]
    pd.testing.assert_frame_equal(resumed[columns], results[columns])


def test_other_settings_in_the_same_out_dir_are_refused(compared, sim):
    _, out_dir = compared
    before = sorted(p.name for p in out_dir.rglob("*"))
    with pytest.raises(ValueError, match="holds a comparison with other settings.*threshold"):
        _compare(sim, out_dir=out_dir, threshold=3.0)
    assert sorted(p.name for p in out_dir.rglob("*")) == before


def test_static_only_and_hungarian(sim):
    results = _compare(sim, methods=["sdl"], windows=False, strategy="hungarian")
    assert set(results.window) == {"static"}
    assert len(results) == 2 * 3
    for _, rows in results.groupby("subject"):
        matched = rows.component[rows.component >= 0]
        assert matched.is_unique


def test_sweep_stride_scores_fewer_windows(sim):
    results = _compare(sim, methods=["sdl"], sweep_stride=20)
    assert set(results.window) == {"static", 0, 20}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ["pca"]}, r"Unknown method\(s\) \['pca'\]"),
        ({"method_params": {"sdl": {"window_length": 10}}}, "compare sets these"),
        ({"method_params": {"ica": {"fbn_threshold": 2.0}}}, r"sets \['fbn_threshold'\]"),
        ({"method_params": {"stca": {"threshold": 2.0}}}, r"sets \['threshold'\]"),
        ({"method_params": {"gica": {}}}, "not among the methods"),
        ({"strategy": "greedy"}, "Unknown strategy"),
        ({"subjects": ["a", "a"]}, "subjects must be unique"),
        ({"subjects": ["a/b", "c"]}, "letters, digits"),
        ({"method_params": {"stca": {"n_epochs": 0}}}, r"n_epochs == .+, must be >= 1"),
        ({"method_params": {"stca": {"device": "tpu"}}}, "Unknown device='tpu'"),
        ({"window_stride": 0}, r"window_stride == .+, must be >= 1"),
    ],
)
def test_bad_arguments(sim, kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        _compare(sim, out_dir=tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_three_d_image_is_refused(sim, tmp_path):
    with pytest.raises(ValueError, match=r"imgs\[0\] is a 3D image"):
        compare([sim.mask_img], templates=sim.maps_img, out_dir=tmp_path / "o", verbose=0)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("names", "labels", "entities"),
    [
        (["sub-A1", "sub-B2"], ["sub-A1", "sub-B2"], [("A1", None, None), ("B2", None, None)]),
        (  # two runs of one subject: the run tells them apart, and is kept as a column
            ["sub-A1_ses-1_run-1", "sub-A1_ses-1_run-2"],
            ["sub-A1_run-1", "sub-A1_run-2"],
            [("A1", "1", "1"), ("A1", "1", "2")],
        ),
    ],
)
def test_subject_labels_and_columns_from_bids_names(sim, tmp_path, names, labels, entities):
    paths = []
    for name, img in zip(names, sim.func, strict=True):
        path = tmp_path / f"{name}_task-rest_bold.nii.gz"
        img.to_filename(path)
        paths.append(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = compare(
            paths,
            methods=["sdl"],
            templates=sim.maps_img,
            template_threshold=0.5,
            mask_img=sim.mask_img,
            windows=False,
            verbose=0,
            **WINDOW,
        )
    assert list(results.subject.unique()) == labels
    found = results.drop_duplicates("subject")[["sub", "ses", "run"]]
    assert [tuple(row) for row in found.itertuples(index=False)] == entities


def test_bids_names_alike_are_refused_and_subjects_name_them():
    from nilearn_stca.evaluation.bids import subject_labels

    paths = ["/a/sub-01_task-rest_bold.nii.gz", "/b/sub-01_task-rest_bold.nii.gz"]
    with pytest.raises(ValueError, match=r"have the same BIDS entities \(sub-01\).*--subjects"):
        subject_labels(paths)
    assert subject_labels(paths, subjects=["siteA", "siteB"]) == ["siteA", "siteB"]
    assert subject_labels(["/d/a.nii.gz", "/d/b.nii.gz"]) == ["sub-01", "sub-02"]


def test_tables_and_report(compared):
    results, out_dir = compared
    static = table1(results)
    sdl = results[(results.method == "sdl") & (results.window == "static")]
    expected = sdl.groupby("template", sort=False).iou
    np.testing.assert_allclose(static[("SDL", "mean")].iloc[:-1], expected.mean())
    np.testing.assert_allclose(static[("SDL", "sd")].iloc[:-1], expected.std())
    per_subject = sdl.groupby("subject").iou.mean()
    assert static.loc["mean", ("SDL", "mean")] == pytest.approx(per_subject.mean())
    assert static.loc["mean", ("SDL", "sd")] == pytest.approx(per_subject.std())
    windows = table1(results, reading="windows")
    window_rows = results[(results.method == "ica") & (results.window != "static")]
    assert windows.loc["mean", ("ICA", "mean")] == pytest.approx(window_rows.iou.mean())

    markdown = format_table(static)
    first = static.iloc[0]
    assert f"{first[('ICA', 'mean')]:.2f} ± {first[('ICA', 'sd')]:.2f}" in markdown
    assert r"$\pm$" in format_table(static, "latex")
    with pytest.raises(ValueError, match="Unknown fmt"):
        format_table(static, "xlsx")

    paper = paper_comparison(results)
    assert list(paper.index) == ["ICA", "SDL", "STCA"]
    assert list(paper.paper) == ["0.25", "0.30", "0.41"]

    files = write_comparison_report(out_dir, parameters={"note": "test"}, paper=True)
    html = unescape(files["report"].read_text())
    # 5, and the Dynamics section's: the states of each method and their occupancy
    assert html.count("data:image/png;base64,") == len(files["figures"]) == 5 + 3 + 1
    assert "Liu et al." in html and '"note": "test"' in html
    assert (out_dir / "table1_windows.tex").is_file()
    assert pd.read_csv(out_dir / "table1_static.csv", header=[0, 1], index_col=0).shape == (4, 6)
    # The runs' headers give the repetition time: the dwell times are also in seconds.
    t_r = json.loads((out_dir / "comparison.json").read_text())["t_r"]
    assert t_r == pytest.approx(0.72)  # the simulator's
    metrics = pd.read_csv(out_dir / "states_metrics.tsv", sep="\t")
    step = int(np.diff(sorted(results.loc[results.window != "static", "window"].unique()))[0])
    np.testing.assert_allclose(metrics.persistence_seconds, metrics.persistence * step * t_r)


def test_repetition_time_from_the_headers(sim):
    img = sim.func[0]
    assert repetition_time(sim.func) == pytest.approx(float(img.header.get_zooms()[3]))
    in_ms = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)
    in_ms.header.set_zooms((*img.header.get_zooms()[:3], 1500.0))
    in_ms.header.set_xyzt_units("mm", "msec")
    assert repetition_time([in_ms]) == pytest.approx(1.5)
    assert repetition_time([img, in_ms]) is None  # runs that disagree
    no_unit = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)  # units 'unknown'
    assert repetition_time([no_unit]) is None


def test_paper_constants_are_the_means_of_the_papers_table1():
    from pathlib import Path

    from nilearn_stca.evaluation import PAPER_TABLE1_MEAN_IOU

    table1_file = Path(__file__).resolve().parents[2] / "shared" / "paper" / "table1.csv"
    if not table1_file.is_file():
        pytest.skip(f"the paper's Table 1 is not at {table1_file} (shared folder absent)")
    paper = pd.read_csv(table1_file, index_col="template")
    assert len(paper) == 10  # the 10 Smith et al. (2009) RSNs
    for method, mean in PAPER_TABLE1_MEAN_IOU.items():
        assert round(paper[method.upper()].mean(), 2) == mean, method
