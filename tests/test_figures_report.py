import base64
import re
from html import unescape

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from nilearn.datasets import load_mni152_brain_mask  # noqa: E402
from nilearn.image import new_img_like  # noqa: E402

from nilearn_stca.evaluation.figures import (  # noqa: E402
    plot_iou_over_windows,
    plot_matched_maps,
    plot_static_iou,
)
from nilearn_stca.evaluation.outputs import write_comparison_report  # noqa: E402
from nilearn_stca.evaluation.report import write_report  # noqa: E402
from nilearn_stca.evaluation.tables import table1  # noqa: E402

TEMPLATES = ["medial visual", "default mode", "auditory"]
METHODS = ["stca", "ica", "sdl"]  # not in display order, on purpose
WINDOWS = [0, 10, 20, 30, 40]


@pytest.fixture(scope="module")
def results():
    rng = np.random.RandomState(0)
    rows = [
        {
            "subject": subject,
            "method": method,
            "window": window,
            "template": template,
            "component": int(rng.randint(5)),
            "iou": rng.uniform(),
            "dice": rng.uniform(),
            "runtime": 1.0,
        }
        for subject in ["sub-01", "sub-02"]
        for method in METHODS
        for window in ["static", *WINDOWS]
        for template in TEMPLATES
    ]
    return pd.DataFrame(rows).astype({"window": object})


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_iou_over_windows(results, tmp_path):
    output = tmp_path / "windows.png"
    grid = plot_iou_over_windows(results, output_file=output)
    assert output.stat().st_size > 0
    assert [ax.get_title() for ax in grid.axes.flat] == TEMPLATES
    assert [text.get_text() for text in grid.legend.texts] == ["ICA", "SDL", "STCA"]
    windows = results[results.window != "static"]
    for ax, template in zip(grid.axes.flat, TEMPLATES, strict=True):
        # seaborn also adds empty proxy lines for the legend: keep the drawn ones
        lines = [line for line in ax.get_lines() if len(line.get_xdata())]
        assert len(lines) == 3
        for line, method in zip(lines, ["ica", "sdl", "stca"], strict=True):
            rows = windows[(windows.template == template) & (windows.method == method)]
            mean = rows.groupby("window").iou.mean()
            np.testing.assert_array_equal(line.get_xdata(), WINDOWS)
            np.testing.assert_allclose(line.get_ydata(), mean.loc[WINDOWS].to_numpy())


def test_iou_over_windows_without_windows(results):
    with pytest.raises(ValueError, match="window"):
        plot_iou_over_windows(results[results.window == "static"])


def test_static_iou_bar_heights(results, tmp_path):
    output = tmp_path / "static.png"
    grid = plot_static_iou(results, output_file=output)
    assert output.stat().st_size > 0
    ax = grid.ax
    assert [label.get_text() for label in ax.get_xticklabels()] == TEMPLATES
    means = results[results.window == "static"].groupby(["template", "method"]).iou.mean()
    assert len(ax.containers) == 3
    for container, method in zip(ax.containers, ["ica", "sdl", "stca"], strict=True):
        heights = [bar.get_height() for bar in container]
        expected = [means[(template, method)] for template in TEMPLATES]
        np.testing.assert_allclose(heights, expected)


def test_static_iou_box_and_bad_kind(results):
    grid = plot_static_iou(results, kind="box")
    assert [text.get_text() for text in grid.legend.texts] == ["ICA", "SDL", "STCA"]
    with pytest.raises(ValueError, match="kind"):
        plot_static_iou(results, kind="violin")
    with pytest.raises(ValueError, match="static"):
        plot_static_iou(results[results.window != "static"])


def _masks_and_maps():
    """Three templates (thirds of a small brain along x) and four z-maps.

    Maps 0 and 3 reach z >= 3.6 in the first template; map 2 is strongly negative in the
    third, so never reaches z >= 3.6; map 1 is noise.
    """
    mask = load_mni152_brain_mask(resolution=8)
    inside = np.asanyarray(mask.dataobj) > 0
    rng = np.random.RandomState(0)
    templates = np.zeros((*inside.shape, 3), np.uint8)
    for index, xs in enumerate(np.array_split(np.arange(inside.shape[0]), 3)):
        templates[xs, ..., index] = inside[xs]
    maps = 0.5 * rng.randn(*inside.shape, 4) + 5 * templates[..., [0, 1, 2, 0]]
    maps[..., 1] = 0.5 * rng.randn(*inside.shape)
    maps[..., 2] *= -1
    return (
        mask,
        new_img_like(mask, templates, copy_header=False),
        new_img_like(mask, maps, copy_header=False),
    )


def _panels(figure, n_panels):
    """The three cut axes of each panel (the 2 x 2 grid comes first, the cuts after)."""
    cuts = figure.axes[4:]
    assert len(cuts) == 3 * n_panels
    return [cuts[3 * index : 3 * index + 3] for index in range(n_panels)]


def _outlined(ax):
    """Whether ``ax`` shows a template outline (add_contours' green contour)."""
    green = to_rgba("limegreen")
    return any(
        np.allclose(collection.get_edgecolor()[:, :3], green[:3])
        for collection in ax.collections
        if len(collection.get_edgecolor())
    )


