"""The output-folder lock: one writer at a time.

:func:`folder_lock` holds a ``.lock`` file naming the writing process (host, pid, start), and
takes it over from a writer that no longer runs.
"""

import hashlib
import json
import os
import socket
import time
import uuid
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .io import fsync_directory

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
