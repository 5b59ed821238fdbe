"""A full disk while writing leaves no partial file, and earlier files as they were."""

import errno
import json
import re
import shutil
from base64 import b64decode
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from nibabel.filebasedimages import FileBasedImage  # noqa: E402
from nilearn.datasets import load_mni152_brain_mask  # noqa: E402
from nilearn.image import new_img_like  # noqa: E402

from nilearn_stca.evaluation import write_comparison_report  # noqa: E402
from nilearn_stca.evaluation.figures import plot_static_iou  # noqa: E402
from nilearn_stca.evaluation.results_folder import (  # noqa: E402
    RESULT_COLUMNS,
    SETTINGS_FILE,
    static_maps_file,
)
from nilearn_stca.interfaces import ComparisonReport, EvaluateIoU, PrepareComparison  # noqa: E402

TEMPLATES = ["visual", "motor"]
METHODS = ["ica", "stca"]
SUBJECTS = ["sub-01", "sub-02"]

#: How each writer is patched: (owner, attribute, the written path from the call's arguments).
WRITERS = {
    "write_text": (Path, "write_text", lambda self, *args, **kwargs: self),
    "savefig": (Figure, "savefig", lambda self, fname, *args, **kwargs: fname),
    "to_csv": (pd.DataFrame, "to_csv", lambda self, path=None, *args, **kwargs: path),
    "copyfile": (shutil, "copyfile", lambda src, dst, *args, **kwargs: dst),
    "to_filename": (FileBasedImage, "to_filename", lambda self, path, *args, **kwargs: path),
}


def _fill_disk_on(monkeypatch, writer, name):
    """Make ``writer`` write 4 bytes then fail with ENOSPC when its file's name ends with name.

    A temporary name ends with the final one, so the failure hits either way.
    """
    owner, attribute, target = WRITERS[writer]
    original = getattr(owner, attribute)
    calls = []

    def full_disk(*args, **kwargs):
        path = target(*args, **kwargs)
        if isinstance(path, (str, Path)) and str(path).endswith(name):
            calls.append(path)
            Path(path).write_bytes(b"part")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, full_disk)
    return calls


def _snapshot(folder):
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(Path(folder).rglob("*"))
        if path.is_file()
    }


def _assert_left_as_it_was(folder, before):
    after = _snapshot(folder)
    assert not [name for name in after if ".partial-" in name]
    assert not [name for name, data in after.items() if len(data) <= len(b"part")]
    assert after.keys() == before.keys()
    assert [name for name in after if after[name] != before[name]] == []


def _results(shift=0.0):
    rng = np.random.RandomState(0)
    rows = [
        {
            "subject": subject,
            "method": method,
            "window": window,
            "template": template,
            "component": int(rng.randint(3)),
            "iou": min(1.0, rng.uniform() + shift),
            "dice": rng.uniform(),
            "runtime": 1.0,
        }
        for subject in SUBJECTS
        for method in METHODS
        for window in ["static", 0, 10]
        for template in TEMPLATES
    ]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def images():
    """Two binary templates (the brain's halves) and three maps on the 8 mm MNI grid."""
    mask = load_mni152_brain_mask(resolution=8)
    inside = np.asanyarray(mask.dataobj) > 0
    templates = np.zeros((*inside.shape, 2), np.uint8)
    half = inside.shape[0] // 2
    templates[:half, ..., 0] = inside[:half]
    templates[half:, ..., 1] = inside[half:]
    maps = np.random.RandomState(0).randn(*inside.shape, 3) + 5 * templates[..., [0, 1, 0]]
    return {
        "mask": mask,
        "templates": new_img_like(mask, templates, copy_header=False),
        "maps": new_img_like(mask, maps.astype(np.float32), copy_header=False),
    }


