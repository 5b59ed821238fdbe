"""The estimators' parameters, checked from tables before ``fit`` does any work.

Each estimator lists its parameters with a rule: a function ``rule(value, name)`` that
raises one ``TypeError`` or ``ValueError`` naming the parameter, what it must be and the
value given, in the style of scikit-learn's ``check_scalar`` (e.g. ``"batch_size == 0, must
be >= 1."``). :func:`check_param_table` applies a table; the rules of the masker's
parameters, shared by the three estimators, are :data:`MASKER_RULES`. Rules that tie two
parameters together are functions of the estimator (:func:`check_filter_params`,
:func:`check_target_grid`). :func:`check_stride` checks the ``stride`` of the window calls.
"""

import numbers
from pathlib import Path

import numpy as np
from joblib import Memory
from sklearn.utils import check_scalar

from ._utils.checks import check_fbn_threshold, check_integer

#: ``mask_strategy`` values nilearn's maskers know.
MASK_STRATEGIES = ("background", "epi", "whole-brain-template", "gm-template", "wm-template")

#: ``standardize`` values of nilearn 0.14 (its booleans are deprecated, still accepted).
STANDARDIZE_CHOICES = ("zscore_sample", "psc", True, False, None)


def check_param_table(estimator, rules):
    """Check each parameter of ``estimator`` named in ``rules`` with its rule, in order."""
    for name, rule in rules.items():
        rule(getattr(estimator, name), name)


def _is_choice(value, choice):
    """Whether ``value`` is ``choice``: equal strings, or the same None / bool (1 is not True)."""
    if isinstance(choice, str):
        return isinstance(value, str) and value == choice
    if isinstance(choice, bool):
        return isinstance(value, (bool, np.bool_)) and bool(value) is choice
    return value is choice


def _choices_text(choices):
    return ", ".join(repr(choice) for choice in choices)


def integer(minimum):
    """Rule: an integer >= ``minimum`` (not a bool)."""

    def rule(value, name):
        check_integer(value, name, minimum)

    return rule


def number(minimum=None, *, above=False, maximum=None, options=()):
    """Rule: a finite real number (not a bool) in a range, or one of ``options``.

    Parameters
    ----------
    minimum : float, default=None
        Smallest value allowed (excluded where ``above``).
    above : bool, default=False
        Whether ``minimum`` itself is refused.
    maximum : float, default=None
        Largest value allowed (included).
    options : tuple, default=()
        Other values allowed, e.g. ``(None, "auto")``.
    """

    def rule(value, name):
        if any(_is_choice(value, option) for option in options):
            return
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            allowed = f"{_choices_text(options)} or " if options else ""
            raise TypeError(f"{name} must be {allowed}a number, got {value!r}.")
        if not np.isfinite(value):
            raise ValueError(f"{name} == {value}, must be finite.")
        check_scalar(
            value,
            name,
            target_type=numbers.Real,
            min_val=minimum,
            max_val=maximum,
            include_boundaries=_boundaries(above, maximum),
        )

    return rule


def _boundaries(above, maximum):
    """``check_scalar``'s ``include_boundaries``: the minimum excluded where ``above``."""
    if not above:
        return "both"
    return "neither" if maximum is None else "right"


def one_of(*choices, hint=""):
    """Rule: one of ``choices`` (strings, None or booleans); ``hint`` follows the error."""

    def rule(value, name):
        if not any(_is_choice(value, choice) for choice in choices):
            raise ValueError(
                f"{name} must be one of {_choices_text(choices)}, got {value!r}.{hint}"
            )

    return rule


def boolean(value, name):
    """Rule: True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}.")


def n_jobs(value, name):
    """Rule: None or a non-zero integer (joblib's: -1 every CPU, -2 all but one...)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value == 0:
        raise ValueError(
            f"{name} must be None, a positive integer or -1 (every CPU; -2: all but one, as "
            f"in joblib), got {value!r}."
        )


def random_state(value, name):
    """Rule: None, a seed (an integer from 0 to 2**32 - 1) or a numpy RandomState."""
    if value is None or isinstance(value, np.random.RandomState):
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not 0 <= value < 2**32
    ):
        raise ValueError(
            f"{name} must be None, an integer from 0 to 2**32 - 1 or a "
            f"numpy.random.RandomState, got {value!r}."
        )


