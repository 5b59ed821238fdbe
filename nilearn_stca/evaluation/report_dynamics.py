"""The "Dynamics" section of a comparison report: brain states from the window presence.

Each method's windows are described by their presence vectors (the IoU of each template's
matched map, as ``compare`` scored it, :func:`~nilearn_stca.states.presence_table`);
k-means on those of all the method's subjects gives group states
(:func:`~nilearn_stca.states.fit_states`), whose temporal metrics are computed per
subject (:func:`~nilearn_stca.states.state_metrics`). The presence vectors are small
(windows x templates), so this step costs little beside the comparison itself.
"""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ..states.metrics import state_metrics_table
from ..states.presence_states import fit_states, presence_table
from .state_figures import plot_occupancy, plot_states
from .tables import METHOD_NAMES, is_static

#: A method needs at least this many windows (over its subjects) to get states.
MIN_WINDOWS = 3

#: Numbers of states tried when ``n_states`` is None (those below the number of windows).
CANDIDATES = range(2, 9)

METRICS_FILE = "states_metrics.tsv"
OCCUPANCY_FIGURE = "state_occupancy.png"
HEADING = "Dynamics"


def check_n_states(n_states):
    """Raise a ValueError unless ``n_states`` is None or an integer of at least 2."""
    if n_states is None:
        return
    if isinstance(n_states, bool) or not isinstance(n_states, numbers.Integral) or n_states < 2:
        raise ValueError(
            f"n_states must be an integer of at least 2, or None to choose it by silhouette; "
            f"got {n_states!r}."
        )


def method_states(results, method, n_states=None, random_state=0):
    """Group states of one method's windows, and a note on how many and why.

    Parameters
    ----------
    results : pandas.DataFrame
        The table of :func:`~nilearn_stca.evaluation.compare`.
    method : str
    n_states : int, default=None
        Number of states; if None, the silhouette choice among :data:`CANDIDATES` below the
        number of windows and at most the number of distinct presence vectors (one state if
        every window has the same presence vector, e.g. no template matched anywhere).
    random_state : int, default=0

    Returns
    -------
    states : sklearn.utils.Bunch or None
        :func:`~nilearn_stca.states.fit_states`' result; None if the method has fewer
        than :data:`MIN_WINDOWS` windows (or fewer than ``n_states``).
    note : str
        For the report: the number of states and how it was chosen, or why there is none.
    """
    windows = results[(results["method"] == method) & ~is_static(results)]
    subjects = list(dict.fromkeys(windows["subject"]))
    presence = {subject: presence_table(results, subject, method) for subject in subjects}
    n_windows = sum(len(table) for table in presence.values())
    label = METHOD_NAMES.get(method, method)
    needed = max(MIN_WINDOWS, n_states or 0)
    if n_windows < needed:
        return None, f"{label}: {n_windows} windows, too few for states (at least {needed})."
    features = np.vstack([table.to_numpy() for table in presence.values()])
    candidates = [k for k in CANDIDATES if k <= len(np.unique(features, axis=0))]
    if n_states is None and not candidates:
        return _one_state(presence), f"{label}: 1 state: every window has the same presence."
    states = fit_states(
        presence, n_states=n_states, candidates=candidates, random_state=random_state
    )
    if n_states is not None:
        return states, f"{label}: {n_states} states (given)."
    scores = ", ".join(f"{k}: {value:.2f}" for k, value in states.silhouette.items())
    return states, f"{label}: {states.n_states} states, the best silhouette ({scores})."


def _one_state(presence):
    """As :func:`~nilearn_stca.states.fit_states` gives, for windows all alike.

    k-means cannot split them (and a silhouette needs two groups): every window is in
    state 0, whose profile is their presence vector.
    """
    first = next(iter(presence.values()))
    return Bunch(
        n_states=1,
        centroids=first.iloc[[0]].reset_index(drop=True).rename_axis("state"),
        sequences={subject: np.zeros(len(table), int) for subject, table in presence.items()},
        starts={subject: table.index.to_numpy() for subject, table in presence.items()},
        silhouette=None,
    )


