"""Stability of a decomposition across seeds: refit, cluster every map, score each cluster.

As ICASSO (Himberg et al., 2004) does for ICA: the estimator is fitted ``n_runs`` times with
different seeds, the maps of all runs are grouped by agglomerative clustering (average
linkage) on their absolute spatial correlation, and each cluster gets a stability index, the
mean similarity within it minus the mean similarity between it and the other maps. A
cluster's centrotype (the member most similar to the others) is its representative map. It
works for any of this package's estimators: do the 64 attention maps of STCA come back with
another seed?
"""

import json
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.cluster import AgglomerativeClustering
from sklearn.utils import Bunch, check_random_state
from tqdm.auto import tqdm

__all__ = ["STABILITY_FILE", "STABILITY_FILES", "stability", "write_stability"]

#: The settings and summary of a stability run, in its folder.
STABILITY_FILE = "stability.json"
#: The other files :func:`write_stability` writes.
STABILITY_FILES = ("stability.tsv", "desc-centrotypes_components.nii.gz", "stability.png")


def _fit_maps(estimator, imgs, confounds, seed):
    fitted = clone(estimator).set_params(random_state=int(seed)).fit(imgs, confounds=confounds)
    return fitted.components_, fitted.masker_


def stability(
    estimator,
    imgs,
    n_runs=10,
    confounds=None,
    random_state=0,
    random_states=None,
    n_jobs=1,
    verbose=0,
):
    """Refit ``estimator`` with other seeds and measure how stable each of its maps is.

    Parameters
    ----------
    estimator : STCADecomposition, ICADecomposition or SDLDecomposition
        Unfitted; cloned for every run, with only ``random_state`` changed.
    imgs : Niimg-like or list of Niimg-like
        What each run is fitted on.
    n_runs : int, default=10
    confounds : default=None
        As for the estimator's ``fit``.
    random_state : int or RandomState, default=0
        Draws the seed of each run.
    random_states : sequence of int, default=None
        The seed of each run instead (``n_runs`` is then its length), e.g. the same seed
        repeated, to check that a method is deterministic.
    n_jobs : int, default=1
        Runs fitted in parallel (joblib processes).
    verbose : int, default=0
        A progress bar over the runs if positive.

    Returns
    -------
    result : sklearn.utils.Bunch
        - ``table``: DataFrame, one row per cluster, most stable first: ``stability_index``,
          ``intra_similarity``, ``extra_similarity``, ``n_maps`` and ``n_runs`` (how many
          runs have a map in it), ``centrotype`` (the index of its representative map among
          all maps). There are as many clusters as maps in the fit with the most maps that
          are not empty (``estimator.n_components`` when no map is empty).
        - ``components_``: ndarray (n_clusters, n_voxels), the centrotypes in the table's
          order, each signed to correlate positively with its cluster;
          ``components_img_`` the same as a 4D image.
        - ``similarity``: the absolute correlation between all maps (run-major order; 0
          for an empty map) and ``labels``, each map's cluster (its row in ``table``), -1
          for an empty map.
        - ``n_empty``: per run, how many of its maps are empty (constant, e.g. all zeros).
          They are left out of the clustering, with a warning: a constant map correlates
          with no other, so it would make a cluster of its own with a perfect index.
        - ``random_states``: the seed of each run (list of int).

    Raises
    ------
    ValueError
        If every map of every run is empty, or a map holds NaN or inf.
    """
    if random_states is None:
        if isinstance(n_runs, bool) or not isinstance(n_runs, int) or n_runs < 2:
            raise ValueError(f"n_runs must be an integer >= 2, got {n_runs!r}.")
        random_states = check_random_state(random_state).randint(
            np.iinfo(np.int32).max, size=n_runs
        )
    random_states = [int(seed) for seed in random_states]
    if len(random_states) < 2:
        raise ValueError("stability needs at least 2 runs: give n_runs >= 2 or 2 random_states.")
    runs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_fit_maps)(estimator, imgs, confounds, seed) for seed in random_states
    )
    fits = list(tqdm(runs, total=len(random_states), desc="stability", disable=not verbose))
    n_voxels = {maps.shape[1] for maps, _ in fits}
    if len(n_voxels) > 1:
        raise ValueError(
            "The runs computed different masks: give the estimator a mask, so that every "
            "run's maps are on the same voxels."
        )
    maps = np.vstack([maps for maps, _ in fits]).astype(np.float64)
    if not np.isfinite(maps).all():
        raise ValueError(
            f"{type(estimator).__name__} gave maps with non-finite values (NaN or inf): "
            "check the runs, or the estimator's settings."
        )
    run_of_map = np.repeat(np.arange(len(fits)), [len(m) for m, _ in fits])
    empty = np.ptp(maps, axis=1) == 0
    n_empty = np.bincount(run_of_map[empty], minlength=len(fits)).tolist()
    _check_empty_maps(estimator, n_empty, len(fits[0][0]))
    kept = np.flatnonzero(~empty)
    similarity = np.zeros((len(maps), len(maps)))
    similarity[np.ix_(kept, kept)] = np.abs(np.corrcoef(maps[kept]).reshape(len(kept), -1))
    np.fill_diagonal(similarity, 1.0)
    # As many clusters as the fit with the most maps that are not empty has maps.
    n_clusters = max(len(m) - n for (m, _), n in zip(fits, n_empty, strict=True))
    labels = np.full(len(maps), -1)
    labels[kept] = _cluster(similarity[np.ix_(kept, kept)], n_clusters)

    rows = []
    for cluster in range(n_clusters):
        members = np.flatnonzero(labels == cluster)
        others = np.setdiff1d(kept, members)
        block = similarity[np.ix_(members, members)]
        intra = (block.sum() - len(members)) / max(len(members) * (len(members) - 1), 1)
        if len(members) == 1:
            intra = 1.0
        extra = similarity[np.ix_(members, others)].mean() if len(others) else 0.0
        centrotype = members[np.argmax(block.sum(axis=1))]
        rows.append(
            {
                "cluster": cluster,
                "stability_index": intra - extra,
                "intra_similarity": intra,
                "extra_similarity": extra,
                "n_maps": len(members),
                "n_runs": len(np.unique(run_of_map[members])),
                "centrotype": int(centrotype),
            }
        )
    table = pd.DataFrame(rows).sort_values("stability_index", ascending=False, kind="stable")
    order = table["cluster"].to_numpy()
    relabel = np.empty(n_clusters + 1, dtype=int)
    relabel[order] = np.arange(n_clusters)
    relabel[-1] = -1  # the empty maps
    table = table.drop(columns="cluster").reset_index(drop=True)
    table.index.name = "cluster"

    centrotypes = []
    for cluster, centrotype in zip(order, table["centrotype"], strict=True):
        members = np.flatnonzero(labels == cluster)
        sign = np.sign(np.sum(np.corrcoef(maps[centrotype], maps[members])[0, 1:])) or 1.0
        centrotypes.append(sign * maps[centrotype])
    components = np.array(centrotypes, dtype=np.float32)
    masker = fits[0][1]
    return Bunch(
        table=table,
        components_=components,
        components_img_=masker.inverse_transform(components),
        similarity=similarity,
        labels=relabel[labels],
        n_empty=n_empty,
        random_states=random_states,
    )


