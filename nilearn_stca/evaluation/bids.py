"""BIDS entities of the input runs: subject labels and the ``sub``/``ses``/``run`` columns.

File names are read with nilearn's :func:`nilearn.interfaces.bids.parse_bids_filename`.
"""

import re
from pathlib import Path

import pandas as pd
from nilearn.interfaces.bids import parse_bids_filename

#: The entities kept as columns of the results, in this order.
BIDS_COLUMNS = ("sub", "ses", "run")


def bids_entities(img):
    """``{"sub": ..., "ses": ..., "run": ...}`` of a BIDS file name (those present).

    Anything that is not a path (an image in memory) has no entities.
    """
    if not _is_path(img):
        return {}
    entities = parse_bids_filename(str(img))["entities"]
    return {key: entities[key] for key in BIDS_COLUMNS if key in entities}


#: How errors say where to give labels, from Python and from the command line.
GIVE_SUBJECTS = "give one label per run with subjects= (on the command line: --subjects)"


def subject_labels(imgs, subjects=None):
    """One label per run, used in tables, file names and the report.

    ``subjects`` if given (checked). Otherwise, when every run has a BIDS ``sub-`` entity,
    ``sub-<label>`` followed by the other entities of its file name in which the runs
    differ (e.g. ``sub-01_ses-2_run-1`` for several runs of one subject, or
    ``sub-01_task-rest`` and ``sub-01_task-motor``). When no run has one, ``sub-01``,
    ``sub-02``... in order.

    Raises
    ------
    ValueError
        If a file is given twice; if some runs have a ``sub-`` entity and others not; if the
        entities of two runs are the same (e.g. ``a/sub-01_bold.nii.gz`` and
        ``b/sub-01_bold.nii.gz``); or if ``subjects`` has another length than ``imgs``,
        repeats a label or holds characters other than letters, digits, ``.``, ``_``, ``-``.
    """
    _check_each_run_once(imgs)
    if subjects is not None:
        labels = [str(s) for s in subjects]
        if len(labels) != len(imgs):
            raise ValueError(f"subjects has {len(labels)} labels for {len(imgs)} images.")
    else:
        labels = _bids_labels(imgs)
    if len(set(labels)) < len(labels):
        raise ValueError(f"subjects must be unique, got {labels}.")
    bad = [label for label in labels if not re.fullmatch(r"[A-Za-z0-9._-]+", label)]
    if bad:
        raise ValueError(f"subject labels may hold letters, digits, '.', '_' and '-' only: {bad}")
    return labels


def _is_path(img):
    return isinstance(img, (str, Path))


def _named(imgs, i):
    """``imgs[i]``, with its file where it is one."""
    return f"imgs[{i}] ({str(imgs[i])!r})" if _is_path(imgs[i]) else f"imgs[{i}]"


def _run_identity(img):
    """The file of a run given as a path (the same for every path to it); else the object."""
    if not _is_path(img):
        return ("image", id(img))
    try:
        stat = Path(img).stat()
    except OSError:
        return ("path", Path(img).resolve())  # a missing file is refused when it is read
    return ("file", stat.st_dev, stat.st_ino)


def _check_each_run_once(imgs):
    """Refuse a file (or an image in memory) given twice: it would count as two subjects."""
    seen = {}
    for i, img in enumerate(imgs):
        identity = _run_identity(img)
        if identity in seen:
            what = f"the same file ({str(img)!r})" if _is_path(img) else "the same image"
            raise ValueError(
                f"imgs[{seen[identity]}] and imgs[{i}] are {what}: give each run once (a run "
                "given twice would count as two subjects)."
            )
        seen[identity] = i


def _bids_labels(imgs):
    """Labels from the BIDS entities of every run's file name (numbers where none has any)."""
    entities = [parse_bids_filename(str(img))["entities"] if _is_path(img) else {} for img in imgs]
    with_sub = [i for i, found in enumerate(entities) if "sub" in found]
    if not with_sub:
        return [f"sub-{i + 1:02d}" for i in range(len(imgs))]
    if len(with_sub) < len(imgs):
        without = next(i for i in range(len(imgs)) if "sub" not in entities[i])
        raise ValueError(
            f"{_named(imgs, without)} has no BIDS sub-<label> in its file name where "
            f"{_named(imgs, with_sub[0])} has one: {GIVE_SUBJECTS}."
        )
    keys = [key for found in entities for key in found if key != "sub"]
    varying = [
        key for key in dict.fromkeys(keys) if len({found.get(key) for found in entities}) > 1
    ]
    labels = [
        "_".join(f"{key}-{found[key]}" for key in ("sub", *varying) if key in found)
        for found in entities
    ]
    first = {}
    for i, label in enumerate(labels):
        if label in first:
            raise ValueError(
                f"{_named(imgs, first[label])} and {_named(imgs, i)} have the same BIDS "
                f"entities ({label}), so their file names do not tell them apart: "
                f"{GIVE_SUBJECTS}."
            )
        first[label] = i
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
