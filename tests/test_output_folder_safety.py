"""Output folders shared with the user: the demo's ``--out`` and a node's working folder.

Each case is a row of a table. Data-loss rows checksum (sha256) the user's files before and
after, and assert they are byte-identical and that nothing else was created.
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nibabel as nib
import pytest
from nipype.pipeline import engine as pe
from test_demo_cli import TINY_COMPARISON, TINY_SIMULATION, TINY_STCA

from nilearn_stca._utils import ownership
from nilearn_stca._utils.ownership import install
from nilearn_stca.baselines import ICADecomposition
from nilearn_stca.cli import main
from nilearn_stca.cli.demo import DEMO_MARKER, run_demo
from nilearn_stca.interfaces import (
    ICA,
    SDL,
    STCA,
    ComparisonReport,
    EvaluateIoU,
    PrepareComparison,
    Stability,
    States,
)
from nilearn_stca.interfaces._node_outputs import NODE_RECORD
from nilearn_stca.windows.sweep import write_window_sweep


# ---------------------------------------------------------------------- helpers
def _digest(path):
    if path.is_symlink():
        return f"link to {os.readlink(path)}"
    if path.is_dir():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(folder):
    """Every path under ``folder``: the sha256 of each file, None for each folder."""
    return {path.relative_to(folder).as_posix(): _digest(path) for path in Path(folder).rglob("*")}


def _files(folder):
    return {name for name, digest in _snapshot(folder).items() if digest is not None}


def _write(folder, files):
    """Write the user's ``files`` (relative path -> bytes) into ``folder``."""
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return set(files)


def _quiet_demo(out):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_demo(out, TINY_SIMULATION, TINY_STCA, TINY_COMPARISON, verbose=0)


@pytest.fixture(scope="module")
def fresh_demo(tmp_path_factory):
    """One tiny demo's output folder, copied by the tests that change it."""
    out = tmp_path_factory.mktemp("fresh") / "demo"
    _quiet_demo(out)
    return out


@pytest.fixture
def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


@pytest.fixture
def live_pid():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process.pid
    process.kill()
    process.wait()


def _lock_record(folder, pid, what):
    """The lock file a writer ``what`` of process ``pid`` on this host holds in ``folder``."""
    record = {
        "pid": pid,
        "hostname": socket.gethostname(),
        "started": "2026-01-01T00:00:00+00:00",
        "what": what,
        "token": "0" * 32,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ownership.LOCK_FILE).write_text(json.dumps(record))


# ---------------------------------------------------------------------- demo reruns
USER_FILES = {
    "maps/my_edited_map.nii.gz": b"the map I edited",
    "cells/my_extra_analysis.csv": b"a,b\n1,2\n",
    "notes.txt": b"mine",
    "mine/plot.png": b"mine too",
}


def _rewrite_marker(out, change):
    marker = json.loads((out / DEMO_MARKER).read_text())
    marker["files"] = change(marker["files"])
    (out / DEMO_MARKER).write_text(json.dumps(marker))


def _user_files_in_the_demos_folders(out):
    return _write(out, USER_FILES), set()


def _old_marker_of_top_level_names(out):
    """A marker as versions before 0.x wrote it: top-level names, folders included."""
    _rewrite_marker(out, lambda files: sorted({name.split("/")[0] for name in files}))
    _rewrite_marker(out, lambda files: [*files, "old_figure.png"])
    (out / "old_figure.png").write_bytes(b"an older demo's figure")
    return _write(out, USER_FILES), {"old_figure.png"}


def _files_an_older_demo_wrote(out):
    stale = {"maps/old_map.nii.gz": b"old", "old/figure.png": b"old", "old_table.md": b"old"}
    _write(out, stale)
    _rewrite_marker(out, lambda files: [*files, *stale])
    return _write(out, USER_FILES), set(stale)


def _user_file_where_the_demo_writes_one(out):
    name = "maps/sub-01_method-ica_desc-static_components.nii.gz"
    _rewrite_marker(out, lambda files: [f for f in files if f != name])
    return _write(out, {name: b"the user's maps"}), set()


def _user_folder_where_the_demo_writes_a_file(out):
    _rewrite_marker(out, lambda files: [f for f in files if f != "report.html"])
    (out / "report.html").unlink()
    return _write(out, {"report.html/index.html": b"the user's site"}), set()


