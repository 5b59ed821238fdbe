"""The demo: ICA vs SDL vs STCA on simulated rsfMRI, scored against the planted networks."""

import json
import warnings
from pathlib import Path

from .. import __version__
from .._utils.io import path_exists
from .._utils.ownership import (
    folder_lock,
    ignoring_lock,
    in_the_way,
    install,
    list_files,
    read_record,
    remove_dead_staging,
    removed_if_left_empty,
    staging_folder,
)
from ..datasets import simulate_dynamic_rsfmri
from ..evaluation import compare, format_table, table1, write_comparison_report
from ..evaluation.truth import TRUTH_THRESHOLD

__all__ = [
    "DEMO_COMPARISON",
    "DEMO_MARKER",
    "DEMO_SIMULATION",
    "DEMO_STCA",
    "check_out_dir",
    "run_demo",
]

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

#: The file that marks a folder as the demo's output: JSON with the package version and
#: ``"files"``, the path (relative, ``/``-separated) of every file the demo wrote there, the
#: only files a rerun replaces or deletes.
DEMO_MARKER = ".nilearn-stca-demo"

#: What the demo's locks call it (in the output folder, and in its staging folder).
_WHAT = "demo run"


def run_demo(out_dir, simulation=None, stca=None, comparison=None, verbose=1):
    """Simulate rsfMRI, compare ICA, SDL and STCA on it, and write tables, figures, report.

    The templates are the planted networks (where the simulator's maps reach 0.5), so the
    IoU measures recovery of the truth.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into: a new or empty folder, or the output of an earlier demo
        (recognized by its ``.nilearn-stca-demo`` file, which lists every file the demo
        wrote). A rerun replaces the files the earlier demo wrote and keeps every other
        file, also inside the demo's folders (``maps``, ``cells``...). Any other non-empty
        folder is refused before anything is computed, and so is a file of the user's where
        the demo writes one (after computing: the demo's file names are known then). The
        folder is locked while the demo runs: a second demo into it is refused at once.
        Results are written to a staging folder beside it (``.<name>.partial-<hex>``) and
        moved in at the end, so an interrupted run leaves the earlier output usable; the
        staging folders of killed demos are removed by the next demo.
    simulation, stca, comparison : dict, default=None
        Overrides of :data:`DEMO_SIMULATION`, :data:`DEMO_STCA` and :data:`DEMO_COMPARISON`.
    verbose : int, default=1

    Returns
    -------
    table : str
        Table 1 of the static maps, as Markdown (also in ``table1_static.md``).
    """
    out_dir = Path(out_dir).resolve()
    _check_not_a_file(out_dir, "out_dir")
    _owned_files(out_dir, "out_dir")  # refused before the folder is locked or made
    simulation = {**DEMO_SIMULATION, **(simulation or {})}
    stca = {**DEMO_STCA, **(stca or {})}
    comparison = {**DEMO_COMPARISON, **(comparison or {})}
    with removed_if_left_empty(out_dir), folder_lock(out_dir, _WHAT, name="out_dir"):
        owned = _owned_files(out_dir, "out_dir")
        _remove_dead_demos(out_dir)
        with staging_folder(out_dir.parent, out_dir.name, _WHAT) as work:
            results = _write_demo(work, simulation, stca, comparison, verbose)
            _move_in(work, out_dir, owned)
    return format_table(table1(results))


def _write_demo(work, simulation, stca, comparison, verbose):
    """Write the demo's output into the empty folder ``work``; return compare's results."""
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
    return results


def check_out_dir(out_dir, name="out_dir"):
    """Check that the demo may write into ``out_dir``; return the files it owns there.

    Also refuses a folder another demo is writing into (its lock is taken and released).

    Parameters
    ----------
    out_dir : Path
        The demo's output folder.
    name : str, default="out_dir"
        How error messages call it (``--out`` in the command line).

    Returns
    -------
    owned : set of str
        The files an earlier demo wrote in ``out_dir``, as its marker lists them (empty for
        a new or empty folder).

    Raises
    ------
    ValueError
        If ``out_dir`` is a file, a non-empty folder that is not a demo's output, or a
        folder another demo is writing into.
    """
    out_dir = Path(out_dir)
    _check_not_a_file(out_dir, name)
    owned = _owned_files(out_dir, name)
    if out_dir.is_dir():
        with folder_lock(out_dir, _WHAT, name=name):
            pass
    return owned


def _check_not_a_file(out_dir, name):
    if path_exists(out_dir) and not out_dir.is_dir():
        raise ValueError(f"{name} {out_dir}: exists and is not a folder.")


def _owned_files(out_dir, name):
    """The files the marker of ``out_dir`` lists; refuse a non-empty folder without one."""
    if not out_dir.is_dir() or not ignoring_lock(p.name for p in out_dir.iterdir()):
        return set()
    owned = read_record(out_dir / DEMO_MARKER)
    if owned is None:
        raise ValueError(
            f"{name} {out_dir}: a folder with files the demo did not write (it has no "
            f"{DEMO_MARKER} file); the demo deletes nothing it did not write: choose an empty "
            "or new folder."
        )
    return owned


def _marker_fields():
    return {"written_by": "nilearn-stca demo", "version": __version__}


def _remove_dead_demos(out_dir):
    """Remove the staging folders beside ``out_dir`` of demos killed while writing there."""
    for path, record in remove_dead_staging(out_dir.parent, out_dir.name, _WHAT):
        warnings.warn(
            f"Removed {path}: the unfinished output of a demo (pid {record['pid']}, started "
            f"{record.get('started', '?')}) that no longer runs.",
            stacklevel=3,
        )


def _move_in(work, out_dir, owned):
    """Move the finished output of ``work`` into ``out_dir``, replacing only what it owns."""
    written = list_files(work)
    foreign = in_the_way(out_dir, [*written, DEMO_MARKER], owned | {DEMO_MARKER})
    if foreign:
        raise ValueError(
            f"out_dir {out_dir}: {', '.join(foreign)} were not written by the demo, which "
            "would replace them: move them away, or choose an empty or new folder."
        )
    install(work, out_dir, out_dir / DEMO_MARKER, _marker_fields(), owned)
