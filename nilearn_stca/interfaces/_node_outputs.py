"""Where a node writes: its own files in its working folder, never the user's.

In a nipype workflow a node's working folder is its own (nipype empties it before each run).
A node run on its own (``SDL(...).run()``) writes into the current folder, the user's: there
the node replaces only the files a node of this package wrote, as the folder's record file
``.nilearn-stca-node`` lists them, and refuses to start if an output it writes is already
there and not listed.
"""

import warnings
from contextlib import contextmanager
from pathlib import Path

from .. import __version__
from .._utils.io import path_exists
from .._utils.ownership import (
    folder_lock,
    install,
    name_some,
    read_record,
    remove_dead_staging,
    staging_folder,
    unowned_files,
)

#: The record, in a node's working folder, of every file the package's nodes wrote there.
NODE_RECORD = ".nilearn-stca-node"

_STAGING = "nilearn-stca-node"
_WHAT = "nilearn-stca node"
_ELSEWHERE = "or run the node in another folder (run(cwd=...), or in a nipype workflow)."


@contextmanager
def node_outputs(runtime, node, writes, replaces=()):
    """Yield an empty staging folder, whose files are moved into the node's folder at the end.

    The node's working folder (``runtime.cwd``) is locked while the block runs. Before the
    block, an output ``writes`` names (top-level files or folders of the working folder)
    that holds a file no node of this package wrote is refused, so nothing is computed. When
    the block succeeds, the staged files replace the node's earlier ones, and those of its
    earlier files in ``writes`` or ``replaces`` that were not written again are removed.

    Parameters
    ----------
    runtime : nipype runtime
    node : str
        The node's name, for messages.
    writes : sequence of str
        The top-level outputs the block writes.
    replaces : sequence of str, default=()
        Other top-level outputs of the node, whose earlier files are removed.

    Raises
    ------
    ValueError
        If an output is in the way, or the working folder is in use by another node.
    """
    cwd = Path(runtime.cwd)
    with folder_lock(cwd, f"{node} node", name="cwd"):
        owned = _owned(cwd, node)
        _refuse(cwd, unowned_files(cwd, writes, owned), node)
        for path, record in remove_dead_staging(cwd, _STAGING, _WHAT):
            warnings.warn(
                f"Removed {path}: the unfinished output of a node (pid {record['pid']}) that "
                "no longer runs.",
                stacklevel=3,
            )
        with staging_folder(cwd, _STAGING, _WHAT) as staged:
            yield staged
            made = [path.name for path in staged.iterdir()]
            _refuse(cwd, sorted(set(unowned_files(cwd, made, owned))), node)
            fields = {"written_by": "nilearn-stca nipype nodes", "version": __version__}
            install(staged, cwd, cwd / NODE_RECORD, fields, owned, [*made, *replaces])


def top_entry(out_dir):
    """The top-level folder of the working folder holding the (checked) folder ``out_dir``."""
    return Path(out_dir).parts[0]


def _owned(cwd, node):
    """The files the record of ``cwd`` lists; refuse a record file that is not ours."""
    owned = read_record(cwd / NODE_RECORD)
    if owned is None and path_exists(cwd / NODE_RECORD):
        raise ValueError(
            f"cwd={str(cwd)!r} holds a {NODE_RECORD} file that is not a record of nilearn-stca's "
            f"nodes, which the {node} node would replace: move it away, {_ELSEWHERE}"
        )
    return owned or set()


def _refuse(cwd, names, node):
    if not names:
        return
    raise ValueError(
        f"cwd={str(cwd)!r} already holds {name_some(names)}, which the {node} node would "
        f"replace but no node of nilearn-stca wrote (they are not in its {NODE_RECORD} file): "
        f"move them away, {_ELSEWHERE}"
    )
