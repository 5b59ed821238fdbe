"""Table 1 of Liu et al. (2023) from ``compare`` results: IoU per template and method."""

import pandas as pd

#: Mean IoU with the 10 Smith et al. (2009) templates in Table 1 of Liu et al. (ISBI 2023).
PAPER_TABLE1_MEAN_IOU = {"ica": 0.25, "sdl": 0.30, "stca": 0.41}

MEAN_ROW = "mean"

#: Display names of the methods, in the order they are plotted.
METHOD_NAMES = {"ica": "ICA", "sdl": "SDL", "stca": "STCA"}

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


def table1(results, windows=False, metric="iou"):
    """Mean and standard deviation of the matched maps' IoU, per template and method.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results of :func:`~nilearn_stca.evaluation.compare`.
    windows : bool, default=False
        False: the static maps, mean ± sd over subjects (the paper's Table 1). True: the
        window maps, mean ± sd over every window of every subject.
    metric : {"iou", "dice"}, default="iou"

    Returns
    -------
    table : pandas.DataFrame
        Rows: the templates in order, then ``"mean"`` (the mean over templates, with the sd
        over subjects, or windows, of that mean). Columns: a (method, "mean" | "sd")
        MultiIndex, methods as ICA, SDL, STCA.
    """
    if metric not in ("iou", "dice"):
        raise ValueError(f"Unknown metric={metric!r}: use 'iou' or 'dice'.")
    static = is_static(results)
    rows = results[~static] if windows else results[static]
    if rows.empty:
        kind = "window" if windows else "static"
        raise ValueError(f"results has no {kind} rows to tabulate.")
    rows, methods, templates = display_results(rows)
    by_template = rows.groupby(["template", "method"], sort=False)[metric]
    table = pd.concat({"mean": by_template.mean(), "sd": by_template.std()}, axis=1)
    table = table.unstack("method").swaplevel(0, 1, axis=1)
    # The mean row: each subject's (or window's) mean over templates, then mean and sd of those.
    per_unit = rows.groupby(["subject", "window", "method"], sort=False)[metric].mean()
    by_method = per_unit.groupby("method")
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
    fmt : {"markdown", "latex", "csv", "text"}, default="markdown"
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
    if fmt == "csv":
        return table.to_csv(float_format=f"%.{decimals + 2}f")
    if fmt == "text":
        return cells.to_string()
    raise ValueError(f"Unknown fmt={fmt!r}: use 'markdown', 'latex', 'csv' or 'text'.")


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

    The paper's per-network values are not transcribed here, only its mean row.

    Returns
    -------
    table : pandas.DataFrame
        Rows ICA, SDL, STCA; columns ``ours (static)``, ``ours (windows)`` where window
        rows exist, and ``paper`` (mean IoU of Table 1 of Liu et al., 2023).
    """
    columns = {"ours (static)": table1(results)}
    if (~is_static(results)).any():
        columns["ours (windows)"] = table1(results, windows=True)
    comparison = pd.DataFrame(
        {name: cell_strings(table, decimals).loc[MEAN_ROW] for name, table in columns.items()}
    )
    display = {key.upper(): value for key, value in PAPER_TABLE1_MEAN_IOU.items()}
    comparison["paper"] = [f"{display[m]:.2f}" if m in display else "" for m in comparison.index]
    comparison.index.name = "method"
    return comparison