def _fill_comparison(folder, images, results):
    """A folder as ``compare`` leaves it: results, templates, static maps, settings."""
    (folder / "maps").mkdir(parents=True)
    results.to_csv(folder / "results.csv", index=False)
    images["templates"].to_filename(folder / "templates.nii.gz")
    for subject in SUBJECTS:
        for method in METHODS:
            images["maps"].to_filename(static_maps_file(folder, subject, method))
    (folder / SETTINGS_FILE).write_text(json.dumps({"window_length": 10}))


@pytest.fixture(scope="module")
def reported(images, tmp_path_factory):
    """A comparison folder with its report, and what write_comparison_report returned."""
    folder = tmp_path_factory.mktemp("reported")
    _fill_comparison(folder, images, _results())
    return folder, write_comparison_report(folder, paper=True)


def test_report_writes_its_files_only_under_their_names(reported):
    folder, files = reported
    written = [files["report"], *files["tables"], *files["figures"]]
    expected = {"results.csv", "templates.nii.gz", SETTINGS_FILE}
    expected |= {
        f"maps/{s}_method-{m}_desc-static_components.nii.gz" for s in SUBJECTS for m in METHODS
    }
    expected |= {str(path.relative_to(folder)) for path in written}
    assert set(_snapshot(folder)) == expected
    assert files["report"] == folder / "report.html"
    assert [path.name for path in files["figures"]] == [
        "fig5_iou_over_windows.png",
        "table1_static.png",
        "matched_maps_ica.png",
        "matched_maps_stca.png",
        "states_ica.png",
        "states_stca.png",
        "state_occupancy.png",
    ]
    # The report embeds the figures written under temporary names: the same bytes.
    html = files["report"].read_text(encoding="utf-8")
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert [b64decode(png) for png in embedded] == [path.read_bytes() for path in files["figures"]]


@pytest.mark.parametrize(
    ("writer", "name"),
    [
        ("write_text", "table1_static.csv"),
        ("write_text", "table1_windows.tex"),
        ("write_text", "paper_table1.md"),
        ("write_text", "report.html"),
        ("savefig", "fig5_iou_over_windows.png"),
        ("savefig", "matched_maps_stca.png"),
        ("savefig", "state_occupancy.png"),
        ("to_csv", "states_metrics.tsv"),
    ],
)
def test_full_disk_leaves_the_earlier_report(reported, tmp_path, monkeypatch, writer, name):
    folder = tmp_path / "comparison"
    shutil.copytree(reported[0], folder)
    # New numbers, so that any file renamed before the failure would differ from the earlier.
    _results(shift=0.3).to_csv(folder / "results.csv", index=False)
    before = _snapshot(folder)
    calls = _fill_disk_on(monkeypatch, writer, name)
    with pytest.raises(OSError, match="No space left"):
        write_comparison_report(folder, paper=True)
    assert calls
    _assert_left_as_it_was(folder, before)


def test_full_disk_on_a_first_report_leaves_no_output(images, tmp_path, monkeypatch):
    _fill_comparison(tmp_path, images, _results())
    before = _snapshot(tmp_path)
    _fill_disk_on(monkeypatch, "write_text", "report.html")
    with pytest.raises(OSError, match="No space left"):
        write_comparison_report(tmp_path)
    _assert_left_as_it_was(tmp_path, before)


def test_figure_without_extension_is_saved_as_matplotlib_does(tmp_path):
    plot_static_iou(_results(), output_file=tmp_path / "static")
    assert [path.name for path in tmp_path.iterdir()] == ["static.png"]
    assert (tmp_path / "static.png").read_bytes().startswith(b"\x89PNG")


# ---------------------------------------------------------------------- nipype interfaces
def _report_node(folder, shift=0.0, note="first"):
    """A ComparisonReport node over one table per subject and method, written in folder."""
    inputs = folder / f"inputs-{note}"
    inputs.mkdir()
    in_csvs, maps_files = [], []
    results = _results(shift)
    for (subject, method), rows in results.groupby(["subject", "method"], sort=False):
        in_csvs.append(str(inputs / f"{subject}_{method}.csv"))
        rows.to_csv(in_csvs[-1], index=False)
        maps_files.append(str(folder / "data" / "maps.nii.gz"))
    return ComparisonReport(
        in_csvs=in_csvs,
        maps_files=maps_files,
        templates_file=str(folder / "data" / "templates.nii.gz"),
        out_dir="out",  # inside the node's working folder, here ``folder``
        settings={"note": note},
    )


