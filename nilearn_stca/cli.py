"""The ``nilearn-stca`` command: argument parsing, then calls into the library."""

import argparse
import os
import sys
import tempfile
import zlib
from pathlib import Path

from . import __version__
from .methods import METHOD_REGISTRY

METHOD_CHOICES = tuple(METHOD_REGISTRY)


class _Parser(argparse.ArgumentParser):
    """Errors as one line (``nilearn-stca: error: ...``) and exit status 2."""

    def error(self, message):
        self.exit(2, f"nilearn-stca: error: {message}\n")


def _writable_out_dir(value):
    """An output folder that exists, or can be created, and is writable."""
    path = Path(value).resolve()
    try:
        if path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{value}: exists and is not a folder")
        ancestor = next(p for p in (path, *path.parents) if p.exists())
    except OSError as error:  # e.g. a parent that may not be listed
        raise argparse.ArgumentTypeError(f"{value}: {error.strerror or error}") from None
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: {ancestor} is a file, not a folder")
    if ancestor == path:
        if not os.access(path, os.W_OK):
            raise argparse.ArgumentTypeError(f"{value}: not writable")
        return path
    # os.access answers yes to root where nothing can be created (/sys, some mounts): only
    # creating something there tells.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".nilearn-stca-probe-", dir=ancestor))
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"{value}: cannot create a folder in {ancestor} ({error.strerror or error})"
        ) from None
    return path


def _integer(value):
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None


def _positive_int(value):
    number = _integer(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def _window_length(value):
    number = _integer(value)
    if number < 2:
        raise argparse.ArgumentTypeError(f"must be >= 2 scans, got {value}")
    return number


def _n_jobs(value):
    number = _integer(value)
    if number == 0 or number < -1:
        raise argparse.ArgumentTypeError(f"must be >= 1, or -1 for all CPUs, got {value}")
    return number


def _existing_file(value):
    if not Path(value).is_file():
        raise argparse.ArgumentTypeError(f"{value}: no such file")
    return value


def _nifti_header(value):
    """The image of an existing NIfTI file, of which only the header is read."""
    import nibabel as nib

    _existing_file(value)
    try:
        return nib.load(value)
    except Exception as error:  # nibabel raises several types for unreadable files
        raise argparse.ArgumentTypeError(f"{value}: not a NIfTI image ({error})") from None


def _func_file(value):
    """An existing NIfTI file holding a 4D series (only its header is read)."""
    img = _nifti_header(value)
    if len(img.shape) != 4:
        raise argparse.ArgumentTypeError(
            f"{value}: a {len(img.shape)}D image of shape {img.shape}; give 4D fMRI runs"
        )
    return value


def _mask_file(value):
    """An existing NIfTI file holding one 3D volume (only its header is read)."""
    shape = _nifti_header(value).shape
    if len(shape) != 3 and not (len(shape) == 4 and shape[3] == 1):
        raise argparse.ArgumentTypeError(
            f"{value}: a {len(shape)}D image of shape {shape}; give a 3D brain mask"
        )
    return value


def _templates(value):
    """``smith2009``, or a NIfTI file of 4D network maps or a 3D label atlas."""
    if value == "smith2009":
        return value
    if not value.endswith((".nii", ".nii.gz")):
        raise argparse.ArgumentTypeError(
            f"{value}: use 'smith2009' or a NIfTI file (.nii, .nii.gz) of networks"
        )
    shape = _nifti_header(value).shape
    if len(shape) not in (3, 4):
        raise argparse.ArgumentTypeError(
            f"{value}: a {len(shape)}D image of shape {shape}; give 4D maps or a 3D atlas"
        )
    return value


def _json_object(value):
    import json

    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error})") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {value!r}")
    return parsed


def build_parser():
    parser = _Parser(
        prog="nilearn-stca",
        description="Dynamic functional brain networks with STCA (Liu et al., ISBI 2023).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
        "--plugin", default="MultiProc", help="nipype execution plugin (default: MultiProc)"
    )
    engine.add_argument("--n-procs", type=_positive_int, help="processes for MultiProc")
    engine.add_argument(
        "--plugin-args",
        type=_json_object,
        default={},
        help='plugin options as JSON, e.g. \'{"sbatch_args": "--mem=8G"}\' for SLURM',
    )
    engine.add_argument(
        "--work-dir", type=_writable_out_dir, help="nipype's cache (default: OUT/work)"
    )
    return parser


