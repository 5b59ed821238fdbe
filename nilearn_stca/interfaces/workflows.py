"""Nipype workflows: the three-method comparison of ``compare`` as a cached, parallel pipeline.

:func:`init_comparison_wf` builds the same comparison as
:func:`~nilearn_stca.evaluation.compare` out of the nodes of :mod:`nilearn_stca.interfaces`:
one node per subject and method fits the method and writes its maps, one node per subject and
method scores them, and a last node fills an output folder laid out as ``compare``'s and
writes the report. Nipype runs independent nodes in parallel (``plugin="MultiProc"``) and,
with a ``base_dir``, keeps every finished node: a rerun after a crash or an interruption only
computes the nodes that did not finish, or whose inputs changed.
"""

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from .._utils.checks import repetition_time
from ..evaluation.bids import subject_labels
from ..evaluation.comparison_plan import CONTROLLED_PARAMS, METHODS
from ..evaluation.metrics import check_strategy
from ..evaluation.templates import DEFAULT_TEMPLATE_THRESHOLD
from ._workflow_nodes import (
    METHOD_INTERFACES,
    add_cell,
    add_report,
    add_states,
    new_workflow,
    prepare_node,
    subject_nodes,
)
from .comparison_steps import ComparisonReport

__all__ = ["METHOD_INTERFACES", "init_comparison_wf"]

#: Inputs of the method nodes that the workflow sets itself, on top of ``compare``'s own.
_WORKFLOW_INPUTS = ("in_files", "mask_file", "confounds_files", "windows", "sweep_stride")
_DATA = ("in_files", "mask_file", "confounds_files")


def _check_methods(methods):
    methods = [methods] if isinstance(methods, str) else list(methods)
    unknown = [m for m in methods if m not in METHOD_INTERFACES]
    if unknown or not methods:
        raise ValueError(
            f"Unknown method(s) {unknown or methods!r}: choose among {sorted(METHOD_INTERFACES)}."
        )
    if len(set(methods)) < len(methods):
        raise ValueError(f"methods must be distinct, got {methods}.")
    return methods


def _check_method_params(method_params, methods):
    """``{method: {input: value}}`` for the chosen methods, refusing what cannot be set."""
    method_params = dict(method_params or {})
    for name, params in method_params.items():
        if name not in METHODS:
            raise ValueError(f"method_params names {name!r}, which is not among the methods.")
        refused = sorted(set(params) & {*CONTROLLED_PARAMS, *_WORKFLOW_INPUTS})
        if name == "stca" and "threshold" in params:
            refused.append("threshold")  # STCA's deprecated name of fbn_threshold
        if refused:
            raise ValueError(
                f"method_params[{name!r}] sets {refused}: the workflow sets these for every "
                "method; pass them to init_comparison_wf itself."
            )
        inputs = METHOD_INTERFACES[name].input_spec().copyable_trait_names()
        unknown = sorted(set(params) - set(inputs))
        if unknown:
            deprecated = {"threshold"} if name == "stca" else set()
            allowed = sorted(set(inputs) - {*CONTROLLED_PARAMS, *_WORKFLOW_INPUTS, *deprecated})
            raise ValueError(
                f"method_params[{name!r}] sets {unknown}, which the {name} node does not "
                f"take: choose among {allowed}."
            )
    return {name: dict(method_params.get(name, {})) for name in methods}


def _method_inputs(method, params, shared):
    """The inputs of one method's node: its ``method_params``, then the shared settings."""
    inputs = {"num_threads": 1, **params}
    inputs["fbn_threshold"] = shared["threshold"]
    for name in ("n_components", "random_state", "sweep_stride"):
        if shared[name] is not None:
            inputs[name] = shared[name]
    inputs.update(
        window_length=shared["window_length"],
        window_stride=shared["window_stride"],
        windows=shared["windows"],
    )
    return inputs


def _node_settings(interface):
    """``{interface name: every input but the data}``, for ``comparison.json``."""
    inputs = interface.inputs.get()
    return {type(interface).__name__: {k: v for k, v in inputs.items() if k not in _DATA}}


