"""Deprecated: the demo moved to :mod:`nilearn_stca.cli.demo`, beside the command that runs it.

This alias re-exports its names and will be removed in the next release.
"""

import warnings

from .cli.demo import (
    DEMO_COMPARISON,
    DEMO_MARKER,
    DEMO_SIMULATION,
    DEMO_STCA,
    check_out_dir,
    run_demo,
)

__all__ = [
    "DEMO_COMPARISON",
    "DEMO_MARKER",
    "DEMO_SIMULATION",
    "DEMO_STCA",
    "check_out_dir",
    "run_demo",
]

warnings.warn(
    "nilearn_stca.demo is deprecated and will be removed in the next release: import "
    "run_demo from nilearn_stca.cli.demo.",
    FutureWarning,
    stacklevel=2,
)
