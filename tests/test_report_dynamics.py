import json
import re
from base64 import b64decode
from html import unescape

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from nilearn.datasets import load_mni152_brain_mask  # noqa: E402
from nilearn.image import new_img_like  # noqa: E402

from nilearn_stca.evaluation.outputs import write_comparison_report  # noqa: E402
from nilearn_stca.evaluation.report_dynamics import METRICS_FILE  # noqa: E402
from nilearn_stca.evaluation.results_folder import SETTINGS_FILE, static_maps_file  # noqa: E402
from nilearn_stca.evaluation.state_figures import plot_occupancy  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_occupancy_bars(tmp_path):
    # STCA has three states, ICA two: the bars are grouped by method (ICA first)
    fractions = {
        ("stca", "sub-01"): [0.2, 0.3, 0.5],
        ("stca", "sub-02"): [0.4, 0.1, 0.5],
        ("ica", "sub-01"): [0.25, 0.75],
        ("ica", "sub-02"): [0.75, 0.25],
    }
    metrics = pd.DataFrame(
        [
            {"method": method, "subject": subject, "state": state, "temporal_fraction": value}
            for (method, subject), values in fractions.items()
            for state, value in enumerate(values)
        ]
    )
    output = tmp_path / "occupancy.png"
    figure = plot_occupancy(metrics, title="Occupancy", output_file=output)
    assert output.read_bytes().startswith(PNG_SIGNATURE)
    ax = figure.axes[0]
    assert ax.get_title() == "Occupancy"
    assert [label.get_text() for label in ax.get_xticklabels()] == ["ICA", "STCA"]
    # one container per state; a method's bar for each of its states
    heights = [[bar.get_height() for bar in container] for container in ax.containers]
    np.testing.assert_allclose(heights[0], [0.5, 0.3])
    np.testing.assert_allclose(heights[1], [0.5, 0.2])
    np.testing.assert_allclose(heights[2], [0.5])
    # error bars: mean ± the sample sd over subjects (ICA state 0: 0.5 ± 0.3536)
    sd = np.std([0.25, 0.75], ddof=1)
    spans = [(np.nanmin(line.get_ydata()), np.nanmax(line.get_ydata())) for line in ax.lines]
    assert any(np.allclose(span, [0.5 - sd, 0.5 + sd]) for span in spans)
    assert not any(
        np.allclose(span, [0.5 - sd / np.sqrt(2), 0.5 + sd / np.sqrt(2)]) for span in spans
    )


def test_plot_occupancy_bad_input():
    with pytest.raises(ValueError, match="temporal_fraction"):
        plot_occupancy(pd.DataFrame({"method": ["ica"], "subject": ["s"], "state": [0]}))
    empty = pd.DataFrame(columns=["method", "subject", "state", "temporal_fraction"])
    with pytest.raises(ValueError, match="no rows"):
        plot_occupancy(empty)


# ---------------------------------------------------------------------- the report's section
TEMPLATES = ["visual", "motor", "auditory"]
#: The presence profile of each planted state (IoU of each template's matched map).
PROFILES = {"V": [0.9, 0.1, 0.2], "M": [0.1, 0.8, 0.2]}
#: Each subject's state per window (windows every 5 scans), the same for ICA and STCA.
SEQUENCES = {"sub-01": "VVVMMVVV", "sub-02": "MMMMVVMM"}
STRIDE = 5


def _results():
    """Static rows, and window rows whose presence follows SEQUENCES (SDL: 2 windows)."""
    rng = np.random.RandomState(0)
    rows = []
    for method in ["stca", "ica", "sdl"]:
        for subject, sequence in SEQUENCES.items():
            if method == "sdl":
                sequence = sequence[:1]
            windows = [("static", PROFILES["V"])]
            windows += [(STRIDE * i, PROFILES[state]) for i, state in enumerate(sequence)]
            for window, profile in windows:
                for index, (template, iou) in enumerate(zip(TEMPLATES, profile, strict=True)):
                    rows.append(
                        {
                            "subject": subject,
                            "method": method,
                            "window": window,
                            "template": template,
                            "component": index,
                            "iou": iou + rng.uniform(-0.02, 0.02),
                            "dice": iou,
                            "runtime": 1.0,
                        }
                    )
    return pd.DataFrame(rows).astype({"window": object})


def _comparison_folder(folder, results, settings=None):
    """A folder as ``compare(..., out_dir=folder)`` leaves it, with ``results``."""
    mask = load_mni152_brain_mask(resolution=8)
    inside = np.asanyarray(mask.dataobj) > 0
    templates = np.zeros((*inside.shape, 3), np.uint8)
    for index, xs in enumerate(np.array_split(np.arange(inside.shape[0]), 3)):
        templates[xs, ..., index] = inside[xs]
    maps = 5.0 * templates + np.random.RandomState(0).randn(*templates.shape)
    (folder / "maps").mkdir(parents=True)
    results.to_csv(folder / "results.csv", index=False)
    new_img_like(mask, templates, copy_header=False).to_filename(folder / "templates.nii.gz")
    for subject in results.subject.unique():
        for method in results.method.unique():
            new_img_like(mask, maps, copy_header=False).to_filename(
                static_maps_file(folder, subject, method)
            )
    if settings is not None:
        (folder / SETTINGS_FILE).write_text(json.dumps(settings))
    return folder


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dynamics") / "comparison"
    _comparison_folder(folder, _results(), settings={"t_r": 2.0, "window_stride": STRIDE})
    return folder, write_comparison_report(folder)


