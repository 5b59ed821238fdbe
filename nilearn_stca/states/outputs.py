"""Brain states of window sweeps, written to a folder: sequences, metrics, transitions, figures.

:func:`write_states` is the ``states`` step of the ``nilearn-stca`` command: it takes the
sweeps of :func:`~nilearn_stca.write_window_sweep` (one per run and method), groups them by
method, finds states jointly across the subjects of each method (group states, as GIFT's
dFNC does) and writes what :mod:`nilearn_stca.states.metrics` measures of them.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch
from tqdm.auto import tqdm

from .._utils.run_folder import check_run_folder, run_files
from ..evaluation.metrics import check_strategy
from ..evaluation.templates import DEFAULT_TEMPLATE_THRESHOLD
from .map_states import fit_checked_map_states
from .metrics import state_metrics_table, transition_counts, transition_probability
from .presence_states import fit_states
from .sweep_groups import check_groups, group_sweeps
from .template_presence import template_loader, window_presence

__all__ = ["STATES_FILE", "write_states"]

#: The settings and choices of a states run, in its folder.
STATES_FILE = "states.json"
#: What k-means groups: the windows' FBN maps, or their templates' presence vectors.
FEATURES = ("maps", "presence")
#: The tables of a states run: sequences, metrics, transitions.
TABLE_FILES = ("states_sequences.tsv", "states_metrics.tsv", "states_transitions.tsv")


# ---------------------------------------------------------------------- the step
def write_states(
    sweeps,
    out_dir,
    n_states=None,
    features="maps",
    templates=None,
    template_threshold=DEFAULT_TEMPLATE_THRESHOLD,
    threshold=None,
    strategy="max",
    t_r=None,
    random_state=0,
    n_features=20,
    candidates=range(2, 9),
    verbose=0,
):
    """Find brain states in window sweeps, per method, and write their tables and figures.

    The sweeps are grouped by their method (``sweep.json``); the states of each method are
    found jointly across its subjects, by k-means on one feature vector per window:

    - ``features="maps"``: the binary union of the window's FBNs, streamed from the sweeps
      and reduced by incremental PCA (:func:`~nilearn_stca.states.fit_map_states`);
    - ``features="presence"``: the IoU of each template's matched map in the window
      (:func:`~nilearn_stca.states.sweep_presence`, then :func:`~nilearn_stca.states.fit_states`).

    No more than one window's maps (and, for ``"maps"``, two batches of binary maps) are
    held in memory. Every file is written under a temporary name and all are renamed once
    written (``states.json`` last), so a failure leaves no partial file.

    Parameters
    ----------
    sweeps : dict of {str: str, Path or WindowSweep}, or list of str or Path
        The sweep folders (:func:`~nilearn_stca.write_window_sweep`), by subject label, or
        a list labelled by folder name (by path below the folders' common parent where
        names repeat). The sweeps of one method must share their window length and
        stride: their windows are pooled.
    out_dir : str or Path
        Created if needed. A folder holding another states run is refused; the same run
        again replaces its files.
    n_states : int, default=None
        Number of states of every method; if None, each method's best silhouette among
        ``candidates``.
    features : {"maps", "presence"}, default="maps"
    templates : "smith2009" or Niimg-like, default=None
        The networks whose presence is measured (as for
        :func:`~nilearn_stca.evaluation.compare`); needed by ``"presence"`` only.
    template_threshold : float, default=3.6
        Threshold of the template maps.
    threshold : float, default=None
        z threshold of the window maps; each sweep's own if None.
    strategy : {"max", "hungarian"}, default="max"
        Matching of templates to maps, for ``"presence"``.
    t_r : float, default=None
        Repetition time in seconds: with it, dwell times are also given in seconds.
    random_state : int, default=0
        Seed of k-means.
    n_features : int, default=20
        Principal components of the maps, for ``"maps"``.
    candidates : iterable of int, default=range(2, 9)
        Numbers of states tried when ``n_states`` is None.
    verbose : int, default=0
        Progress bars if positive.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``files`` (``{name: Path}`` of every file written), ``states`` (per method, the
        result of ``fit_map_states`` or ``fit_states``), and the tables written:
        ``sequences``, ``metrics`` and ``transitions``. The files, in ``out_dir``:

        - ``states_sequences.tsv``: method, subject, window (its first scan), state;
        - ``states_metrics.tsv``: method, subject, state, ``temporal_fraction``,
          ``persistence`` (in windows), ``persistence_seconds`` (with ``t_r``; the window
          stride as the step), ``counts`` and the subject's ``transition_frequency``
          (see :func:`~nilearn_stca.states.state_metrics`);
        - ``states_transitions.tsv``: method, subject, from, to, probability (n/a from a
          state never left);
        - per method ``method-<m>_states.png`` (:func:`plot_states` of
          :mod:`nilearn_stca.evaluation.state_figures`), and
          ``method-<m>_desc-states_maps.nii.gz`` (``"maps"``: the 4D state maps) or
          ``method-<m>_state_profiles.tsv`` (``"presence"``: states x templates);
        - ``state_occupancy.png`` (its :func:`plot_occupancy`) and ``states.json`` (the
          settings, the sweeps, each method's number of states and silhouettes).
    """
    _check_options(features, templates, t_r, strategy)
    groups = group_sweeps(sweeps)
    check_groups(groups, features, n_states)
    out_dir = Path(out_dir)
    settings = _settings(
        groups,
        features=features,
        n_states=n_states,
        candidates=candidates,
        templates=templates,
        template_threshold=template_threshold,
        threshold=threshold,
        strategy=strategy,
        t_r=t_r,
        random_state=random_state,
        n_features=n_features,
    )
    # Before the fits, so that a refused folder costs none; run_files checks it again under
    # the folder's lock, since another run may have written there in the meantime.
    check_run_folder(out_dir, STATES_FILE, settings)
    states = _fit_groups(groups, settings, template_loader(templates, template_threshold), verbose)
    sequences, metrics, transitions = _all_tables(states, groups, t_r)
    record = {"settings": settings, "methods": _choices(states, groups)}
    files = _write(out_dir, settings, record, states, features, (sequences, metrics, transitions))
    return Bunch(
        files=files, states=states, sequences=sequences, metrics=metrics, transitions=transitions
    )


def _check_options(features, templates, t_r, strategy):
    """Refuse options that do not go together, before any sweep is opened."""
    if features not in FEATURES:
        raise ValueError(f"features must be 'maps' or 'presence', got {features!r}.")
    if features == "presence" and templates is None:
        raise ValueError("features='presence' needs templates: 'smith2009' or an image.")
    if features == "maps" and templates is not None:
        raise ValueError("templates are used by features='presence' only: leave them out.")
    if t_r is not None and not (isinstance(t_r, (int, float)) and np.isfinite(t_r) and t_r > 0):
        raise ValueError(f"t_r must be a positive number of seconds, got {t_r!r}.")
    check_strategy(strategy)


def _settings(
    groups,
    *,
    features,
    n_states,
    candidates,
    templates,
    template_threshold,
    threshold,
    strategy,
    t_r,
    random_state,
    n_features,
):
    """What ``states.json`` records of the run (JSON types); the same settings may rewrite it."""
    return {
        "features": features,
        "n_states": None if n_states is None else int(n_states),
        "candidates": [int(k) for k in candidates],
        "templates": _describe(templates),
        "template_threshold": float(template_threshold) if features == "presence" else None,
        "threshold": None if threshold is None else float(threshold),
        "strategy": strategy if features == "presence" else None,
        "t_r": None if t_r is None else float(t_r),
        "random_state": int(random_state),
        "n_features": int(n_features) if features == "maps" else None,
        "sweeps": {
            method: {label: str(sweep.path.resolve()) for label, sweep in group.items()}
            for method, group in groups.items()
        },
    }


def _describe(templates):
    """``templates`` as ``states.json`` records them: a name, a full path or an image's shape."""
    if templates is None or templates == "smith2009":
        return templates
    if isinstance(templates, (str, Path)):
        return str(Path(templates).resolve())
    return f"an image of shape {tuple(templates.shape)}"


# ---------------------------------------------------------------------- the fits
def _fit_groups(groups, settings, templates_on, verbose):
    """Each method's states, its sweeps streamed as the features need (one bar for all)."""
    presence = settings["features"] == "presence"
    n_windows = sum(len(sweep) for group in groups.values() for sweep in group.values())
    states = {}
    with tqdm(
        total=n_windows if presence else len(groups),
        desc=f"states ({settings['features']})",
        unit="window" if presence else "method",
        disable=not verbose,
    ) as progress:
        for method, group in groups.items():
            if presence:
                states[method] = _presence_states(group, templates_on, settings, progress)
            else:
                states[method] = fit_checked_map_states(
                    group,
                    settings["n_states"],
                    settings["n_features"],
                    settings["threshold"],
                    settings["random_state"],
                    candidates=settings["candidates"],
                )
                progress.update()
    return states


def _presence_states(group, templates_on, settings, progress):
    """k-means on the presence vectors of every window of a method, each sweep read once."""
    presence = {}
    for label, sweep in group.items():
        masks, names = templates_on(sweep.masker.mask_img_)
        presence[label] = window_presence(
            sweep, masks, names, settings["threshold"], settings["strategy"], progress
        )
    return fit_states(
        presence, settings["n_states"], settings["candidates"], settings["random_state"]
    )


# ---------------------------------------------------------------------- tables and files
def _all_tables(states, groups, t_r):
    """The sequences, metrics and transitions of every method, one table each."""
    tables = [[], [], []]
    for method, found in states.items():
        steps = {label: int(sweep.metadata["stride"]) for label, sweep in groups[method].items()}
        for table, part in zip(tables, _tables(method, found, steps, t_r), strict=True):
            table.append(part)
    return tuple(pd.concat(table, ignore_index=True) for table in tables)


def _tables(method, states, steps, t_r):
    """Per subject: the state of each window, the metrics, the transition probabilities."""
    seconds = [] if t_r is None else ["persistence_seconds"]
    columns = ["method", "subject", "state", "temporal_fraction", "persistence", *seconds]
    columns += ["counts", "transition_frequency"]
    sequences, transitions = [], []
    for subject, sequence in states.sequences.items():
        where = {"method": method, "subject": subject}
        sequences.append(
            pd.DataFrame({**where, "window": states.starts[subject], "state": sequence})
        )
        probability = transition_probability(transition_counts(sequence, states.n_states))
        index = pd.MultiIndex.from_product([range(states.n_states)] * 2, names=["from", "to"])
        transitions.append(
            pd.DataFrame({**where, "probability": probability.ravel()}, index=index).reset_index()
        )
    return (
        pd.concat(sequences, ignore_index=True),
        state_metrics_table(states, method, t_r, steps)[columns],
        pd.concat(transitions, ignore_index=True)[
            ["method", "subject", "from", "to", "probability"]
        ],
    )


def _choices(states, groups):
    """What ``states.json`` records of each method's fit."""
    methods = {}
    for method, found in states.items():
        silhouette = found.silhouette
        if silhouette is not None:
            silhouette = {str(k): None if np.isnan(v) else v for k, v in silhouette.items()}
        methods[method] = {
            "n_states": found.n_states,
            "silhouette": silhouette,
            "subjects": list(groups[method]),
            "n_windows": {label: len(sweep) for label, sweep in groups[method].items()},
        }
        if "explained_variance_ratio" in found:
            methods[method]["explained_variance_ratio"] = [
                float(v) for v in found.explained_variance_ratio
            ]
    return methods


def _write(out_dir, settings, record, states, features, tables):
    """Stage every file; they are renamed together (``states.json`` last)."""
    from ..evaluation.state_figures import plot_occupancy, plot_states
    from ..evaluation.tables import METHOD_NAMES

    with run_files(out_dir, STATES_FILE, settings, "states run") as stage:
        json_file = stage(STATES_FILE)
        for name, table in zip(TABLE_FILES, tables, strict=True):
            table.to_csv(stage(name), sep="\t", index=False, na_rep="n/a")
        for method, found in states.items():
            title = f"{METHOD_NAMES.get(method, method)}: {found.n_states} states"
            plot_states(found, title=title, output_file=stage(f"method-{method}_states.png"))
            if features == "maps":
                found.state_maps_img.to_filename(stage(f"method-{method}_desc-states_maps.nii.gz"))
            else:
                found.centroids.to_csv(stage(f"method-{method}_state_profiles.tsv"), sep="\t")
        plot_occupancy(tables[1], output_file=stage("state_occupancy.png"))
        record = {**record, "files": sorted(stage.files)}
        json_file.write_text(json.dumps(record, indent=2) + "\n")
    return stage.files
