"""Safety of ``compare``'s out_dir: one writer at a time, checked reuse, atomic flushed writes."""

import errno
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

import pandas as pd
import pytest

from nilearn_stca._utils import lock as locks
from nilearn_stca._utils.io import atomic_path
from nilearn_stca._utils.ownership import FolderLockedError, folder_lock
from nilearn_stca.baselines import SDLDecomposition
from nilearn_stca.evaluation import compare
from nilearn_stca.evaluation import comparison as compare_module
from nilearn_stca.evaluation.results_folder import (
    SETTINGS_FILE,
    ComparisonLockedError,
    ResultsFolder,
)

WINDOW = {"window_length": 20, "window_stride": 10}
N_ROWS = 3 * (1 + 4)  # 3 templates x (static + windows at 0, 10, 20, 30) per cell
SCORES = ["subject", "method", "window", "template", "component", "iou", "dice"]


def _compare(sim, out_dir, **kwargs):
    """SDL only on the simulated runs; returns the results and the warnings compare gave."""
    params = {
        "methods": ("sdl",),
        "templates": sim.maps_img,
        "template_threshold": 0.5,
        "template_names": sim.network_names,
        "mask_img": sim.mask_img,
        "out_dir": out_dir,
        "verbose": 0,
        **WINDOW,
        **kwargs,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = compare(sim.func, **params)
    return results, [str(w.message) for w in caught if "out_dir=" in str(w.message)]


@pytest.fixture(scope="module")
def clean(sim, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("clean") / "out"
    results, caught = _compare(sim, out_dir)
    assert caught == []
    return results, out_dir


@pytest.fixture(scope="module")
def interrupted(sim, tmp_path_factory):
    """An out_dir interrupted in sub-02's SDL: sub-01 finished, sub-02 a ``.csv.partial``."""
    out_dir = tmp_path_factory.mktemp("interrupted") / "out"
    original = SDLDecomposition._iter_run_maps
    seen = []

    def interrupt(self, run, starts):
        for start, maps in original(self, run, starts):
            seen.append(start)
            if len(seen) == 4 + 2:  # sub-02, second window
                raise KeyboardInterrupt
            yield start, maps

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SDLDecomposition, "_iter_run_maps", interrupt)
        with pytest.raises(KeyboardInterrupt):
            _compare(sim, out_dir)
    return out_dir


def _copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "out")


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _write_lock(folder, pid):
    record = {"pid": pid, "hostname": socket.gethostname(), "started": "2024-01-01T00:00:00"}
    (folder / locks.LOCK_FILE).write_text(json.dumps(record))


@pytest.fixture
def live_pid():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


# ---------------------------------------------------------------------- atomic_path
def test_atomic_path_flushes_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.fstat(fd).st_ino) or fsync(fd))
    target = tmp_path / "table.csv"
    with atomic_path(target) as partial:
        assert partial.name.endswith(".csv") and partial.parent == tmp_path
        partial.write_text("a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n"
    assert target.stat().st_ino in synced  # the rename keeps the flushed file's inode
    if os.name != "nt":
        assert tmp_path.stat().st_ino in synced


def test_atomic_path_flushes_every_file_of_a_folder(tmp_path, monkeypatch):
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.fstat(fd).st_ino) or fsync(fd))
    target = tmp_path / "run"
    with atomic_path(target) as partial:
        (partial / "sub").mkdir(parents=True)
        (partial / "a.txt").write_text("a")
        (partial / "sub" / "b.txt").write_text("b")
    assert {p.stat().st_ino for p in target.rglob("*.txt")} <= set(synced)


def _raise_enospc(*args):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["block", "fsync"])
def test_atomic_path_leaves_the_target_untouched_on_failure(tmp_path, monkeypatch, failing):
    target = tmp_path / "results.csv"
    target.write_text("old")
    if failing == "fsync":
        monkeypatch.setattr(os, "fsync", _raise_enospc)
    with pytest.raises(OSError, match="No space left") as raised:
        with atomic_path(target) as partial:
            partial.write_text("new, half writ")
            if failing == "block":
                _raise_enospc()
    assert raised.value.errno == errno.ENOSPC
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


# ---------------------------------------------------------------------- folder_lock
def test_folder_lock_holds_a_record_refuses_a_second_writer_and_is_released(tmp_path):
    folder = tmp_path / "new" / "out"
    with folder_lock(folder, "demo run", name="--out") as lock:
        record = json.loads(lock.read_text())
        assert record["pid"] == os.getpid()
        assert record["hostname"] == socket.gethostname()
        assert {"started", "token"} <= set(record)
        with pytest.raises(FolderLockedError, match=r"--out=.*in use by another demo run"):
            with folder_lock(folder, "demo run", name="--out"):
                pass
        assert json.loads(lock.read_text()) == record  # the refused writer left it alone
    assert not lock.exists()
    with pytest.raises(RuntimeError, match="boom"):
        with folder_lock(folder, "demo run"):
            raise RuntimeError("boom")
    assert list(folder.iterdir()) == []


