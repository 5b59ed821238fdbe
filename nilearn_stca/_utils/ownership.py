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

import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from .io import atomic_path, fsync_directory, fsync_file, path_exists

#: Name of the lock file :func:`folder_lock` holds in a folder.
LOCK_FILE = ".lock"


# ---------------------------------------------------------------------- folder lock
class FolderLockedError(ValueError):
    """Another process holds the lock of the folder this one would write into."""


#: Marks a lock file that vanished while it was read (its holder released it).
_MISSING = object()


def _read_lock(lock):
    """The lock's record, ``_MISSING`` if there is none, or None if it cannot be read.

    A lock is created empty and filled right after, so an empty or partial file is read
    again for a moment before it is called unreadable.
    """
    for _ in range(20):
        try:
            record = json.loads(lock.read_text())
        except FileNotFoundError:
            return _MISSING
        except (OSError, ValueError):
            time.sleep(0.05)
            continue
        pid = record.get("pid") if isinstance(record, dict) else None
        if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
            return record
        return None
    return None


def _holder_alive(record):
    """Whether the process holding a lock may still run (True wherever it cannot be told)."""
    if record.get("hostname") != socket.gethostname():
        return True
    if os.name == "nt":
        return True  # os.kill would terminate the process there, not probe it
    if record["pid"] == os.getpid():
        return True
    try:
        os.kill(record["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True


def dead_lock_record(folder):
    """The record of ``folder``'s lock if the process that held it no longer runs on this host.

    None if the folder holds no lock, an unreadable one, or one whose holder may still run
    (on another host, or where it cannot be told): only a writer known to be dead is named.
    """
    record = _read_lock(Path(folder) / LOCK_FILE)
    if record is _MISSING or record is None or _holder_alive(record):
        return None
    return record


def _create_lock(lock, record):
    """Create ``lock`` holding ``record`` if no lock exists; whether this process owns it."""
    try:
        descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(descriptor, "w") as stream:
            json.dump(record, stream)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        lock.unlink(missing_ok=True)
        raise
    fsync_directory(lock.parent)
    return _read_lock(lock) == record


def _break_stale_lock(lock, stale):
    """Remove ``lock`` if it still holds the record ``stale``; whether this call removed it.

    Of the processes that found the same stale lock, only the one that creates its takeover
    file (``O_CREAT | O_EXCL``, named after the record) may remove it, and only after reading
    that record there again: a lock once removed never comes back with the same record, so
    a live lock made meanwhile is never removed.
    """
    digest = hashlib.sha1(json.dumps(stale, sort_keys=True).encode()).hexdigest()[:16]
    takeover = lock.with_name(f"{lock.name}.takeover-{digest}")
    try:
        os.close(os.open(takeover, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False  # another process is taking it over
    try:
        if _read_lock(lock) != stale:
            return False
        lock.unlink()
        return True
    finally:
        takeover.unlink(missing_ok=True)


@contextmanager
def folder_lock(path, what, *, name="folder", error=FolderLockedError):
    """Hold the lock of the folder ``path`` while the block runs: one writer at a time.

    The lock is a file ``.lock`` in the folder, created atomically (``O_CREAT | O_EXCL``)
    and holding JSON ``{"pid", "hostname", "started", "what", "token"}``. It is removed when
    the block ends, on errors and interruptions too. A lock whose process no longer runs on
    this host (a crashed or killed writer) is taken over with a warning; a lock held by a
    live process, or by a process on another host, refuses the block. The folder is created
    if needed.

    Parameters
    ----------
    path : str or Path
        The folder to lock.
    what : str
        What writes into the folder, for messages (e.g. ``"compare run"``).
    name : str, default="folder"
        How the user gave the folder (e.g. ``"out_dir"``), for messages.
    error : type, default=FolderLockedError
        The exception raised when the folder is locked (a subclass of
        :class:`FolderLockedError`).

    Yields
    ------
    lock : Path
        The lock file.

    Raises
    ------
    FolderLockedError
        (or ``error``) If another process holds the lock.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    record = {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "what": what,
        "token": uuid.uuid4().hex,
    }
    _acquire(lock, record, folder, what, name, error)
    try:
        yield lock
    finally:
        if _read_lock(lock) == record:
            lock.unlink(missing_ok=True)


def _acquire(lock, record, folder, what, name, error):
    where = f"{name}={str(folder)!r}"
    for _ in range(100):
        if _create_lock(lock, record):
            return
        holder = _read_lock(lock)
        if holder is _MISSING:
            continue  # released meanwhile
        if holder == record:
            return
        if holder is None:
            raise error(
                f"{where} holds an unreadable lock file {str(lock)!r}: another process may "
                f"be writing there. If none is, delete {str(lock)!r} and run again."
            )
        described = (
            f"{holder.get('what', 'process')} pid {holder['pid']} on "
            f"{holder.get('hostname', 'an unknown host')}, started {holder.get('started', '?')}"
        )
        if _holder_alive(holder):
            raise error(
                f"{where} is in use by another {what} ({described}): wait for it to "
                f"finish, or use another {name}. If that process no longer runs, delete "
                f"{str(lock)!r}."
            )
        if _break_stale_lock(lock, holder):
            warnings.warn(
                f"{where} was locked by a {described}, which no longer runs: taking its "
                "lock over.",
                stacklevel=4,
            )
        else:
            time.sleep(0.05)  # another process is taking the stale lock over: let it
    raise error(
        f"{where} holds a stale lock {str(lock)!r} that could not be taken over: if no "
        f"other process writes there, delete {str(lock)!r} and any {LOCK_FILE}.takeover-* "
        "file beside it, and run again."
    )


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
