"""Brain states from the presence of template networks in each window.

A window's presence vector is the IoU of each template's matched map in it, as
:func:`~nilearn_stca.evaluation.compare` scores windows (:func:`presence_table` reads it
from compare's table; :func:`~nilearn_stca.states.sweep_presence` scores a sweep's windows).
k-means on the presence vectors of all the windows of all subjects gives group states
(:func:`fit_states`).
"""

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .kmeans import fit_kmeans, per_subject

__all__ = ["fit_states", "presence_table"]


def presence_table(results, subject, method):
    """Network presence over time: windows x templates of one subject and method.

    Parameters
    ----------
    results : pandas.DataFrame
        The table of :func:`~nilearn_stca.evaluation.compare` (with window rows).
    subject, method : str

    Returns
    -------
    presence : pandas.DataFrame
        One row per scored window (indexed by its first scan, in order), one column per
        template (in the order of the results): the IoU of the template's matched map in
        that window, as ``compare`` scored it.
    """
    rows = results[
        (results["subject"] == subject)
        & (results["method"] == method)
        & (results["window"] != "static")
    ]
    if rows.empty:
        raise ValueError(
            f"results has no window rows for subject {subject!r} and method {method!r}: run "
            "compare(..., windows=True) with them."
        )
    templates = list(dict.fromkeys(rows["template"]))
    presence = rows.pivot(index="window", columns="template", values="iou")[templates]
    presence.index = presence.index.astype(int)
    presence.columns.name = None
    return presence.sort_index()


def fit_states(presence, n_states=None, candidates=range(2, 9), random_state=0):
    """Brain states: k-means on the presence vectors of every window of every subject.

    Parameters
    ----------
    presence : dict of {str: pandas.DataFrame}
        Per subject, :func:`presence_table` (the same templates for all).
    n_states : int, default=None
        Number of states, from 2 to the number of windows; if None, the value in
        ``candidates`` with the best silhouette (as GIFT and neurocaps offer), among those
        below the number of windows.
    candidates : iterable of int, default=range(2, 9)
    random_state : int, default=0
        Seed of k-means (100 initialisations, the best kept).

    Returns
    -------
    states : sklearn.utils.Bunch
        ``n_states``; ``centroids`` (DataFrame, states x templates: each state's mean
        presence profile); ``sequences`` (per subject, the state of each window, an int
        array); ``starts`` (per subject, the windows' first scans); ``silhouette`` (per
        candidate tried, NaN where k-means found a single group; None when ``n_states`` is
        given).
    """
    subjects = list(presence)
    columns = list(presence[subjects[0]].columns)
    if any(list(table.columns) != columns for table in presence.values()):
        raise ValueError("every subject's presence table must have the same templates.")
    features = np.vstack([presence[subject].to_numpy() for subject in subjects])
    model, silhouette = fit_kmeans(features, n_states, candidates, random_state)
    return Bunch(
        n_states=int(model.n_clusters),
        centroids=pd.DataFrame(
            model.cluster_centers_,
            columns=columns,
            index=pd.Index(range(model.n_clusters), name="state"),
        ),
        sequences=per_subject(model.labels_, {s: len(presence[s]) for s in subjects}),
        starts={subject: presence[subject].index.to_numpy() for subject in subjects},
        silhouette=silhouette,
    )
