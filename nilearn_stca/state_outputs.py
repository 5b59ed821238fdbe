"""Moved to :mod:`nilearn_stca.states`: this path works, with a FutureWarning, for one release."""

import warnings

from .states.outputs import STATES_FILE, write_states
from .states.template_presence import sweep_presence

__all__ = ["STATES_FILE", "sweep_presence", "write_states"]

warnings.warn(
    "nilearn_stca.state_outputs moved to nilearn_stca.states: import write_states, "
    "sweep_presence and STATES_FILE from nilearn_stca.states; this path will be removed in "
    "the next release.",
    FutureWarning,
    stacklevel=2,
)