def _check_states(states, windows, state_features):
    if states and not windows:
        raise ValueError(
            "states=True finds states in the window maps: keep windows=True, or drop states."
        )
    if state_features not in ("maps", "presence"):
        raise ValueError(f"state_features must be 'maps' or 'presence', got {state_features!r}.")


@dataclass(frozen=True)
class _ComparisonData:
    """The data of a comparison: its files as absolute paths, subject labels and TR."""

    in_files: list
    confounds_files: list | None
    mask_file: str | None
    templates: str
    subjects: list
    t_r: float | None


def _check_data(in_files, confounds_files, mask_file, templates, subjects, t_r):
    """The files, the subjects' labels and the repetition time (the runs' if None)."""
    in_files, confounds_files, mask_file, templates = _check_files(
        in_files, confounds_files, mask_file, templates
    )
    labels = subject_labels(in_files, subjects)
    if t_r is None:
        t_r = repetition_time([nib.load(path) for path in in_files])  # headers only
    return _ComparisonData(in_files, confounds_files, mask_file, templates, labels, t_r)


def _comparison_settings(data, inputs, shared, templates_inputs, strategy):
    """The workflow's settings, as ``comparison.json`` records them."""
    template_names = templates_inputs["template_names"]
    return {
        "engine": "nipype",
        "subjects": data.subjects,
        "imgs": data.in_files,
        "confounds": data.confounds_files,
        "mask": data.mask_file or "EPI mask of imgs",
        "methods": {m: _node_settings(METHOD_INTERFACES[m](**inputs[m])) for m in inputs},
        "templates": data.templates,
        "template_threshold": templates_inputs["template_threshold"],
        "template_names": None if template_names is None else list(template_names),
        "strategy": strategy,
        **shared,
        "t_r": data.t_r,
    }


def _method_nodes(wf, data, inputs, templates_inputs, scoring):
    """``prepare``, each subject's run, then every method's fit and scores per subject."""
    n_methods = len(inputs)
    nodes = {
        "prepare": prepare_node(data.in_files, data.mask_file, data.templates, **templates_inputs),
        **subject_nodes(wf, data.subjects, data.in_files, data.confounds_files),
        "cells": pe.Node(niu.Merge(n_methods), name="cells", run_without_submitting=True),
        "maps": pe.Node(niu.Merge(n_methods), name="maps", run_without_submitting=True),
    }
    for i, method in enumerate(inputs, start=1):
        add_cell(wf, nodes, i, method, inputs[method], scoring)
    return nodes


def _states_inputs(features, n_states, random_state, strategy, t_r):
    """The inputs of every method's ``States`` node."""
    states_inputs = {"features": features, "random_state": random_state}
    if features == "presence":
        # The templates of ``prepare`` are binary already: 0.5 keeps them as they are.
        states_inputs.update(template_threshold=0.5, strategy=strategy)
    if n_states is not None:
        states_inputs["n_states"] = n_states
    if t_r is not None:
        states_inputs["t_r"] = t_r
    return states_inputs


def _check_files(in_files, confounds_files, mask_file, templates):
    """Every file argument as absolute paths (nodes run in their own folders)."""
    in_files = _absolute_files(in_files, "in_files")
    if confounds_files is not None:
        confounds_files = _absolute_files(confounds_files, "confounds_files")
        if len(confounds_files) != len(in_files):
            raise ValueError(
                f"confounds_files has {len(confounds_files)} files for {len(in_files)} runs."
            )
    if mask_file is not None:
        (mask_file,) = _absolute_files(mask_file, "mask_file")
    if templates != "smith2009":
        (templates,) = _absolute_files(templates, "templates")
    return in_files, confounds_files, mask_file, templates


def _absolute_files(files, name):
    paths = [files] if isinstance(files, (str, Path)) else list(files)
    if not paths:
        raise ValueError(f"{name} is empty: give one 4D NIfTI file per subject.")
    for path in paths:
        if not isinstance(path, (str, Path)) or not Path(path).is_file():
            raise ValueError(f"{name}: {path!r} is not a file (nipype nodes take file paths).")
    return [str(Path(path).resolve()) for path in paths]