def _a_rerun_interrupted_while_moving_in(out):
    """A rerun stopped after moving 3 of its files in: the marker lists every file of both.

    The 3 files are new (an older demo did not write them), so only the marker the rerun
    writes before moving anything in lists them.
    """
    users = _write(out, USER_FILES)
    first = sorted(json.loads((out / DEMO_MARKER).read_text())["files"])[:3]
    _rewrite_marker(out, lambda files: [name for name in files if name not in first])
    for name in first:
        (out / name).unlink()
    replace, moved = os.replace, []

    def interrupt_the_fifth(source, target):
        moved.append(target)  # the first is the marker's
        if len(moved) == 5:
            raise KeyboardInterrupt
        replace(source, target)

    def interrupted_install(*args, **kwargs):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "replace", interrupt_the_fifth)
            return install(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr("nilearn_stca.cli.demo.install", interrupted_install)
        _quiet_demo(out)
    listed = set(json.loads((out / DEMO_MARKER).read_text())["files"])
    assert set(first) <= _files(out)
    assert _files(out) - users - {DEMO_MARKER} <= listed
    assert [p.name for p in out.parent.iterdir()] == ["demo"]
    return users, set()


#: case -> (setup(out) -> (user's files, an older demo's files), the refusal or None).
DEMO_RERUNS = {
    "user's files in the demo's folders are kept": (_user_files_in_the_demos_folders, None),
    "old marker of top-level names: its folders keep the user's files": (
        _old_marker_of_top_level_names,
        None,
    ),
    "files an older demo wrote and this one does not are removed": (
        _files_an_older_demo_wrote,
        None,
    ),
    "a rerun after one interrupted while moving its files in": (
        _a_rerun_interrupted_while_moving_in,
        None,
    ),
    "user's file where the demo writes one is refused": (
        _user_file_where_the_demo_writes_one,
        r"sub-01_method-ica_desc-static_components.nii.gz were not written by the demo",
    ),
    "user's folder where the demo writes a file is refused": (
        _user_folder_where_the_demo_writes_a_file,
        r"out_dir .*demo: report.html were not written by the demo, which would replace them",
    ),
}


@pytest.mark.parametrize("case", DEMO_RERUNS)
def test_demo_rerun_keeps_the_users_files(case, fresh_demo, tmp_path):
    setup, refusal = DEMO_RERUNS[case]
    out = tmp_path / "demo"
    shutil.copytree(fresh_demo, out)
    users, stale = setup(out)
    before = _snapshot(tmp_path)
    if refusal is not None:
        with pytest.raises(ValueError, match=refusal):
            _quiet_demo(out)
        assert _snapshot(tmp_path) == before
        return
    _quiet_demo(out)
    after = _snapshot(out)
    assert {name: after[name] for name in users} == {
        name: before[f"demo/{name}"] for name in users
    }
    demos = json.loads((fresh_demo / DEMO_MARKER).read_text())["files"]
    assert _files(out) == set(demos) | users | {DEMO_MARKER}  # the stale files are gone
    assert json.loads((out / DEMO_MARKER).read_text())["files"] == demos
    assert not stale & _files(out)
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # nothing left beside it


# ---------------------------------------------------------------------- demo lock
#: The folder above the tested package, for the processes that hold a lock against this one.
PACKAGE_PARENT = str(Path(ownership.__file__).parents[2])

_HOLDER = """
import importlib, sys, time
sys.path.insert(0, sys.argv[1])  # the tested checkout's package, not an installed one
io = importlib.import_module("nilearn_stca._utils.ownership")
with io.folder_lock(sys.argv[2], "demo run", name="--out"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def held(request):
    """``hold(folder)``: a live process holds ``folder``'s lock as a running demo does."""
    holders = []

    def hold(folder):
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, PACKAGE_PARENT, str(folder)],
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout.readline() == "held\n"
        return holder.pid

    yield hold
    for holder in holders:
        holder.kill()
        holder.wait()


#: case -> what --out holds while another demo writes into it.
LOCKED = {
    "a demo writing a new folder": lambda out, fresh: None,
    "a demo rerunning into its earlier output": lambda out, fresh: shutil.copytree(
        fresh, out, dirs_exist_ok=True
    ),
}


