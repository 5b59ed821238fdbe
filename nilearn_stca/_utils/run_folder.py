"""The output folder of one run of a step (states, stability): refused if it holds another
run's files, and filled all at once."""

import json
from contextlib import contextmanager
from pathlib import Path

from .io import atomic_paths
from .ownership import (
    folder_lock,
    foreign_entries,
    name_some,
    refuse_a_file,
    removed_if_left_empty,
)


def check_run_folder(out_dir, record, settings):
    """Refuse ``out_dir`` if it holds another run, or files that no run of this step wrote.

    Parameters
    ----------
    out_dir : Path
    record : str
        The run's JSON file, whose ``"settings"`` describe the run that wrote the folder.
    settings : dict
        This run's settings (JSON types): the same settings may write the folder again.
    """
    refuse_a_file(out_dir)
    if (out_dir / record).is_file():
        try:
            previous = json.loads((out_dir / record).read_text()).get("settings")
        except (ValueError, AttributeError):
            previous = None
        if previous != settings:
            raise ValueError(
                f"out_dir={str(out_dir)!r} holds another run ({record} records other "
                "settings or inputs): choose another folder."
            )
        return
    if not out_dir.is_dir():
        return
    # Without its record a folder is not ours: any entry but what a stopped run leaves (its
    # lock, the temporary files of its first files) may be the user's, whatever its name
    # (e.g. a figure named as a method's would be overwritten).
    foreign = foreign_entries(out_dir)
    if foreign:
        raise ValueError(
            f"out_dir={str(out_dir)!r} holds files this step did not write ({name_some(foreign)}; "
            f"there is no {record}): choose a new or empty folder, so that none of them is "
            "overwritten."
        )


@contextmanager
def run_files(out_dir, record, settings, what):
    """Yield ``stage``: ``stage(name)`` is a temporary path for ``out_dir / name``.

    ``out_dir`` is created, locked (:func:`~.ownership.folder_lock`) and checked
    again (:func:`check_run_folder`); every staged file is renamed when the block succeeds,
    the first staged last (stage ``record`` first). If the block fails, no file is renamed
    and an ``out_dir`` created for nothing is removed. ``stage.files`` maps each name staged
    to its final path.
    """
    out_dir = Path(out_dir)
    with (
        removed_if_left_empty(out_dir),
        folder_lock(out_dir, what, name="out_dir"),
        atomic_paths() as stage_file,
    ):
        check_run_folder(out_dir, record, settings)

        def stage(name):
            stage.files[name] = out_dir / name
            return stage_file(out_dir / name)

        stage.files = {}
        yield stage
