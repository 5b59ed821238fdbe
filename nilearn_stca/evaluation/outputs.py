"""Tables, figures and the HTML report of a finished comparison folder."""

import json
from pathlib import Path

from nilearn.image import load_img

from .._utils.io import atomic_paths
from .figures import plot_iou_over_windows, plot_matched_maps, plot_static_iou
from .report import write_report
from .report_dynamics import HEADING as DYNAMICS_HEADING
from .report_dynamics import check_n_states, write_dynamics
from .results_folder import (
    RESULTS_FILE,
    SETTINGS_FILE,
    TEMPLATES_FILE,
    read_results,
    static_maps_file,
)
from .tables import cell_strings, format_table, is_static, paper_comparison, table1

REPORT_FILE = "report.html"

#: The Table 1 files, by stem: the reading of :func:`table1` and the report's heading.
TABLE1_FILES = {
    "table1_static": (
        "static",
        "Table 1: IoU of the static maps (mean ± sd over subjects)",
    ),
    "table1_windows": (
        "windows",
        "IoU of the window maps (mean ± sd over windows and subjects)",
    ),
    "table1_best_window": (
        "best_window",
        "IoU of the best window per template (lenient: the maximum over windows; not "
        "comparable with a static reading), mean ± sd over subjects",
    ),
}


def _write_table(table, stem, stage):
    """``stem``.csv and .tsv (numbers), .md and .tex ("mean ± sd" cells), to ``stage(path)``."""
    stage(stem.with_suffix(".csv")).write_text(format_table(table, "csv", decimals=2))
    stage(stem.with_suffix(".tsv")).write_text(format_table(table, "tsv", decimals=2))
    stage(stem.with_suffix(".md")).write_text(format_table(table, "markdown") + "\n")
    stage(stem.with_suffix(".tex")).write_text(format_table(table, "latex"))


