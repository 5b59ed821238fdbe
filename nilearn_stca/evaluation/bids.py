"""BIDS entities of the input runs: subject labels and the ``sub``/``ses``/``run`` columns.

File names are read with nilearn's :func:`nilearn.interfaces.bids.parse_bids_filename`.
"""

import re
import warnings
from pathlib import Path

import pandas as pd
from nilearn.interfaces.bids import parse_bids_filename

#: The entities kept as columns of the results, in this order.
BIDS_COLUMNS = ("sub", "ses", "run")


def bids_entities(img):
    """``{"sub": ..., "ses": ..., "run": ...}`` of a BIDS file name (those present).

    Anything that is not a path (an image in memory) has no entities.
    """
    if not isinstance(img, (str, Path)):
        return {}
    entities = parse_bids_filename(str(img))["entities"]
    return {key: entities[key] for key in BIDS_COLUMNS if key in entities}


def subject_labels(imgs, subjects=None):
    """One label per run, used in tables, file names and the report.

    ``subjects`` if given (checked). Otherwise, when every run has a BIDS ``sub-`` entity,
    ``sub-<label>``, followed by ``_ses-<label>`` and ``_run-<index>`` where the runs differ
    in those (e.g. ``sub-01_ses-2_run-1`` for several runs of one subject). Otherwise
    ``sub-01``, ``sub-02``... in order, with a warning when BIDS names were found but do not
    tell the runs apart (give ``subjects``).
    """
    if subjects is not None:
        labels = [str(s) for s in subjects]
        if len(labels) != len(imgs):
            raise ValueError(f"subjects has {len(labels)} labels for {len(imgs)} images.")
    else:
        labels = _bids_labels([bids_entities(img) for img in imgs])
        if labels is None:
            labels = [f"sub-{i + 1:02d}" for i in range(len(imgs))]
    if len(set(labels)) < len(labels):
        raise ValueError(f"subjects must be unique, got {labels}.")
    bad = [label for label in labels if not re.fullmatch(r"[A-Za-z0-9._-]+", label)]
    if bad:
        raise ValueError(f"subject labels may hold letters, digits, '.', '_' and '-' only: {bad}")
    return labels


def _bids_labels(entities):
    """Labels from the entities of every run, or None where they cannot name every run."""
    if not entities or not all("sub" in found for found in entities):
        return None
    varying = [key for key in ("ses", "run") if len({found.get(key) for found in entities}) > 1]
    labels = [
        "_".join(f"{key}-{found[key]}" for key in ("sub", *varying) if key in found)
        for found in entities
    ]
    if len(set(labels)) < len(labels):
        warnings.warn(
            f"The BIDS entities sub, ses and run do not tell the runs apart ({labels}): they "
            "are labelled sub-01, sub-02... in order. Give subjects= to name them.",
            UserWarning,
            stacklevel=4,
        )
        return None
    return labels


def with_bids_columns(results, subjects, imgs):
    """``results`` with ``sub``, ``ses`` and ``run`` columns after ``subject``.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows with a ``subject`` column holding the labels of ``subjects``.
    subjects : list of str
        The label of each run.
    imgs : list
        The runs, in the order of ``subjects``: the entities of their file names fill the
        columns (empty for a run without the entity, or an image in memory).

    Returns
    -------
    results : pandas.DataFrame
    """
    by_subject = {label: bids_entities(img) for label, img in zip(subjects, imgs, strict=True)}
    results = results.drop(columns=list(BIDS_COLUMNS), errors="ignore")
    position = list(results.columns).index("subject") + 1
    for offset, key in enumerate(BIDS_COLUMNS):
        values = [by_subject.get(label, {}).get(key) for label in results["subject"]]
        column = pd.Series(values, index=results.index, dtype=object)
        results.insert(position + offset, key, column)
    return results
