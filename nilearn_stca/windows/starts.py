"""Sliding-window start indices, per subject, never across subjects."""

import numpy as np


def window_starts(n_scans, window_length, window_stride=1):
    """Start scans of the sliding windows that fit in one run.

    Parameters
    ----------
    n_scans : int
        Number of scans in the run.
    window_length : int
        Scans per window.
    window_stride : int, default=1
        Scans between the starts of consecutive windows.

    Returns
    -------
    starts : ndarray of int
        ``0, stride, 2 * stride, ...`` up to the last window that ends inside the run.
        Empty if the run is shorter than one window.
    """
    return np.arange(0, int(n_scans) - int(window_length) + 1, int(window_stride))


def subject_windows(n_scans_per_subject, window_length, window_stride=1):
    """All ``(subject, start)`` pairs of a group, windows never crossing two subjects.

    Parameters
    ----------
    n_scans_per_subject : sequence of int
        Number of scans of each subject's run.
    window_length, window_stride : int
        See :func:`window_starts`.

    Returns
    -------
    pairs : ndarray of int, shape (n_windows, 2)
        Subject index and start scan of every window, subject by subject.
    """
    pairs = [
        (subject, start)
        for subject, n_scans in enumerate(n_scans_per_subject)
        for start in window_starts(n_scans, window_length, window_stride)
    ]
    return np.array(pairs, dtype=int).reshape(-1, 2)
