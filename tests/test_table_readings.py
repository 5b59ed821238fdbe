"""The readings of Table 1, on a results table small enough to compute by hand."""

from statistics import mean, stdev

import numpy as np
import pandas as pd
import pytest

from nilearn_stca.evaluation import TABLE1_READINGS, paper_comparison, table1

WINDOWS = [0, 10, 20]

#: IoU by (subject, method, template): the static map, then windows 0, 10 and 20.
IOU = {
    ("sub-01", "stca", "A"): [0.3, 0.6, 0.2, 0.4],
    ("sub-01", "stca", "B"): [0.5, 0.3, 0.7, 0.5],
    ("sub-01", "ica", "A"): [0.2, 0.1, 0.3, 0.2],
    ("sub-01", "ica", "B"): [0.4, 0.5, 0.2, 0.4],
    ("sub-02", "stca", "A"): [0.5, 0.4, 0.8, 0.3],
    ("sub-02", "stca", "B"): [0.1, 0.2, 0.1, 0.6],
    ("sub-02", "ica", "A"): [0.4, 0.2, 0.2, 0.5],
    ("sub-02", "ica", "B"): [0.6, 0.1, 0.3, 0.2],
}


@pytest.fixture(scope="module")
def results():
    rows = [
        {
            "subject": subject,
            "method": method,
            "window": window,
            "template": template,
            "component": 0,
            "iou": iou,
            "dice": 2 * iou / (1 + iou),
            "runtime": 1.0,
        }
        for (subject, method, template), values in IOU.items()
        for window, iou in zip(["static", *WINDOWS], values, strict=True)
    ]
    return pd.DataFrame(rows).astype({"window": object})


def _expected(cells):
    """``{(row, method): (mean, sd)}`` from hand-computed lists of values."""
    return {key: (mean(values), stdev(values)) for key, values in cells.items()}


def _check(table, expected):
    assert list(table.index) == ["A", "B", "mean"]
    assert list(table.columns) == [
        ("ICA", "mean"),
        ("ICA", "sd"),
        ("STCA", "mean"),
        ("STCA", "sd"),
    ]
    for (row, method), (mean_, sd) in expected.items():
        assert table.loc[row, (method, "mean")] == pytest.approx(mean_), (row, method)
        assert table.loc[row, (method, "sd")] == pytest.approx(sd), (row, method)


def test_static_reading(results):
    expected = _expected(
        {
            ("A", "ICA"): [0.2, 0.4],
            ("B", "ICA"): [0.4, 0.6],
            ("A", "STCA"): [0.3, 0.5],
            ("B", "STCA"): [0.5, 0.1],
            # each subject's mean over templates
            ("mean", "ICA"): [0.3, 0.5],
            ("mean", "STCA"): [0.4, 0.3],
        }
    )
    _check(table1(results), expected)
    _check(table1(results, reading="static"), expected)
    assert table1(results).loc["mean", ("STCA", "mean")] == pytest.approx(0.35)


def test_windows_reading(results):
    expected = _expected(
        {
            ("A", "ICA"): [0.1, 0.3, 0.2, 0.2, 0.2, 0.5],
            ("B", "ICA"): [0.5, 0.2, 0.4, 0.1, 0.3, 0.2],
            ("A", "STCA"): [0.6, 0.2, 0.4, 0.4, 0.8, 0.3],
            ("B", "STCA"): [0.3, 0.7, 0.5, 0.2, 0.1, 0.6],
            # each window's mean over templates, the windows of both subjects
            ("mean", "ICA"): [0.3, 0.25, 0.3, 0.15, 0.25, 0.35],
            ("mean", "STCA"): [0.45, 0.45, 0.45, 0.3, 0.45, 0.45],
        }
    )
    _check(table1(results, reading="windows"), expected)


def test_best_window_reading(results):
    expected = _expected(
        {
            ("A", "ICA"): [0.3, 0.5],
            ("B", "ICA"): [0.5, 0.3],
            # sub-01's best windows differ between templates: 0 for A, 10 for B
            ("A", "STCA"): [0.6, 0.8],
            ("B", "STCA"): [0.7, 0.6],
            # each subject's mean of its per-template bests
            ("mean", "ICA"): [0.4, 0.4],
            ("mean", "STCA"): [0.65, 0.7],
        }
    )
    table = table1(results, reading="best_window")
    _check(table, expected)
    # Not the best single window: every window of sub-01 has mean STCA IoU 0.45.
    assert table.loc["mean", ("STCA", "mean")] == pytest.approx(0.675)
    assert table.loc["mean", ("ICA", "sd")] == pytest.approx(0.0, abs=1e-12)


def test_best_window_dice_is_the_dice_of_the_best_iou(results):
    table = table1(results, reading="best_window", metric="dice")
    best_iou = np.array([0.6, 0.8])  # STCA, template A, both subjects
    dice = 2 * best_iou / (1 + best_iou)
    assert table.loc["A", ("STCA", "mean")] == pytest.approx(dice.mean())
    assert table.loc["A", ("STCA", "sd")] == pytest.approx(dice.std(ddof=1))


def test_readings_share_the_layout(results):
    tables = [table1(results, reading=reading) for reading in TABLE1_READINGS]
    assert TABLE1_READINGS == ("static", "windows", "best_window")
    for table in tables[1:]:
        assert table.index.equals(tables[0].index)
        assert table.columns.equals(tables[0].columns)


def test_unknown_reading(results):
    message = "reading='best'.*'static', 'windows', 'best_window'"
    with pytest.raises(ValueError, match=message):
        table1(results, reading="best")
    with pytest.raises(ValueError, match="metric='jaccard'"):
        table1(results, metric="jaccard")


@pytest.mark.parametrize("reading", ["windows", "best_window"])
def test_window_readings_need_window_rows(results, reading):
    static = results[results.window == "static"]
    with pytest.raises(ValueError, match=rf"reading='{reading}' needs window rows") as error:
        table1(static, reading=reading)
    assert "compare(..., windows=True)" in str(error.value)


def test_static_reading_needs_static_rows(results):
    with pytest.raises(ValueError, match="reading='static' needs the static maps' rows"):
        table1(results[results.window != "static"])


def test_paper_comparison_names_each_reading(results):
    comparison = paper_comparison(results, decimals=3)
    assert list(comparison.index) == ["ICA", "STCA"]
    assert comparison.to_dict(orient="index") == {
        "ICA": {
            "ours, static maps": "0.400 ± 0.141",
            "ours, mean over windows": "0.267 ± 0.068",
            "ours, best window per template (lenient)": "0.400 ± 0.000",
            "paper": "0.25",
        },
        "STCA": {
            "ours, static maps": "0.350 ± 0.071",
            "ours, mean over windows": "0.425 ± 0.061",
            "ours, best window per template (lenient)": "0.675 ± 0.035",
            "paper": "0.41",
        },
    }
    static_only = paper_comparison(results[results.window == "static"])
    assert list(static_only.columns) == ["ours, static maps", "paper"]
