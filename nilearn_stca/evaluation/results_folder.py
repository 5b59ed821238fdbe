"""The folder of a comparison: settings, finished cells with their checksums, results.

A folder is a comparison's when it holds its ``comparison.json`` (written first): ``compare``
writes only into a new or empty folder or its own (:func:`check_results_folder`). It writes
each (subject, method) cell through :class:`CellWriter` and reuses a finished one only when
:meth:`ResultsFolder.load_cell` finds it whole.
"""

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn.image import load_img

from .._utils.io import atomic_path, fsync_directory, fsync_file
from .._utils.ownership import FolderLockedError, foreign_entries, name_some, refuse_a_file
from .bids import BIDS_COLUMNS
from .tables import STATIC

#: Columns of the table ``compare`` returns, in order.
RESULT_COLUMNS = ["subject", "method", "window", "template", "component", "iou", "dice", "runtime"]

SETTINGS_FILE = "comparison.json"
RESULTS_FILE = "results.csv"
#: The same table, tab-separated, as BIDS derivatives keep tables.
RESULTS_TSV = "results.tsv"
TEMPLATES_FILE = "templates.nii.gz"
CHECKSUMS_DIR = "checksums"
DESCRIPTION_FILE = "dataset_description.json"


def static_maps_file(out_dir, subject, method):
    """``out_dir/maps/<subject>_method-<method>_desc-static_components.nii.gz``.

    Named as a BIDS derivative (``method`` is this package's own entity).
    """
    return Path(out_dir) / "maps" / f"{subject}_method-{method}_desc-static_components.nii.gz"


def dataset_description():
    """The ``dataset_description.json`` of a comparison folder, a BIDS derivative dataset."""
    from .. import __version__

    return {
        "Name": "nilearn-stca comparison of STCA, ICA and SDL",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "nilearn-stca",
                "Version": __version__,
                "Description": "compare(): static and sliding-window maps of each method, "
                "scored against resting-state network templates by IoU",
            }
        ],
    }


def write_results(results, out_dir, stage):
    """``results.csv`` and ``results.tsv`` (the same table) and ``dataset_description.json``.

    Each file is written to ``stage(path)`` (:func:`~nilearn_stca._utils.io.atomic_paths`), so
    they appear together once all are written.
    """
    out_dir = Path(out_dir)
    results.to_csv(stage(out_dir / RESULTS_FILE), index=False)
    results.to_csv(stage(out_dir / RESULTS_TSV), sep="\t", index=False)
    description = json.dumps(dataset_description(), indent=2) + "\n"
    stage(out_dir / DESCRIPTION_FILE).write_text(description)


class ComparisonLockedError(FolderLockedError):
    """Another comparison is writing into the same ``out_dir``."""


def read_results(path):
    """Read a results CSV written by :func:`compare`; ``window`` is "static" or an int.

    The BIDS columns ``sub``, ``ses`` and ``run`` are read as text (None where empty), so
    ``"01"`` stays ``"01"``.
    """
    text = {"subject": str, "method": str, "window": str, "sub": str, "ses": str, "run": str}
    results = pd.read_csv(path, dtype=text)
    results["window"] = [w if w == STATIC else int(w) for w in results["window"]]
    results["window"] = results["window"].astype(object)
    for entity in BIDS_COLUMNS:
        if entity in results:
            # As compare returns them: text, None where the run's name lacks the entity.
            values = results[entity].astype(object)
            results[entity] = values.where(values.notna(), None)
    return results


def _read_record(out_dir, name):
    """The settings ``out_dir/comparison.json`` records; refused where it cannot be read."""
    settings_file = out_dir / SETTINGS_FILE
    try:
        saved = json.loads(settings_file.read_text())
        problem = None if isinstance(saved, dict) else "not the record of a comparison"
    except (OSError, ValueError) as error:
        cause = getattr(error, "strerror", None) or str(error) or type(error).__name__
        problem = f"unreadable ({cause})"
    if problem is not None:
        raise ValueError(
            f"{settings_file} is {problem}, so {name}={str(out_dir)!r} cannot be resumed: "
            "choose another folder (if it is a comparison's folder that got damaged, delete "
            "the folder to start again)."
        )
    return saved


