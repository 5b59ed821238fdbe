import base64
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from nilearn.datasets import load_mni152_brain_mask  # noqa: E402
from nilearn.image import new_img_like  # noqa: E402

from nilearn_stca.evaluation.figures import (  # noqa: E402
    plot_iou_over_windows,
    plot_matched_maps,
    plot_static_iou,
)
from nilearn_stca.evaluation.report import write_report  # noqa: E402

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


def test_matched_maps(tmp_path):
    mask = load_mni152_brain_mask(resolution=8)
    inside = np.asanyarray(mask.dataobj) > 0
    shape = inside.shape
    rng = np.random.RandomState(0)
    templates = np.zeros((*shape, 3), np.uint8)
    x_thirds = np.array_split(np.arange(shape[0]), 3)
    for index, xs in enumerate(x_thirds):
        templates[xs, ..., index] = inside[xs]
    maps = rng.randn(*shape, 4) + 5 * templates[..., [0, 1, 2, 0]]
    titles = [f"{name}: panel" for name in TEMPLATES]
    output = tmp_path / "maps.png"
    figure = plot_matched_maps(
        new_img_like(mask, maps, copy_header=False),
        new_img_like(mask, templates, copy_header=False),
        [0, -1, 2],
        titles,
        output_file=output,
    )
    assert output.stat().st_size > 0
    grid = figure.axes[:4]  # the 2 x 2 grid comes first, the maps' cut axes after
    texts = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert texts.count(titles[0]) == texts.count(titles[2]) == 1
    assert grid[1].get_title() == f"{titles[1]}: no matched map"
    assert len(figure.axes) == 4 + 2 * 3  # two maps shown, three cuts each
    assert not grid[3].axison
    with pytest.raises(ValueError, match="one entry per template"):
        plot_matched_maps(
            new_img_like(mask, maps, copy_header=False),
            new_img_like(mask, templates, copy_header=False),
            [0, 1],
            titles[:2],
        )


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
