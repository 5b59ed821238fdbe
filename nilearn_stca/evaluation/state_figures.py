"""Figures of the brain states found from window maps (``states.fit_states``)."""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from ..states.metrics import transition_counts, transition_probability
from .figures import _save
from .tables import METHOD_NAMES


def plot_states(states, title=None, output_file=None):
    """The states' presence profiles, each subject's state sequence, and the transitions.

    Parameters
    ----------
    states : sklearn.utils.Bunch
        The result of :func:`~nilearn_stca.states.fit_states`, or of
        :func:`~nilearn_stca.states.fit_map_states`, whose states are maps rather than
        presence profiles: the profile panel is then left out (the maps are an image,
        ``states.state_maps_img``, to show with nilearn's plotting).
    title : str, default=None
        Figure title (e.g. the method).
    output_file : str or Path, default=None
        If given, the figure is saved there (and closed).

    Returns
    -------
    figure : matplotlib.figure.Figure
        Three panels: the centroids (states x templates, mean IoU of each template's
        matched map; not for map states), the state of every window of every subject over
        the window start, and the transition probabilities (from row to column; the steps
        of all subjects pooled).
    """
    n_states = states.n_states
    has_profiles = "centroids" in states
    ratios = [1.2, 2, 1] if has_profiles else [2, 1]
    subjects = list(states.sequences)
    # Tall enough for the template names below the profiles and a square transition map.
    height = max(4.5 if has_profiles else 3.5, 0.5 + 0.3 * len(subjects), 1.5 + 0.4 * n_states)
    figure, axes = plt.subplots(
        1,
        len(ratios),
        figsize=(15 if has_profiles else 11, height),
        gridspec_kw={"width_ratios": ratios},
        layout="constrained",
    )
    sequences, transitions = axes[-2:]
    if has_profiles:
        profiles = axes[0]
        sns.heatmap(
            states.centroids, ax=profiles, cmap="viridis", vmin=0, cbar_kws={"label": "IoU"}
        )
        profiles.set(title="State profiles", xlabel="template", ylabel="state")

    palette = sns.color_palette("tab10", n_states)
    for row, subject in enumerate(subjects):
        starts, labels = states.starts[subject], states.sequences[subject]
        last = starts[-1] - starts[-2] if len(starts) > 1 else 1  # the last window's bar
        widths = np.diff(np.r_[starts, starts[-1] + last])
        sequences.barh(row, widths, left=starts, color=[palette[label] for label in labels])
    sequences.set_yticks(range(len(subjects)), subjects)
    sequences.invert_yaxis()
    sequences.set(title="State of each window", xlabel="window start (scan)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[k]) for k in range(n_states)]
    sequences.legend(
        handles, range(n_states), title="state", loc="upper left", bbox_to_anchor=(1, 1)
    )

    counts = sum(transition_counts(states.sequences[s], n_states) for s in subjects)
    pooled = transition_probability(counts)
    sns.heatmap(
        pooled,
        ax=transitions,
        annot=n_states <= 6,  # more numbers than that do not fit in their cells
        fmt=".2f",
        annot_kws={"size": 8},
        cmap="mako",
        vmin=0,
        vmax=1,
        square=True,
    )
    transitions.set(title="Transition probability", xlabel="to", ylabel="from")
    if title:
        figure.suptitle(title)
    _save(figure, output_file)
    return figure


#: Columns :func:`plot_occupancy` needs.
OCCUPANCY_COLUMNS = ("method", "subject", "state", "temporal_fraction")


def plot_occupancy(metrics, title=None, output_file=None):
    """Occupancy of each state, one group of bars per method: mean ± sd over subjects.

    Parameters
    ----------
    metrics : pandas.DataFrame
        One row per method, subject and state, with columns ``method``, ``subject``,
        ``state`` and ``temporal_fraction``: the ``per_state`` table of
        :func:`~nilearn_stca.states.state_metrics` of each subject (whose index is the
        state), with the method and subject added.
    title : str, default=None
        Figure title.
    output_file : str or Path, default=None
        If given, the figure is saved there (and closed).

    Returns
    -------
    figure : matplotlib.figure.Figure
        One bar per state within each method's group, colored as in :func:`plot_states`:
        the mean temporal fraction over subjects, with a one-standard-deviation error bar.
        States are numbered per method: state 0 of one method is not state 0 of another.
    """
    missing = [column for column in OCCUPANCY_COLUMNS if column not in metrics.columns]
    if missing:
        raise ValueError(
            f"metrics lacks the columns {missing}: give one row per method, subject and "
            "state, e.g. state_metrics(...).per_state.reset_index() with method and subject "
            "added."
        )
    if metrics.empty:
        raise ValueError("metrics has no rows: there is no occupancy to plot.")
    data = metrics.assign(method=metrics["method"].map(lambda m: METHOD_NAMES.get(m, m)))
    present = list(data["method"].unique())
    methods = [name for name in METHOD_NAMES.values() if name in present]
    methods += [name for name in present if name not in methods]
    states = sorted(data["state"].unique())
    figure, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(methods)), 3.2))
    sns.barplot(
        data=data,
        x="method",
        y="temporal_fraction",
        hue="state",
        order=methods,
        hue_order=states,
        palette=sns.color_palette("tab10", len(states)),
        errorbar="sd",
        capsize=0.1,
        ax=ax,
    )
    ax.set(xlabel="", ylabel="temporal fraction", ylim=(0, 1))
    ax.legend(title="state", loc="upper left", bbox_to_anchor=(1, 1))
    if title:
        ax.set_title(title)
    figure.tight_layout()
    _save(figure, output_file)
    return figure