def check_comparison_folder(out_dir, name="out_dir", also_ours=()):
    """Refuse ``out_dir`` unless ``compare`` may write there: a folder is ours by its record.

    Reads only. ``out_dir`` may be new, empty, or a comparison's folder (it holds a
    readable ``comparison.json``, written first by every comparison); any other folder holds
    files that ``compare`` would overwrite (``results.csv``, ``templates.nii.gz``...) or
    mingle with.

    Parameters
    ----------
    out_dir : str or Path
    name : str, default="out_dir"
        How errors call the folder (``--out`` on the command line).
    also_ours : collection of str, default=()
        Other names that a comparison may leave in a folder before it writes
        ``comparison.json`` (e.g. the nipype workflow's cache folder).

    Returns
    -------
    settings : dict or None
        The settings ``comparison.json`` records, or None if the folder has none.

    Raises
    ------
    ValueError
        If ``out_dir`` is a file, holds other files and no ``comparison.json``, or holds a
        ``comparison.json`` that cannot be read as a comparison's record.
    """
    out_dir = Path(out_dir)
    refuse_a_file(out_dir, name)
    if not out_dir.exists():
        return None
    if (out_dir / SETTINGS_FILE).exists() or (out_dir / SETTINGS_FILE).is_symlink():
        return _read_record(out_dir, name)
    # A compare stopped before it wrote comparison.json (its first file) leaves at most its
    # lock and, after a crash, the temporary file of comparison.json.
    foreign = foreign_entries(out_dir, staged=SETTINGS_FILE, also_ours=also_ours)
    if foreign:
        raise ValueError(
            f"{name}={str(out_dir)!r} holds files that no comparison wrote "
            f"({name_some(foreign)}; there is no {SETTINGS_FILE}): choose a new or empty "
            "folder, so that none of them is overwritten."
        )
    return None


def _check_templates_file(out_dir, templates_img, name):
    """Refuse a ``templates.nii.gz`` in ``out_dir`` that is not ``templates_img``.

    The folder's record says which templates its comparison wrote; a file that holds others
    (or cannot be read) was put there since, and the figures would be drawn over it.
    """
    path = out_dir / TEMPLATES_FILE
    if not path.exists():
        return
    try:
        saved = load_img(path)
        same = (
            saved.shape == templates_img.shape
            and np.allclose(saved.affine, templates_img.affine)
            and np.array_equal(np.asanyarray(saved.dataobj), np.asanyarray(templates_img.dataobj))
        )
    except Exception:  # nibabel raises several types for unreadable files
        same = False
    if not same:
        raise ValueError(
            f"{path} does not hold the templates of the comparison {SETTINGS_FILE} records "
            f"in {name}={str(out_dir)!r} (it was replaced or damaged since): move it out of "
            "the folder to have compare write it again, or choose another folder."
        )


def check_results_folder(out_dir, settings, templates_img=None, name="out_dir"):
    """Refuse ``out_dir`` unless it is new, empty or this comparison's own folder.

    Reads only: :func:`check_comparison_folder`, then the recorded settings must be
    ``settings`` (a resumed comparison) and a ``templates.nii.gz`` there must hold
    ``templates_img``.

    Returns
    -------
    recorded : bool
        Whether ``out_dir`` holds this comparison's ``comparison.json`` already.
    """
    out_dir = Path(out_dir)
    saved = check_comparison_folder(out_dir, name)
    if saved is None:
        return False
    if saved != settings:
        differing = sorted(
            k for k in settings.keys() | saved.keys() if settings.get(k) != saved.get(k)
        )
        raise ValueError(
            f"{name}={str(out_dir)!r} holds a comparison with other settings "
            f"(differing: {', '.join(differing)}): use another {name}, or delete it "
            "to start again."
        )
    if templates_img is not None:
        _check_templates_file(out_dir, templates_img, name)
    return True


