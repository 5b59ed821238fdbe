"""The ``nilearn-stca`` command: argument parsing, then calls into the library."""

import argparse
import os
import sys
from pathlib import Path

from . import __version__


def _writable_out_dir(value):
    """An output folder whose parent exists (or can be created) and is writable."""
    path = Path(value).resolve()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"--out {value}: exists and is not a folder")
    parent = next(p for p in (path, *path.parents) if p.exists())
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"--out {value}: {parent} is not writable")
    return path


def _positive_int(value):
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def build_parser():
    parser = argparse.ArgumentParser(
        prog="nilearn-stca",
        description="Dynamic functional brain networks with STCA (Liu et al., ISBI 2023).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="fit STCA on simulated rsfMRI and score its maps against the planted networks",
        description="Simulate rsfMRI with known networks, fit STCA, write the IoU table "
        "(iou.csv), the maps (components.nii.gz, fbns.nii.gz) and a figure (components.png).",
    )
    demo.add_argument(
        "--out",
        type=_writable_out_dir,
        default=Path("stca_demo"),
        help="output folder (default: stca_demo)",
    )
    demo.add_argument("--n-scans", type=_positive_int, help="scans of the simulated run")
    demo.add_argument("--n-epochs", type=_positive_int, help="passes over the windows")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        simulation = {"n_scans": args.n_scans} if args.n_scans else {}
        stca = {"n_epochs": args.n_epochs} if args.n_epochs else {}
        try:
            scores = run_demo(args.out, simulation, stca, verbose=0 if args.quiet else 1)
        except ValueError as error:
            parser.exit(2, f"nilearn-stca: error: {error}\n")
        print(scores.to_string(index=False, float_format="%.3f"))
        print(f"mean IoU with the planted networks: {scores.iou.mean():.3f}")
        print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
