"""Window sweeps, brain states and stability on bad input: one clear error naming the file, or
a warning naming what was done; never a silent result, never a partial file (issue 26)."""

import errno
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from nilearn.masking import apply_mask

from nilearn_stca import STCADecomposition, load_window_sweep, write_window_sweep
from nilearn_stca.baselines import SDLDecomposition
from nilearn_stca.cli import main
from nilearn_stca.evaluation.stability import stability, write_stability
from nilearn_stca.states import write_states


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


# ---------------------------------------------------------------------- stability: empty maps
@pytest.fixture(scope="module")
def stca_with_empty_maps(sim):
    """STCA asked for 32 maps of the 3-network simulation: many of them come back empty."""
    estimator = STCADecomposition(mask=sim.mask_img, n_components=32, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = stability(estimator, sim.func[0], random_states=[0, 1])
    return result, [str(w.message) for w in caught if "empty" in str(w.message)]


def _stca_of_32_maps(sim):
    return STCADecomposition(mask=sim.mask_img, n_components=32, device="cpu")


def _sdl_too_sparse(sim):
    return SDLDecomposition(mask=sim.mask_img, n_components=4, alpha=50.0)


#: case -> (estimator, what stability does: warn or refuse, the message).
EMPTY_MAPS = {
    "some empty": (
        _stca_of_32_maps,
        pytest.warns,
        RuntimeWarning,
        "of the 32 maps of each fit of STCADecomposition are empty .* Ask for fewer n_components",
    ),
    "all empty": (
        _sdl_too_sparse,
        pytest.raises,
        ValueError,
        "Every map of the 2 fits of SDLDecomposition is empty .* nothing to cluster",
    ),
}


@pytest.mark.parametrize("case", EMPTY_MAPS)
def test_empty_maps_are_named_never_stable(case, sim):
    estimator, expect, kind, message = EMPTY_MAPS[case]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="SDLDecomposition: no component found")
        with expect(kind, match=message):
            stability(estimator(sim), sim.func[0], random_states=[0, 1])


def test_stability_leaves_empty_maps_out_of_the_clusters(stca_with_empty_maps, sim):
    result, messages = stca_with_empty_maps
    n_empty = result.n_empty
    assert len(n_empty) == 2 and 0 < sum(n_empty) < 64
    assert messages and f"{sum(n_empty)} of 64 in all" in messages[0]
    empty = result.labels == -1
    assert empty.sum() == sum(n_empty)
    # One cluster per map of the fit with the most maps, none a lone empty map.
    assert len(result.table) == 32 - min(n_empty)
    assert result.table.n_maps.sum() == 64 - sum(n_empty)
    np.testing.assert_array_equal(np.bincount(result.labels[~empty]), result.table.n_maps)
    assert np.isfinite(result.components_).all()
    assert (np.ptp(result.components_, axis=1) > 0).all()  # every centrotype is a map
    np.testing.assert_array_equal(result.similarity[np.ix_(empty, ~empty)], 0)
    for cluster, centrotype in enumerate(result.table.centrotype):
        assert result.labels[centrotype] == cluster


def test_write_stability_records_the_empty_maps_and_no_nan(stca_with_empty_maps, sim, tmp_path):
    result, _ = stca_with_empty_maps
    write_stability(result, tmp_path / "out")
    record = json.loads((tmp_path / "out" / "stability.json").read_text())
    assert record["n_empty_maps"] == result.n_empty
    assert record["n_clusters"] == len(result.table)
    maps = apply_mask(tmp_path / "out" / "desc-centrotypes_components.nii.gz", sim.mask_img)
    assert maps.shape[0] == len(result.table) and np.isfinite(maps).all()


@pytest.fixture(scope="module")
def func_file(sim, tmp_path_factory):
    root = tmp_path_factory.mktemp("stability_cli")
    sim.func[0].to_filename(root / "sub-01_bold.nii.gz")
    sim.mask_img.to_filename(root / "mask.nii.gz")
    return root


def test_stability_cli_warns_of_empty_maps_and_writes_no_nan(func_file, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["stability", str(func_file / "sub-01_bold.nii.gz"), "--method", "stca"]
    argv += ["--n-components", "32", "--n-runs", "2", "--mask", str(func_file / "mask.nii.gz")]
    with pytest.warns(RuntimeWarning, match="maps of each fit of STCADecomposition are empty"):
        assert main([*argv, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "stability.json").read_text())
    assert 0 < sum(record["n_empty_maps"]) < 64
    assert f"Empty maps left out, per fit: {record['n_empty_maps']}" in printed
    maps = apply_mask(out / "desc-centrotypes_components.nii.gz", func_file / "mask.nii.gz")
    assert np.isfinite(maps).all() and len(maps) == record["n_clusters"]
    assert os.listdir(out) and not [p for p in os.listdir(out) if p.startswith(".partial")]


# ---------------------------------------------------------------------- the user's files in --out
#: Files of the user in --out, named as the step's own per-method files or not at all: a
#: folder without the step's record is not ours, whatever it holds.
USER_FILES = {
    "states: a figure named as a method's": ("states", "method-stca_states.png"),
    "states: a table named as a method's": ("states", "method-stca_state_profiles.tsv"),
    "states: notes": ("states", "my_notes.txt"),
    "stability: notes": ("stability", "my_notes.txt"),
    "stability: the figure's name": ("stability", "stability.png"),
}


@pytest.mark.parametrize("case", USER_FILES)
def test_an_out_folder_of_the_users_is_refused_and_kept(
    case, sweep_dir, func_file, tmp_path, capsys
):
    command, name = USER_FILES[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_bytes(b"the user's own file")
    before = _files(tmp_path)
    if command == "states":
        argv = ["states", str(sweep_dir), "--n-states", "2"]
    else:
        argv = ["stability", str(func_file / "sub-01_bold.nii.gz"), "--method", "sdl"]
        argv += ["--n-runs", "2", "--mask", str(func_file / "mask.nii.gz")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(out), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"holds files this step did not write ({name};" in err, err
    assert _files(tmp_path) == before
