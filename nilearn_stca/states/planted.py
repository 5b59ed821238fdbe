"""Recovered brain states against the planted ones of the simulator's state mode."""

import numpy as np

__all__ = ["planted_window_states", "score_states"]


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
