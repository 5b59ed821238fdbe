"""Brain states and stability across seeds as nipype nodes: thin specs over the library."""

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from .._utils.mask_grid import mask_grid_params
from ..evaluation.metrics import STRATEGIES
from ..evaluation.templates import DEFAULT_TEMPLATE_THRESHOLD
from ..methods import METHOD_REGISTRY
from ._node_outputs import node_outputs, top_entry
from .comparison_steps import node_folder
from .methods import _limited_threads

#: The States node's file outputs: output name -> file of write_states.
_STATES_OUTPUTS = {
    "sequences_file": "states_sequences.tsv",
    "metrics_file": "states_metrics.tsv",
    "transitions_file": "states_transitions.tsv",
}


class StatesInputSpec(BaseInterfaceInputSpec):
    windows_dirs = InputMultiObject(
        Directory(exists=True),
        mandatory=True,
        desc="window sweeps (write_window_sweep), e.g. the windows_dir of method nodes",
    )
    subjects = traits.List(
        traits.Str, desc="one label per sweep, in order (default: the folders' names)"
    )
    n_states = traits.Int(desc="number of states (default: the best silhouette from 2 to 8)")
    features = traits.Enum(
        "maps", "presence", usedefault=True, desc="k-means on the FBN maps or on presence"
    )
    templates = traits.Str(
        desc="for features='presence': 'smith2009' or an image file of template maps"
    )
    template_threshold = traits.Float(
        DEFAULT_TEMPLATE_THRESHOLD, usedefault=True, desc="threshold of the template maps"
    )
    threshold = traits.Float(desc="z threshold of the window maps (default: each sweep's)")
    strategy = traits.Enum(*STRATEGIES, usedefault=True, desc="matching, for 'presence'")
    t_r = traits.Float(desc="repetition time (s): dwell times also in seconds")
    random_state = traits.Int(0, usedefault=True, desc="seed of k-means")
    out_dir = traits.Str("states", usedefault=True, desc="folder inside the node's folder")


class StatesOutputSpec(TraitedSpec):
    out_dir = Directory(exists=True, desc="the folder of write_states")
    sequences_file = File(exists=True, desc="states_sequences.tsv")
    metrics_file = File(exists=True, desc="states_metrics.tsv")
    transitions_file = File(exists=True, desc="states_transitions.tsv")


class States(SimpleInterface):
    """Brain states of window sweeps: :func:`~nilearn_stca.states.write_states`.

    The sweeps are grouped by method; each method's states are found jointly across its
    subjects. The inputs are ``write_states``' parameters; the folder ``out_dir`` is filled
    inside the node's working folder.

    Examples
    --------
    >>> from nilearn_stca.interfaces import States
    >>> states = States(n_states=3, t_r=0.72)
    >>> states.inputs.features
    'maps'
    >>> states.inputs.windows_dirs = ["sub-01/windows", "sub-02/windows"]  # doctest: +SKIP
    """

    input_spec = StatesInputSpec
    output_spec = StatesOutputSpec

    def _run_interface(self, runtime):
        from ..states import write_states

        inputs = self.inputs

        def given(name):
            value = getattr(inputs, name)
            return value if isdefined(value) else None

        sweeps = [str(path) for path in inputs.windows_dirs]
        if isdefined(inputs.subjects):
            if len(inputs.subjects) != len(sweeps):
                raise ValueError(
                    f"subjects has {len(inputs.subjects)} labels for {len(sweeps)} "
                    "windows_dirs: give one label per sweep."
                )
            sweeps = dict(zip(inputs.subjects, sweeps, strict=True))
        out_dir = node_folder(runtime, inputs.out_dir)
        with node_outputs(runtime, "States", [top_entry(inputs.out_dir)]) as staged:
            write_states(
                sweeps,
                staged / inputs.out_dir,
                n_states=given("n_states"),
                features=inputs.features,
                templates=given("templates"),
                template_threshold=inputs.template_threshold,
                threshold=given("threshold"),
                strategy=inputs.strategy,
                t_r=given("t_r"),
                random_state=inputs.random_state,
            )
        self._results.update(
            out_dir=str(out_dir),
            **{key: str(out_dir / name) for key, name in _STATES_OUTPUTS.items()},
        )
        return runtime


