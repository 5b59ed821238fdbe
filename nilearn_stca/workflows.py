"""Deprecated: the comparison workflow moved to :mod:`nilearn_stca.interfaces.workflows`.

This alias re-exports its names and will be removed in the next release.
"""

import warnings

from .interfaces.workflows import METHOD_INTERFACES, init_comparison_wf

__all__ = ["METHOD_INTERFACES", "init_comparison_wf"]

warnings.warn(
    "nilearn_stca.workflows is deprecated and will be removed in the next release: import "
    "init_comparison_wf from nilearn_stca.interfaces.workflows.",
    FutureWarning,
    stacklevel=2,
)
