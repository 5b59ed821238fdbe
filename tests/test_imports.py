"""Light imports stay light: scoring, tables, baselines and the simulator never import torch."""

import importlib
import subprocess
import sys

import pytest

LIGHT = [
    "nilearn_stca",
    "nilearn_stca.baselines",
    "nilearn_stca.datasets",
    "nilearn_stca.sweep",
    "nilearn_stca.evaluation",
    "nilearn_stca.evaluation.metrics",
    "nilearn_stca.evaluation.templates",
    "nilearn_stca.evaluation.tables",
    "nilearn_stca.evaluation.outputs",
    "nilearn_stca.methods",
    "nilearn_stca.dynamics",
    "nilearn_stca.stability",
    "nilearn_stca.state_outputs",
    "nilearn_stca.evaluation.report_dynamics",
]


def _imports_torch(statement):
    code = f"import sys\n{statement}\nprint('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return out.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_do_not_import_torch(module):
    assert not _imports_torch(f"import {module}")


def test_lazy_names_load_stca_when_used():
    assert _imports_torch("from nilearn_stca.evaluation import compare")
    assert _imports_torch("from nilearn_stca import STCADecomposition")


def test_every_method_table_is_the_registry():
    from nilearn_stca.cli import METHOD_CHOICES
    from nilearn_stca.evaluation.comparison_plan import METHODS
    from nilearn_stca.evaluation.tables import METHOD_NAMES
    from nilearn_stca.interfaces import ICA, SDL, STCA
    from nilearn_stca.interfaces.workflows import METHOD_INTERFACES
    from nilearn_stca.methods import METHOD_REGISTRY

    assert list(METHODS) == list(METHOD_NAMES) == list(METHOD_INTERFACES) == list(METHOD_CHOICES)
    assert list(METHOD_REGISTRY) == ["ica", "sdl", "stca"]
    assert [cls.__name__ for cls in METHODS.values()] == [
        "ICADecomposition",
        "SDLDecomposition",
        "STCADecomposition",
    ]
    assert list(METHOD_INTERFACES.values()) == [ICA, SDL, STCA]
    assert list(METHOD_NAMES.values()) == ["ICA", "SDL", "STCA"]


#: Modules that moved: (old name, new name, the names the old one re-exports).
MOVED = [
    (
        "nilearn_stca.workflows",
        "nilearn_stca.interfaces.workflows",
        ["METHOD_INTERFACES", "init_comparison_wf"],
    ),
    (
        "nilearn_stca.demo",
        "nilearn_stca.cli.demo",
        [
            "DEMO_COMPARISON",
            "DEMO_MARKER",
            "DEMO_SIMULATION",
            "DEMO_STCA",
            "check_out_dir",
            "run_demo",
        ],
    ),
]


@pytest.mark.parametrize(("old", "new", "names"), MOVED, ids=[old for old, _, _ in MOVED])
def test_moved_modules_keep_their_old_name_for_one_release(old, new, names, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)  # import it afresh: it warns once
    with pytest.warns(FutureWarning, match=rf"{old} is deprecated .* from {new}\."):
        alias = importlib.import_module(old)
    moved = importlib.import_module(new)
    assert alias.__all__ == names
    for name in names:
        assert getattr(alias, name) is getattr(moved, name)