@pytest.mark.parametrize("case", LOCKED)
def test_second_demo_is_refused_at_once(case, fresh_demo, held, tmp_path, monkeypatch, capsys):
    def simulate(**kwargs):
        raise AssertionError("a locked --out must be refused before anything is computed")

    monkeypatch.setattr("nilearn_stca.cli.demo.simulate_dynamic_rsfmri", simulate)
    out = tmp_path / "demo"
    pid = held(out)
    LOCKED[case](out, fresh_demo)
    before = _snapshot(tmp_path)
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(out), "--quiet"])
    assert time.perf_counter() - started < 10
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"nilearn-stca: error: --out={str(out)!r} is in use by another demo")
    assert f"demo run pid {pid} on {socket.gethostname()}" in err
    assert _snapshot(tmp_path) == before  # nothing written, nothing left beside it
    locked = r"out_dir=.* is in use by another demo run"
    with pytest.raises(ownership.FolderLockedError, match=locked):
        run_demo(out, TINY_SIMULATION, TINY_STCA, TINY_COMPARISON, verbose=0)
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------------- stale partial folders
def _partial(tmp_path, name, pid, what="demo run"):
    """A staging folder as a demo killed while writing leaves it (its lock and output)."""
    partial = tmp_path / name
    _write(partial, {"output/results.csv": b"half", "output/cells/sub-01_ica.csv": b"x"})
    if pid is not None:
        _lock_record(partial, pid, what)
    return partial


#: case -> (setup(tmp_path, dead pid, live pid) -> the folder beside --out, whether removed).
STALE = {
    "ours, its demo killed": (
        lambda t, dead, live: _partial(t, ".demo.partial-0a1b2c3d", dead),
        True,
    ),
    "ours, its demo still running": (
        lambda t, dead, live: _partial(t, ".demo.partial-0a1b2c3d", live),
        False,
    ),
    "no lock record (not provably ours)": (
        lambda t, dead, live: _partial(t, ".demo.partial-0a1b2c3d", None),
        False,
    ),
    "another writer's record": (
        lambda t, dead, live: _partial(t, ".demo.partial-0a1b2c3d", dead, what="compare run"),
        False,
    ),
    "another output folder's": (
        lambda t, dead, live: _partial(t, ".results.partial-0a1b2c3d", dead),
        False,
    ),
    "not our pattern": (lambda t, dead, live: _partial(t, ".demo.partial-mine", dead), False),
    "a link named as ours": (
        lambda t, dead, live: (t / ".demo.partial-0a1b2c3d").symlink_to(
            _partial(t, "elsewhere", dead)
        ),
        False,
    ),
}


