"""Scoring maps against known (planted) networks, statically and window by window."""

import numpy as np
import pandas as pd
from nilearn.masking import apply_mask

from .metrics import score_maps

#: Planted maps of the simulator lie in [0, 1]; their "core", where a map reaches this value,
#: is the network used for scoring (the same voxels define the simulator's SNR).
TRUTH_THRESHOLD = 0.5


def _score(z_maps, truth, names, threshold, strategy="max"):
    scores = score_maps(z_maps, truth, names, threshold, strategy)
    return scores.rename(columns={"template": "network"})


def _masked_truth(truth_maps_img, mask_img, network_names):
    truth_maps = apply_mask(truth_maps_img, mask_img)
    names = list(network_names) if network_names is not None else list(range(len(truth_maps)))
    return truth_maps, names


def score_against_truth(
    z_maps,
    truth_maps_img,
    mask_img,
    threshold=3.6,
    truth_threshold=TRUTH_THRESHOLD,
    network_names=None,
    strategy="max",
):
    """Match thresholded z-maps to known networks and score them by IoU and Dice.

    Parameters
    ----------
    z_maps : ndarray, shape (n_components, n_voxels)
        Maps z-scored over the voxels of ``mask_img`` (e.g. ``components_``).
    truth_maps_img : Niimg-like, 4D
        One known network per volume, on the grid of ``mask_img``.
    mask_img : Niimg-like
        The mask whose voxels are the columns of ``z_maps``.
    threshold : float, default=3.6
        z threshold of the components.
    truth_threshold : float, default=0.5
        A known network is the set of voxels where its map is at least this.
    network_names : sequence of str, default=None
        Names of the known networks; their indices if None.
    strategy : {"max", "hungarian"}, default="max"
        See :func:`~nilearn_stca.evaluation.match_components`.

    Returns
    -------
    scores : pandas.DataFrame
        One row per known network: ``network``, ``component``, ``iou``, ``dice``.
    """
    truth_maps, names = _masked_truth(truth_maps_img, mask_img, network_names)
    return _score(z_maps, truth_maps >= truth_threshold, names, threshold, strategy)


def score_windows_against_truth(
    window_maps,
    truth_maps_img,
    mask_img,
    amplitudes,
    window_length,
    threshold=3.6,
    truth_threshold=TRUTH_THRESHOLD,
    active_threshold=0.5,
    network_names=None,
):
    """Score each window's maps against the planted networks active in that window.

    Parameters
    ----------
    window_maps : iterable of (int, ndarray)
        ``(start_scan, z_maps)`` pairs, e.g. ``estimator.iter_window_maps(img)``; consumed
        one at a time, so memory does not grow with the number of windows.
    truth_maps_img, mask_img, threshold, truth_threshold, network_names
        As in :func:`score_against_truth`.
    amplitudes : ndarray, shape (n_scans, n_networks)
        On/off envelopes of the planted networks (the simulator's ``amplitudes``).
    window_length : int
        Scans per window.
    active_threshold : float, default=0.5
        A network is active in a window if its mean envelope over the window exceeds this.

    Returns
    -------
    scores : pandas.DataFrame
        One row per (window, active network): ``start_scan``, ``network``, ``component``,
        ``iou``, ``dice`` (of the max-IoU component), ``correlation`` (the highest Pearson
        correlation of any unthresholded map with the planted map) and
        ``correlated_component`` (the map that reaches it).
    """
    truth_maps, names = _masked_truth(truth_maps_img, mask_img, network_names)
    truth = truth_maps >= truth_threshold
    amplitudes = np.asarray(amplitudes)
    rows = []
    for start, z_maps in window_maps:
        envelope = amplitudes[start : start + window_length].mean(axis=0)
        active = np.flatnonzero(envelope > active_threshold)
        if not active.size:
            continue
        scores = _score(z_maps, truth, names, threshold).iloc[active]
        n_maps = len(z_maps)
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = np.corrcoef(z_maps, truth_maps[active])[:n_maps, n_maps:]
        # A constant map correlates with nothing.
        correlation = np.nan_to_num(correlation, nan=0.0)
        rows.append(
            scores.assign(
                start_scan=start,
                correlation=correlation.max(axis=0),
                correlated_component=correlation.argmax(axis=0),
            )
        )
    columns = [
        "start_scan",
        "network",
        "component",
        "iou",
        "dice",
        "correlation",
        "correlated_component",
    ]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.concat(rows, ignore_index=True)[columns]
