"""The simulator's parameter checks, each naming the parameter and the value it refuses."""

import numbers

import numpy as np

from ._networks import check_networks

MAX_T_R = 20.0


def check_simulation_parameters(
    n_subjects, n_scans, networks, n_networks, resolution, t_r, snr, n_states
):
    """Refuse a bad parameter of ``simulate_dynamic_rsfmri``; return the checked networks.

    The networks come back as their option's name, or the user's maps as a 4D image
    (see :func:`check_networks`).
    """
    _check_positive_int(n_subjects, "n_subjects")
    _check_positive_int(n_scans, "n_scans", minimum=2)
    _check_positive_int(n_networks, "n_networks")
    _check_positive_int(resolution, "resolution")
    _check_positive_number(t_r, "t_r")
    if t_r > MAX_T_R:
        raise ValueError(
            f"t_r must be at most {MAX_T_R:g} s, so that the 32 s canonical HRF spans "
            f"at least two scans; got {t_r!r}."
        )
    _check_positive_number(snr, "snr")
    if n_states is not None:
        _check_positive_int(n_states, "n_states", minimum=2)
    return check_networks(networks)


def _check_positive_int(value, name, minimum=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _check_positive_number(value, name):
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive number, got {value!r}.")
