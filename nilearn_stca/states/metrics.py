"""Brain-state dynamics from a sequence of states: occupancy, dwell time and transitions.

A state sequence gives the state (an integer from 0 to ``n_states - 1``) of each window or
scan of one run, e.g. the k-means labels of the window maps, or the planted states of the
simulator's state mode (``simulate_dynamic_rsfmri(n_states=K).states``). The metrics are
named and defined as the co-activation-pattern metrics of neurocaps (``temporal_fraction``,
``persistence``, ``counts``, ``transition_frequency``, ``transition_probability``), which
follow Liu et al. (2018) and Yang et al. (2021); GIFT's dFNC calls the first two fraction of
time (occupancy) and mean dwell time (Allen et al., 2014).
"""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._map_states import fit_kmeans, fit_map_states, per_subject

__all__ = [
    "fit_map_states",
    "fit_states",
    "planted_window_states",
    "presence_table",
    "score_states",
    "state_metrics",
    "state_metrics_table",
]


def _check_sequence(sequence, n_states):
    sequence = np.asarray(sequence)
    if sequence.ndim != 1 or len(sequence) == 0:
        raise ValueError(
            f"sequence must be a non-empty 1D array of states, got shape {sequence.shape}."
        )
    if not np.issubdtype(sequence.dtype, np.integer):
        raise TypeError(f"sequence must hold integer states, got dtype {sequence.dtype}.")
    n_states = int(sequence.max()) + 1 if n_states is None else n_states
    if isinstance(n_states, bool) or not isinstance(n_states, numbers.Integral) or n_states < 1:
        raise ValueError(f"n_states must be a positive integer, got {n_states!r}.")
    if sequence.min() < 0 or sequence.max() >= n_states:
        raise ValueError(
            f"sequence holds states from {sequence.min()} to {sequence.max()}: states must be "
            f"0 to n_states - 1 = {n_states - 1}."
        )
    return sequence, int(n_states)


def transition_counts(sequence, n_states):
    """``(n_states, n_states)`` counts of the steps from each state (row) to each (column)."""
    counts = np.zeros((n_states, n_states))
    np.add.at(counts, (sequence[:-1], sequence[1:]), 1)
    return counts


