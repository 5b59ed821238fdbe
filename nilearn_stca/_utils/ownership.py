"""Who owns an output folder, and what a writer leaves there: one writer at a time.

- the folder lock (:func:`folder_lock`): a ``.lock`` file naming the writing process, taken
  over from a writer that no longer runs;
- what a stopped writer of ours may have left in a folder (:func:`left_by_a_stopped_writer`,
  :func:`remove_dead_staging`), and the folders it refuses (:func:`foreign_entries`);
- the record of the files we wrote in a folder shared with the user (:func:`read_record`):
  a rerun replaces only those, new output is made in a staging folder
  (:func:`staging_folder`) and moved in at the end (:func:`install`).

A record is JSON holding ``"files"``: the path of every file we wrote, relative to the folder
(``/``-separated, recursively). A file not listed is the user's: never replaced or deleted.
What each writer accepts in its folder (a demo, a comparison, a node, a step's run, a model
folder) is its own policy, built from these.
"""

import json
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from .io import atomic_path, fsync_directory, fsync_file, path_exists
from .lock import LOCK_FILE, FolderLockedError, dead_lock_record, folder_lock  # noqa: F401


# ------------------------------------------------------------- what a stopped writer left
def left_by_a_stopped_writer(name, staged=None):
    """Whether a folder's entry ``name`` may be what a stopped writer of ours left there.

    That is the lock of :func:`folder_lock` (or a takeover of it) and a temporary file of
    :func:`~.io.atomic_path`: of the file ``staged`` only, or of any file when ``staged`` is None.
    """
    if name == LOCK_FILE or name.startswith(f"{LOCK_FILE}.takeover-"):
        return True
    final = re.escape(staged) if staged is not None else ".+"
    return re.fullmatch(rf"\.partial-[0-9a-f]{{8}}-{final}", name) is not None


def refuse_a_file(path, name="out_dir"):
    """Refuse a ``path`` that exists and is not a folder: a writer's output is a folder."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a file: give a folder.")


def foreign_entries(folder, staged=None, also_ours=()):
    """The entries of ``folder`` that a stopped writer of ours did not leave, sorted by name.

    A folder without the record that makes it a writer's holds at most what its writer,
    stopped before it wrote anything else, left there (:func:`left_by_a_stopped_writer`, of
    the file ``staged``), and the names ``also_ours``: any other entry may be the user's,
    whatever its name.
    """
    return sorted(
        entry.name
        for entry in Path(folder).iterdir()
        if not left_by_a_stopped_writer(entry.name, staged=staged) and entry.name not in also_ours
    )


def name_some(names, shown=5):
    """The first ``shown`` of ``names``, comma-separated, and how many more there are."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


@contextmanager
def removed_if_left_empty(folder):
    """Run the block; if it fails, remove ``folder`` if it was made meanwhile and is empty."""
    folder = Path(folder)
    created = not folder.exists()
    try:
        yield folder
    except BaseException:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def _staging_pattern(prefix):
    return re.compile(rf"\.{re.escape(prefix)}\.partial-[0-9a-f]{{8}}")


