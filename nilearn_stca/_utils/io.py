"""Safe writes: a file appears under its name only once it is complete and on disk; what is
at a path (a file, a folder, a link...); a folder's entries carried into its replacement."""

import errno
import hashlib
import os
import shutil
import stat
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

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


# ---------------------------------------------------------------------- what is at a path
def path_exists(path):
    """Whether anything is at ``path``, a broken symbolic link too."""
    return path.exists() or path.is_symlink()


def path_kind(path):
    """What is at ``path``, not following a final symbolic link: None where nothing is.

    One of "file", "folder", "symbolic link", "device", "named pipe", "socket".
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    kinds = [
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISCHR, "device"),
        (stat.S_ISBLK, "device"),
        (stat.S_ISFIFO, "named pipe"),
    ]
    return next((kind for test, kind in kinds if test(mode)), "socket")


def file_sha256(path):
    """The SHA-256 of the file at ``path``, as hexadecimal, read by blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def carry_over(old, new, names):
    """Put the entries ``names`` of the folder ``old`` into ``new``, leaving ``old`` whole.

    Files are hard-linked (the same file under two names, so nothing is copied and the
    user's file is untouched), or copied where the file system has no hard links; folders
    are made anew with their files linked; symbolic links are made anew. For a folder
    written beside ``old`` to replace it (:func:`atomic_path` with ``replace_folder``) and
    keep the entries that are not the writer's.
    """
    for name in names:
        source, target = old / name, new / name
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        elif source.is_dir():
            shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(source, target)


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise
        shutil.copy2(source, target)