def transition_probability(counts):
    """Each row of :func:`transition_counts` divided by its sum; NaN for a row of zeros."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0)


def _segments(sequence):
    """``(state, length)`` of each run of one state, in order."""
    starts = np.flatnonzero(np.r_[True, sequence[1:] != sequence[:-1]])
    lengths = np.diff(np.r_[starts, len(sequence)])
    return sequence[starts], lengths


def state_metrics(sequence, n_states=None, t_r=None, step=1):
    """Temporal metrics of one run's state sequence.

    Parameters
    ----------
    sequence : array-like of int, shape (n_points,)
        The state of each window (or scan), in time order: 0 to ``n_states - 1``.
    n_states : int, default=None
        Number of states, so that a state never visited still has its row (zeros); the
        largest state in ``sequence`` plus one if None.
    t_r : float, default=None
        Repetition time in seconds: with it, ``persistence_seconds`` is added.
    step : int, default=1
        Scans between consecutive points of ``sequence`` (the window stride; 1 for scans).

    Returns
    -------
    metrics : sklearn.utils.Bunch
        - ``per_state``: DataFrame, one row per state: ``temporal_fraction`` (the share of
          the points spent in the state; over all states it sums to 1), ``persistence``
          (the mean length, in points, of its uninterrupted stays; 0 if never visited),
          ``counts`` (how many times the state is entered: its number of uninterrupted
          stays), and with ``t_r`` ``persistence_seconds`` (``persistence * step * t_r``).
        - ``transition_frequency``: int, the number of switches between different states.
        - ``transition_probability``: DataFrame (from state x to state), the share of the
          steps from each state that go to each state, itself included; each visited row
          sums to 1, an unvisited one (or one only at the last point) is NaN.

    Examples
    --------
    >>> from nilearn_stca.dynamics import state_metrics
    >>> metrics = state_metrics([1, 2, 1, 1, 1, 0], n_states=3)
    >>> metrics.per_state.loc[1, ["temporal_fraction", "persistence", "counts"]].tolist()
    [0.6666666666666666, 2.0, 2.0]
    >>> metrics.transition_frequency
    3
    """
    sequence, n_states = _check_sequence(sequence, n_states)
    states = np.arange(n_states)
    segment_states, lengths = _segments(sequence)
    counts = np.bincount(segment_states, minlength=n_states)
    points = np.bincount(sequence, minlength=n_states)
    persistence = np.divide(points, counts, out=np.zeros(n_states), where=counts > 0)
    per_state = pd.DataFrame(
        {
            "temporal_fraction": points / len(sequence),
            "persistence": persistence,
            "counts": counts,
        },
        index=pd.Index(states, name="state"),
    )
    if t_r is not None:
        per_state["persistence_seconds"] = persistence * step * t_r

    probability = transition_probability(transition_counts(sequence, n_states))
    return Bunch(
        per_state=per_state,
        transition_frequency=int(len(lengths) - 1),
        transition_probability=pd.DataFrame(
            probability,
            index=pd.Index(states, name="from"),
            columns=pd.Index(states, name="to"),
        ),
    )


def state_metrics_table(states, method, t_r=None, step=1):
    """:func:`state_metrics` of every subject of a states fit, one row per subject and state.

    Parameters
    ----------
    states : sklearn.utils.Bunch
        The result of :func:`fit_states` or :func:`fit_map_states`.
    method : str
        Written in the ``method`` column.
    t_r : float, default=None
        Repetition time in seconds: with it, ``persistence_seconds``.
    step : int or dict of {str: int}, default=1
        Scans between consecutive windows, for all subjects or per subject.

    Returns
    -------
    metrics : pandas.DataFrame
        Columns ``method``, ``subject``, ``state``, then the ``per_state`` columns of
        :func:`state_metrics` and the subject's ``transition_frequency`` (the same on each
        of its rows).
    """
    tables = []
    for subject, sequence in states.sequences.items():
        subject_step = step[subject] if isinstance(step, dict) else step
        measured = state_metrics(sequence, states.n_states, t_r=t_r, step=subject_step)
        table = measured.per_state.reset_index()
        table.insert(0, "subject", subject)
        table.insert(0, "method", method)
        table["transition_frequency"] = measured.transition_frequency
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


# ---------------------------------------------------------------------- states from windows
def presence_table(results, subject, method):
    """Network presence over time: windows x templates of one subject and method.

    Parameters
    ----------
    results : pandas.DataFrame
        The table of :func:`~nilearn_stca.evaluation.compare` (with window rows).
    subject, method : str

    Returns
    -------
    presence : pandas.DataFrame
        One row per scored window (indexed by its first scan, in order), one column per
        template (in the order of the results): the IoU of the template's matched map in
        that window, as ``compare`` scored it.
    """
    rows = results[
        (results["subject"] == subject)
        & (results["method"] == method)
        & (results["window"] != "static")
    ]
    if rows.empty:
        raise ValueError(
            f"results has no window rows for subject {subject!r} and method {method!r}: run "
            "compare(..., windows=True) with them."
        )
    templates = list(dict.fromkeys(rows["template"]))
    presence = rows.pivot(index="window", columns="template", values="iou")[templates]
    presence.index = presence.index.astype(int)
    presence.columns.name = None
    return presence.sort_index()


def fit_states(presence, n_states=None, candidates=range(2, 9), random_state=0):
    """Brain states: k-means on the presence vectors of every window of every subject.

    Parameters
    ----------
    presence : dict of {str: pandas.DataFrame}
        Per subject, :func:`presence_table` (the same templates for all).
    n_states : int, default=None
        Number of states, from 2 to the number of windows; if None, the value in
        ``candidates`` with the best silhouette (as GIFT and neurocaps offer), among those
        below the number of windows.
    candidates : iterable of int, default=range(2, 9)
    random_state : int, default=0
        Seed of k-means (100 initialisations, the best kept).

    Returns
    -------
    states : sklearn.utils.Bunch
        ``n_states``; ``centroids`` (DataFrame, states x templates: each state's mean
        presence profile); ``sequences`` (per subject, the state of each window, an int
        array); ``starts`` (per subject, the windows' first scans); ``silhouette`` (per
        candidate tried, NaN where k-means found a single group; None when ``n_states`` is
        given).
    """
    subjects = list(presence)
    columns = list(presence[subjects[0]].columns)
    if any(list(table.columns) != columns for table in presence.values()):
        raise ValueError("every subject's presence table must have the same templates.")
    features = np.vstack([presence[subject].to_numpy() for subject in subjects])
    model, silhouette = fit_kmeans(features, n_states, candidates, random_state)
    return Bunch(
        n_states=int(model.n_clusters),
        centroids=pd.DataFrame(
            model.cluster_centers_,
            columns=columns,
            index=pd.Index(range(model.n_clusters), name="state"),
        ),
        sequences=per_subject(model.labels_, {s: len(presence[s]) for s in subjects}),
        starts={subject: presence[subject].index.to_numpy() for subject in subjects},
        silhouette=silhouette,
    )


def planted_window_states(scan_states, starts, window_length):
    """The planted state of each window: the state that holds most of its scans.

    Parameters
    ----------
    scan_states : array-like of int, shape (n_scans,)
        E.g. ``simulate_dynamic_rsfmri(n_states=K).states[subject]``.
    starts : array-like of int
        First scan of each window.
    window_length : int

    Returns
    -------
    states : ndarray of int, shape (n_windows,)
        Ties go to the lower state.
    """
    scan_states = np.asarray(scan_states)
    n_states = int(scan_states.max()) + 1
    return np.array(
        [
            np.bincount(scan_states[start : start + window_length], minlength=n_states).argmax()
            for start in starts
        ]
    )


def score_states(sequence, planted, n_states=None):
    """How well a recovered state sequence follows the planted one.

    Returns
    -------
    scores : dict
        ``adjusted_rand`` (scikit-learn's adjusted Rand index of the two labelings: 1 for
        the same partition of the windows whatever the state numbers, about 0 by chance)
        and ``occupancy_error`` (the mean absolute difference between the sorted
        occupancies of the two, which does not depend on how the states are numbered).
    """
    from sklearn.metrics import adjusted_rand_score

    sequence, planted = np.asarray(sequence), np.asarray(planted)
    if sequence.shape != planted.shape:
        raise ValueError(
            f"sequence has {sequence.shape[0]} points and planted {planted.shape[0]}: give "
            "one state per window to both (see planted_window_states)."
        )
    n_states = max(int(sequence.max()), int(planted.max())) + 1 if n_states is None else n_states
    occupancy = [
        np.sort(np.bincount(labels, minlength=n_states) / len(labels))
        for labels in (sequence, planted)
    ]
    return {
        "adjusted_rand": float(adjusted_rand_score(planted, sequence)),
        "occupancy_error": float(np.abs(occupancy[0] - occupancy[1]).mean()),
    }
