"""The presence of template networks in each window of a sweep: windows x templates IoU.

This module scores windows with :mod:`nilearn_stca.evaluation`; the modules of
:mod:`nilearn_stca.states` that evaluation imports (metrics, presence states) must not
import it, or importing either package would start a cycle.
"""

import numpy as np
import pandas as pd
from nilearn.masking import apply_mask

from ..evaluation.metrics import check_strategy, score_maps
from ..evaluation.templates import DEFAULT_TEMPLATE_THRESHOLD, load_rsn_templates
from ..windows.sweep import WindowSweep, load_window_sweep

__all__ = ["sweep_presence"]


def _template_masks(templates, mask_img, template_threshold):
    loaded = load_rsn_templates(templates, target_img=mask_img, threshold=template_threshold)
    return apply_mask(loaded.masks_img, mask_img).astype(bool), loaded.names


def template_loader(templates, template_threshold):
    """``loader(mask_img)``: the binary templates on that mask, loaded once per mask."""
    cache = {}

    def loader(mask_img):
        key = (
            mask_img.shape,
            mask_img.affine.tobytes(),
            (np.asanyarray(mask_img.dataobj) > 0).tobytes(),
        )
        if key not in cache:
            cache[key] = _template_masks(templates, mask_img, template_threshold)
        return cache[key]

    return loader


def window_presence(sweep, template_masks, names, threshold, strategy, progress=None):
    """Each window's presence vector, streamed once from ``sweep`` (see :func:`sweep_presence`).

    ``progress``, a tqdm bar, is advanced by one per window.
    """
    cut = sweep.fbn_threshold(threshold)
    rows = {}
    for start, maps in sweep:
        scores = score_maps(maps, template_masks, names, threshold=cut, strategy=strategy)
        rows[start] = scores["iou"].to_numpy()
        if progress is not None:
            progress.update()
    presence = pd.DataFrame.from_dict(rows, orient="index", columns=list(names))
    presence.index.name = "window"
    return presence


def sweep_presence(
    sweep, templates, template_threshold=DEFAULT_TEMPLATE_THRESHOLD, threshold=None, strategy="max"
):
    """Network presence over the windows of one sweep: windows x templates IoU.

    Each window's maps (read one at a time) are thresholded and each template is matched to
    one of them by IoU, as :func:`~nilearn_stca.evaluation.compare` scores windows.

    Parameters
    ----------
    sweep : WindowSweep, str or Path
        A sweep, or its folder (:func:`~nilearn_stca.write_window_sweep`).
    templates : "smith2009" or Niimg-like
        As :func:`~nilearn_stca.evaluation.load_rsn_templates` takes them; resampled to the
        sweep's mask.
    template_threshold : float, default=3.6
        Threshold of the template maps.
    threshold : float, default=None
        z threshold of the window maps; the sweep's own if None.
    strategy : {"max", "hungarian"}, default="max"
        Matching of templates to maps (:func:`~nilearn_stca.evaluation.match_components`).

    Returns
    -------
    presence : pandas.DataFrame
        One row per window (indexed by its first scan, in order), one column per template:
        the IoU of the template's matched map, as :func:`~nilearn_stca.states.presence_table`
        gives it from ``compare``'s table.
    """
    check_strategy(strategy)
    sweep = sweep if isinstance(sweep, WindowSweep) else load_window_sweep(sweep)
    mask_img = sweep.masker.mask_img_
    masks, names = _template_masks(templates, mask_img, template_threshold)
    return window_presence(sweep, masks, names, threshold, strategy)
