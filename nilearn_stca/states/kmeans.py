"""k-means on one feature vector per window, shared by the two ways of finding brain states
(:func:`~nilearn_stca.states.fit_states`, :func:`~nilearn_stca.states.fit_map_states`)."""

import numbers

import numpy as np

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