def _window_step(states):
    """Scans between consecutive scored windows (1 if no subject has two windows)."""
    steps = [np.diff(starts) for starts in states.starts.values() if len(starts) > 1]
    return int(np.concatenate(steps).min()) if steps else 1


def _summary_table(metrics):
    """Per method and state, "mean ± sd" over subjects of the per-state metrics."""
    columns = ["temporal_fraction", "persistence", "persistence_seconds", "counts"]
    columns = [column for column in columns if column in metrics]
    data = metrics.assign(method=metrics["method"].map(lambda m: METHOD_NAMES.get(m, m)))
    grouped = data.groupby(["method", "state"], sort=False)[columns]
    mean, sd = grouped.mean(), grouped.std()
    return pd.DataFrame(
        {
            column: [
                f"{m:.2f}" + ("" if pd.isna(s) else f" ± {s:.2f}")
                for m, s in zip(mean[column], sd[column], strict=True)
            ]
            for column in columns
        },
        index=mean.index,
    )


def write_dynamics(results, out_dir, stage, n_states=None, t_r=None, random_state=0):
    """Brain states of each method's windows: their files, and the report's section.

    Parameters
    ----------
    results : pandas.DataFrame
        The table of :func:`~nilearn_stca.evaluation.compare`, with window rows.
    out_dir : Path
        Where the files go.
    stage : callable
        ``stage(path)`` gives the temporary path each file is written to
        (:func:`~nilearn_stca._utils.io.atomic_paths`).
    n_states : int, default=None
        Number of states of every method; None chooses it per method by silhouette.
    t_r : float, default=None
        Repetition time in seconds; with it, ``persistence_seconds`` (the stride between
        scored windows is the step).
    random_state : int, default=0
        Seed of k-means.

    Returns
    -------
    dynamics : sklearn.utils.Bunch
        ``section`` (for :func:`~nilearn_stca.evaluation.report.write_report`'s
        ``sections``: ``notes``, ``tables`` and ``figures`` by caption, with their final
        paths), ``tables`` and ``figures`` (the paths written). Written:
        ``states_<method>.png`` (:func:`plot_states`) per method with states,
        ``state_occupancy.png`` (:func:`plot_occupancy`) and ``states_metrics.tsv``
        (:func:`~nilearn_stca.states.state_metrics_table` of every method), none if
        no method has states.
    """
    check_n_states(n_states)
    notes = [
        "States: k-means on the presence vector of each window (the IoU of each template's "
        "matched map), all subjects of a method together; each method has its own states."
    ]
    figures, metrics = {}, []
    for method in dict.fromkeys(results.loc[~is_static(results), "method"]):
        states, note = method_states(results, method, n_states, random_state)
        notes.append(note)
        if states is None:
            continue
        label = METHOD_NAMES.get(method, method)
        path = out_dir / f"states_{method}.png"
        plot_states(states, title=f"{label}: brain states", output_file=stage(path))
        figures[f"{label}: state profiles, state of each window, transitions"] = path
        metrics.append(state_metrics_table(states, method, t_r, _window_step(states)))
    tables, written_tables = {}, []
    if metrics:
        metrics = pd.concat(metrics, ignore_index=True)
        path = out_dir / OCCUPANCY_FIGURE
        plot_occupancy(metrics, output_file=stage(path))
        figures["Occupancy (temporal fraction) of each state, mean ± sd over subjects"] = path
        metrics.to_csv(stage(out_dir / METRICS_FILE), sep="\t", index=False)
        written_tables.append(out_dir / METRICS_FILE)
        tables["Brain states, mean ± sd over subjects (persistence in windows)"] = _summary_table(
            metrics
        )
    return Bunch(
        section={"notes": notes, "tables": tables, "figures": figures},
        tables=written_tables,
        figures=list(figures.values()),
    )
