"""Moved to :mod:`nilearn_stca.datasets._states`; this alias goes in the next release."""

import sys
import warnings

from .datasets import _states

warnings.warn(
    "nilearn_stca.planted_states moved into the simulator's package, as the private module "
    "nilearn_stca.datasets._states; this alias will be removed in the next release.",
    FutureWarning,
    stacklevel=2,
)
# The alias is the moved module itself, so that its names (and patches of them) are shared.
sys.modules[__name__] = _states