def _check_empty_maps(estimator, n_empty, n_components):
    """Refuse fits whose maps are all empty; warn, with the count, where some are."""
    name = type(estimator).__name__
    n_maps = n_components * len(n_empty)
    if sum(n_empty) == n_maps:
        raise ValueError(
            f"Every map of the {len(n_empty)} fits of {name} is empty (constant, e.g. all "
            "zeros): there is nothing to cluster. Check the estimator's settings (e.g. a "
            "sparsity penalty or FBN threshold that leaves no map) and the runs."
        )
    if sum(n_empty):
        per_fit = n_empty[0] if len(set(n_empty)) == 1 else f"{min(n_empty)} to {max(n_empty)}"
        warnings.warn(
            f"{per_fit} of the {n_components} maps of each fit of {name} are empty "
            f"(constant, e.g. all zeros; {sum(n_empty)} of {n_maps} in all): they are left out "
            "of the clustering, and their count per fit is n_empty. Ask for fewer "
            "n_components, as many as the maps that the fits find.",
            RuntimeWarning,
            stacklevel=3,
        )


def _cluster(similarity, n_clusters):
    """Average-linkage clusters of maps from their absolute correlation."""
    if len(similarity) < 2:
        return np.zeros(len(similarity), dtype=int)
    return AgglomerativeClustering(
        n_clusters=n_clusters, metric="precomputed", linkage="average"
    ).fit_predict(1.0 - similarity)


def write_stability(result, out_dir, settings=None, title=None):
    """Write the table, centrotype maps and figure of :func:`stability` into a folder.

    Every file is written under a temporary name and all are renamed together once written
    (``stability.json`` last): a failure leaves no partial file.

    Parameters
    ----------
    result : sklearn.utils.Bunch
        The result of :func:`stability`.
    out_dir : str or Path
        Created if needed. A folder holding another stability run is refused; the same
        run again replaces its files.
    settings : dict, default=None
        What was run (JSON values: the method, its inputs and parameters), recorded in
        ``stability.json``; the runs' seeds if None.
    title : str, default=None
        Title of the figure.

    Returns
    -------
    files : dict of {str: Path}
        ``stability.tsv`` (the table, one row per cluster), ``desc-centrotypes_components.nii.gz``
        (``components_img_``), ``stability.png``
        (:func:`~nilearn_stca.evaluation.stability_figures.plot_stability`) and
        ``stability.json`` (the settings, the seeds, each run's number of empty maps,
        ``n_empty_maps``, and a summary of the index).
    """
    from .._utils.run_folder import run_files
    from .stability_figures import plot_stability

    seeds = [int(seed) for seed in result.random_states]
    settings = json.loads(json.dumps({"random_states": seeds} if settings is None else settings))
    index = result.table["stability_index"]
    record = {
        "settings": settings,
        "random_states": seeds,
        "n_clusters": len(result.table),
        "n_empty_maps": [int(n) for n in result.n_empty],
        "stability_index": {"mean": index.mean(), "min": index.min(), "max": index.max()},
    }
    with run_files(out_dir, STABILITY_FILE, settings, "stability run") as stage:
        json_file = stage(STABILITY_FILE)
        table_file, maps_file, figure_file = STABILITY_FILES
        result.table.to_csv(stage(table_file), sep="\t")
        result.components_img_.to_filename(stage(maps_file))
        plot_stability(result, title=title, output_file=stage(figure_file))
        record["files"] = sorted(stage.files)
        json_file.write_text(json.dumps(record, indent=2) + "\n")
    return stage.files
