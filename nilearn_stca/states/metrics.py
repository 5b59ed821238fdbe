"""Temporal metrics of a sequence of brain states: occupancy, dwell time and transitions.

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

__all__ = [
    "state_metrics",
    "state_metrics_table",
    "transition_counts",
    "transition_probability",
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
    >>> from nilearn_stca.states import state_metrics
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
