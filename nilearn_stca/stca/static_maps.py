"""STCA's static maps, made from the maps of its sliding windows.

The paper defines only window maps. Which of a window's maps carries a given network changes
from window to window, so the static map of a network is found by grouping the window FBNs
themselves rather than by averaging each map's channel over windows.
"""

import warnings

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans

from ..maps import zscore_maps

#: How ``STCADecomposition.components_`` are made from the window maps.
STATIC_MAPS = ("clustered", "mean")


def mean_static_maps(window_maps):
    """The mean of the window z-maps, map by map, z-scored again.

    Parameters
    ----------
    window_maps : iterable of ndarray, shape (n_maps, n_voxels)

    Returns
    -------
    maps : ndarray of float32, shape (n_maps, n_voxels)
    """
    total, n_windows = 0.0, 0
    for maps in window_maps:
        total = total + maps
        n_windows += 1
    return zscore_maps(total / n_windows).astype(np.float32)


def clustered_static_maps(window_maps, n_clusters, threshold, random_state=0):
    """Static maps from k-means on the FBNs of all window maps (ICASSO-like).

    Every map of every window is thresholded at ``threshold`` into an FBN; the non-empty
    FBNs (held as a sparse matrix, so memory follows the FBNs' size, not the windows'
    count times the brain) are grouped by k-means. Each cluster's centre, the share of its
    FBNs that holds each voxel, is one static map, z-scored; clusters come in decreasing
    size. Maps beyond the number of non-empty FBNs are zeros. Where no window map reaches
    ``threshold`` at all, the static maps are :func:`mean_static_maps`, with a warning.

    Parameters
    ----------
    window_maps : iterable of ndarray, shape (n_maps, n_voxels)
        z-maps of each window, consumed one window at a time.
    n_clusters : int
        Number of static maps.
    threshold : float
        z threshold of the FBNs.
    random_state : int, default=0
        Seed of k-means.

    Returns
    -------
    maps : ndarray of float32, shape (n_clusters, n_voxels)
    """
    blocks, total, n_windows = [], 0.0, 0
    for maps in window_maps:
        fbns = maps >= threshold
        blocks.append(sparse.csr_matrix(fbns[fbns.any(axis=1)], dtype=np.float32))
        total, n_windows = total + maps, n_windows + 1
    fbns = sparse.vstack(blocks, format="csr")
    if fbns.shape[0] == 0:
        warnings.warn(
            f"No window map reaches z >= {threshold}: the static maps are the mean of the "
            "window z-maps (static_maps='mean'). Train longer, or lower threshold.",
            RuntimeWarning,
            stacklevel=3,
        )
        return zscore_maps(total / n_windows).astype(np.float32)
    static = np.zeros((n_clusters, fbns.shape[1]), dtype=np.float32)
    k = min(n_clusters, fbns.shape[0])
    kmeans = KMeans(k, n_init=3, random_state=random_state).fit(fbns)
    sizes = np.bincount(kmeans.labels_, minlength=k)
    static[:k] = zscore_maps(kmeans.cluster_centers_[np.argsort(-sizes, kind="stable")])
    return static
