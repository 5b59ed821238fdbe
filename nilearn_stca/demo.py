"""The demo: ICA vs SDL vs STCA on simulated rsfMRI, scored against the planted networks."""

import json
import os
import shutil
import tempfile
from pathlib import Path

from .datasets import simulate_dynamic_rsfmri
from .evaluation import compare, format_table, table1, write_comparison_report
from .evaluation.truth import TRUTH_THRESHOLD

#: The simulated data: one 240-scan run at 8 mm, with the Smith 2009 networks when nilearn's
#: data folder holds them (procedural networks otherwise).
DEMO_SIMULATION = {"n_subjects": 1, "n_scans": 240, "resolution": 8, "snr": 3.0, "random_state": 0}

#: STCA's settings: 201 optimizer steps (one epoch over the stride-1 windows), enough for the
#: attention maps to leave their random start at lr 1e-3, in a few minutes on 2 CPU cores.
DEMO_STCA = {"n_components": 16, "n_epochs": 1, "learning_rate": 1e-3}

#: The comparison: the paper's windows (40 scans, stride 1) and threshold (z >= 3.6); every
#: 10th window is scored, because one CanICA per window costs seconds.
DEMO_COMPARISON = {"window_length": 40, "window_stride": 1, "sweep_stride": 10, "threshold": 3.6}


def run_demo(out_dir, simulation=None, stca=None, comparison=None, verbose=1):
    """Simulate rsfMRI, compare ICA, SDL and STCA on it, and write tables, figures, report.

    The templates are the planted networks (where the simulator's maps reach 0.5), so the
    IoU measures recovery of the truth.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (replaced if it exists). Results are written to a temporary
        folder beside it and moved in at the end, so an interrupted run leaves no partial
        output.
    simulation, stca, comparison : dict, default=None
        Overrides of :data:`DEMO_SIMULATION`, :data:`DEMO_STCA` and :data:`DEMO_COMPARISON`.
    verbose : int, default=1

    Returns
    -------
    table : str
        Table 1 of the static maps, as Markdown (also in ``table1_static.md``).
    """
    out_dir = Path(out_dir)
    simulation = {**DEMO_SIMULATION, **(simulation or {})}
    stca = {**DEMO_STCA, **(stca or {})}
    comparison = {**DEMO_COMPARISON, **(comparison or {})}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
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
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return format_table(table1(results))
