"""Window sweeps, brain states and stability on bad input: one clear error naming the file, or
a warning naming what was done; never a silent result, never a partial file (issue 26)."""

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from nilearn_stca import STCADecomposition, load_window_sweep, write_window_sweep
from nilearn_stca.cli import main
from nilearn_stca.state_outputs import write_states


@pytest.fixture(scope="module")
def sweep_dir(fitted, tiny_run, tmp_path_factory):
    """STCA's sweep of the tiny run: 9 windows (10 scans every 5) of 3 maps."""
    img, _ = tiny_run
    path = tmp_path_factory.mktemp("sweeps") / "sweep"
    write_window_sweep(fitted, img, path)
    return path


def _copy(sweep_dir, folder):
    folder.mkdir(parents=True)
    for file in sweep_dir.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    return folder


def _files(root):
    """Every file and folder under ``root``, by path, with its content (None for folders)."""
    return {
        path: None if path.is_dir() or path.is_symlink() else path.read_bytes()
        for path in root.rglob("*")
    }


# ---------------------------------------------------------------------- damaged sweeps
def _json(**changes):
    def damage(folder):
        metadata = json.loads((folder / "sweep.json").read_text())
        metadata.update(changes)
        (folder / "sweep.json").write_text(json.dumps(metadata))

    return damage


def _linked_outside(name):
    """The sweep's file ``name`` moved out of the folder, a symbolic link left in its place."""

    def damage(folder):
        outside = folder.parent / f"outside-{name}"
        (folder / name).rename(outside)
        (folder / name).symlink_to(outside)

    return damage


def _truncated_maps(folder):
    data = (folder / "maps.npy").read_bytes()
    (folder / "maps.npy").write_bytes(data[:-100])


