"""The ``demo`` and ``compare`` commands: their arguments, and the calls into the library."""

from pathlib import Path

from ..methods import METHOD_REGISTRY
from ._arguments import (
    _func_file,
    _json_object,
    _mask_file,
    _n_jobs,
    _nipype_plugin,
    _positive_float,
    _positive_int,
    _templates,
    _window_length,
    _writable_out_dir,
)

METHOD_CHOICES = tuple(METHOD_REGISTRY)


def add_demo_parser(commands):
    """The ``demo`` command's arguments."""
    demo = commands.add_parser(
        "demo",
        help="ICA vs SDL vs STCA on simulated rsfMRI, scored against the planted networks",
        description="Simulate rsfMRI with known networks, run the three-method comparison "
        "against them and write tables, figures and an HTML report (report.html).",
    )
    demo.add_argument(
        "--out",
        type=_writable_out_dir,
        default=Path("stca_demo"),
        help="output folder (default: stca_demo)",
    )
    demo.add_argument("--n-scans", type=_positive_int, help="scans of the simulated run")
    demo.add_argument("--n-epochs", type=_positive_int, help="STCA's passes over the windows")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")


def add_compare_parser(commands):
    """The ``compare`` command's arguments."""
    comp = commands.add_parser(
        "compare",
        help="ICA vs SDL vs STCA on your runs, scored against RSN templates",
        description="Fit each method on each run, match its static and per-window maps to "
        "resting-state network templates by IoU, and write results.csv, Table 1 (CSV, "
        "Markdown, LaTeX), figures and report.html. Rerunning with the same --out resumes: "
        "finished subject x method results are kept.",
    )
    comp.add_argument("func", nargs="+", type=_func_file, metavar="FUNC", help="4D runs")
    comp.add_argument("--out", type=_writable_out_dir, required=True, help="output folder")
    comp.add_argument("--methods", nargs="+", choices=METHOD_CHOICES, help="default: all three")
    comp.add_argument(
        "--subjects",
        nargs="+",
        metavar="LABEL",
        help="one label per FUNC (default: from BIDS file names, e.g. sub-01_ses-2)",
    )
    comp.add_argument("--mask", type=_mask_file, help="3D brain mask (default: EPI mask)")
    comp.add_argument(
        "--confounds",
        nargs="+",
        metavar="CONF",
        help="'fmriprep' (nilearn's load_confounds defaults, for fMRIPrep outputs) or one "
        "CSV/TSV file per FUNC",
    )
    comp.add_argument(
        "--templates",
        type=_templates,
        help="'smith2009' (default), a 4D map image or a 3D label atlas",
    )
    comp.add_argument("--window-length", type=_window_length, help="scans per window (40)")
    comp.add_argument("--window-stride", type=_positive_int, help="scans between windows (1)")
    comp.add_argument(
        "--sweep-stride", type=_positive_int, help="score every Nth window only (default: all)"
    )
    comp.add_argument("--threshold", type=float, help="z threshold of the maps (3.6)")
    comp.add_argument(
        "--template-threshold",
        type=_positive_float,
        help="threshold of 4D template maps (3.6, for z maps such as Smith 2009's; e.g. 0.5 "
        "for maps scaled to 1)",
    )
    comp.add_argument("--n-components", type=_positive_int, help="maps per method")
    comp.add_argument("--n-epochs", type=_positive_int, help="STCA's passes over the windows")
    comp.add_argument("--device", help="STCA's device: auto (default), cpu or cuda")
    comp.add_argument(
        "--n-jobs",
        type=_n_jobs,
        help="CPUs of every method: ICA's FastICA restarts, SDL's windows, STCA's PyTorch "
        "threads (default: 1 for ICA and SDL, PyTorch's own for STCA; -1: all)",
    )
    comp.add_argument("--no-windows", action="store_true", help="static maps only")
    comp.add_argument("--preset", choices=["paper"], help="paper: Liu et al.'s settings")
    comp.add_argument("--quiet", action="store_true", help="no progress bars")
    engine = comp.add_argument_group("nipype", "run the comparison as a nipype workflow")
    engine.add_argument(
        "--nipype", action="store_true", help="one node per subject x method (cached, parallel)"
    )
    engine.add_argument(
        "--plugin", type=_nipype_plugin, help="nipype execution plugin (default: MultiProc)"
    )
    engine.add_argument("--n-procs", type=_positive_int, help="processes for MultiProc")
    engine.add_argument(
        "--plugin-args",
        type=_json_object,
        help='plugin options as JSON, e.g. \'{"sbatch_args": "--mem=8G"}\' for SLURM',
    )
    engine.add_argument(
        "--work-dir", type=_writable_out_dir, help="nipype's cache (default: OUT/work)"
    )


