"""Light imports stay light: scoring, tables, baselines and the simulator never import torch."""

import contextlib
import importlib
import io
import re
import subprocess
import sys

import pytest

LIGHT = [
    "nilearn_stca",
    "nilearn_stca.baselines",
    "nilearn_stca.datasets",
    "nilearn_stca.windows.sweep",
    "nilearn_stca.evaluation",
    "nilearn_stca.evaluation.metrics",
    "nilearn_stca.evaluation.templates",
    "nilearn_stca.evaluation.tables",
    "nilearn_stca.evaluation.outputs",
    "nilearn_stca.methods",
    "nilearn_stca.dynamics",
    "nilearn_stca.evaluation.stability",
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


def _cli_choices(command, option):
    """The choices ``nilearn-stca COMMAND --help`` shows for ``option``."""
    from nilearn_stca.cli import build_parser

    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return re.search(rf"{option} \{{([\w,]+)\}}", shown.getvalue()).group(1).split(",")


def test_every_method_table_names_the_three_methods_and_their_classes():
    from nilearn_stca import STCADecomposition, interfaces
    from nilearn_stca.baselines import ICADecomposition, SDLDecomposition
    from nilearn_stca.cli import METHOD_CHOICES
    from nilearn_stca.evaluation.comparison_plan import METHODS
    from nilearn_stca.evaluation.tables import METHOD_NAMES
    from nilearn_stca.interfaces.workflows import METHOD_INTERFACES

    names = ["ica", "sdl", "stca"]
    # Each table against the classes users import, not against the registry it is built from.
    assert list(METHODS.items()) == list(
        zip(names, [ICADecomposition, SDLDecomposition, STCADecomposition], strict=True)
    )
    assert list(METHOD_INTERFACES.items()) == list(
        zip(names, [interfaces.ICA, interfaces.SDL, interfaces.STCA], strict=True)
    )
    assert list(METHOD_NAMES.items()) == list(zip(names, ["ICA", "SDL", "STCA"], strict=True))
    # What the CLI and the nipype Stability node actually offer.
    assert list(METHOD_CHOICES) == names
    assert _cli_choices("compare", "--methods") == names
    assert _cli_choices("stability", "--method") == names
    assert list(interfaces.Stability.input_spec().trait("method").trait_type.values) == names


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
    monkeypatch.delitem(sys.modules, old, raising=False)  # import it afresh
    alias = importlib.import_module(old)
    moved = importlib.import_module(new)
    assert alias.__all__ == names
    for name in names:
        with pytest.warns(FutureWarning, match=rf"{old} is deprecated .* from {new}\."):
            assert getattr(alias, name) is getattr(moved, name)


@pytest.mark.parametrize("old", [old for old, _, _ in MOVED])
def test_importing_a_moved_module_imports_neither_torch_nor_nipype(old):
    code = f"import sys, {old}\nprint(sorted({{'torch', 'nipype'}} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