def init_comparison_wf(
    in_files,
    methods=("ica", "sdl", "stca"),
    templates="smith2009",
    mask_file=None,
    subjects=None,
    window_length=40,
    window_stride=1,
    sweep_stride=None,
    threshold=3.6,
    template_threshold=DEFAULT_TEMPLATE_THRESHOLD,
    method_params=None,
    out_dir="comparison",
    base_dir=None,
    name="comparison_wf",
    *,
    windows=True,
    confounds_files=None,
    template_names=None,
    n_components=None,
    strategy="max",
    random_state=0,
    parameters=None,
    paper=False,
    states=False,
    n_states=None,
    state_features="maps",
    t_r=None,
):
    """Build the comparison of :func:`~nilearn_stca.evaluation.compare` as a nipype workflow.

    Nodes (each subject x method cell is its own node, so cells run in parallel):

    - ``prepare`` (:class:`~nilearn_stca.interfaces.PrepareComparison`): the mask every
      method and subject uses (``mask_file``, or one EPI mask of all ``in_files``, as
      ``compare`` computes it) and the binary templates on its grid.
    - ``subjects`` iterates over the subject labels (node folders ``_subject_<label>``);
      ``run`` gives each subject's run and confounds file.
    - ``ica``, ``sdl``, ``stca`` (:class:`~nilearn_stca.interfaces.ICA`, ...): one fit per
      subject, its static maps and (with ``windows``) every window's maps.
    - ``ica_iou``, ... (:class:`~nilearn_stca.interfaces.EvaluateIoU`): the rows of each
      cell.
    - ``report`` (:class:`~nilearn_stca.interfaces.ComparisonReport`, a JoinNode over the
      subjects): a folder with ``compare``'s layout, i.e. ``results.csv``,
      ``comparison.json`` (the workflow's settings), ``templates.nii.gz``,
      ``maps/<subject>_<method>.nii.gz``, then Table 1, figures and ``report.html``
      (:func:`~nilearn_stca.evaluation.write_comparison_report`), inside its node folder.
    - with ``states``, ``ica_states``, ... (:class:`~nilearn_stca.interfaces.States`, a
      JoinNode over the subjects): each method's brain states, found jointly across the
      subjects' window sweeps (:func:`~nilearn_stca.states.write_states`).
    - ``sink`` (:class:`~nipype.interfaces.io.DataSink`) copies that folder to ``out_dir``,
      and each method's states folder to ``<out_dir>/states/<method>``.

    With the same settings, ``results.csv`` holds the rows of ``compare`` (same order and
    numbers), except ``runtime``: the fit's seconds on static rows, NaN on window rows.

    Parameters
    ----------
    in_files : list of str or Path
        One 4D NIfTI run per subject.
    methods : sequence of {"ica", "sdl", "stca"}, default=("ica", "sdl", "stca")
    templates : "smith2009" or str, default="smith2009"
        See :func:`~nilearn_stca.evaluation.load_rsn_templates`.
    mask_file : str or Path, default=None
        The mask of every method, the data being resampled to its grid; if None, the EPI
        mask of all ``in_files`` (:class:`nilearn.maskers.MultiNiftiMasker`).
    subjects : sequence of str, default=None
        Labels; as ``compare``'s (``sub-<label>`` of BIDS names, else ``sub-01``...).
    window_length, window_stride, sweep_stride, threshold, template_threshold
        As for :func:`~nilearn_stca.evaluation.compare`.
    method_params : dict, default=None
        ``{method: {input: value}}``: inputs of that method's node, e.g.
        ``{"stca": {"n_epochs": 2, "device": "cuda", "num_threads": 4}}``. The mask, grid,
        window settings and files are refused here (set them above); entries for a known
        method that is not compared are ignored. Each node uses one thread (PyTorch, BLAS,
        OpenMP) unless ``num_threads`` says otherwise: MultiProc runs ``n_procs`` nodes at
        once, and more threads than cores slow PyTorch down several-fold.
    out_dir : str or Path, default="comparison"
        Folder of the results and report (resolved against the current folder now); files
        of an earlier report there are overwritten.
    base_dir : str or Path, default=None
        Nipype's working folder (one subfolder per node); a rerun with the same
        ``base_dir`` reuses every finished node. If None, nipype works in a temporary folder.
        Crash files go to ``<base_dir>/crash``.
    name : str, default="comparison_wf"
    windows : bool, default=True
        Also score every window's maps (if False, static maps only).
    confounds_files : list of str or Path, default=None
        One CSV/TSV of confounds per run.
    template_names : sequence of str, default=None
    n_components : int, default=None
        Maps of every method; if None each keeps its own (``method_params`` or default).
    strategy : {"max", "hungarian"}, default="max"
    random_state : int or None, default=0
        Seed of every method, as ``compare``'s default.
    parameters : dict, default=None
        Shown in the report (e.g. the command line).
    paper : bool, default=False
        Add the paper's Table 1 beside ours in the report.
    states : bool, default=False
        Add the states step of each method (needs ``windows``).
    n_states : int, default=None
        Number of states of every method; if None, each method's best silhouette.
    state_features : {"maps", "presence"}, default="maps"
        What k-means groups: the windows' FBN maps, or the presence of the ``templates``
        (see :func:`~nilearn_stca.states.write_states`).
    t_r : float, default=None
        Repetition time in seconds, for the dwell times in seconds of the states and of the
        report's Dynamics section; if None, the one the runs' NIfTI headers agree on (none
        if they give no time unit).

    Returns
    -------
    workflow : nipype.pipeline.engine.Workflow
        Run it with ``workflow.run()`` or e.g.
        ``workflow.run(plugin="MultiProc", plugin_args={"n_procs": 4})``. MultiProc forks
        its workers on Linux, and a forked process cannot use CUDA once its parent has: if
        the calling process has used the GPU already, add ``"mp_context": "spawn"`` to
        ``plugin_args`` for ``device="cuda"``.

    Examples
    --------
    >>> from nilearn_stca.interfaces.workflows import init_comparison_wf
    >>> wf = init_comparison_wf(
    ...     ["sub-01_bold.nii.gz", "sub-02_bold.nii.gz"],
    ...     out_dir="comparison",
    ...     base_dir="work",
    ...     sweep_stride=10,
    ...     method_params={"stca": {"n_epochs": 5}},
    ... )  # doctest: +SKIP
    >>> wf.run(plugin="MultiProc", plugin_args={"n_procs": 4})  # doctest: +SKIP
    """
    methods = _check_methods(methods)
    check_strategy(strategy)
    _check_states(states, windows, state_features)
    params = _check_method_params(method_params, methods)
    data = _check_data(in_files, confounds_files, mask_file, templates, subjects, t_r)
    shared = {
        "n_components": n_components,
        "random_state": random_state,
        "sweep_stride": sweep_stride,
        "threshold": threshold,
        "window_length": window_length,
        "window_stride": window_stride,
        "windows": bool(windows),
    }
    inputs = {method: _method_inputs(method, params[method], shared) for method in methods}
    templates_inputs = {"template_threshold": template_threshold, "template_names": template_names}
    settings = _comparison_settings(data, inputs, shared, templates_inputs, strategy)
    if states:
        settings["states"] = {"n_states": n_states, "features": state_features}

    wf = new_workflow(name, base_dir)
    scoring = {"threshold": threshold, "strategy": strategy}
    nodes = _method_nodes(wf, data, inputs, templates_inputs, scoring)
    out_dir = Path(out_dir).resolve()
    report = ComparisonReport(
        out_dir=out_dir.name,
        settings=settings,
        parameters=dict(parameters or {}),
        paper=paper,
        threshold=threshold,
    )
    sink = add_report(wf, nodes, report, out_dir)
    if states:
        states_inputs = _states_inputs(state_features, n_states, random_state, strategy, data.t_r)
        for method in methods:
            add_states(wf, nodes, method, states_inputs, sink, out_dir.name)
    return wf