@contextmanager
def staging_folder(parent, prefix, what):
    """Yield an empty folder to fill, in ``parent/.<prefix>.partial-<hex>``, removed after.

    The staging folder holds the lock record of this process (:func:`folder_lock`,
    ``what`` naming the writer), so that a later run can tell a staging folder left by a
    killed writer (:func:`remove_dead_staging`). The folder yielded is its ``output``
    subfolder. It is made with ``mkdir``, so it has the permissions of the umask.
    """
    partial = Path(parent) / f".{prefix}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        with folder_lock(partial, what):
            output = partial / "output"
            output.mkdir()
            try:
                yield output
            finally:
                shutil.rmtree(output, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def remove_dead_staging(parent, prefix, what):
    """Remove the staging folders of ``prefix`` in ``parent`` left by killed writers.

    Only folders named by :func:`staging_folder`'s pattern whose lock record names ``what``
    and a process that no longer runs on this host are removed; anything else is kept.

    Returns
    -------
    removed : list of (Path, dict)
        Each folder removed, with the record of the writer that left it.
    """
    pattern = _staging_pattern(prefix)
    removed = []
    for path in sorted(Path(parent).iterdir()):
        if not pattern.fullmatch(path.name) or path.is_symlink() or not path.is_dir():
            continue
        record = dead_lock_record(path)
        if record is not None and record.get("what") == what:
            shutil.rmtree(path)
            removed.append((path, record))
    return removed


def ignoring_lock(names):
    """``names`` without the lock files of :func:`folder_lock`."""
    return [name for name in names if name != LOCK_FILE and not name.startswith(f"{LOCK_FILE}.")]


# ------------------------------------------------------------ records of the files written
def list_files(folder):
    """Every file (and link) under ``folder``, as sorted ``/``-separated relative paths."""
    folder = Path(folder)
    found = []
    for root, folders, files in os.walk(folder):
        links = [name for name in folders if (Path(root) / name).is_symlink()]
        for name in [*files, *links]:
            found.append((Path(root) / name).relative_to(folder).as_posix())
    return sorted(found)


def _plain_relative(name):
    """Whether ``name`` is a clean relative path inside a folder (a record may be edited)."""
    if not isinstance(name, str) or not name:
        return False
    path = PurePosixPath(name)
    return (
        not path.is_absolute()
        and str(path) == name
        and all(part not in ("", ".", "..") for part in path.parts)
        and "\\" not in name
    )


def read_record(path):
    """The paths listed by the record file ``path``, or None if it is missing or unreadable."""
    try:
        names = json.loads(Path(path).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(names, list):
        return None
    # A lock file is never ours to replace: another writer may hold it.
    return {name for name in names if _plain_relative(name) and not _is_lock(name)}


def _is_lock(name):
    return ignoring_lock([PurePosixPath(name).name]) == []


def write_record(path, files, fields):
    """Write the record file ``path``: ``fields`` and the sorted ``files``, atomically."""
    with atomic_path(path) as partial:
        partial.write_text(json.dumps({**fields, "files": sorted(files)}, indent=2))


def _ancestors(name):
    """The folders above ``name`` inside the folder, outermost first (``a``, ``a/b``)."""
    parts = PurePosixPath(name).parts
    return [PurePosixPath(*parts[:depth]).as_posix() for depth in range(1, len(parts))]


def owns(name, owned):
    """Whether a record listing ``owned`` lets us replace the file ``name``.

    Listed files are ours. Records written before files were listed recursively named
    top-level entries only: a listed folder owns just the files we write into it (the
    caller passes only those), never the other files inside it.
    """
    return name in owned or any(folder in owned for folder in _ancestors(name))


def _is_file(path):
    return path.is_symlink() or path.is_file()


def in_the_way(folder, names, owned):
    """What stops writing the files ``names`` into ``folder`` without touching the user's.

    A file at one of their paths that ``owned`` does not own, a folder there, or a file (or
    link) where a folder of theirs goes (unless it is ours), as sorted relative paths.
    """
    folder = Path(folder)
    blocking = set()
    for name in names:
        for above in _ancestors(name):
            path = folder / above
            if _is_file(path) and not owns(above, owned):
                blocking.add(above)
        path = folder / name
        if path_exists(path) and not (_is_file(path) and owns(name, owned)):
            blocking.add(name)
    return sorted(blocking)


def unowned_files(folder, entries, owned):
    """The files inside the top-level ``entries`` of ``folder`` that ``owned`` does not list."""
    folder = Path(folder)
    found = []
    for entry in entries:
        path = folder / entry
        if _is_file(path):
            found += [] if entry in owned else [entry]
        elif path.is_dir():
            found += [f"{entry}/{name}" for name in list_files(path)]
    return sorted(name for name in found if name not in owned)


def install(staged, folder, record, fields, owned, scope=None):
    """Move every file of ``staged`` into ``folder``; remove our files the new ones replace.

    The caller has checked that nothing is in the way (:func:`in_the_way`). Each file is
    flushed to disk, then renamed onto its path. Until the end the record lists our old and
    new files, so that an interruption leaves every file we wrote listed. Then our old files
    not rewritten are removed (those in the top-level entries ``scope``; all if None), with the
    folders they leave empty, and the record lists the new files (and, with ``scope``, our
    files outside it).

    Returns
    -------
    files : list of str
        The files moved in, as relative paths.
    """
    staged, folder, record = Path(staged), Path(folder), Path(record)
    owned = set(owned) - {record.relative_to(folder).as_posix()}
    new = list_files(staged)
    for name in new:
        fsync_file(staged / name)
    write_record(record, owned | set(new), fields)
    for name in new:
        target = folder / name
        for above in _ancestors(name):
            if _is_file(folder / above):
                (folder / above).unlink()  # ours (checked): a folder of ours goes there now
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged / name, target)
    for parent in {(folder / name).parent for name in new}:
        fsync_directory(parent)
    replaced = {
        name for name in owned if scope is None or PurePosixPath(name).parts[0] in set(scope)
    }
    for name in sorted(replaced - set(new)):
        _remove_file(folder, name)
    write_record(record, (owned - replaced) | set(new), fields)
    return new


def _remove_file(folder, name):
    """Remove the file ``name`` of ``folder`` (never a folder, never through a link) and the
    folders above it that it leaves empty."""
    above = [folder / path for path in _ancestors(name)]
    if any(path.is_symlink() or not path.is_dir() for path in above):
        return
    path = folder / name
    if not _is_file(path):
        return  # a folder: an old record's top-level entry, whose other files are kept
    path.unlink()
    for path in reversed(above):
        if any(path.iterdir()):
            break
        path.rmdir()
