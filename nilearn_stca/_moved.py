"""Modules that moved: their old names work for one release, with a FutureWarning.

``import nilearn_stca.dynamics`` still works, and so does ``from nilearn_stca.dynamics import
state_metrics``: a finder put first on :data:`sys.meta_path` when the package is imported
answers each old name of :data:`MOVED` with a :class:`MovedModule`. Importing one imports
nothing else (the old ``workflows`` no nipype, the old ``demo`` no torch); each use of one of
its names warns, imports the new module if needed and forwards to it.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import NamedTuple


class Moved(NamedTuple):
    """Where an old module went."""

    #: The module that holds its names now.
    new: str
    #: The names the old module offered (its ``__all__``); None: every name of ``new``.
    names: tuple | None
    #: The FutureWarning each use of a name gives.
    message: str


def _planted(name):
    return Moved(
        f"nilearn_stca.datasets._{name}",
        None,
        f"nilearn_stca.planted_{name} moved into the simulator's package, as the private module "
        f"nilearn_stca.datasets._{name}; this alias will be removed in the next release.",
    )


#: Old module name -> where it went.
MOVED = {
    "nilearn_stca.planted_networks": _planted("networks"),
    "nilearn_stca.planted_signals": _planted("signals"),
    "nilearn_stca.planted_states": _planted("states"),
    "nilearn_stca.dynamics": Moved(
        "nilearn_stca.states",
        (
            "fit_map_states",
            "fit_states",
            "planted_window_states",
            "presence_table",
            "score_states",
            "state_metrics",
            "state_metrics_table",
            "transition_counts",
            "transition_probability",
        ),
        "nilearn_stca.dynamics moved to nilearn_stca.states: import its functions from "
        "nilearn_stca.states; this path will be removed in the next release.",
    ),
    "nilearn_stca.state_outputs": Moved(
        "nilearn_stca.states",
        ("STATES_FILE", "sweep_presence", "write_states"),
        "nilearn_stca.state_outputs moved to nilearn_stca.states: import write_states, "
        "sweep_presence and STATES_FILE from nilearn_stca.states; this path will be removed in "
        "the next release.",
    ),
    "nilearn_stca.sweep": Moved(
        "nilearn_stca.windows.sweep",
        (
            "FORMAT",
            "VERSION",
            "WindowSweep",
            "check_method_name",
            "load_window_sweep",
            "write_window_sweep",
        ),
        "nilearn_stca.sweep moved to nilearn_stca.windows.sweep (write_window_sweep, "
        "load_window_sweep and WindowSweep are also in nilearn_stca); this path will be "
        "removed in the next release.",
    ),
    "nilearn_stca.stability": Moved(
        "nilearn_stca.evaluation.stability",
        ("STABILITY_FILE", "STABILITY_FILES", "stability", "write_stability"),
        "nilearn_stca.stability moved to nilearn_stca.evaluation.stability; this path will be "
        "removed in the next release.",
    ),
    "nilearn_stca.workflows": Moved(
        "nilearn_stca.interfaces.workflows",
        ("METHOD_INTERFACES", "init_comparison_wf"),
        "nilearn_stca.workflows is deprecated and will be removed in the next release: import "
        "init_comparison_wf from nilearn_stca.interfaces.workflows.",
    ),
    "nilearn_stca.demo": Moved(
        "nilearn_stca.cli.demo",
        (
            "DEMO_COMPARISON",
            "DEMO_MARKER",
            "DEMO_SIMULATION",
            "DEMO_STCA",
            "check_out_dir",
            "run_demo",
        ),
        "nilearn_stca.demo is deprecated and will be removed in the next release: import "
        "run_demo from nilearn_stca.cli.demo.",
    ),
}


def _is_dunder(name):
    return name.startswith("__") and name.endswith("__")


class MovedModule(types.ModuleType):
    """An old module name: its names are those of the new module, each use with a warning.

    A name set on it (a patch) is its own, as on any module that imports names: the new
    module is unchanged (``monkeypatch`` restores a module's attributes from its
    ``__dict__``, so a patch forwarded to the new module would be deleted from it on undo).
    """

    def __init__(self, name):
        super().__init__(name, f"Moved to :mod:`{MOVED[name].new}`: {MOVED[name].message}")
        if MOVED[name].names is not None:
            self.__all__ = list(MOVED[name].names)

    def _new_module(self, name):
        """The new module, for one of the old module's names (with its FutureWarning)."""
        moved = MOVED[self.__name__]
        if moved.names is not None and name not in moved.names:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        warnings.warn(moved.message, FutureWarning, stacklevel=3)
        return importlib.import_module(moved.new)

    def __getattr__(self, name):
        if _is_dunder(name):  # asked by the import system and tools: the old module had none
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        return getattr(self._new_module(name), name)

    def __dir__(self):
        names = MOVED[self.__name__].names
        if names is None:
            names = dir(importlib.import_module(MOVED[self.__name__].new))
        return sorted({*names, *super().__dir__()})


class _MovedModulesFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names of :data:`MOVED`, as :class:`MovedModule` objects."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        return MovedModule(spec.name)

    def exec_module(self, module):
        pass  # nothing to run: the names are looked up in the new module when used


def serve_moved_modules():
    """Put the finder of the old names first on :data:`sys.meta_path` (once).

    First, so that a copy of an old module left elsewhere on the path (an older install) is
    never found instead.
    """
    if not any(isinstance(finder, _MovedModulesFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedModulesFinder())