def _load_confounds(values, funcs):
    """``--confounds`` as the ``confounds`` argument of ``compare``: one row per scan."""
    if values is None:
        return None
    if values == ["fmriprep"]:
        from nilearn.interfaces.fmriprep import load_confounds

        confounds = []
        for func in funcs:
            table, sample_mask = load_confounds(func)
            if sample_mask is not None:
                raise ValueError(
                    f"--confounds fmriprep: {func} has volumes to censor; STCA's sliding "
                    "windows need every volume, so censoring is not supported."
                )
            confounds.append(table)
        names = [f"--confounds fmriprep (the confounds of {func})" for func in funcs]
    else:
        if len(values) != len(funcs):
            raise ValueError(
                f"--confounds: {len(values)} files for {len(funcs)} FUNC; give one per FUNC, "
                "or 'fmriprep'."
            )
        from .._utils.checks import read_confounds

        try:
            confounds = [read_confounds(value) for value in values]
        except ValueError as error:
            raise ValueError(
                f"--confounds: {error} For fMRIPrep outputs: --confounds fmriprep."
            ) from None
        names = [f"--confounds {value}" for value in values]
    _check_one_row_per_scan(confounds, names, funcs)
    return confounds


def _check_one_row_per_scan(confounds, names, funcs):
    """Refuse a confounds table without one row per scan of its FUNC (headers only)."""
    import nibabel as nib

    from ..evaluation._run_checks import confounds_length_error

    for table, name, func in zip(confounds, names, funcs, strict=True):
        n_scans = nib.load(func).shape[3]
        if len(table) != n_scans:
            raise confounds_length_error(name, len(table), func, n_scans)


#: Options of the nipype engine, refused without ``--nipype`` (they would be ignored).
_NIPYPE_OPTIONS = {
    "--plugin": "plugin",
    "--n-procs": "n_procs",
    "--plugin-args": "plugin_args",
    "--work-dir": "work_dir",
}


def _check_out_and_options(args):
    """Refuse ``--out`` unless compare may write there, and nipype options without --nipype.

    Reads only: ``--out`` must be new, empty or a comparison's folder (its
    ``comparison.json``); with ``--nipype`` and no ``--work-dir``, the nipype cache that an
    interrupted run left in ``--out/work`` is the comparison's too.
    """
    from ..evaluation.results_folder import check_comparison_folder

    if not args.nipype:
        given = [flag for flag, dest in _NIPYPE_OPTIONS.items() if getattr(args, dest) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)}: options of the nipype engine, used only with --nipype; "
                "add --nipype, or drop them."
            )
    own_cache = args.nipype and args.work_dir is None and _is_nipype_cache(args.out / "work")
    check_comparison_folder(args.out, "--out", also_ours={"work"} if own_cache else ())


def _is_nipype_cache(folder):
    """Whether ``folder`` holds only what ``_run_workflow`` and nipype write into its cache."""
    written = {"inputs", "crash", "comparison_wf"}
    return folder.is_dir() and all(entry.name in written for entry in folder.iterdir())


def _compare_kwargs(args):
    from ..evaluation import PRESETS

    kwargs = PRESETS[args.preset]() if args.preset else {}
    method_params = {name: dict(p) for name, p in kwargs.pop("method_params", {}).items()}
    given = {
        "methods": args.methods,
        "mask_img": args.mask,
        "templates": args.templates,
        "window_length": args.window_length,
        "window_stride": args.window_stride,
        "sweep_stride": args.sweep_stride,
        "threshold": args.threshold,
        "template_threshold": args.template_threshold,
        "n_components": args.n_components,
        "subjects": args.subjects,
    }
    kwargs.update({key: value for key, value in given.items() if value is not None})
    if args.n_components is not None:
        for params in method_params.values():
            params.pop("n_components", None)
    stca = method_params.setdefault("stca", {})
    if args.n_epochs is not None:
        stca["n_epochs"] = args.n_epochs
    if args.device is not None:
        stca["device"] = args.device
    if args.n_jobs is not None:
        for name in kwargs.get("methods", METHOD_CHOICES):
            method_params.setdefault(name, {})["n_jobs"] = args.n_jobs
    kwargs["method_params"] = method_params
    kwargs["windows"] = not args.no_windows
    return kwargs