@pytest.mark.parametrize("case", STALE)
def test_demo_removes_only_its_own_dead_partial_folders(case, tmp_path, dead_pid, live_pid):
    setup, removed = STALE[case]
    setup(tmp_path, dead_pid, live_pid)
    before = _snapshot(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_demo(tmp_path / "demo", TINY_SIMULATION, TINY_STCA, TINY_COMPARISON, verbose=0)
    removals = [str(w.message) for w in caught if str(w.message).startswith("Removed ")]
    partial = tmp_path / ".demo.partial-0a1b2c3d"
    if removed:
        assert not _exists(partial)
        assert removals == [
            f"Removed {partial}: the unfinished output of a demo (pid {dead_pid}, started "
            "2026-01-01T00:00:00+00:00) that no longer runs."
        ]
    else:
        assert {k: v for k, v in _snapshot(tmp_path).items() if k in before} == before
        assert removals == []
    tops = {name.split("/")[0] for name in before} - ({partial.name} if removed else set())
    assert {p.name for p in tmp_path.iterdir()} == tops | {"demo"}


def _exists(path):
    return path.exists() or path.is_symlink()


# ---------------------------------------------------------------------- nipype nodes
FAST = {"window_length": 20, "window_stride": 10, "random_state": 0}


@pytest.fixture(scope="module")
def inputs(sim, tmp_path_factory):
    """Sub-01's run, the mask, the planted maps, an ICA fit's maps and window sweep, and the
    IoU table of the fit, as files."""
    folder = tmp_path_factory.mktemp("inputs")
    paths = {name: str(folder / f"{name}.nii.gz") for name in ("run", "mask", "maps", "ica")}
    sim.func[0].to_filename(paths["run"])
    sim.mask_img.to_filename(paths["mask"])
    sim.maps_img.to_filename(paths["maps"])
    paths["sweep"] = str(folder / "sweep")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = ICADecomposition(mask=paths["mask"], n_components=3, n_init=1, **FAST)
        write_window_sweep(estimator, paths["run"], paths["sweep"], fit=True)
    estimator.components_img_.to_filename(paths["ica"])
    (folder / "evaluate").mkdir()
    paths["iou"] = _run_node(_evaluate(paths), folder / "evaluate").out_csv
    return paths


def _evaluate(inputs):
    return EvaluateIoU(
        components_file=inputs["ica"],
        windows_dir=inputs["sweep"],
        mask_file=inputs["mask"],
        templates=inputs["maps"],
        template_threshold=0.5,
        subject="sub-01",
        method="ica",
    )


def _sdl(inputs, **params):
    params = {"n_components": 3, **FAST, **params}
    return SDL(in_files=[inputs["run"]], mask_file=inputs["mask"], **params)


#: node -> how to make it from the input files.
NODES = {
    "SDL": _sdl,
    "SDL without windows": lambda inputs: _sdl(inputs, windows=False),
    "ICA": lambda inputs: ICA(
        in_files=[inputs["run"]], mask_file=inputs["mask"], n_components=3, n_init=1, **FAST
    ),
    "STCA": lambda inputs: STCA(
        in_files=[inputs["run"]],
        mask_file=inputs["mask"],
        n_components=3,
        autoencoder_widths=(4, 4, 8, 8),
        **FAST,
    ),
    "States": lambda inputs: States(windows_dirs=[inputs["sweep"]], n_states=2),
    "EvaluateIoU": _evaluate,
    "PrepareComparison": lambda inputs: PrepareComparison(
        in_files=[inputs["run"]], templates=inputs["maps"], template_threshold=0.5
    ),
    "ComparisonReport": lambda inputs: ComparisonReport(
        in_csvs=[inputs["iou"]], maps_files=[inputs["ica"]], templates_file=inputs["maps"]
    ),
    "Stability": lambda inputs: Stability(
        in_files=[inputs["run"]],
        method="sdl",
        method_params={"n_components": 3},
        mask_file=inputs["mask"],
        n_runs=2,
    ),
}


def _run_node(node, folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's warnings on tiny data
        return node.run(cwd=str(folder)).outputs


def _ran_before(inputs, folder, files):
    """The SDL node's output in ``folder``, then the user's ``files`` written there."""
    _run_node(_sdl(inputs), folder)
    return _write(folder, files)


#: case -> (node, setup(inputs, cwd) -> the user's files, the refusal's file names).
NODE_REFUSALS = {
    "a windows folder of the user's": ("SDL", {"windows/my_windows.csv": b"w"}, "windows/"),
    "the user's components": ("SDL", {"components.nii.gz": b"mine"}, "components.nii.gz"),
    "the user's FBNs, windows off": ("SDL without windows", {"fbns.nii.gz": b"m"}, "fbns"),
    "the user's mask": ("ICA", {"mask.nii.gz": b"mine"}, "mask.nii.gz"),
    "a model folder of the user's": ("STCA", {"model/weights.pt": b"mine"}, "model/weights"),
    "the user's model.pkl": ("STCA", {"model.pkl": b"mine"}, "model.pkl"),
    "a file named as the windows folder": ("SDL", {"windows": b"mine"}, "holds windows,"),
    "a states folder of the user's": ("States", {"states/notes.txt": b"m"}, "states/notes"),
    "the user's stability table": (
        "Stability",
        {"stability/stability.tsv": b"mine"},
        "stability/stability.tsv",
    ),
    "the user's IoU table": ("EvaluateIoU", {"iou.csv": b"mine"}, "iou.csv"),
    "the user's mask and templates": (
        "PrepareComparison",
        {"mask.nii.gz": b"mine", "templates.nii.gz": b"mine"},
        "holds mask.nii.gz, templates.nii.gz,",
    ),
    "a comparison folder of the user's": (
        "ComparisonReport",
        {"comparison/report.html": b"mine"},
        "comparison/report.html",
    ),
    "a file of the user's in the node's own windows": (
        "SDL",
        lambda inputs, cwd: _ran_before(inputs, cwd, {"windows/notes.txt": b"mine"}),
        "windows/notes.txt",
    ),
    "a record file that is not the node's": (
        "SDL",
        {NODE_RECORD: b"not a record", "components.nii.gz": b"mine"},
        ".nilearn-stca-node",
    ),
}


@pytest.mark.parametrize("case", NODE_REFUSALS)
def test_node_refuses_outputs_it_did_not_write(case, inputs, tmp_path):
    node, setup, named = NODE_REFUSALS[case]
    cwd = tmp_path / "my_folder"
    cwd.mkdir()
    _write(cwd, {"notes.txt": b"the user's notes"})
    if callable(setup):
        setup(inputs, cwd)
    else:
        _write(cwd, setup)
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError) as raised:
        _run_node(NODES[node](inputs), cwd)
    message = str(raised.value).splitlines()[0]
    assert message.startswith(f"cwd={str(cwd)!r} ")
    assert named in message
    assert message.endswith(
        "away, or run the node in another folder (run(cwd=...), or in a nipype workflow)."
    )
    assert _snapshot(tmp_path) == before


#: case -> (first node, second node, whether the first node's files stay): both run in a
#: folder where the user keeps files.
NODE_RERUNS = {
    "SDL again": ("SDL", "SDL", False),
    "SDL without windows removes its earlier windows": ("SDL", "SDL without windows", False),
    "STCA again": ("STCA", "STCA", False),
    "States again": ("States", "States", False),
    "SDL beside Stability": ("Stability", "SDL", True),
    "EvaluateIoU beside SDL": ("SDL", "EvaluateIoU", True),
    "PrepareComparison again": ("PrepareComparison", "PrepareComparison", False),
    "ComparisonReport again": ("ComparisonReport", "ComparisonReport", False),
}


def _written(outputs, cwd):
    """Every file under the paths of a node's outputs, relative to ``cwd``."""
    written = set()
    paths = [Path(value) for value in outputs.get().values() if isinstance(value, str)]
    for path in paths:
        if path.is_dir():
            written |= {path.relative_to(cwd).joinpath(name).as_posix() for name in _files(path)}
        elif path.is_file():
            written.add(path.relative_to(cwd).as_posix())
    return written


@pytest.mark.parametrize("case", NODE_RERUNS)
def test_node_rerun_replaces_only_its_own_files(case, inputs, tmp_path):
    first, second, stays = NODE_RERUNS[case]
    cwd = tmp_path / "my_folder"
    cwd.mkdir()
    users = _write(cwd, {"notes.txt": b"the user's notes", "data/other.nii.gz": b"mine"})
    before = _snapshot(cwd)
    _run_node(NODES[first](inputs), cwd)
    first_files = _files(cwd) - users - {NODE_RECORD}
    assert first_files
    outputs = _run_node(NODES[second](inputs), cwd)
    after = _snapshot(cwd)
    assert {name: after[name] for name in users} == {name: before[name] for name in users}
    record = set(json.loads((cwd / NODE_RECORD).read_text())["files"])
    assert record == _written(outputs, cwd) | (first_files if stays else set())
    assert _files(cwd) == users | record | {NODE_RECORD}  # the earlier outputs replaced
    if "without windows" in case:
        assert "windows/sweep.json" in first_files and not (cwd / "windows").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["my_folder"]


def test_nipype_reruns_a_node_in_its_own_folder(inputs, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = pe.Node(_sdl(inputs), name="sdl", base_dir=str(tmp_path)).run()
        # Other inputs: nipype empties the node's folder and reruns it there.
        node = pe.Node(_sdl(inputs, n_components=2), name="sdl", base_dir=str(tmp_path))
        second = node.run()
        node.overwrite = True  # the same inputs, run again: the same
        third = node.run()
    components = first.outputs.components_file
    assert second.outputs.components_file == third.outputs.components_file == components
    assert nib.load(components).shape[3] == 2
    folder = Path(components).parent
    nipypes = {name for name in _files(folder) if name.startswith(("_", "result_"))}
    assert _files(folder) - nipypes == _written(third.outputs, folder)  # nothing else left
    assert {"components.nii.gz", "windows/sweep.json"} <= _written(third.outputs, folder)
