"""The demo: ICA vs SDL vs STCA on simulated rsfMRI, scored against the planted networks."""

import json
import os
import shutil
import uuid
from pathlib import Path

from . import __version__
from ._io import atomic_path
from .datasets import simulate_dynamic_rsfmri
from .evaluation import compare, format_table, table1, write_comparison_report
from .evaluation.truth import TRUTH_THRESHOLD

#: The simulated data: one 240-scan run at 8 mm, with the Smith 2009 networks when nilearn's
#: data folder holds them (procedural networks otherwise).
DEMO_SIMULATION = {"n_subjects": 1, "n_scans": 240, "resolution": 8, "snr": 3.0, "random_state": 0}

#: STCA's settings: 16 maps, 201 optimizer steps (one epoch over the stride-1 windows) at the
#: default learning rate 1e-3, with the default regression decoder: about a minute on 2 CPU
#: cores.
DEMO_STCA = {"n_components": 16, "n_epochs": 1, "learning_rate": 1e-3}

#: The comparison: the paper's windows (40 scans, stride 1) and threshold (z >= 3.6); every
#: 10th window is scored, because one CanICA per window costs seconds.
DEMO_COMPARISON = {"window_length": 40, "window_stride": 1, "sweep_stride": 10, "threshold": 3.6}

#: The file that marks a folder as the demo's output: JSON with the package version and the
#: files and folders the demo wrote there, the only ones a rerun replaces.
DEMO_MARKER = ".nilearn-stca-demo"


def run_demo(out_dir, simulation=None, stca=None, comparison=None, verbose=1):
    """Simulate rsfMRI, compare ICA, SDL and STCA on it, and write tables, figures, report.

    The templates are the planted networks (where the simulator's maps reach 0.5), so the
    IoU measures recovery of the truth.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into: a new or empty folder, or the output of an earlier demo
        (recognized by its ``.nilearn-stca-demo`` file), whose files and folders written by
        the demo are replaced while any other file is kept. Any other non-empty folder is
        refused before anything is computed. Results are written to a temporary folder
        beside it and moved in at the end, so an interrupted run leaves the earlier output
        as it was.
    simulation, stca, comparison : dict, default=None
        Overrides of :data:`DEMO_SIMULATION`, :data:`DEMO_STCA` and :data:`DEMO_COMPARISON`.
    verbose : int, default=1

    Returns
    -------
    table : str
        Table 1 of the static maps, as Markdown (also in ``table1_static.md``).
    """
    out_dir = Path(out_dir).resolve()
    owned = _check_out_dir(out_dir)
    simulation = {**DEMO_SIMULATION, **(simulation or {})}
    stca = {**DEMO_STCA, **(stca or {})}
    comparison = {**DEMO_COMPARISON, **(comparison or {})}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp, whose 0700 the output folder would keep once moved in: mkdir
    # gives the permissions of the umask.
    work = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        data = simulate_dynamic_rsfmri(**simulation)
        results = compare(
            data.func,
            methods=("ica", "sdl", "stca"),
            templates=data.maps_img,
            template_threshold=TRUTH_THRESHOLD,
            template_names=data.network_names,
            mask_img=data.mask_img,
            method_params={"stca": stca},
            out_dir=work,
            verbose=verbose,
            **comparison,
        )
        data.maps_img.to_filename(work / "planted_networks.nii.gz")
        parameters = {
            "simulation": simulation,
            "stca": stca,
            "comparison": comparison,
            "description": data.description,
        }
        (work / "parameters.json").write_text(json.dumps(parameters, indent=2))
        write_comparison_report(
            work,
            parameters=parameters,
            title="Demo: ICA vs SDL vs STCA on simulated rsfMRI with planted networks",
            threshold=comparison["threshold"],
        )
        written = sorted(path.name for path in work.iterdir())
        (work / DEMO_MARKER).write_text(_marker_text(written))
        _move_in(work, out_dir, owned, written)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return format_table(table1(results))


def _check_out_dir(out_dir, name="out_dir"):
    """Check that the demo may write into ``out_dir``; return the entries it owns there.

    Parameters
    ----------
    out_dir : Path
        The demo's output folder.
    name : str, default="out_dir"
        How error messages call it (``--out`` in the command line).

    Returns
    -------
    owned : set of str
        Names of the files and folders an earlier demo wrote in ``out_dir`` (empty for a
        new or empty folder).

    Raises
    ------
    ValueError
        If ``out_dir`` is a file, or a non-empty folder that is not a demo's output.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{name} {out_dir}: exists and is not a folder.")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return set()
    owned = _owned_entries(out_dir)
    if owned is None:
        raise ValueError(
            f"{name} {out_dir}: a folder with files the demo did not write (it has no "
            f"{DEMO_MARKER} file); the demo deletes nothing it did not write: choose an empty "
            "or new folder."
        )
    return owned


def _marker_text(names):
    marker = {"written_by": "nilearn-stca demo", "version": __version__, "files": names}
    return json.dumps(marker, indent=2)


def _owned_entries(out_dir):
    """The names listed by ``out_dir``'s marker, or None if it has no readable marker."""
    try:
        names = json.loads((out_dir / DEMO_MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(names, list):
        return None
    # Plain names only: a hand-edited marker must not reach outside the folder.
    return {n for n in names if isinstance(n, str) and n == Path(n).name and n not in ("", "..")}


def _move_in(work, out_dir, owned, written):
    """Move the finished output of ``work`` into ``out_dir``, replacing only what it owns."""
    if not out_dir.exists():
        os.replace(work, out_dir)
        return
    foreign = [name for name in written if _exists(out_dir / name) and name not in owned]
    if foreign:
        raise ValueError(
            f"out_dir {out_dir}: {', '.join(foreign)} were not written by the demo, which "
            "would replace them: move them away, or choose an empty or new folder."
        )
    # Until the end the marker lists the old and the new entries, so that a rerun after an
    # interruption in between still knows every entry a demo wrote.
    with atomic_path(out_dir / DEMO_MARKER) as partial:
        partial.write_text(_marker_text(sorted(owned | set(written))))
    for name in written:
        _remove(out_dir / name)
        os.replace(work / name, out_dir / name)
    for name in owned - set(written):
        _remove(out_dir / name)
    os.replace(work / DEMO_MARKER, out_dir / DEMO_MARKER)


def _exists(path):
    return path.exists() or path.is_symlink()


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif _exists(path):
        path.unlink()