def memory(value, name):
    """Rule: None, a cache folder (str or Path) or a joblib.Memory."""
    if value is not None and not isinstance(value, (str, Path, Memory)):
        raise TypeError(
            f"{name} must be None, a folder (str or Path) or a joblib.Memory, got {value!r}."
        )


def dict_or_none(value, name):
    """Rule: None or a dict."""
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"{name} must be None or a dict, got {value!r}.")


def dtype(value, name):
    """Rule: None, "auto" or a numpy dtype (e.g. "float32")."""
    if value is None or _is_choice(value, "auto"):
        return
    try:
        np.dtype(value)
    except TypeError as error:
        raise TypeError(
            f"{name} must be None, 'auto' or a numpy dtype such as 'float32', got {value!r}."
        ) from error


def verbose(value, name):
    """Rule: an integer >= 0 or a bool (nilearn's verbosity)."""
    if not isinstance(value, (bool, np.bool_)):
        check_integer(value, name, 0)


def target_affine(value, name):
    """Rule: None or a finite 3x3 or 4x4 affine."""
    if value is None:
        return
    try:
        affine = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be None or a 3x3 or 4x4 array, got {value!r}.") from error
    if affine.shape not in ((3, 3), (4, 4)) or not np.isfinite(affine).all():
        raise ValueError(
            f"{name} must be None or a finite 3x3 or 4x4 affine, got an array of shape "
            f"{affine.shape}."
        )


def integers(length, minimum, *, none=False):
    """Rule: ``length`` integers >= ``minimum`` (a tuple, list or array), or None where
    ``none``."""

    def rule(value, name):
        if none and value is None:
            return
        sized = not isinstance(value, (str, bytes)) and hasattr(value, "__len__")
        if not sized or len(value) != length:
            kind = f"None or {length}" if none else f"{length}"
            raise ValueError(f"{name} must be {kind} integers >= {minimum}, got {value!r}.")
        for item in value:
            check_integer(item, f"each of {name}", minimum)

    return rule


#: Rules of the masker's parameters (nilearn's names), shared by the three estimators.
MASKER_RULES = {
    "smoothing_fwhm": number(0, options=(None,)),
    "standardize": one_of(*STANDARDIZE_CHOICES),
    "standardize_confounds": boolean,
    "detrend": boolean,
    "low_pass": number(0, above=True, options=(None,)),
    "high_pass": number(0, above=True, options=(None,)),
    "t_r": number(0, above=True, options=(None,)),
    "target_affine": target_affine,
    "target_shape": integers(3, 1, none=True),
    "mask_strategy": one_of(*MASK_STRATEGIES),
    "mask_args": dict_or_none,
    "memory": memory,
    "memory_level": integer(0),
    "n_jobs": n_jobs,
    "verbose": verbose,
    "random_state": random_state,
}

#: Rules of the window parameters and the FBN threshold, shared by the three estimators.
WINDOW_RULES = {
    "n_components": integer(1),
    "window_length": integer(2),
    "window_stride": integer(1),
    "fbn_threshold": check_fbn_threshold,
}


def check_filter_params(estimator):
    """Refuse temporal filtering without ``t_r``, or ``high_pass >= low_pass``."""
    low_pass, high_pass, t_r = estimator.low_pass, estimator.high_pass, estimator.t_r
    if t_r is None and (low_pass is not None or high_pass is not None):
        given = "low_pass" if low_pass is not None else "high_pass"
        raise ValueError(
            f"{given} filters the runs, which needs t_r: give t_r, the repetition time in seconds."
        )
    if low_pass is not None and high_pass is not None and high_pass >= low_pass:
        raise ValueError(
            f"high_pass={high_pass} must be below low_pass={low_pass}: high_pass removes "
            "the frequencies below it, low_pass those above it."
        )


def check_target_grid(estimator):
    """Refuse ``target_shape`` without a 4x4 ``target_affine`` (nilearn's resampling rule)."""
    if estimator.target_shape is None:
        return
    if estimator.target_affine is None or np.shape(estimator.target_affine) != (4, 4):
        raise ValueError(
            "target_shape needs a 4x4 target_affine (the grid's origin): give both, e.g. "
            "target_affine=img.affine, target_shape=img.shape[:3] of the grid to resample to."
        )


def check_stride(stride, default):
    """``stride``, or ``default`` if None; a positive integer or a ValueError naming it."""
    stride = default if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer or None, got {stride!r}.")
    return int(stride)