def test_folder_lock_leaves_a_lock_it_no_longer_owns(tmp_path):
    with folder_lock(tmp_path, "demo run") as lock:
        lock.write_text(json.dumps({"pid": 1, "hostname": "elsewhere"}))
    assert json.loads(lock.read_text())["hostname"] == "elsewhere"


def test_unreadable_or_foreign_lock_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(locks.time, "sleep", lambda seconds: None)
    lock = tmp_path / locks.LOCK_FILE
    lock.write_text("")
    with pytest.raises(FolderLockedError, match="unreadable lock file"):
        with folder_lock(tmp_path, "compare run"):
            pass
    lock.write_text(json.dumps({"pid": 1, "hostname": "another-host", "started": "x"}))
    with pytest.raises(FolderLockedError, match="pid 1 on another-host"):
        with folder_lock(tmp_path, "compare run"):
            pass
    assert lock.exists()


def test_a_stale_lock_is_removed_by_one_process_only_while_it_is_stale(tmp_path, monkeypatch):
    lock = tmp_path / locks.LOCK_FILE
    stale = {"pid": 10, "hostname": socket.gethostname(), "token": "stale"}
    taken = {"pid": 11, "hostname": socket.gethostname(), "token": "taken"}
    lock.write_text(json.dumps(taken))
    assert not locks._break_stale_lock(lock, stale)  # replaced since it was read as stale
    assert json.loads(lock.read_text()) == taken

    lock.write_text(json.dumps(stale))
    read_lock = locks._read_lock
    rivals = []

    def read_while_a_rival_tries(path):
        # A second process taking the same stale lock over at this very moment.
        rivals.append(locks._break_stale_lock(lock, stale))
        return read_lock(path)

    monkeypatch.setattr(locks, "_read_lock", read_while_a_rival_tries)
    assert locks._break_stale_lock(lock, stale)
    assert rivals == [False]
    assert list(tmp_path.iterdir()) == []


#: The folder above the tested package, for the processes that hold a lock against this one.
PACKAGE_PARENT = str(Path(locks.__file__).parents[2])

_CONTENDER = """
import importlib, json, sys, time
sys.path.insert(0, sys.argv[1])  # the tested checkout's package, not an installed one
io = importlib.import_module("nilearn_stca._utils.lock")
alive = io._holder_alive
# Every racer reads the stale lock, then all act on it together.
io._holder_alive = lambda record: time.sleep(0.3) or alive(record)
time.sleep(float(sys.argv[3]) - time.time())
try:
    with io.folder_lock(sys.argv[2], "test"):
        start = time.time()
        time.sleep(0.5)
        print(json.dumps([start, time.time()]))
except io.FolderLockedError:
    print("null")
"""


def test_processes_racing_for_a_stale_lock_never_hold_it_together(tmp_path, dead_pid):
    _write_lock(tmp_path, dead_pid)
    go = time.time() + 1.0
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                "-W",
                "ignore",
                "-c",
                _CONTENDER,
                PACKAGE_PARENT,
                str(tmp_path),
                str(go),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    held = [json.loads(racer.communicate(timeout=60)[0]) for racer in racers]
    held = sorted(interval for interval in held if interval is not None)
    assert held  # the stale lock was taken over
    for (_, end), (start, _) in zip(held, held[1:], strict=False):
        assert end <= start
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- compare
def test_clean_run_releases_its_lock_and_checksums_every_cell(clean):
    results, out_dir = clean
    assert not (out_dir / locks.LOCK_FILE).exists()
    assert len(results) == 2 * N_ROWS
    for subject in ("sub-01", "sub-02"):
        checksum = json.loads((out_dir / "checksums" / f"{subject}_sdl.json").read_text())
        data = (out_dir / "cells" / f"{subject}_sdl.csv").read_bytes()
        assert checksum == {"rows": N_ROWS, "sha256": hashlib.sha256(data).hexdigest()}


def test_interrupted_run_releases_its_lock(interrupted):
    assert not (interrupted / locks.LOCK_FILE).exists()
    assert sorted(p.name for p in (interrupted / "cells").iterdir()) == [
        "sub-01_sdl.csv",
        "sub-02_sdl.csv.partial",
    ]
    assert [p.name for p in (interrupted / "checksums").iterdir()] == ["sub-01_sdl.json"]