class ResultsFolder:
    """Where finished (subject, method) cells live; ``None`` folder keeps nothing on disk.

    ``out_dir`` is checked (:func:`check_results_folder`), then its ``comparison.json`` is
    written first, before any other file, and ``templates_img`` is written to
    ``templates.nii.gz`` if it is not there yet.
    """

    def __init__(self, out_dir, settings, templates_img=None):
        self.path = None if out_dir is None else Path(out_dir)
        if self.path is None:
            return
        if not check_results_folder(self.path, settings, templates_img):
            self.path.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path / SETTINGS_FILE) as partial:
                partial.write_text(json.dumps(settings, indent=2))
        (self.path / "cells").mkdir(exist_ok=True)
        (self.path / CHECKSUMS_DIR).mkdir(exist_ok=True)
        (self.path / "maps").mkdir(exist_ok=True)
        if templates_img is not None and not (self.path / TEMPLATES_FILE).exists():
            with atomic_path(self.path / TEMPLATES_FILE) as partial:
                templates_img.to_filename(partial)

    def cell_file(self, subject, method):
        return self.path / "cells" / f"{subject}_{method}.csv"

    def checksum_file(self, subject, method):
        return self.path / CHECKSUMS_DIR / f"{subject}_{method}.json"

    def load_cell(self, subject, method, n_rows):
        """``(rows, None)`` for a finished cell that passes its checks, else ``(None, why)``.

        ``why`` is None where the cell was simply never finished (no CSV), and says what is
        wrong with a CSV that cannot be trusted: no checksum (the run stopped between the
        two), a checksum or row count that does not match (a truncated or edited file).
        """
        if self.path is None or not self.cell_file(subject, method).exists():
            return None, None
        try:
            expected = json.loads(self.checksum_file(subject, method).read_text())
        except FileNotFoundError:
            return None, "it has no checksum file (its run stopped while finishing it)"
        except (OSError, ValueError) as error:
            return None, f"its checksum file is unreadable ({error})"
        try:
            data = self.cell_file(subject, method).read_bytes()
        except OSError as error:
            return None, f"its CSV is unreadable ({error})"
        if not isinstance(expected, dict) or hashlib.sha256(data).hexdigest() != expected.get(
            "sha256"
        ):
            return None, "its CSV does not match its checksum (truncated or edited)"
        if expected.get("rows") != n_rows:
            return None, f"it holds {expected.get('rows')} rows where {n_rows} are expected"
        try:
            rows = read_results(io.BytesIO(data))
        except (ValueError, KeyError) as error:
            return None, f"its CSV cannot be parsed ({error})"
        if (
            len(rows) != n_rows
            or list(rows.columns) != RESULT_COLUMNS
            or set(rows.subject) != {subject}
            or set(rows.method) != {method}
        ):
            return None, f"its rows are not the {n_rows} rows of this subject and method"
        return rows, None


class CellWriter:
    """Appends the rows of one cell as they come; the cell file appears only when complete.

    Finishing flushes the rows to disk, renames ``*.csv.partial`` to ``*.csv`` and only then
    writes the cell's checksum: a CSV without its checksum is an unfinished cell.
    """

    def __init__(self, folder, subject, method):
        self.final = None if folder.path is None else folder.cell_file(subject, method)
        self.partial = None if self.final is None else self.final.with_suffix(".csv.partial")
        self.checksum = None if self.final is None else folder.checksum_file(subject, method)
        self.tables = []
        if self.partial is not None:
            # The checksum first: a CSV left without it is never trusted.
            self.checksum.unlink(missing_ok=True)
            self.final.unlink(missing_ok=True)
            self.partial.unlink(missing_ok=True)

    def add(self, rows):
        self.tables.append(rows)
        if self.partial is not None:
            rows.to_csv(self.partial, mode="a", header=not self.partial.exists(), index=False)

    def finish(self):
        if self.partial is not None:
            fsync_file(self.partial)
            checksum = {
                "rows": sum(len(rows) for rows in self.tables),
                "sha256": hashlib.sha256(self.partial.read_bytes()).hexdigest(),
            }
            os.replace(self.partial, self.final)
            fsync_directory(self.final.parent)
            with atomic_path(self.checksum) as partial:
                partial.write_text(json.dumps(checksum, indent=2))
        return pd.concat(self.tables, ignore_index=True)
