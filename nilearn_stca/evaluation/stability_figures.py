"""Figure of the stability of a method's maps across seeds (``stability.stability``)."""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from .figures import _save


def plot_stability(result, title=None, output_file=None):
    """Each cluster's stability index, and the similarity of all maps ordered by cluster.

    Parameters
    ----------
    result : sklearn.utils.Bunch
        The result of :func:`~nilearn_stca.evaluation.stability.stability`.
    title : str, default=None
        Figure title (e.g. the method).
    output_file : str or Path, default=None
        If given, the figure is saved there (and closed).

    Returns
    -------
    figure : matplotlib.figure.Figure
        Two panels: the stability index of each cluster (most stable first), each bar
        labelled with the number of runs that have a map in it out of all runs; and the
        absolute spatial correlation between the maps of all runs (but the empty ones, which
        are in no cluster), ordered by cluster, with lines between the clusters.
    """
    table = result.table
    n_runs = len(result.random_states) if "random_states" in result else table["n_runs"].max()
    figure, (bars, matrix) = plt.subplots(
        1, 2, figsize=(max(10.0, 6 + 0.25 * len(table)), 4), gridspec_kw={"width_ratios": [3, 2]}
    )
    sns.barplot(x=table.index, y=table["stability_index"], color="tab:blue", ax=bars)
    bars.bar_label(bars.containers[0], labels=[f"{n}/{n_runs}" for n in table["n_runs"]], size=7)
    bars.set(
        title="Stability index per cluster",
        xlabel=f"cluster (on each bar: runs with a map in it, of {n_runs})",
        ylabel="stability index",
        ylim=(min(0.0, table["stability_index"].min()), 1.05),
    )
    if len(table) > 20:
        bars.set_xticks(bars.get_xticks()[::5])

    clustered = np.flatnonzero(result.labels >= 0)  # empty maps are in no cluster
    order = clustered[np.argsort(result.labels[clustered], kind="stable")]
    sns.heatmap(
        result.similarity[np.ix_(order, order)],
        ax=matrix,
        vmin=0,
        vmax=1,
        cmap="viridis",
        square=True,
        xticklabels=False,
        yticklabels=False,
        cbar_kws={"label": "|correlation|"},
    )
    for edge in np.cumsum(np.bincount(result.labels[clustered]))[:-1]:
        matrix.axhline(edge, color="white", linewidth=0.5)
        matrix.axvline(edge, color="white", linewidth=0.5)
    matrix.set(title="Maps of all runs, by cluster")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, output_file)
    return figure
