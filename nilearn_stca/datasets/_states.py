"""Discrete brain states for the simulator: sets of co-active networks that switch over time.

In the simulator's state mode (``simulate_dynamic_rsfmri(n_states=K)``) each of K states is a
set of networks that are on together, and each subject's run moves from state to state,
staying in one for tens of scans (a dwell time), as the brain states of dynamic functional
connectivity studies (e.g. Allen et al., 2014). A network's envelope is then 1 while a state
that holds it lasts and 0 otherwise, with the simulator's raised-cosine ramps at the
switches. The planted state of every scan is returned, so that states recovered from window
maps can be scored against it.
"""

import numpy as np
from scipy.ndimage import convolve1d

#: Dwell times, in scans, for a run of ``reference_scans`` scans (shorter runs scale down).
DWELL_SCANS = (30, 90)

#: The share of networks a state holds, on average.
ACTIVE_SHARE = 0.4

_MAX_DRAWS = 1000


def draw_state_networks(n_states, n_networks, rng):
    """``(n_states, n_networks)`` booleans: which networks each state holds.

    Every state holds at least one network and no two states hold the same set; each
    network is in a state with probability :data:`ACTIVE_SHARE`. ``n_states`` must be at
    most ``2 ** n_networks - 1``, the number of distinct non-empty sets.
    """
    if n_states > 2**n_networks - 1:
        raise ValueError(
            f"n_states={n_states} is more than the {2**n_networks - 1} distinct non-empty sets "
            f"of {n_networks} networks: lower n_states or plant more networks."
        )
    states = []
    for _ in range(_MAX_DRAWS * n_states):
        candidate = rng.random(n_networks) < ACTIVE_SHARE
        if candidate.any() and not any(np.array_equal(candidate, s) for s in states):
            states.append(candidate)
            if len(states) == n_states:
                return np.array(states)
    raise RuntimeError("Could not draw distinct network sets for the states.")  # pragma: no cover


def draw_state_sequence(n_scans, n_states, scale, rng):
    """The state of every scan: dwell times drawn in :data:`DWELL_SCANS` times ``scale``.

    The first state and dwell are random (the run starts within a dwell); each later state
    differs from the one before.

    Returns
    -------
    sequence : ndarray of int, shape (n_scans,)
    """
    sequence = np.empty(n_scans, dtype=int)
    state = int(rng.integers(n_states))
    start = 0
    low, high = (max(1, int(round(bound * scale))) for bound in DWELL_SCANS)
    while start < n_scans:
        dwell = int(rng.integers(low, high + 1))
        if start == 0:
            dwell = int(rng.integers(1, dwell + 1))
        sequence[start : start + dwell] = state
        start += dwell
        state = (state + 1 + int(rng.integers(n_states - 1))) % n_states
    return sequence


def state_envelopes(sequence, state_networks, ramp_kernel):
    """Each network's envelope in [0, 1]: on while the current state holds it, ramped.

    Returns
    -------
    envelopes : ndarray, shape (n_scans, n_networks)
    """
    on = state_networks[sequence].astype(float)
    return np.clip(convolve1d(on, ramp_kernel, axis=0, mode="nearest"), 0, 1)
