"""Scoring maps against known (planted or template) networks."""

import numpy as np
import pandas as pd
from nilearn.masking import apply_mask

from ..maps import threshold_maps
from .metrics import dice_matrix, iou_matrix, match_components

#: Planted maps of the simulator lie in [0, 1]; their "core", where a map reaches this value,
#: is the network used for scoring (the same voxels define the simulator's SNR).
TRUTH_THRESHOLD = 0.5


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
    truth = apply_mask(truth_maps_img, mask_img) >= truth_threshold
    components = threshold_maps(z_maps, threshold)
    iou = iou_matrix(components, truth)
    matches = match_components(iou, strategy)
    dice = dice_matrix(components, truth)
    matched = matches.component.to_numpy()
    names = list(network_names) if network_names is not None else list(range(truth.shape[0]))
    return pd.DataFrame(
        {
            "network": names,
            "component": matched,
            "iou": matches.score.to_numpy(),
            "dice": np.where(matched >= 0, dice[matched, np.arange(len(names))], 0.0),
        }
    )