class _Unpickled:
    """Creates the file ``marker`` if it is ever unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _object_maps(folder):
    shape = np.load(folder / "maps.npy", mmap_mode="r").shape
    maps = np.empty(shape, dtype=object)
    maps[0, 0, 0] = _Unpickled(folder.parent / "unpickled")
    np.save(folder / "maps.npy", maps, allow_pickle=True)


def _float64_maps(folder):
    np.save(folder / "maps.npy", np.load(folder / "maps.npy").astype(np.float64))


def _not_an_array(folder):
    (folder / "maps.npy").write_bytes(b"these are not maps")


def _nan_in_maps(folder):
    maps = np.load(folder / "maps.npy", mmap_mode="r+")
    maps[4, 1, 7] = np.nan  # the window starting at scan 20
    maps.flush()
    del maps


def _truncated_mask(folder):
    data = (folder / "mask.nii.gz").read_bytes()
    (folder / "mask.nii.gz").write_bytes(data[: len(data) // 2])


#: case -> (damage to a copy of the sweep folder, the file named, the message).
DAMAGED_SWEEPS = {
    "threshold NaN": (_json(threshold=float("nan")), "sweep.json", "threshold must be a finite z"),
    "threshold inf": (_json(threshold=float("inf")), "sweep.json", "threshold must be a finite z"),
    "threshold negative": (_json(threshold=-1.0), "sweep.json", "threshold must be a finite z"),
    "threshold text": (_json(threshold="3.6"), "sweep.json", "threshold must be a number"),
    "method a path": (_json(method="a/b"), "sweep.json", "method 'a/b' is not the class name"),
    "method empty": (_json(method=""), "sweep.json", "method '' is not the class name"),
    "window_length 0": (_json(window_length=0), "sweep.json", "window_length must be a positive"),
    "stride true": (_json(stride=True), "sweep.json", "stride must be a positive integer"),
    "stride edited": (_json(stride=7), "", r"starts are not 0, 7, 14\.\.\. \(its stride\)"),
    "maps linked outside": (_linked_outside("maps.npy"), "maps.npy", "is a symbolic link"),
    "mask linked outside": (_linked_outside("mask.nii.gz"), "mask.nii.gz", "is a symbolic link"),
    "sweep.json linked": (_linked_outside("sweep.json"), "sweep.json", "is a symbolic link"),
    "maps truncated": (_truncated_maps, "maps.npy", r"is truncated \(\d+ bytes, \d+ expected"),
    "maps of objects": (_object_maps, "maps.npy", "holds Python objects .not read: unpickling"),
    "maps float64": (_float64_maps, "maps.npy", "holds float64, not float32 maps"),
    "maps not an array": (_not_an_array, "maps.npy", "is not a readable .npy array"),
    "maps with NaN": (_nan_in_maps, "maps.npy", "window starting at scan 20 hold NaN or inf"),
    "mask truncated": (_truncated_mask, "mask.nii.gz", "cannot read the mask"),
}


@pytest.mark.parametrize("case", DAMAGED_SWEEPS)
def test_a_damaged_sweep_is_refused_naming_its_file(case, sweep_dir, tmp_path):
    damage, file, message = DAMAGED_SWEEPS[case]
    folder = _copy(sweep_dir, tmp_path / "damaged")
    damage(folder)
    with pytest.raises(ValueError, match=message) as error:
        list(load_window_sweep(folder))  # the maps are checked for NaN as they are read
    assert f"{folder / file}".rstrip("/") in str(error.value)
    assert "write_window_sweep" in str(error.value)  # the fix
    assert not (tmp_path / "unpickled").exists()


@pytest.mark.parametrize("case", DAMAGED_SWEEPS)
def test_states_refuses_a_damaged_sweep_in_one_line_and_writes_nothing(
    case, sweep_dir, tmp_path, capsys
):
    damage, file, message = DAMAGED_SWEEPS[case]
    folder = _copy(sweep_dir, tmp_path / "damaged")
    damage(folder)
    before = _files(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["states", str(folder), "--out", str(out), "--n-states", "2", "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nilearn-stca: error: "), err
    assert f"{folder / file}".rstrip("/") in err
    assert __import__("re").search(message, err), err
    assert not out.exists() and _files(tmp_path) == before


def test_the_undamaged_copy_is_accepted(sweep_dir, tmp_path):
    """The rows above damage one thing each: the copy itself loads and reads."""
    folder = _copy(sweep_dir, tmp_path / "copy")
    sweep = load_window_sweep(folder)
    assert [start for start, _ in sweep] == list(range(0, 41, 5))
    assert np.isfinite(np.asarray(sweep.maps)).all()


# ---------------------------------------------------------------------- states: mixed sweeps
def _other_stride(sweep_dir, fitted, img, root):
    write_window_sweep(fitted, img, root / "sub-02", stride=3)
    return "window_length 10, stride 3"


def _other_window_length(sweep_dir, fitted, img, root):
    from conftest import TINY_STCA

    estimator = STCADecomposition(mask=fitted.mask_img_, **{**TINY_STCA, "window_length": 20})
    write_window_sweep(estimator, img, root / "sub-02", fit=True)
    return "window_length 20, stride 5"


#: case -> a second STCA sweep (sub-02) beside sub-01 (10 scans every 5); its windows.
MIXED_SWEEPS = {"other stride": _other_stride, "other window length": _other_window_length}


@pytest.fixture(scope="module")
def mixed(sweep_dir, fitted, tiny_run, tmp_path_factory):
    img, _ = tiny_run
    folders = {}
    for case, second in MIXED_SWEEPS.items():
        root = tmp_path_factory.mktemp("mixed")
        _copy(sweep_dir, root / "sub-01")
        folders[case] = (root, second(sweep_dir, fitted, img, root))
    return folders


@pytest.mark.parametrize("case", MIXED_SWEEPS)
@pytest.mark.parametrize("features", ["maps", "presence"])
def test_states_refuses_one_method_at_two_window_settings(case, features, mixed, tmp_path):
    root, windows = mixed[case]
    kwargs = {"templates": root / "sub-01" / "mask.nii.gz"} if features == "presence" else {}
    with pytest.raises(ValueError, match="The stca sweeps have other window lengths") as error:
        write_states(
            [root / "sub-01", root / "sub-02"],
            tmp_path / "out",
            n_states=2,
            features=features,
            **kwargs,
        )
    message = str(error.value)
    assert f"{root / 'sub-01'} (window_length 10, stride 5)" in message
    assert f"{root / 'sub-02'} ({windows})" in message
    assert "write its sweeps with one window_length and stride" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", MIXED_SWEEPS)
def test_states_cli_refuses_one_method_at_two_window_settings(case, mixed, tmp_path, capsys):
    root, windows = mixed[case]
    before = _files(root)
    argv = ["states", str(root / "sub-01"), str(root / "sub-02"), "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--n-states", "2", "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{root / 'sub-02'} ({windows})" in err, err
    assert not (tmp_path / "o").exists() and _files(root) == before


def test_a_sweep_object_with_a_path_for_method_is_refused_naming_it(sweep_dir, tmp_path):
    """A WindowSweep built or edited in Python, not read from sweep.json, is checked too."""
    sweep = load_window_sweep(sweep_dir)
    sweep.metadata = {**sweep.metadata, "method": "../escape"}
    with pytest.raises(ValueError, match=r"sweep\.json: method '\.\./escape' is not the class"):
        write_states([sweep], tmp_path / "out", n_states=2)
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape").exists()


# ---------------------------------------------------------------------- writing a sweep
def test_a_sweep_into_missing_folders_creates_them(fitted, tiny_run, tmp_path):
    img, _ = tiny_run
    sweep = write_window_sweep(fitted, img, tmp_path / "sweeps" / "stca" / "sub-01")
    assert sweep.path == tmp_path / "sweeps" / "stca" / "sub-01" and len(sweep) == 9
    assert sorted(p.name for p in sweep.path.iterdir()) == [
        "maps.npy",
        "mask.nii.gz",
        "sweep.json",
    ]


def _under_a_file(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    return tmp_path / "notes.txt" / "sub-01", r"notes\.txt is a file, not a folder", ValueError


def _disk_full(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)  # sweep.json, written last
    return tmp_path / "sweeps" / "stca" / "sub-01", "No space left", OSError


#: case -> (setup: the sweep's path, the message, the error). Nothing is left behind.
FAILED_SWEEP_WRITES = {"under a file": _under_a_file, "disk full": _disk_full}


@pytest.mark.parametrize("case", FAILED_SWEEP_WRITES)
def test_a_failed_sweep_leaves_nothing(case, fitted, tiny_run, tmp_path, monkeypatch):
    img, _ = tiny_run
    path, message, error = FAILED_SWEEP_WRITES[case](tmp_path, monkeypatch)
    before = _files(tmp_path)
    with pytest.raises(error, match=message):
        write_window_sweep(fitted, img, path)
    monkeypatch.undo()
    assert _files(tmp_path) == before  # no .partial- folder, no parent created for nothing
