"""Execute every tutorial (jupytext percent scripts) as a notebook, at its small default size."""

import re
from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9]*.py"))


def _numbers(pattern, text):
    """Every number the groups of ``pattern`` capture in ``text``, in order."""
    found = re.findall(pattern, text)
    return [float(v) for match in found for v in (match if isinstance(match, tuple) else [match])]


def _check_drop_in(text):
    canica, stca = _numbers(r"mean IoU with the planted networks: ([\d.]+)", text)
    assert canica >= 0.2 and stca >= 0.05  # measured 0.36 and 0.10


def _check_dynamic(text):
    first, last = _numbers(r"steps, loss ([\d.]+) -> ([\d.]+)", text)
    assert last < first  # measured 1.05 -> 0.70
    sdl = text.split("SDL, mean over")[1]
    assert _numbers(r"iou\s+([\d.]+)", sdl)[0] >= 0.2  # measured 0.39


def _check_comparison(text):
    assert "same Table 1: True" in text
    static_means = re.findall(r"\| mean\s+\| ([\d.]+) ± [\d.]+ \| ([\d.]+) ± ", text)
    assert static_means and float(static_means[0][1]) >= 0.3  # SDL's static: measured 0.46


def _check_nipype(text):
    assert "'report'" in text and "'stca_iou'" in text
    means = re.findall(r"\| mean\s+\| ([\d.]+)", text)
    assert means and 0 <= float(means[0]) <= 1


#: What each tutorial must print, beyond running without an error.
CHECKS = {
    "01_drop_in_for_canica": _check_drop_in,
    "02_dynamic_fbns": _check_dynamic,
    "03_method_comparison": _check_comparison,
    "04_nipype_workflow": _check_nipype,
}


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path, monkeypatch):
    monkeypatch.delenv("NILEARN_STCA_TUTORIAL_FULL", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = jupytext.read(path)
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    CHECKS[path.stem](printed)


def test_every_tutorial_has_its_check():
    assert sorted(CHECKS) == [p.stem for p in TUTORIALS]


def test_tutorials_are_found():
    assert [p.name for p in TUTORIALS][:1] == ["01_drop_in_for_canica.py"]