@pytest.mark.parametrize(
    ("writer", "name"),
    [
        ("copyfile", "sub-02_method-stca_desc-static_components.nii.gz"),
        ("copyfile", "templates.nii.gz"),
        ("write_text", "comparison.json"),
        ("to_csv", "results.csv"),
    ],
)
def test_full_disk_leaves_the_earlier_comparison_folder(
    images, tmp_path, monkeypatch, writer, name
):
    (tmp_path / "data").mkdir()
    images["templates"].to_filename(tmp_path / "data" / "templates.nii.gz")
    images["maps"].to_filename(tmp_path / "data" / "maps.nii.gz")
    _report_node(tmp_path).run(cwd=tmp_path)
    out_dir = tmp_path / "out"
    before = _snapshot(out_dir)
    assert json.loads(before[SETTINGS_FILE]) == {"note": "first"}
    # Other maps, settings and numbers: any file renamed before the failure would differ.
    images["templates"].to_filename(tmp_path / "data" / "maps.nii.gz")
    node = _report_node(tmp_path, shift=0.3, note="second")
    calls = _fill_disk_on(monkeypatch, writer, name)
    with pytest.raises(OSError, match="No space left"):
        node.run(cwd=tmp_path)
    assert calls
    _assert_left_as_it_was(out_dir, before)


@pytest.mark.parametrize("out_dir", ["/tmp/elsewhere", "../out", ""])
def test_report_node_writes_only_inside_its_folder(images, tmp_path, out_dir):
    (tmp_path / "data").mkdir()
    images["templates"].to_filename(tmp_path / "data" / "templates.nii.gz")
    images["maps"].to_filename(tmp_path / "data" / "maps.nii.gz")
    node = _report_node(tmp_path)
    node.inputs.out_dir = out_dir
    cwd = tmp_path / "node"
    cwd.mkdir()
    with pytest.raises(ValueError, match="must be a folder name inside the node's working"):
        node.run(cwd=cwd)
    assert list(cwd.iterdir()) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", "inputs-first", "node"]


@pytest.mark.parametrize("node", ["PrepareComparison", "EvaluateIoU"])
def test_full_disk_leaves_no_partial_node_output(images, tmp_path, monkeypatch, node):
    data = tmp_path / "data"
    data.mkdir()
    for name, img in images.items():
        img.to_filename(data / f"{name}.nii.gz")
    if node == "PrepareComparison":
        # Without mask_file it writes mask.nii.gz; templates.nii.gz is written after it, and
        # the two are moved in together.
        interface = PrepareComparison(
            in_files=[str(data / "maps.nii.gz")], templates=str(data / "templates.nii.gz")
        )
        writer, name = "to_filename", "templates.nii.gz"
    else:
        interface = EvaluateIoU(
            components_file=str(data / "maps.nii.gz"),
            mask_file=str(data / "mask.nii.gz"),
            templates=str(data / "templates.nii.gz"),
            template_threshold=0.5,
            subject="sub-01",
            method="ica",
        )
        writer, name = "to_csv", "iou.csv"
    cwd = tmp_path / "node"
    cwd.mkdir()
    calls = _fill_disk_on(monkeypatch, writer, name)
    with pytest.raises(OSError, match="No space left"):
        interface.run(cwd=cwd)
    assert calls
    assert list(cwd.iterdir()) == []


def test_atomic_path_replaces_a_folder_only_when_asked(tmp_path):
    from nilearn_stca._utils.io import atomic_path

    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(OSError):
        with atomic_path(target) as partial:
            partial.mkdir()
            (partial / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    with atomic_path(target, replace_folder=True) as partial:
        partial.mkdir()
        (partial / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging or old copy left
