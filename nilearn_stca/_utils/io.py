"""Safe writes: a file appears under its name only once it is complete and on disk, and a
folder lock keeps two writers out of one output folder."""

import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
import warnings
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

#: Name of the lock file :func:`folder_lock` holds in a folder.
LOCK_FILE = ".lock"


def left_by_a_stopped_writer(name, staged=None):
    """Whether a folder's entry ``name`` may be what a stopped writer of ours left there.

    That is the lock of :func:`folder_lock` (or a takeover of it) and a temporary file of
    :func:`atomic_path`: of the file ``staged`` only, or of any file when ``staged`` is None.
    """
    if name == LOCK_FILE or name.startswith(f"{LOCK_FILE}.takeover-"):
        return True
    final = re.escape(staged) if staged is not None else ".+"
    return re.fullmatch(rf"\.partial-[0-9a-f]{{8}}-{final}", name) is not None


# Windows needs write access to flush a file (``_commit``); POSIX flushes any descriptor.
_FSYNC_FLAGS = os.O_RDWR | getattr(os, "O_BINARY", 0) if os.name == "nt" else os.O_RDONLY


def fsync_file(path):
    """Flush the file at ``path`` to disk."""
    descriptor = os.open(path, _FSYNC_FLAGS)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_directory(path):
    """Flush a folder's entries (new names, renames) to disk, where the platform allows it."""
    if os.name == "nt":
        return  # folders cannot be opened for fsync on Windows
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the files themselves are flushed
    finally:
        os.close(descriptor)


def _fsync_tree(path):
    """Flush a file, or every file of a folder (and the folders, where allowed).

    Symbolic links are not followed: what they point to is not being written (and may not
    exist).
    """
    if not path.is_dir():
        fsync_file(path)
        return
    for root, _, files in os.walk(path):
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                fsync_file(Path(root) / name)
        fsync_directory(root)


def _replace_folder(new, path):
    """Rename the folder ``new`` onto the existing folder ``path``, then delete the old one.

    The old folder is moved aside first (a rename cannot replace a non-empty folder) and
    moved back if the second rename fails, so ``path`` always names a complete folder.
    """
    old = path.with_name(f".old-{uuid.uuid4().hex[:8]}-{path.name}")
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    fsync_directory(path.parent)
    shutil.rmtree(old)


@contextmanager
def atomic_path(path, replace_folder=False):
    """Yield a temporary path beside ``path``, renamed to ``path`` when the block succeeds.

    The temporary name keeps the file's extensions (``.nii.gz``, ``.csv``...), so writers
    that pick the format from the name work unchanged. The block may also make a folder
    there. Before the rename the temporary file (or every file of the folder) is flushed
    to disk, and the parent folder is flushed after it, so that a crash or power loss leaves
    either the old ``path`` or the complete new one. If the block or the flush fails, the
    temporary file or folder is removed and ``path`` is left as it was. With
    ``replace_folder``, a folder the block makes replaces an existing folder at ``path``
    (the caller decides that it may); otherwise a rename cannot replace a non-empty folder.
    """
    path = Path(path)
    temporary = path.with_name(f".partial-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield temporary
        _fsync_tree(temporary)
        if replace_folder and temporary.is_dir() and path.is_dir():
            _replace_folder(temporary, path)
        else:
            os.replace(temporary, path)
        fsync_directory(path.parent)
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary)
        else:
            temporary.unlink(missing_ok=True)


@contextmanager
def atomic_paths():
    """Yield ``stage``: ``stage(path)`` gives a temporary path, as :func:`atomic_path` does.

    Every staged file is renamed onto its path only when the block succeeds, so a set of files
    is replaced together; if anything fails, none is. Files are renamed in the reverse order
    of staging: the first file staged appears last.
    """
    with ExitStack() as stack:

        def stage(path):
            return stack.enter_context(atomic_path(path))

        yield stage


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