class StabilityInputSpec(BaseInterfaceInputSpec):
    in_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="4D runs, fitted together at every run"
    )
    method = traits.Enum(*METHOD_REGISTRY, mandatory=True, desc="the method to refit")
    method_params = traits.Dict(
        traits.Str, desc="parameters of the method's estimator (not random_state)"
    )
    mask_file = File(exists=True, desc="brain mask; the data are resampled to its grid")
    n_runs = traits.Range(low=2, value=10, usedefault=True, desc="fits, each with its seed")
    random_state = traits.Int(0, usedefault=True, desc="draws the seed of every fit")
    num_threads = traits.Int(
        desc="fits run at once (joblib processes; nipype reserves as many processors)"
    )
    out_dir = traits.Str("stability", usedefault=True, desc="folder inside the node's folder")


class StabilityOutputSpec(TraitedSpec):
    out_dir = Directory(exists=True, desc="the folder of write_stability")
    table_file = File(exists=True, desc="stability.tsv: one row per cluster")
    centrotypes_file = File(exists=True, desc="the clusters' centrotype maps (4D)")


class Stability(SimpleInterface):
    """Stability of a method's maps across seeds, as a node.

    :func:`~nilearn_stca.evaluation.stability.stability`: the method is fitted ``n_runs``
    times on ``in_files`` with other seeds, every map is clustered by spatial correlation,
    and :func:`~nilearn_stca.evaluation.stability.write_stability` writes each cluster's
    stability index, its centrotype map and a figure into the folder ``out_dir`` inside the
    node's working folder.

    Examples
    --------
    >>> from nilearn_stca.interfaces import Stability
    >>> stab = Stability(method="sdl", n_runs=5, method_params={"n_components": 10})
    >>> stab.inputs.n_runs
    5
    >>> stab.inputs.in_files = ["sub-01_bold.nii.gz"]  # doctest: +SKIP
    """

    input_spec = StabilityInputSpec
    output_spec = StabilityOutputSpec

    def _run_interface(self, runtime):
        from ..evaluation.stability import STABILITY_FILES, stability, write_stability

        inputs = self.inputs
        params = dict(inputs.method_params) if isdefined(inputs.method_params) else {}
        if "random_state" in params:
            raise ValueError(
                "method_params sets random_state, which stability draws for every fit: set "
                "the node's random_state instead."
            )
        if isdefined(inputs.mask_file):
            params.update(mask_grid_params(inputs.mask_file))
        estimator = METHOD_REGISTRY[inputs.method].estimator_class()(**params)
        out_dir = node_folder(runtime, inputs.out_dir)
        n_jobs = inputs.num_threads if isdefined(inputs.num_threads) else 1
        settings = {
            "method": inputs.method,
            "method_params": {k: str(v) for k, v in sorted(params.items())},
            "in_files": [str(Path(path).resolve()) for path in inputs.in_files],
            "n_runs": inputs.n_runs,
            "random_state": inputs.random_state,
        }
        label = METHOD_REGISTRY[inputs.method].label
        outputs = node_outputs(runtime, "Stability", [top_entry(inputs.out_dir)])
        with outputs as staged, _limited_threads(inputs.num_threads):
            result = stability(
                estimator,
                list(inputs.in_files),
                n_runs=inputs.n_runs,
                random_state=inputs.random_state,
                n_jobs=n_jobs,
            )
            title = f"{label}: {inputs.n_runs} runs"
            write_stability(result, staged / inputs.out_dir, settings=settings, title=title)
        table_file, centrotypes_file, _ = STABILITY_FILES
        self._results.update(
            out_dir=str(out_dir),
            table_file=str(out_dir / table_file),
            centrotypes_file=str(out_dir / centrotypes_file),
        )
        return runtime
