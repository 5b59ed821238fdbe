"""Figures of a method comparison: IoU over windows, static IoU per template, matched maps.

All functions take the tidy ``results`` table of :func:`nilearn_stca.evaluation.compare`
(one row per subject, method, window and template) and use matplotlib's object API only, so
they work with any backend (e.g. ``MPLBACKEND=Agg`` on a headless machine).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from nilearn.datasets import load_mni152_template
from nilearn.image import check_niimg_4d, get_data, index_img, new_img_like
from nilearn.plotting import find_xyz_cut_coords, plot_anat, plot_stat_map

from .._utils.io import atomic_path
from .tables import display_results, is_static

DPI = 80


def _save(figure, output_file):
    """Save ``figure`` atomically (its format from the extension, as matplotlib does), close it."""
    if output_file is not None:
        output_file = Path(output_file)
        image_format = output_file.suffix[1:] or plt.rcParams["savefig.format"]
        if not output_file.suffix:
            # matplotlib appends the extension to a name without one
            output_file = output_file.with_name(f"{output_file.name.rstrip('.')}.{image_format}")
        with atomic_path(output_file) as partial:
            figure.savefig(partial, format=image_format, dpi=DPI, bbox_inches="tight")
        plt.close(figure)


def plot_iou_over_windows(results, output_file=None):
    """IoU of the matched window maps over the window start, one facet per template.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results of :func:`nilearn_stca.evaluation.compare`; static rows are ignored.
    output_file : str or Path, default=None
        If given, the figure is saved there (and closed).

    Returns
    -------
    grid : seaborn.FacetGrid
        One axis per template, one line per method: the mean over subjects with a band of
        one standard deviation.
    """
    data, methods, templates = display_results(results[~is_static(results)])
    if data.empty:
        raise ValueError("results has no sliding-window rows (window != 'static') to plot.")
    data["window"] = data["window"].astype(int)
    grid = sns.relplot(
        data=data,
        x="window",
        y="iou",
        hue="method",
        hue_order=methods,
        col="template",
        col_order=templates,
        col_wrap=min(5, len(templates)),
        kind="line",
        errorbar="sd",
        height=2.6,
        aspect=1.3,
    )
    grid.set_titles("{col_name}")
    grid.set_axis_labels("Window start (scan)", "IoU")
    grid.legend.set_title("")
    _save(grid.figure, output_file)
    return grid


def plot_static_iou(results, kind="bar", output_file=None):
    """IoU of the matched static maps per template and method (Table 1 as a figure).

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results of :func:`nilearn_stca.evaluation.compare`; window rows are ignored.
    kind : {"bar", "box"}, default="bar"
        "bar": mean over subjects with standard-deviation error bars; "box": box plots.
    output_file : str or Path, default=None
        If given, the figure is saved there (and closed).

    Returns
    -------
    grid : seaborn.FacetGrid
    """
    if kind not in ("bar", "box"):
        raise ValueError(f"kind must be 'bar' or 'box', got {kind!r}.")
    data, methods, templates = display_results(results[is_static(results)])
    if data.empty:
        raise ValueError("results has no static rows (window == 'static') to plot.")
    extra = {"errorbar": "sd", "capsize": 0.1} if kind == "bar" else {}
    grid = sns.catplot(
        data=data,
        x="template",
        y="iou",
        hue="method",
        order=templates,
        hue_order=methods,
        kind=kind,
        height=4,
        aspect=max(1.5, 0.4 * len(templates)),
        **extra,
    )
    grid.set_axis_labels("", "IoU")
    grid.set_xticklabels(rotation=35, ha="right")
    grid.legend.set_title("")
    _save(grid.figure, output_file)
    return grid


def plot_matched_maps(
    maps_img,
    template_masks_img,
    components,
    titles,
    threshold=3.6,
    output_file=None,
    bg_img=None,
):
    """One panel per template: its matched map over the template's outline.

    Every panel draws the template's outline (green) on the background. A map is shown
    where it is at least ``threshold``, the voxels that the IoU counts; where a template has
    no matched map, or its matched map has no voxel at or above ``threshold``, the panel shows
    the outline alone with the note "no map reaches z <threshold>".

    Parameters
    ----------
    maps_img : Niimg-like
        4D image of the z-maps (e.g. a method's static maps, or one window's maps).
    template_masks_img : Niimg-like
        4D image of the binary template masks, one volume per template.
    components : sequence of int
        For each template, the index in ``maps_img`` of its matched map, or -1 if none.
    titles : sequence of str
        For each template, the title of its panel.
    threshold : float, default=3.6
        Maps are shown where their value is at least this.
    output_file : str or Path, default=None
        If given, the figure is saved there (and closed).
    bg_img : Niimg-like, default=None
        Background image; the MNI152 template at 2 mm (bundled with nilearn) by default.

    Returns
    -------
    figure : matplotlib.figure.Figure
        A grid of two columns, a panel per template in order.
    """
    maps_img = check_niimg_4d(maps_img)
    template_masks_img = check_niimg_4d(template_masks_img)
    components = [int(component) for component in components]
    n_templates = template_masks_img.shape[3]
    if not len(components) == len(titles) == n_templates:
        raise ValueError(
            f"components and titles need one entry per template ({n_templates}), got "
            f"{len(components)} and {len(titles)}."
        )
    if bg_img is None:
        bg_img = load_mni152_template(resolution=2)
    n_columns = 2
    n_rows = -(-len(titles) // n_columns)
    height = 2.6 * n_rows
    # Leave about half an inch for the suptitle, whatever the number of rows.
    figure, axes = plt.subplots(
        n_rows,
        n_columns,
        figsize=(14, height),
        squeeze=False,
        gridspec_kw={"top": 1 - 0.5 / height},
    )
    for index, (ax, component, title) in enumerate(
        zip(axes.flat, components, titles, strict=False)
    ):
        template_mask = index_img(template_masks_img, index)
        panel = {
            "cut_coords": find_xyz_cut_coords(template_mask),
            "axes": ax,
            "title": title,
            "black_bg": False,
            "annotate": False,
            "draw_cross": False,
        }
        map_img = None if component < 0 else index_img(maps_img, component)
        z_map = None if map_img is None else get_data(map_img)
        if z_map is not None and (z_map >= threshold).any():
            # plot_stat_map's threshold is on |value|: drop the negative side first.
            network = new_img_like(map_img, np.where(z_map >= threshold, z_map, 0.0))
            display = plot_stat_map(
                network, bg_img=bg_img, threshold=threshold, colorbar=False, **panel
            )
        else:
            # The background as plot_stat_map draws it (add_overlay's default threshold
            # blanks the near-zero voxels around the brain), and a note at the bottom left.
            display = plot_anat(bg_img, threshold=1e-6, colorbar=False, **panel)
            display.title(f"no map reaches z {threshold}", x=0.01, y=0.12, size=12)
        display.add_contours(template_mask, levels=[0.5], colors="limegreen", linewidths=1.5)
    for ax in axes.ravel()[len(titles) :]:
        ax.set_axis_off()
    figure.suptitle(
        f"Matched maps at z >= {threshold} and templates (green outline)",
        y=1 - 0.1 / height,
    )
    _save(figure, output_file)
    return figure
