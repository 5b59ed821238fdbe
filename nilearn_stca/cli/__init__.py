"""The ``nilearn-stca`` command: argument parsing, then calls into the library.

Commands: ``demo`` and ``compare`` (``_compare.py``), ``states`` and ``stability``
(``_dynamics.py``); the argument types are in ``_arguments.py``, and the demo itself (the
simulation, the comparison and its output folder) in :mod:`nilearn_stca.cli.demo`. Every
error a user can fix ends the command with one line on stderr (``nilearn-stca: error: ...``)
and exit status 2.
"""

import sys
import zlib

from .. import __version__
from ._arguments import _Parser
from ._compare import (
    METHOD_CHOICES,
    _run_compare,
    _run_demo,
    add_compare_parser,
    add_demo_parser,
)
from ._compare import _compare_kwargs as _compare_kwargs  # read here by the presets' tests
from ._dynamics import _run_stability, _run_states, add_stability_parser, add_states_parser

__all__ = ["METHOD_CHOICES", "build_parser", "main"]

#: What each command runs: ``runner(args, argv)``.
_RUNNERS = {
    "demo": _run_demo,
    "compare": _run_compare,
    "states": _run_states,
    "stability": _run_stability,
}


def build_parser():
    """The parser of every command."""
    parser = _Parser(
        prog="nilearn-stca",
        description="Dynamic functional brain networks with STCA (Liu et al., ISBI 2023).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_demo_parser(commands)
    add_compare_parser(commands)
    add_states_parser(commands)
    add_stability_parser(commands)
    return parser


def _one_line(error):
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _read_error(args, error):
    """Name the input whose data cannot be read: the reader's error rarely does."""
    import nibabel as nib
    import numpy as np

    inputs = [*getattr(args, "func", []), getattr(args, "mask", None)]
    templates = getattr(args, "templates", None)
    inputs.append(None if templates == "smith2009" else templates)
    for path in filter(None, inputs):
        try:
            np.asanyarray(nib.load(path).dataobj)
        except Exception as read_error:  # what a truncated or damaged file raises varies
            cause = _one_line(read_error) or type(read_error).__name__
            return f"{path}: cannot read the image data, the file may be truncated ({cause})"
    return _one_line(error) or type(error).__name__


def _os_error(args, error):
    """One line naming the file (or else the output folder) and the cause."""
    cause = error.strerror or _one_line(error)
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    if paths:
        return f"{' -> '.join(paths)}: {cause}"
    return f"{cause} (writing into --out {args.out})"


def main(argv=None):
    """Run the command of ``argv`` (``sys.argv[1:]`` if None); 0 when it succeeds."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    from nibabel.filebasedimages import ImageFileError

    try:
        _RUNNERS[args.command](args, argv)
    except KeyboardInterrupt:
        hint = "; rerun the same command to resume" if args.command == "compare" else ""
        parser.exit(130, f"nilearn-stca: interrupted{hint}\n")
    except ValueError as error:
        parser.exit(2, f"nilearn-stca: error: {_one_line(error)}\n")
    except RuntimeError as error:
        if not getattr(args, "nipype", False):
            raise
        # nipype has logged each failed node and its crash file; finished nodes are cached.
        parser.exit(1, f"nilearn-stca: error: {error} Fix the cause and rerun to resume.\n")
    except (OSError, EOFError, zlib.error, ImageFileError) as error:
        # An OSError with an errno comes from the system (full disk, permissions...); the
        # others from reading a damaged image (nibabel's errors carry no errno).
        if isinstance(error, OSError) and error.errno is not None:
            message = _os_error(args, error)
        else:
            message = _read_error(args, error)
        parser.exit(2, f"nilearn-stca: error: {message}\n")
    return 0
