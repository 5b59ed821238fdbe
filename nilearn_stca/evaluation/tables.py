"""Table 1 of Liu et al. (2023) from ``compare`` results: IoU per template and method."""

import pandas as pd

from ..methods import METHOD_REGISTRY

#: Mean IoU with the 10 Smith et al. (2009) templates in Table 1 of Liu et al. (ISBI 2023).
PAPER_TABLE1_MEAN_IOU = {"ica": 0.25, "sdl": 0.30, "stca": 0.41}

MEAN_ROW = "mean"

#: Display names of the methods, in the order they are plotted.
METHOD_NAMES = {name: method.label for name, method in METHOD_REGISTRY.items()}

STATIC = "static"


def display_results(results):
    """Copy of ``results`` with display method names, and the method and template orders.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results of :func:`nilearn_stca.evaluation.compare`.

    Returns
    -------
    results : pandas.DataFrame
        A copy whose ``method`` column holds display names ("ICA", "SDL", "STCA").
    methods : list of str
        Display names present: the known methods first (ICA, SDL, STCA), then any other in
        order of first appearance.
    templates : list of str
        Templates in order of first appearance.
    """
    results = results.copy()
    results["method"] = results["method"].map(lambda method: METHOD_NAMES.get(method, method))
    present = list(results["method"].unique())
    methods = [name for name in METHOD_NAMES.values() if name in present]
    methods += [name for name in present if name not in methods]
    return results, methods, list(results["template"].unique())


def is_static(results):
    """Boolean Series: whether each row of ``results`` is a static map (not a window)."""
    # ``window`` mixes the string "static" and ints, so compare element by element.
    return results["window"].map(lambda window: isinstance(window, str) and window == STATIC)


#: The readings of Table 1 that :func:`table1` computes, by name.
TABLE1_READINGS = ("static", "windows", "best_window")

#: Column of :func:`paper_comparison` for each reading.
PAPER_COMPARISON_COLUMNS = {
    "static": "ours, static maps",
    "windows": "ours, mean over windows",
    "best_window": "ours, best window per template (lenient)",
}


def _reading_rows(results, reading, metric):
    """The rows a reading averages, and the columns that name one of its units.

    A unit is what the mean row averages over: a subject (static and best-window readings)
    or a subject's window (windows reading).
    """
    static = is_static(results)
    if reading == STATIC:
        if not static.any():
            raise ValueError(
                "reading='static' needs the static maps' rows (window == 'static'), but "
                "results has none."
            )
        return results[static], ["subject", "method"]
    if static.all():
        raise ValueError(
            f"reading={reading!r} needs window rows (window != 'static'), but results has "
            "only static ones: score the windows with compare(..., windows=True), or use "
            "reading='static'."
        )
    rows = results[~static]
    if reading == "windows":
        return rows, ["subject", "window", "method"]
    # The best window of each subject and template; Dice increases with IoU, so the best
    # window by Dice is the best one by IoU too.
    rows = rows.groupby(["subject", "method", "template"], sort=False)[metric].max()
    return rows.reset_index(), ["subject", "method"]


