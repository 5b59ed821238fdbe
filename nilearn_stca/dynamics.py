"""Moved to :mod:`nilearn_stca.states`: this path works, with a FutureWarning, for one release."""

import warnings

from .states.map_states import fit_map_states
from .states.metrics import (
    state_metrics,
    state_metrics_table,
    transition_counts,
    transition_probability,
)
from .states.planted import planted_window_states, score_states
from .states.presence_states import fit_states, presence_table

__all__ = [
    "fit_map_states",
    "fit_states",
    "planted_window_states",
    "presence_table",
    "score_states",
    "state_metrics",
    "state_metrics_table",
    "transition_counts",
    "transition_probability",
]

warnings.warn(
    "nilearn_stca.dynamics moved to nilearn_stca.states: import its functions from "
    "nilearn_stca.states; this path will be removed in the next release.",
    FutureWarning,
    stacklevel=2,
)
