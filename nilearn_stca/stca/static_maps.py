"""STCA's static maps, made from the maps of its sliding windows.

The paper defines only window maps. Which of a window's maps carries a given network changes
from window to window, so the static map of a network is found by grouping the window FBNs
themselves rather than by averaging each map's channel over windows.

The static maps are accumulated one window at a time (``add``, then ``result``), so that the
pass which maps the windows for another purpose (e.g. scoring them in ``compare``) also
makes the static maps, and no window is mapped twice.
"""

import warnings

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans

from ..maps import zscore_maps

#: How ``STCADecomposition.components_`` are made from the window maps.
STATIC_MAPS = ("clustered", "mean")


class MeanStaticMaps:
    """The mean of the window z-maps, map by map, z-scored again."""

    def __init__(self):
        self._total = 0.0
        self._n_windows = 0

    def add(self, maps):
        """Take the z-maps of one window, shape (n_maps, n_voxels)."""
        self._total = self._total + maps
        self._n_windows += 1

    def result(self):
        """The static maps, float32 of shape (n_maps, n_voxels)."""
        if self._n_windows == 0:
            raise ValueError("No window was added: static maps need at least one window.")
        return zscore_maps(self._total / self._n_windows).astype(np.float32)


class ClusteredStaticMaps(MeanStaticMaps):
    """Static maps from k-means on the FBNs of all window maps (ICASSO-like).

    Every map of every window is thresholded at ``threshold`` into an FBN; the non-empty
    FBNs (held as a sparse matrix, so memory follows the FBNs' size, not the windows'
    count times the brain) are grouped by k-means. Each cluster's centre, the share of its
    FBNs that holds each voxel, is one static map, z-scored; clusters come in decreasing
    size. Maps beyond the number of non-empty FBNs are zeros. Where no window map reaches
    ``threshold`` at all, the static maps are those of :class:`MeanStaticMaps`, with a
    warning.

    Parameters
    ----------
    n_clusters : int
        Number of static maps.
    threshold : float
        z threshold of the FBNs.
    random_state : int, default=0
        Seed of k-means.
    """

    def __init__(self, n_clusters, threshold, random_state=0):
        super().__init__()
        self.n_clusters = n_clusters
        self.threshold = threshold
        self.random_state = random_state
        self._blocks = []

    def add(self, maps):
        super().add(maps)
        fbns = maps >= self.threshold
        self._blocks.append(sparse.csr_matrix(fbns[fbns.any(axis=1)], dtype=np.float32))

    def result(self):
        fbns = sparse.vstack(self._blocks, format="csr") if self._blocks else None
        if fbns is None or fbns.shape[0] == 0:
            warnings.warn(
                f"No window map reaches z >= {self.threshold}: the static maps are the mean "
                "of the window z-maps (static_maps='mean'). Train longer, or lower threshold.",
                RuntimeWarning,
                stacklevel=3,
            )
            return super().result()
        static = np.zeros((self.n_clusters, fbns.shape[1]), dtype=np.float32)
        k = min(self.n_clusters, fbns.shape[0])
        kmeans = KMeans(k, n_init=3, random_state=self.random_state).fit(fbns)
        sizes = np.bincount(kmeans.labels_, minlength=k)
        static[:k] = zscore_maps(kmeans.cluster_centers_[np.argsort(-sizes, kind="stable")])
        return static


def static_maps_accumulator(static_maps, n_clusters, threshold, random_state=0):
    """The accumulator of ``STCADecomposition(static_maps=...)``: one of :data:`STATIC_MAPS`."""
    if static_maps == "mean":
        return MeanStaticMaps()
    return ClusteredStaticMaps(n_clusters, threshold, random_state)


def mean_static_maps(window_maps):
    """:class:`MeanStaticMaps` of an iterable of window z-maps (n_maps, n_voxels)."""
    accumulator = MeanStaticMaps()
    for maps in window_maps:
        accumulator.add(maps)
    return accumulator.result()


def clustered_static_maps(window_maps, n_clusters, threshold, random_state=0):
    """:class:`ClusteredStaticMaps` of an iterable of window z-maps (n_maps, n_voxels)."""
    accumulator = ClusteredStaticMaps(n_clusters, threshold, random_state)
    for maps in window_maps:
        accumulator.add(maps)
    return accumulator.result()
