"""The three methods by name: one table for the comparison, the CLI, nipype and the figures.

The table names classes by import path, so reading it (e.g. for the CLI's choices or a
table's display names) imports neither PyTorch nor nipype.
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
    """

    label: str
    estimator: str
    node: str

    def estimator_class(self):
        """The estimator class (imported on first use)."""
        return _import(self.estimator)

    def node_class(self):
        """The nipype interface class (imported on first use)."""
        return _import(self.node)


def _import(path):
    module, name = path.split(":")
    return getattr(import_module(module), name)


#: Every method by its name in ``compare``, the CLI and the workflow, in display order.
METHOD_REGISTRY = {
    "ica": Method("ICA", "nilearn_stca.baselines:ICADecomposition", "nilearn_stca.interfaces:ICA"),
    "sdl": Method("SDL", "nilearn_stca.baselines:SDLDecomposition", "nilearn_stca.interfaces:SDL"),
    "stca": Method(
        "STCA", "nilearn_stca.stca.decomposition:STCADecomposition", "nilearn_stca.interfaces:STCA"
    ),
}