def _load_confounds(values, funcs):
    """``--confounds`` as the ``confounds`` argument of ``compare``."""
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
        return confounds
    if len(values) != len(funcs):
        raise ValueError(
            f"--confounds: {len(values)} files for {len(funcs)} FUNC; give one per FUNC, or "
            "'fmriprep'."
        )
    from ._checks import read_confounds

    try:
        return [read_confounds(value) for value in values]
    except ValueError as error:
        raise ValueError(
            f"--confounds: {error} For fMRIPrep outputs: --confounds fmriprep."
        ) from None


def _compare_kwargs(args):
    from .evaluation import PRESETS

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
        "n_components": args.n_components,
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
    from .evaluation import compare, format_table, table1, write_comparison_report
    from .evaluation.tables import paper_comparison

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
    """``compare`` through :func:`~nilearn_stca.workflows.init_comparison_wf`."""
    from ._io import atomic_path
    from .evaluation import read_results
    from .workflows import init_comparison_wf

    work_dir = args.work_dir or args.out / "work"
    inputs = work_dir / "inputs"
    mask = kwargs.pop("mask_img", None)
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
    plugin_args = dict(args.plugin_args)
    if args.n_procs:
        plugin_args["n_procs"] = args.n_procs
    workflow.run(plugin=args.plugin, plugin_args=plugin_args)
    return read_results(args.out / "results.csv")


def _jsonable(kwargs):
    return {
        key: value
        if isinstance(value, (str, int, float, bool, list, tuple, dict, type(None)))
        else repr(value)
        for key, value in kwargs.items()
    }


def _run_demo(args):
    from .demo import _check_out_dir, run_demo

    _check_out_dir(args.out, "--out")
    simulation = {"n_scans": args.n_scans} if args.n_scans else {}
    stca = {"n_epochs": args.n_epochs} if args.n_epochs else {}
    table = run_demo(args.out, simulation, stca, verbose=0 if args.quiet else 1)
    print("IoU of the static maps with the planted networks (mean ± sd over subjects)")
    print(table)
    print(f"\nreport: {args.out / 'report.html'}")


def _one_line(error):
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _read_error(args, error):
    """Name the input whose data cannot be read: the reader's error rarely does."""
    import nibabel as nib
    import numpy as np

    inputs = [*getattr(args, "func", []), getattr(args, "mask", None)]
    templates = getattr(args, "templates", None)
    inputs.append(None if templates == "smith2009" else templates)
    for path in filter(None, inputs):
        try:
            np.asanyarray(nib.load(path).dataobj)
        except Exception as read_error:  # what a truncated or damaged file raises varies
            cause = _one_line(read_error) or type(read_error).__name__
            return f"{path}: cannot read the image data, the file may be truncated ({cause})"
    return _one_line(error) or type(error).__name__


def _os_error(args, error):
    """One line naming the file (or else the output folder) and the cause."""
    cause = error.strerror or _one_line(error)
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    if paths:
        return f"{' -> '.join(paths)}: {cause}"
    return f"{cause} (writing into --out {args.out})"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    from nibabel.filebasedimages import ImageFileError

    try:
        if args.command == "demo":
            _run_demo(args)
        else:
            _run_compare(args, argv)
    except KeyboardInterrupt:
        hint = "; rerun the same command to resume" if args.command == "compare" else ""
        parser.exit(130, f"nilearn-stca: interrupted{hint}\n")
    except ValueError as error:
        parser.exit(2, f"nilearn-stca: error: {_one_line(error)}\n")
    except RuntimeError as error:
        if not getattr(args, "nipype", False):
            raise
        # nipype has logged each failed node and its crash file; finished nodes are cached.
        parser.exit(1, f"nilearn-stca: error: {error} Fix the cause and rerun to resume.\n")
    except (OSError, EOFError, zlib.error, ImageFileError) as error:
        # An OSError with an errno comes from the system (full disk, permissions...); the
        # others from reading a damaged image (nibabel's errors carry no errno).
        if isinstance(error, OSError) and error.errno is not None:
            message = _os_error(args, error)
        else:
            message = _read_error(args, error)
        parser.exit(2, f"nilearn-stca: error: {message}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
