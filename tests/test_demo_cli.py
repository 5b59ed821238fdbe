import json

import pandas as pd
import pytest

from nilearn_stca.cli import main
from nilearn_stca.demo import run_demo

TINY_SIMULATION = {"n_scans": 30, "resolution": 16, "networks": "procedural", "n_networks": 3}
TINY_STCA = {"n_components": 4, "window_length": 10, "window_stride": 5, "n_epochs": 1}


def test_run_demo_writes_every_output(tmp_path):
    out = tmp_path / "demo"
    scores = run_demo(out, TINY_SIMULATION, TINY_STCA, verbose=0)
    assert sorted(p.name for p in out.iterdir()) == [
        "best_windows.png",
        "components.nii.gz",
        "components.png",
        "fbns.nii.gz",
        "iou.csv",
        "parameters.json",
        "planted_networks.nii.gz",
        "window_iou.csv",
    ]
    table = pd.read_csv(out / "iou.csv")
    assert list(table.columns) == [
        "network",
        "component",
        "iou",
        "dice",
        "window_mean_iou",
        "window_mean_correlation",
    ]
    assert len(table) == 3
    assert table.iou.between(0, 1).all() and (table.dice >= table.iou).all()
    pd.testing.assert_frame_equal(table, scores, check_dtype=False)
    windows = pd.read_csv(out / "window_iou.csv")
    assert set(windows.start_scan) <= {0, 5, 10, 15, 20}
    assert windows.correlation.between(-1, 1).all()
    assert windows.correlated_component.between(0, 3).all()
    parameters = json.loads((out / "parameters.json").read_text())
    assert parameters["n_steps"] == 5  # windows at 0, 5, ..., 20
    assert parameters["stca"]["learning_rate"] == 1e-3
    # Nothing is left beside the output folder.
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_cli_demo(tmp_path, capsys):
    # The CLI only exposes --n-scans and --n-epochs; a 40-scan run with the demo's
    # 40-scan window is one window.
    out = tmp_path / "cli"
    assert main(["demo", "--out", str(out), "--n-scans", "40", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mean IoU with the planted networks" in printed
    assert (out / "iou.csv").is_file()


def test_cli_bad_out(tmp_path, capsys):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(not_a_folder)])
    assert exit_info.value.code == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--n-scans", "0"])
    assert exit_info.value.code == 2


def test_cli_demo_too_short_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(tmp_path / "x"), "--n-scans", "20", "--quiet"])
    assert exit_info.value.code == 2
    assert "fewer than window_length=40" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
