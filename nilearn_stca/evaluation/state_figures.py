"""Figures of the brain states found from window maps (``dynamics.fit_states``)."""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from ..dynamics import transition_counts, transition_probability
from .figures import _save


def plot_states(states, title=None, output_file=None):
    """The states' presence profiles, each subject's state sequence, and the transitions.

    Parameters
    ----------
    states : sklearn.utils.Bunch
        The result of :func:`~nilearn_stca.dynamics.fit_states`.
    title : str, default=None
        Figure title (e.g. the method).
    output_file : str or Path, default=None
        If given, the figure is saved there (and closed).

    Returns
    -------
    figure : matplotlib.figure.Figure
        Three panels: the centroids (states x templates, mean IoU of each template's
        matched map), the state of every window of every subject over the window start, and
        the transition probabilities (from row to column; the steps of all subjects pooled).
    """
    n_states = states.n_states
    figure, (profiles, sequences, transitions) = plt.subplots(
        1, 3, figsize=(15, 3.2), gridspec_kw={"width_ratios": [1.2, 2, 1]}
    )
    sns.heatmap(states.centroids, ax=profiles, cmap="viridis", vmin=0, cbar_kws={"label": "IoU"})
    profiles.set(title="State profiles", xlabel="template", ylabel="state")

    subjects = list(states.sequences)
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
        pooled, ax=transitions, annot=True, fmt=".2f", cmap="mako", vmin=0, vmax=1, square=True
    )
    transitions.set(title="Transition probability", xlabel="to", ylabel="from")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, output_file)
    return figure