def table1(results, reading="static", metric="iou"):
    """Mean and standard deviation of the matched maps' IoU, per template and method.

    The paper (Liu et al., ISBI 2023) does not say which reading its Table 1 used for STCA,
    whose maps are per window; its ICA and SDL maps are static. Put methods side by side only
    under one reading: never one method's ``"best_window"`` beside another's ``"static"``.
    The maximum over many windows is biased upwards (it keeps the luckiest of many noisy
    matches), so it is not comparable with the IoU of one static map.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results of :func:`~nilearn_stca.evaluation.compare`.
    reading : {"static", "windows", "best_window"}, default="static"
        Which maps a cell averages:

        - ``"static"``: each subject's static maps, mean ± sd over subjects;
        - ``"windows"``: every window's maps, mean ± sd over the windows of all subjects;
        - ``"best_window"``: per subject and template, the best value over all of that
          subject's windows (the window whose matched map overlaps the template most), then
          mean ± sd over subjects. Lenient: what the authors' notebook seems to report for
          STCA, not comparable with a static reading.
    metric : {"iou", "dice"}, default="iou"

    Returns
    -------
    table : pandas.DataFrame
        Rows: the templates in order, then ``"mean"``: the mean over templates of each
        subject (or, for ``"windows"``, each window of each subject), then mean and sd of
        those over subjects (windows). For ``"best_window"`` that is the mean of each
        subject's per-template bests, which may come from different windows. Columns: a
        (method, "mean" | "sd") MultiIndex, methods as ICA, SDL, STCA.

    Raises
    ------
    ValueError
        For an unknown ``reading`` or ``metric``, or if ``results`` lacks the rows that
        ``reading`` needs (window rows for ``"windows"`` and ``"best_window"``).
    """
    if reading not in TABLE1_READINGS:
        raise ValueError(
            f"Unknown reading={reading!r}: use one of "
            + ", ".join(repr(name) for name in TABLE1_READINGS)
            + "."
        )
    if metric not in ("iou", "dice"):
        raise ValueError(f"Unknown metric={metric!r}: use 'iou' or 'dice'.")
    rows, unit = _reading_rows(results, reading, metric)
    rows, methods, _ = display_results(rows)
    templates = list(results["template"].unique())
    by_template = rows.groupby(["template", "method"], sort=False)[metric]
    table = pd.concat({"mean": by_template.mean(), "sd": by_template.std()}, axis=1)
    table = table.unstack("method").swaplevel(0, 1, axis=1)
    by_method = rows.groupby(unit, sort=False)[metric].mean().groupby("method")
    for method in methods:
        table.loc[MEAN_ROW, (method, "mean")] = by_method.mean()[method]
        table.loc[MEAN_ROW, (method, "sd")] = by_method.std()[method]
    columns = pd.MultiIndex.from_product([methods, ["mean", "sd"]])
    return table.reindex(index=[*templates, MEAN_ROW], columns=columns)


def format_table(table, fmt="markdown", decimals=2):
    """Table 1 as text: one "mean ± sd" cell per template and method.

    Parameters
    ----------
    table : pandas.DataFrame
        Result of :func:`table1`.
    fmt : {"markdown", "latex", "csv", "tsv", "text"}, default="markdown"
    decimals : int, default=2

    Returns
    -------
    text : str
    """
    cells = cell_strings(table, decimals)
    if fmt == "markdown":
        return cells.to_markdown(disable_numparse=True)
    if fmt == "latex":
        return cells.to_latex(escape=True).replace("±", r"$\pm$")
    if fmt in ("csv", "tsv"):
        separator = "," if fmt == "csv" else "\t"
        return table.to_csv(sep=separator, float_format=f"%.{decimals + 2}f")
    if fmt == "text":
        return cells.to_string()
    raise ValueError(f"Unknown fmt={fmt!r}: use 'markdown', 'latex', 'csv', 'tsv' or 'text'.")


def cell_strings(table, decimals=2):
    """``table1`` as "mean ± sd" strings, one column per method ("±" alone if no sd)."""
    methods = table.columns.get_level_values(0).unique()
    cells = pd.DataFrame(index=table.index)
    for method in methods:
        mean, sd = table[(method, "mean")], table[(method, "sd")]
        cells[method] = [
            f"{m:.{decimals}f}" + ("" if pd.isna(s) else f" ± {s:.{decimals}f}")
            for m, s in zip(mean, sd, strict=True)
        ]
    cells.index.name = "template"
    return cells


def paper_comparison(results, decimals=2):
    """Our mean IoU over templates beside the paper's Table 1 mean, per method.

    The paper's per-network values are not transcribed here, only its mean row. The paper
    does not say which reading of :func:`table1` gave it: each of ours is a column.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results of :func:`~nilearn_stca.evaluation.compare`.
    decimals : int, default=2

    Returns
    -------
    table : pandas.DataFrame
        Rows ICA, SDL, STCA; columns (see :data:`PAPER_COMPARISON_COLUMNS`) the mean row of
        :func:`table1` for ``"static"`` and, where window rows exist, ``"windows"`` and
        ``"best_window"`` ("mean ± sd" strings), then ``paper`` (mean IoU of Table 1 of Liu
        et al., 2023).
    """
    readings = TABLE1_READINGS if (~is_static(results)).any() else (STATIC,)
    comparison = pd.DataFrame(
        {
            PAPER_COMPARISON_COLUMNS[reading]: cell_strings(
                table1(results, reading), decimals
            ).loc[MEAN_ROW]
            for reading in readings
        }
    )
    display = {key.upper(): value for key, value in PAPER_TABLE1_MEAN_IOU.items()}
    comparison["paper"] = [f"{display[m]:.2f}" if m in display else "" for m in comparison.index]
    comparison.index.name = "method"
    return comparison
