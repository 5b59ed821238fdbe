"""Nodes of :func:`~nilearn_stca.interfaces.workflows.init_comparison_wf`, built and connected."""

from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.interfaces.io import DataSink
from nipype.pipeline import engine as pe

from ..methods import METHOD_REGISTRY
from .comparison_steps import EvaluateIoU, PrepareComparison
from .dynamics import States

#: The interface of each method name of :func:`~nilearn_stca.evaluation.compare`.
METHOD_INTERFACES = {name: method.node_class() for name, method in METHOD_REGISTRY.items()}


def subject_run(subject, subjects, in_files, confounds_files):
    """The run (and confounds file, or None) of one subject: a nipype Function node."""
    i = subjects.index(subject)
    return in_files[i], None if confounds_files is None else confounds_files[i]


def new_workflow(name, base_dir):
    wf = pe.Workflow(name=name)
    if base_dir is not None:
        wf.base_dir = str(Path(base_dir).resolve())
        wf.config["execution"]["crashdump_dir"] = str(Path(wf.base_dir) / "crash")
    # Keep every node's outputs (STCA's model, the FBNs), not only those used downstream.
    wf.config["execution"]["remove_unnecessary_outputs"] = False
    return wf


def prepare_node(in_files, mask_file, templates, template_threshold, template_names):
    prepare = pe.Node(
        PrepareComparison(
            in_files=in_files, templates=templates, template_threshold=template_threshold
        ),
        name="prepare",
    )
    if mask_file is not None:
        prepare.inputs.mask_file = mask_file
    if template_names is not None:
        prepare.inputs.template_names = list(template_names)
    return prepare


def subject_nodes(wf, labels, in_files, confounds_files):
    """``subjects`` (iterating over the labels) and ``run`` (each label's files)."""
    subject_node = pe.Node(niu.IdentityInterface(fields=["subject"]), name="subjects")
    subject_node.iterables = [("subject", labels)]
    run = pe.Node(
        niu.Function(
            input_names=["subject", "subjects", "in_files", "confounds_files"],
            output_names=["in_file", "confounds_file"],
            function=subject_run,
        ),
        name="run",
        run_without_submitting=True,
    )
    run.inputs.trait_set(subjects=labels, in_files=in_files, confounds_files=confounds_files)
    wf.connect(subject_node, "subject", run, "subject")
    return {"subjects": subject_node, "run": run}


def add_cell(wf, nodes, index, method, inputs, scoring):
    """One method's nodes: its fit and maps, then their scores, per subject."""
    decompose = nodes[method] = pe.Node(METHOD_INTERFACES[method](**inputs), name=method)
    evaluate = pe.Node(
        # The templates of ``prepare`` are binary already: 0.5 keeps them as they are.
        EvaluateIoU(method=method, template_threshold=0.5, **scoring),
        name=f"{method}_iou",
    )
    prepare, run = nodes["prepare"], nodes["run"]
    links = [
        (run, "in_file", decompose, "in_files"),
        (prepare, "mask_file", decompose, "mask_file"),
        (nodes["subjects"], "subject", evaluate, "subject"),
        (prepare, "mask_file", evaluate, "mask_file"),
        (prepare, "templates_file", evaluate, "templates"),
        (prepare, "template_names", evaluate, "template_names"),
        (decompose, "components_file", evaluate, "components_file"),
        (decompose, "fit_seconds", evaluate, "fit_seconds"),
        (evaluate, "out_csv", nodes["cells"], f"in{index}"),
        (decompose, "components_file", nodes["maps"], f"in{index}"),
    ]
    if run.inputs.confounds_files is not None:
        links.append((run, "confounds_file", decompose, "confounds_files"))
    if inputs["windows"]:
        links.append((decompose, "windows_dir", evaluate, "windows_dir"))
    for link in links:
        wf.connect(*link)


def add_states(wf, nodes, method, states_inputs, sink, out_name):
    """One method's states, found jointly across its subjects' sweeps, then sunk.

    A JoinNode over the subjects collects every subject's window sweep; its folder is
    copied to ``<out_dir>/states/<method>``.
    """
    states = pe.JoinNode(
        States(out_dir=method, **states_inputs),
        joinsource="subjects",
        joinfield=["windows_dirs", "subjects"],
        name=f"{method}_states",
    )
    wf.connect(nodes["subjects"], "subject", states, "subjects")
    wf.connect(nodes[method], "windows_dir", states, "windows_dirs")
    if states_inputs["features"] == "presence":
        wf.connect(nodes["prepare"], "templates_file", states, "templates")
    wf.connect(states, "out_dir", sink, f"{out_name}.states.@{method}")


def add_report(wf, nodes, report, out_dir):
    """The ``report`` JoinNode over the subjects, and the ``sink`` copying it to ``out_dir``.

    The report fills a folder inside its node; the sink, returned, copies it to ``out_dir``.
    """
    report = pe.JoinNode(
        report,
        joinsource="subjects",
        joinfield=["in_csvs", "maps_files"],
        name="report",
    )
    wf.connect(nodes["cells"], "out", report, "in_csvs")
    wf.connect(nodes["maps"], "out", report, "maps_files")
    wf.connect(nodes["prepare"], "templates_file", report, "templates_file")
    sink = pe.Node(
        DataSink(base_directory=str(out_dir.parent), parameterization=False),
        name="sink",
        run_without_submitting=True,
    )
    wf.connect(report, "out_dir", sink, "@report")
    return sink