def test_matched_maps(tmp_path):
    _, templates, maps = _masks_and_maps()
    titles = [f"{name}: panel" for name in TEMPLATES]
    output = tmp_path / "maps.png"
    # template 2 has no matched map, template 3's map has no voxel at z >= 3.6
    figure = plot_matched_maps(maps, templates, [0, -1, 2], titles, output_file=output)
    assert output.stat().st_size > 0
    assert not figure.axes[3].axison  # the empty fourth place of the grid
    note = "no map reaches z 3.6"
    for panel, title, has_map in zip(
        _panels(figure, 3), titles, [True, False, False], strict=True
    ):
        texts = [text.get_text() for ax in panel for text in ax.texts]
        assert texts.count(title) == 1
        assert texts.count(note) == (0 if has_map else 1)
        assert all(_outlined(ax) for ax in panel)
        # the background, then the map where one reaches the threshold
        images = [ax.get_images() for ax in panel]
        assert all(len(layers) == (2 if has_map else 1) for layers in images)
        if has_map:
            shown = np.ma.concatenate([layers[1].get_array().ravel() for layers in images])
            assert shown.count() > 0
            assert shown.min() >= 3.6  # the positive side only, as the IoU counts it
    assert figure._suptitle.get_text().startswith("Matched maps at z >= 3.6")


def test_matched_maps_noise_only_and_threshold(tmp_path):
    _, templates, maps = _masks_and_maps()
    figure = plot_matched_maps(maps, templates, [1, 1, 1], list("abc"), threshold=10.0)
    for panel in _panels(figure, 3):
        assert [text.get_text() for ax in panel for text in ax.texts].count(
            "no map reaches z 10.0"
        ) == 1
        assert all(_outlined(ax) for ax in panel)


def test_matched_maps_bad_lengths():
    _, templates, maps = _masks_and_maps()
    with pytest.raises(ValueError, match="one entry per template"):
        plot_matched_maps(maps, templates, [0, 1], ["a", "b"])


def _png(path):
    figure, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    figure.savefig(path, dpi=20)
    plt.close(figure)
    return path


def test_write_report(results, tmp_path):
    table = pd.DataFrame(
        {"ICA": ["0.31 ± 0.05"], "STCA": ["0.77 ± 0.02"]}, index=pd.Index(["auditory"])
    )
    figures = {
        "IoU over windows": _png(tmp_path / "a.png"),
        "Static IoU": _png(tmp_path / "b.png"),
    }
    output = tmp_path / "out" / "report.html"
    written = write_report(
        output,
        results,
        tables={"Table 1 <IoU>": table},
        figures=figures,
        parameters={"n_components": 20, "window_length": 50},
    )
    assert written == output
    text = output.read_text(encoding="utf-8")
    assert "<title>STCA vs ICA vs SDL</title>" in text
    assert "Table 1 &lt;IoU&gt;" in text
    assert "0.31 ± 0.05" in text and "0.77 ± 0.02" in text
    assert "ICA, SDL, STCA" in text
    assert "ICA: 5, SDL: 5, STCA: 5" in text
    assert "medial visual, default mode, auditory" in text
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 2
    assert base64.b64decode(images[0]) == figures["IoU over windows"].read_bytes()
    assert "&quot;n_components&quot;: 20" in text
    assert "nilearn_stca" in text and "<b>nilearn</b>" in text
    assert "http" not in text.lower().replace("<!doctype html>", "")
    assert [path.name for path in output.parent.iterdir()] == ["report.html"]


def test_write_report_missing_figure(results, tmp_path):
    output = tmp_path / "report.html"
    with pytest.raises(ValueError, match="missing.png"):
        write_report(output, results, figures={"Gone": tmp_path / "missing.png"})
    assert list(tmp_path.iterdir()) == []


def _comparison_folder(folder, results):
    """A folder as ``compare(..., out_dir=folder)`` leaves it, with ``results``."""
    mask, templates, maps = _masks_and_maps()
    (folder / "maps").mkdir(parents=True)
    results.to_csv(folder / "results.csv", index=False)
    templates.to_filename(folder / "templates.nii.gz")
    # five maps: the fixture's components are 0 to 4
    maps = new_img_like(mask, np.concatenate([maps.get_fdata()] * 2, axis=3)[..., :5])
    for subject in results.subject.unique():
        for method in results.method.unique():
            # Named as before the BIDS-derivative names: the report still finds them.
            maps.to_filename(folder / "maps" / f"{subject}_{method}.nii.gz")
    return folder


def test_comparison_report_tables_of_each_reading(results, tmp_path):
    folder = _comparison_folder(tmp_path / "comparison", results)
    files = write_comparison_report(folder, paper=True)
    stems = ["table1_static", "table1_windows", "table1_best_window"]
    assert [path.name for path in files["tables"]] == [
        *(f"{stem}{ext}" for stem in stems for ext in (".csv", ".tsv", ".md", ".tex")),
        "paper_table1.md",
        "states_metrics.tsv",  # the Dynamics section's, as windows were scored
    ]
    for stem, reading in zip(stems, ["static", "windows", "best_window"], strict=True):
        written = pd.read_csv(folder / f"{stem}.csv", header=[0, 1], index_col=0)
        np.testing.assert_allclose(
            written.to_numpy(), table1(results, reading).to_numpy(), atol=1e-4
        )
        tsv = pd.read_csv(folder / f"{stem}.tsv", sep="\t", header=[0, 1], index_col=0)
        pd.testing.assert_frame_equal(tsv, written)
    html = unescape(files["report"].read_text(encoding="utf-8"))
    assert (
        "IoU of the best window per template (lenient: the maximum over windows; not "
        "comparable with a static reading)" in html
    )
    for column in (
        "ours, static maps",
        "ours, mean over windows",
        "ours, best window per template (lenient)",
    ):
        assert column in html
        assert column in (folder / "paper_table1.md").read_text()


def test_comparison_report_without_windows(results, tmp_path):
    static = results[results.window == "static"]
    folder = _comparison_folder(tmp_path / "comparison", static)
    files = write_comparison_report(folder)
    assert [path.name for path in files["tables"]] == [
        "table1_static.csv",
        "table1_static.tsv",
        "table1_static.md",
        "table1_static.tex",
    ]
    assert "best window" not in files["report"].read_text(encoding="utf-8")
