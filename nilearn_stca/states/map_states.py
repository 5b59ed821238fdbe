"""Brain states from the thresholded window maps themselves, streamed from window sweeps."""

import numpy as np
from sklearn.utils import Bunch

from .kmeans import check_n_states, fit_kmeans, per_subject

__all__ = ["fit_map_states"]


def _union_maps(sweep, threshold):
    """Each window's binary map of the voxels in any of its FBNs (float32)."""
    for _, fbns in sweep.iter_fbns(threshold):
        yield fbns.any(axis=0).astype(np.float32)


def _batches(sweeps, size, threshold):
    """The windows' union maps of every sweep in turn, ``size`` windows at a time."""
    batch = []
    for sweep in sweeps:
        for window in _union_maps(sweep, threshold):
            batch.append(window)
            if len(batch) == size:
                yield np.array(batch)
                batch = []
    if batch:
        yield np.array(batch)


def fit_map_states(
    sweeps,
    n_states=None,
    n_features=20,
    threshold=None,
    random_state=0,
    batch_size=50,
    candidates=range(2, 9),
):
    """Brain states from the thresholded window maps themselves, streamed from sweeps.

    Each window becomes the binary map of the voxels in any of its FBNs (z at or above the
    threshold). Those maps are reduced by :class:`sklearn.decomposition.IncrementalPCA`,
    fitted one window at a time from the memory-mapped sweeps (so memory does not grow with
    the number of windows), and grouped by k-means.

    Parameters
    ----------
    sweeps : dict of {str: WindowSweep}
        Per subject, :func:`~nilearn_stca.load_window_sweep` (on one mask).
    n_states : int, default=None
        Number of states; if None, the value in ``candidates`` with the best silhouette of
        the reduced maps (as :func:`~nilearn_stca.states.fit_states` does).
    n_features : int, default=20
        Principal components kept (fewer if there are fewer windows).
    threshold : float, default=None
        z threshold of the FBNs; each sweep's own if None.
    random_state : int, default=0
        Seed of k-means (100 initialisations, the best kept).
    batch_size : int, default=50
        Windows per step of the incremental PCA (at least ``n_features``): the memory held
        is about two batches of binary maps.
    candidates : iterable of int, default=range(2, 9)

    Returns
    -------
    states : sklearn.utils.Bunch
        As :func:`~nilearn_stca.states.fit_states` (``n_states``, ``sequences``,
        ``starts``, ``silhouette``), with ``state_maps_img`` (a 4D image, one volume per
        state: the share of the state's windows whose FBNs hold each voxel, from its
        centroid) and ``explained_variance_ratio`` of the kept components.
    """
    n_voxels = {sweep.maps.shape[2] for sweep in sweeps.values()}
    if len(n_voxels) > 1:
        raise ValueError("every sweep must be on the same mask (the same number of voxels).")
    check_n_states(n_states, sum(len(sweep) for sweep in sweeps.values()))
    return fit_checked_map_states(
        sweeps, n_states, n_features, threshold, random_state, batch_size, candidates
    )


def fit_checked_map_states(
    sweeps, n_states, n_features, threshold, random_state, batch_size=50, candidates=range(2, 9)
):
    """:func:`fit_map_states` of sweeps already checked: one mask, a possible ``n_states``.

    :func:`~nilearn_stca.states.write_states` checks its sweeps once, the masks in full.
    """
    from sklearn.decomposition import IncrementalPCA

    subjects = list(sweeps)
    n_features = min(n_features, sum(len(sweep) for sweep in sweeps.values()))
    batch_size = max(n_features, batch_size)
    pca = IncrementalPCA(n_components=n_features)
    # partial_fit needs at least n_features rows: each batch waits for the next, and a
    # short last batch joins the one before it.
    previous = None
    for batch in _batches(sweeps.values(), batch_size, threshold):
        if previous is not None and len(batch) >= n_features:
            pca.partial_fit(previous)
            previous = batch
        else:
            previous = batch if previous is None else np.vstack([previous, batch])
    pca.partial_fit(previous)
    # A second pass over the sweeps: every window is projected on the components of all
    # windows, known only once the first pass is over, and keeping the windows' maps for it
    # would make memory grow with their number (two batches are held, however many).
    features = {
        subject: np.vstack(
            [pca.transform(b) for b in _batches([sweeps[subject]], batch_size, threshold)]
        )
        for subject in subjects
    }
    model, silhouette = fit_kmeans(
        np.vstack([features[s] for s in subjects]), n_states, candidates, random_state
    )
    state_maps = np.clip(pca.inverse_transform(model.cluster_centers_), 0, 1)
    return Bunch(
        n_states=int(model.n_clusters),
        sequences=per_subject(model.labels_, {s: len(features[s]) for s in subjects}),
        starts={s: np.asarray(sweeps[s].starts) for s in subjects},
        silhouette=silhouette,
        state_maps_img=sweeps[subjects[0]].masker.inverse_transform(state_maps.astype(np.float32)),
        explained_variance_ratio=pca.explained_variance_ratio_,
    )