def test_states_metrics_of_the_planted_sequences(reported):
    folder, files = reported
    metrics = pd.read_csv(folder / METRICS_FILE, sep="\t")
    assert list(metrics.columns) == [
        "method",
        "subject",
        "state",
        "temporal_fraction",
        "persistence",
        "counts",
        "persistence_seconds",
        "transition_frequency",
    ]
    # SDL has 2 windows: no states; ICA and STCA: 2 states (the silhouette's choice)
    assert set(metrics.method) == {"ica", "stca"}
    assert metrics.groupby(["method", "subject"]).size().eq(2).all()
    sums = metrics.groupby(["method", "subject"]).temporal_fraction.sum()
    np.testing.assert_allclose(sums, 1.0)
    for method in ["ica", "stca"]:
        rows = metrics[metrics.method == method].set_index(["subject", "state"])
        # sub-01 VVVMMVVV: V holds 6 of 8 windows in 2 stays of 3, M one stay of 2.
        visual = rows.loc["sub-01"].temporal_fraction.idxmax()
        motor = 1 - visual
        assert rows.loc[("sub-01", visual)][
            ["temporal_fraction", "persistence", "counts"]
        ].tolist() == [0.75, 3.0, 2]
        assert rows.loc[("sub-01", motor)][
            ["temporal_fraction", "persistence", "counts"]
        ].tolist() == [0.25, 2.0, 1]
        # sub-02 MMMMVVMM, in the same (group) states: M stays of 4 and 2, V one of 2.
        assert rows.loc[("sub-02", motor)][
            ["temporal_fraction", "persistence", "counts"]
        ].tolist() == [0.75, 3.0, 2]
        assert rows.loc[("sub-02", visual), "persistence"] == 2.0
        # windows every 5 scans at t_r 2 s: a stay of 3 windows lasts 30 s
        assert rows.loc[("sub-01", visual), "persistence_seconds"] == pytest.approx(30.0)
        assert rows.transition_frequency.tolist() == [2, 2, 2, 2]
    assert files["tables"][-1] == folder / METRICS_FILE


def test_dynamics_figures_in_the_report(reported):
    folder, files = reported
    names = ["states_stca.png", "states_ica.png", "state_occupancy.png"]
    assert [path.name for path in files["figures"][-3:]] == names
    for name in names:
        assert (folder / name).read_bytes().startswith(PNG_SIGNATURE)
    html = unescape(files["report"].read_text(encoding="utf-8"))
    assert html.count("<h2>Dynamics</h2>") == 1
    dynamics = html.split("<h2>Dynamics</h2>")[1].split("<h2>")[0]
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', dynamics)
    assert [b64decode(png) for png in embedded] == [(folder / n).read_bytes() for n in names]
    assert "SDL: 2 windows, too few for states (at least 3)." in dynamics
    assert "STCA: 2 states, the best silhouette" in dynamics
    # the summary table: ICA's occupancy of its visual state, mean ± sd of 0.75 and 0.25
    assert "0.50 ± 0.35" in dynamics
    # every file written is under its own name: nothing staged is left behind
    assert not list(folder.glob(".partial-*"))


def test_given_number_of_states(tmp_path):
    folder = _comparison_folder(tmp_path / "comparison", _results())
    write_comparison_report(folder, n_states=3)
    metrics = pd.read_csv(folder / METRICS_FILE, sep="\t")
    assert metrics.groupby(["method", "subject"]).size().eq(3).all()
    np.testing.assert_allclose(metrics.groupby(["method", "subject"]).temporal_fraction.sum(), 1)
    # no t_r in the settings: no seconds
    assert "persistence_seconds" not in metrics
    html = unescape((folder / "report.html").read_text(encoding="utf-8"))
    assert "ICA: 3 states (given)." in html
    assert "SDL: 2 windows, too few for states (at least 3)." in html


def test_bad_number_of_states_writes_nothing(tmp_path):
    folder = _comparison_folder(tmp_path / "comparison", _results())
    before = sorted(folder.rglob("*"))
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="n_states must be an integer of at least 2"):
            write_comparison_report(folder, n_states=bad)
    assert sorted(folder.rglob("*")) == before


def test_static_comparison_has_no_dynamics(tmp_path):
    results = _results()
    folder = _comparison_folder(tmp_path / "comparison", results[results.window == "static"])
    files = write_comparison_report(folder)
    html = files["report"].read_text(encoding="utf-8")
    assert "Dynamics" not in html
    assert not (folder / METRICS_FILE).exists()
    assert not list(folder.glob("state*.png"))
    assert [path.name for path in files["figures"]] == [
        "table1_static.png",
        *(f"matched_maps_{method}.png" for method in ["stca", "ica", "sdl"]),
    ]


def test_windows_that_all_look_alike_are_one_state(tmp_path):
    results = _results()
    ica_windows = (results.method == "ica") & (results.window != "static")
    results.loc[ica_windows, "iou"] = 0.0  # no template matched in any ICA window
    folder = _comparison_folder(tmp_path / "comparison", results)
    write_comparison_report(folder)
    metrics = pd.read_csv(folder / METRICS_FILE, sep="\t")
    ica = metrics[metrics.method == "ica"]
    # each subject: 8 windows in one stay of one state, no transition
    assert ica.state.tolist() == [0, 0]
    assert ica.temporal_fraction.tolist() == [1.0, 1.0]
    assert ica.persistence.tolist() == [8.0, 8.0]
    assert ica.transition_frequency.tolist() == [0, 0]
    assert metrics[metrics.method == "stca"].groupby("subject").size().tolist() == [2, 2]
    html = unescape((folder / "report.html").read_text(encoding="utf-8"))
    assert "ICA: 1 state: every window has the same presence." in html
    assert (folder / "states_ica.png").read_bytes().startswith(PNG_SIGNATURE)
