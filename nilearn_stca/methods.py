"""The three methods by name: one table for the comparison, the CLI, nipype and the figures.

The table names classes by import path, so reading it (e.g. for the CLI's choices or a
table's display names) imports neither PyTorch nor nipype. It also says what the comparison
needs to know of a method (whether it shows its own progress, the paper's settings), so that
evaluation never tests an estimator's type.
"""

from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class Method:
    """One method of the comparison.

    Attributes
    ----------
    label : str
        Its name in tables and figures.
    estimator : str
        ``"module:Class"`` of its estimator.
    node : str
        ``"module:Class"`` of its nipype interface.
    own_progress : bool, default=False
        Whether its estimator draws its own progress bars when ``verbose`` (STCA: its
        training and its window sweep). ``compare`` passes ``verbose`` on to it and draws no
        bar of its own over its windows; the other estimators get ``verbose - 1``, since the
        nilearn estimators inside them would print at every window.
    paper_settings : str or None, default=None
        ``"module:NAME"`` of the estimator parameters Liu et al. (ISBI 2023) use, for
        :func:`~nilearn_stca.evaluation.paper_protocol`; None where the paper keeps the
        estimator's defaults.
    """

    label: str
    estimator: str
    node: str
    own_progress: bool = False
    paper_settings: str | None = None

    def estimator_class(self):
        """The estimator class (imported on first use)."""
        return _import(self.estimator)

    def node_class(self):
        """The nipype interface class (imported on first use)."""
        return _import(self.node)

    def paper_params(self):
        """The paper's estimator parameters, a new dict (empty if the paper sets none)."""
        return {} if self.paper_settings is None else dict(_import(self.paper_settings))


def _import(path):
    module, name = path.split(":")
    return getattr(import_module(module), name)


#: Every method by its name in ``compare``, the CLI and the workflow, in display order.
METHOD_REGISTRY = {
    "ica": Method("ICA", "nilearn_stca.baselines:ICADecomposition", "nilearn_stca.interfaces:ICA"),
    "sdl": Method("SDL", "nilearn_stca.baselines:SDLDecomposition", "nilearn_stca.interfaces:SDL"),
    "stca": Method(
        "STCA",
        "nilearn_stca.stca.decomposition:STCADecomposition",
        "nilearn_stca.interfaces:STCA",
        own_progress=True,
        paper_settings="nilearn_stca.stca.decomposition:PAPER_SETTINGS",
    ),
}


def method_of(estimator):
    """The registered method of ``estimator``: the first whose class it is an instance of.

    The registered classes are imported in the registry's order until one matches, so an
    estimator of no registered method imports them all (STCA's imports PyTorch).

    Returns
    -------
    method : Method or None
        None for an estimator of no registered method.
    """
    for method in METHOD_REGISTRY.values():
        if isinstance(estimator, method.estimator_class()):
            return method
    return None
