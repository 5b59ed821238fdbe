"""k-means on window features, shared by the two ways of finding brain states, and the one
that clusters the window maps themselves (:func:`fit_map_states`)."""

import numbers

import numpy as np
from sklearn.utils import Bunch

#: k-means restarts, the partition of lowest inertia kept. With scikit-learn's usual 10, the
#: three presence states of the simulator's state mode (38 windows) came from 2 to 4
#: different local optima over 10 seeds of k-means in 16 of 27 runs; with 100, from one in
#: all 27 (``benchmarks/states_spread.py``). Choosing among 2 to 8 states on 1,000 windows of
#: 20 features then takes about 3 s on one core instead of 0.3 s.
KMEANS_RESTARTS = 100


def check_n_states(n_states, n_windows):
    """Refuse a number of states that is not an integer from 2 to the number of windows."""
    if n_states is None:
        return
    if (
        isinstance(n_states, bool)
        or not isinstance(n_states, numbers.Integral)
        or not 2 <= n_states <= n_windows
    ):
        raise ValueError(
            f"n_states must be an integer from 2 to the number of windows ({n_windows}), got "
            f"{n_states!r}; or None to choose it by silhouette."
        )


def fit_kmeans(features, n_states=None, candidates=range(2, 9), random_state=0):
    """k-means of the rows of ``features``, with ``n_states`` or the best silhouette.

    Parameters
    ----------
    features : ndarray, shape (n_windows, n_features)
    n_states : int, default=None
        If None, the value in ``candidates`` (below the number of windows) whose labels have
        the highest :func:`sklearn.metrics.silhouette_score`, as GIFT and neurocaps offer.
    candidates : iterable of int, default=range(2, 9)
    random_state : int, default=0
        Seed of k-means (:data:`KMEANS_RESTARTS` initialisations).

    Returns
    -------
    model : sklearn.cluster.KMeans
        Fitted.
    silhouette : dict of {int: float} or None
        The silhouette of each candidate tried (NaN where k-means found fewer than two
        distinct groups); None when ``n_states`` is given.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    check_n_states(n_states, len(features))

    def kmeans(k):
        return KMeans(k, n_init=KMEANS_RESTARTS, random_state=random_state).fit(features)

    if n_states is not None:
        return kmeans(n_states), None
    candidates = list(candidates)
    tried = [k for k in candidates if 2 <= k < len(features)]
    if not tried:
        raise ValueError(
            f"{len(features)} windows are too few to choose a number of states among "
            f"{candidates}: give n_states."
        )
    fits = {k: kmeans(k) for k in tried}
    silhouette = {
        k: float(silhouette_score(features, fit.labels_))
        if len(np.unique(fit.labels_)) > 1
        else float("nan")
        for k, fit in fits.items()
    }
    scored = {k: value for k, value in silhouette.items() if not np.isnan(value)}
    if not scored:
        raise ValueError(
            "The windows' features are all alike: k-means finds no two states among them."
        )
    return fits[max(scored, key=scored.get)], silhouette


def per_subject(labels, lengths):
    """``labels`` of all subjects' windows in turn, cut back into ``{subject: labels}``."""
    bounds = np.cumsum([0, *lengths.values()])
    return {subject: labels[bounds[i] : bounds[i + 1]] for i, subject in enumerate(lengths)}


def _union_maps(sweep, threshold):
    """Each window's binary map of the voxels in any of its FBNs (float32)."""
    cut = sweep.metadata["threshold"] if threshold is None else threshold
    for _, maps in sweep:
        yield (maps >= cut).any(axis=0).astype(np.float32)


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
        the reduced maps (as :func:`~nilearn_stca.dynamics.fit_states` does).
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
        As :func:`~nilearn_stca.dynamics.fit_states` (``n_states``, ``sequences``,
        ``starts``, ``silhouette``), with ``state_maps_img`` (a 4D image, one volume per
        state: the share of the state's windows whose FBNs hold each voxel, from its
        centroid) and ``explained_variance_ratio`` of the kept components.
    """
    from sklearn.decomposition import IncrementalPCA

    subjects = list(sweeps)
    masks = {sweeps[s].maps.shape[2] for s in subjects}
    if len(masks) > 1:
        raise ValueError("every sweep must be on the same mask (the same number of voxels).")
    n_windows = sum(len(sweeps[s]) for s in subjects)
    check_n_states(n_states, n_windows)
    n_features = min(n_features, n_windows)

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