def write_comparison_report(
    out_dir,
    parameters=None,
    paper=False,
    title="STCA vs ICA vs SDL",
    threshold=3.6,
    n_states=None,
):
    """Write tables, figures and ``report.html`` from a folder filled by ``compare``.

    Every file is written under a temporary name in ``out_dir`` and renamed once all are
    written (``report.html`` last): if writing fails, e.g. on a full disk, the files of an
    earlier report are left as they were and no partial file remains.

    Parameters
    ----------
    out_dir : str or Path
        The ``out_dir`` of a finished :func:`~nilearn_stca.evaluation.compare` (it holds
        ``results.csv``, ``templates.nii.gz`` and ``maps/``).
    parameters : dict, default=None
        Shown in the report, with the comparison's settings (``comparison.json``).
    paper : bool, default=False
        Add the paper's Table 1 mean IoU beside ours (meaningful with the Smith 2009
        templates and :func:`~nilearn_stca.evaluation.comparison.paper_protocol`).
    title : str, default="STCA vs ICA vs SDL"
    threshold : float, default=3.6
        z threshold of the maps in the matched-maps figures.
    n_states : int, default=None
        Number of brain states (at least 2) of each method in the "Dynamics" section, if
        windows were scored: k-means on the windows' presence vectors (the IoU of each
        template's matched map), all subjects of a method together. If None, each method's
        number of states is the one of 2 to 8 (below its number of windows) with the best
        silhouette, or 1 if all its windows have the same presence vector. A method with
        fewer than 3 windows, or fewer than ``n_states``, gets a note instead of states.

    Returns
    -------
    files : dict
        ``{"report": Path, "tables": [Path...], "figures": [Path...]}``. Written:
        ``table1_static.{csv,tsv,md,tex}``, ``table1_windows.*`` and ``table1_best_window.*``
        (if windows were scored; see the readings of :func:`~nilearn_stca.evaluation.table1`),
        ``paper_table1.md`` (if ``paper``), ``fig5_iou_over_windows.png``,
        ``table1_static.png``, ``matched_maps_<method>.png`` (first subject's static maps),
        if windows were scored the brain states' ``states_<method>.png``,
        ``state_occupancy.png`` and ``states_metrics.tsv`` (per method, subject and state:
        ``temporal_fraction``, ``persistence`` in windows, ``persistence_seconds`` if the
        settings give ``t_r``, ``counts``, and the subject's ``transition_frequency``; see
        :func:`~nilearn_stca.states.state_metrics`), and ``report.html``.
    """
    check_n_states(n_states)
    out_dir = Path(out_dir)
    if not (out_dir / RESULTS_FILE).is_file():
        raise ValueError(f"{out_dir} has no {RESULTS_FILE}: run compare(..., out_dir=) first.")
    results = read_results(out_dir / RESULTS_FILE)
    static = is_static(results)
    # stem: (heading, table); the window readings only where windows were scored.
    tables = {
        stem: (heading, table1(results, reading))
        for stem, (reading, heading) in TABLE1_FILES.items()
        if reading == "static" or (~static).any()
    }
    settings_file = out_dir / SETTINGS_FILE
    settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    # Each file goes to a temporary name; all are renamed once every one is written.
    with atomic_paths() as stage_file:
        staged = {}

        def stage(path):
            staged[path] = stage_file(path)
            return staged[path]

        # Staged first, so renamed last: a new report.html means every file is new.
        report_file = stage(out_dir / REPORT_FILE)
        written_tables = []
        shown = {}
        for stem, (heading, table) in tables.items():
            _write_table(table, out_dir / stem, stage)
            written_tables += [out_dir / f"{stem}{ext}" for ext in (".csv", ".tsv", ".md", ".tex")]
            shown[heading] = cell_strings(table)
        if paper:
            comparison = paper_comparison(results)
            stage(out_dir / "paper_table1.md").write_text(
                comparison.to_markdown(disable_numparse=True) + "\n"
            )
            written_tables.append(out_dir / "paper_table1.md")
            shown[
                "Mean IoU: ours, under each reading, beside Table 1 of Liu et al. (2023) (the "
                "paper does not say which reading it used)"
            ] = comparison

        figures = {}
        if (~static).any():
            path = out_dir / "fig5_iou_over_windows.png"
            plot_iou_over_windows(results, output_file=stage(path))
            figures["IoU of the matched window maps over time (Fig. 5 layout)"] = path
        path = out_dir / "table1_static.png"
        plot_static_iou(results, kind="bar", output_file=stage(path))
        figures["IoU of the static maps per template (Table 1 as bars; mean ± sd)"] = path
        figures.update(_matched_maps_figures(out_dir, results[static], threshold, stage))
        written_figures = list(figures.values())
        sections = {}
        if (~static).any():
            dynamics = write_dynamics(
                results, out_dir, stage, n_states=n_states, t_r=settings.get("t_r")
            )
            section = dynamics.section
            section["figures"] = {c: staged[p] for c, p in section["figures"].items()}
            sections[DYNAMICS_HEADING] = section
            written_tables += dynamics.tables
            written_figures += dynamics.figures
        write_report(
            report_file,
            results,
            tables=shown,
            figures={caption: str(staged[path]) for caption, path in figures.items()},
            parameters={**(parameters or {}), "comparison": settings},
            title=title,
            sections=sections,
        )
    return {
        "report": out_dir / REPORT_FILE,
        "tables": written_tables,
        "figures": written_figures,
    }


def _matched_maps_figures(out_dir, static_rows, threshold, stage):
    """For the first subject, each method's matched static maps over the templates.

    Each figure is saved to ``stage(path)``; returns ``{caption: path}``.
    """
    templates_img = load_img(out_dir / TEMPLATES_FILE)
    subject = static_rows["subject"].iloc[0]
    figures = {}
    for method, rows in static_rows[static_rows.subject == subject].groupby("method", sort=False):
        maps_file = static_maps_file(out_dir, subject, method)
        if not maps_file.exists():  # a folder written before the BIDS-derivative names
            maps_file = out_dir / "maps" / f"{subject}_{method}.nii.gz"
        path = out_dir / f"matched_maps_{method}.png"
        plot_matched_maps(
            load_img(maps_file),
            templates_img,
            components=rows["component"].astype(int).tolist(),
            titles=[
                f"{r.template}: map {r.component}, IoU {r.iou:.2f}" for r in rows.itertuples()
            ],
            threshold=threshold,
            output_file=stage(path),
        )
        figures[
            f"{method.upper()}, {subject}: matched static maps at z >= {threshold} over the "
            "templates' outlines (Fig. 3 layout)"
        ] = path
    return figures