@pytest.mark.parametrize("holder", ["live process", "this process"])
def test_second_compare_is_refused_while_the_lock_is_held(
    sim, interrupted, tmp_path, holder, request, monkeypatch
):
    out_dir = _copy(interrupted, tmp_path)
    monkeypatch.setattr(compare_module, "_run_cell", _fail_if_called)
    if holder == "live process":
        live_pid = request.getfixturevalue("live_pid")
        _write_lock(out_dir, live_pid)
        before = _snapshot(out_dir)
        with pytest.raises(ComparisonLockedError) as raised:
            _compare(sim, out_dir)
        pid = live_pid
    else:
        with folder_lock(out_dir, "compare run"):
            before = _snapshot(out_dir)
            with pytest.raises(ComparisonLockedError) as raised:
                _compare(sim, out_dir)
            assert _snapshot(out_dir) == before
        pid = os.getpid()
    assert isinstance(raised.value, ValueError)  # the CLI prints it on one line, exit 2
    message = str(raised.value)
    assert "\n" not in message
    assert f"out_dir={str(out_dir)!r}" in message
    assert f"pid {pid}" in message
    assert "wait for it to finish, or use another out_dir" in message
    if holder == "live process":
        assert _snapshot(out_dir) == before  # the partial and finished cells, the lock


def _fail_if_called(*args, **kwargs):
    raise AssertionError("a cell was computed")


def test_stale_lock_is_taken_over_with_a_warning(sim, clean, interrupted, tmp_path, dead_pid):
    out_dir = _copy(interrupted, tmp_path)
    _write_lock(out_dir, dead_pid)
    results, caught = _compare(sim, out_dir)
    assert len(caught) == 1
    assert f"pid {dead_pid}" in caught[0] and "no longer runs" in caught[0]
    assert not (out_dir / locks.LOCK_FILE).exists()
    assert not list(out_dir.glob(".lock*"))
    pd.testing.assert_frame_equal(results[SCORES], clean[0][SCORES])


def test_lock_is_released_after_an_error_in_a_cell(sim, clean, tmp_path, monkeypatch):
    out_dir = tmp_path / "out"

    def broken(*args, **kwargs):
        raise RuntimeError("cell failed")

    monkeypatch.setattr(compare_module, "_run_cell", broken)
    with pytest.raises(RuntimeError, match="cell failed"):
        _compare(sim, out_dir)
    assert not (out_dir / locks.LOCK_FILE).exists()
    monkeypatch.undo()
    results, _ = _compare(sim, out_dir)
    pd.testing.assert_frame_equal(results[SCORES], clean[0][SCORES])


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _inject_high_iou(path):
    rows = pd.read_csv(path)
    rows.loc[rows.index[-1], "iou"] = 0.99
    rows.to_csv(path, index=False)


@pytest.mark.parametrize(
    ("damaged", "damage", "why"),
    [
        ("cells/sub-02_sdl.csv", _truncate, "does not match its checksum"),
        ("cells/sub-02_sdl.csv", _inject_high_iou, "does not match its checksum"),
        ("checksums/sub-02_sdl.json", os.remove, "no checksum file"),
        ("checksums/sub-02_sdl.json", _truncate, "checksum file is unreadable"),
    ],
    ids=["truncated", "edited", "no checksum", "bad checksum"],
)
def test_damaged_finished_cell_is_recomputed_with_a_warning(
    sim, clean, tmp_path, monkeypatch, damaged, damage, why
):
    results, clean_dir = clean
    out_dir = _copy(clean_dir, tmp_path)
    damage(out_dir / damaged)
    ran = []
    run_cell = compare_module._run_cell
    monkeypatch.setattr(
        compare_module,
        "_run_cell",
        lambda plan, subject, method, *rest: (
            ran.append((subject, method)) or run_cell(plan, subject, method, *rest)
        ),
    )
    again, caught = _compare(sim, out_dir)
    assert ran == [("sub-02", "sdl")]
    assert len(caught) == 1
    assert "sub-02 x sdl" in caught[0] and why in caught[0]
    pd.testing.assert_frame_equal(again[SCORES], results[SCORES])
    # Repaired: the next run reuses every cell without a word.
    monkeypatch.setattr(compare_module, "_run_cell", _fail_if_called)
    third, caught = _compare(sim, out_dir)
    assert caught == []
    pd.testing.assert_frame_equal(third, again)


def test_checksum_of_another_row_count_is_refused(sim, clean, tmp_path):
    """A cell checked against a window count that changed (same bytes, stale sidecar)."""
    _, clean_dir = clean
    out_dir = _copy(clean_dir, tmp_path)
    settings = json.loads((out_dir / SETTINGS_FILE).read_text())
    folder = ResultsFolder(out_dir, settings)
    rows, why = folder.load_cell("sub-01", "sdl", N_ROWS)
    assert why is None and len(rows) == N_ROWS
    rows, why = folder.load_cell("sub-01", "sdl", N_ROWS + 3)
    assert rows is None and f"{N_ROWS} rows where {N_ROWS + 3} are expected" in why
    assert folder.load_cell("sub-03", "sdl", N_ROWS) == (None, None)


@pytest.mark.parametrize(
    ("threshold", "error"),
    [(float("nan"), ValueError), (-5, ValueError), ("abc", TypeError), (True, TypeError)],
)
def test_bad_threshold_is_refused_before_anything_is_written(sim, tmp_path, threshold, error):
    with pytest.raises(error, match=r"^threshold must be .*3\.6"):
        _compare(sim, tmp_path / "out", threshold=threshold)
    assert not (tmp_path / "out").exists()
