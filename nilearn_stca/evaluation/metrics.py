"""Overlap of binary networks (IoU, Dice) and matching of components to templates."""

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from ..maps import threshold_maps


def _overlaps(components, templates):
    components = np.asarray(components, dtype=bool)
    templates = np.asarray(templates, dtype=bool)
    if components.ndim != 2 or templates.ndim != 2 or components.shape[1] != templates.shape[1]:
        raise ValueError(
            "components and templates must be 2D boolean arrays (n_maps, n_voxels) with the "
            f"same number of voxels, got shapes {components.shape} and {templates.shape}."
        )
    a = components.astype(np.float64)
    b = templates.astype(np.float64)
    intersection = a @ b.T
    sizes = a.sum(axis=1)[:, None], b.sum(axis=1)[None, :]
    return intersection, sizes


def iou_matrix(components, templates):
    """Intersection over union of every binary component with every binary template.

    Parameters
    ----------
    components : ndarray of bool, shape (n_components, n_voxels)
    templates : ndarray of bool, shape (n_templates, n_voxels)

    Returns
    -------
    iou : ndarray, shape (n_components, n_templates)
        ``|A & B| / |A | B|``; 0 where both maps are empty.
    """
    intersection, (size_a, size_b) = _overlaps(components, templates)
    union = size_a + size_b - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def dice_matrix(components, templates):
    """Dice coefficient ``2 |A & B| / (|A| + |B|)``, same layout as :func:`iou_matrix`."""
    intersection, (size_a, size_b) = _overlaps(components, templates)
    total = size_a + size_b
    return np.divide(2 * intersection, total, out=np.zeros_like(intersection), where=total > 0)


#: How templates are matched to maps: each to its best map, or one to one (Hungarian).
STRATEGIES = ("max", "hungarian")


def check_strategy(strategy):
    """Refuse an unknown matching ``strategy`` in one line."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy={strategy!r}: use 'max' or 'hungarian'.")


def match_components(scores, strategy="max"):
    """Pick, for every template, the component that matches it.

    Parameters
    ----------
    scores : ndarray, shape (n_components, n_templates)
        E.g. :func:`iou_matrix`.
    strategy : {"max", "hungarian"}, default="max"
        "max": each template takes the component of highest score, as in the paper (one
        component may serve several templates). "hungarian": a one-to-one assignment
        maximising the total score (:func:`scipy.optimize.linear_sum_assignment`); templates
        left without a component (more templates than components) get score 0.

    Returns
    -------
    matches : pandas.DataFrame
        One row per template: ``template`` (column index), ``component`` (row index; -1 if
        none, or if the best component's score is 0: no overlap) and ``score``.
    """
    check_strategy(strategy)
    scores = np.asarray(scores, dtype=float)
    n_templates = scores.shape[1]
    components = np.full(n_templates, -1)
    if strategy == "max":
        components[:] = scores.argmax(axis=0)
    else:
        rows, cols = linear_sum_assignment(scores, maximize=True)
        components[cols] = rows
    matched = np.where(components >= 0, scores[components, np.arange(n_templates)], 0.0)
    # A component that does not overlap the template at all is no match.
    components[matched <= 0] = -1
    matched = np.maximum(matched, 0.0)
    return pd.DataFrame(
        {"template": np.arange(n_templates), "component": components, "score": matched}
    )


def score_maps(z_maps, template_masks, names, threshold=3.6, strategy="max"):
    """Threshold z-maps, match them to binary templates by IoU and score each match.

    Parameters
    ----------
    z_maps : ndarray, shape (n_components, n_voxels)
        Maps z-scored over the mask.
    template_masks : ndarray of bool, shape (n_templates, n_voxels)
    names : sequence of str
        One name per template.
    threshold : float, default=3.6
        A component's network is where its z-map is at least this.
    strategy : {"max", "hungarian"}, default="max"
        See :func:`match_components`.

    Returns
    -------
    scores : pandas.DataFrame
        One row per template: ``template`` (its name), ``component`` (-1 if none), ``iou``
        and ``dice`` of the matched component (0 if none).
    """
    components = threshold_maps(z_maps, threshold)
    matches = match_components(iou_matrix(components, template_masks), strategy)
    matched = matches.component.to_numpy()
    dice = dice_matrix(components, template_masks)[matched, np.arange(len(matched))]
    return pd.DataFrame(
        {
            "template": list(names),
            "component": matched,
            "iou": matches.score.to_numpy(),
            "dice": np.where(matched >= 0, dice, 0.0),
        }
    )