def _run_compare(args, argv):
    from ..evaluation import compare, format_table, table1, write_comparison_report
    from ..evaluation.tables import paper_comparison

    _check_out_and_options(args)
    kwargs = _compare_kwargs(args)
    confounds = _load_confounds(args.confounds, args.func)
    paper = args.preset == "paper"
    parameters = {"command": ["nilearn-stca", *argv], "compare": _jsonable(kwargs)}
    if args.nipype:
        results = _run_workflow(args, kwargs, confounds, parameters, paper)
        files = {"report": args.out / "report.html"}
    else:
        results = compare(
            args.func,
            confounds=confounds,
            out_dir=args.out,
            verbose=0 if args.quiet else 1,
            **kwargs,
        )
        files = write_comparison_report(
            args.out, parameters=parameters, paper=paper, threshold=kwargs.get("threshold", 3.6)
        )
    print("Table 1: IoU of the static maps with the templates (mean ± sd over subjects)")
    print(format_table(table1(results, reading="static")))
    if paper:
        print(
            "\nMean IoU, ours under each reading beside Table 1 of Liu et al. (2023), which "
            "does not say its reading"
        )
        print(paper_comparison(results).to_markdown(disable_numparse=True))
    print(f"\nreport: {files['report']}")


def _run_workflow(args, kwargs, confounds, parameters, paper):
    """``compare`` through :func:`~nilearn_stca.interfaces.workflows.init_comparison_wf`."""
    from .._utils.io import atomic_path
    from ..evaluation import read_results
    from ..evaluation.bids import subject_labels
    from ..interfaces.workflows import init_comparison_wf

    subject_labels(args.func, kwargs.get("subjects"))  # refused before anything is written
    work_dir = args.work_dir or args.out / "work"
    inputs = work_dir / "inputs"
    mask = kwargs.pop("mask_img", None)
    if mask is not None:
        _check_mask_inside_runs(mask, args.func)
    if mask is not None and not isinstance(mask, (str, Path)):  # the preset's MNI mask
        inputs.mkdir(parents=True, exist_ok=True)
        with atomic_path(inputs / "mask.nii.gz") as partial:
            mask.to_filename(partial)
        mask = str(inputs / "mask.nii.gz")
    confounds_files = None
    if confounds is not None:
        inputs.mkdir(parents=True, exist_ok=True)
        confounds_files = []
        for i, table in enumerate(confounds, start=1):
            path = inputs / f"confounds_run-{i:02d}.tsv"
            with atomic_path(path) as partial:
                table.to_csv(partial, sep="\t", index=False)
            confounds_files.append(str(path))
    workflow = init_comparison_wf(
        args.func,
        mask_file=mask,
        confounds_files=confounds_files,
        out_dir=args.out,
        base_dir=work_dir,
        parameters=parameters,
        paper=paper,
        **kwargs,
    )
    plugin_args = dict(args.plugin_args or {})
    if args.n_procs:
        plugin_args["n_procs"] = args.n_procs
    workflow.run(plugin=args.plugin or "MultiProc", plugin_args=plugin_args)
    return read_results(args.out / "results.csv")


def _check_mask_inside_runs(mask, funcs):
    """``compare``'s check of a given mask, for the nipype engine (the runs' headers only)."""
    import nibabel as nib

    from ..evaluation._run_checks import check_mask_inside_runs, describe_run

    names = [describe_run(func, f"imgs[{i}]") for i, func in enumerate(funcs)]
    check_mask_inside_runs(mask, [nib.load(func) for func in funcs], names)


def _jsonable(kwargs):
    return {
        key: value
        if isinstance(value, (str, int, float, bool, list, tuple, dict, type(None)))
        else repr(value)
        for key, value in kwargs.items()
    }


def _run_demo(args, argv):
    del argv  # the demo records its own settings
    from .demo import check_out_dir, run_demo

    check_out_dir(args.out, "--out")
    simulation = {"n_scans": args.n_scans} if args.n_scans else {}
    stca = {"n_epochs": args.n_epochs} if args.n_epochs else {}
    table = run_demo(args.out, simulation, stca, verbose=0 if args.quiet else 1)
    print("IoU of the static maps with the planted networks (mean ± sd over subjects)")
    print(table)
    print(f"\nreport: {args.out / 'report.html'}")
