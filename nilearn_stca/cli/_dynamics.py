"""The ``states`` and ``stability`` commands: their arguments, and the calls into the library."""

from pathlib import Path

from ..methods import METHOD_REGISTRY
from ._arguments import (
    _at_least_two,
    _func_file,
    _integer,
    _mask_file,
    _n_jobs,
    _positive_float,
    _positive_int,
    _sweep_dir,
    _templates,
    _writable_out_dir,
)


def add_states_parser(commands):
    """The ``states`` command's arguments."""
    states = commands.add_parser(
        "states",
        help="brain states of window sweeps: occupancy, dwell times, transitions",
        description="Group the sweeps (write_window_sweep) by method, find brain states "
        "jointly across each method's subjects by k-means on every window (its FBN maps, or "
        "the presence of template networks), and write each window's state, per subject "
        "and state the temporal fraction, persistence (dwell time) and counts, the "
        "transition probabilities, figures and states.json.",
    )
    states.add_argument(
        "sweeps", nargs="+", type=_sweep_dir, metavar="SWEEP_DIR", help="window sweep folders"
    )
    states.add_argument("--out", type=_writable_out_dir, required=True, help="output folder")
    states.add_argument(
        "--n-states",
        type=_at_least_two,
        help="number of states (default: the best silhouette from 2 to 8)",
    )
    states.add_argument(
        "--features",
        choices=("maps", "presence"),
        default="maps",
        help="k-means on the windows' FBN maps (default) or on the templates' presence",
    )
    states.add_argument(
        "--templates",
        type=_templates,
        help="with --features presence: 'smith2009' (default), a 4D map image or a 3D atlas",
    )
    states.add_argument(
        "--template-threshold",
        type=_positive_float,
        help="with --features presence: threshold of 4D template maps (3.6)",
    )
    states.add_argument("--t-r", type=_positive_float, help="repetition time, in seconds")
    states.add_argument("--seed", type=_integer, default=0, help="seed of k-means (0)")
    states.add_argument("--quiet", action="store_true", help="no progress bars")


def add_stability_parser(commands):
    """The ``stability`` command's arguments."""
    stab = commands.add_parser(
        "stability",
        help="how stable each map of a method is across seeds (ICASSO-like)",
        description="Fit the method --n-runs times with other seeds, cluster all runs' maps "
        "by spatial correlation and write each cluster's stability index (stability.tsv), "
        "its centrotype map (desc-centrotypes_components.nii.gz), a figure and "
        "stability.json.",
    )
    stab.add_argument("func", nargs="+", type=_func_file, metavar="FUNC", help="4D runs")
    stab.add_argument("--method", choices=tuple(METHOD_REGISTRY), required=True)
    stab.add_argument("--out", type=_writable_out_dir, required=True, help="output folder")
    stab.add_argument("--n-runs", type=_at_least_two, default=10, help="fits (10)")
    stab.add_argument("--n-components", type=_positive_int, help="maps per fit")
    stab.add_argument(
        "--mask", type=_mask_file, help="3D brain mask; the runs are resampled to its grid"
    )
    stab.add_argument(
        "--n-jobs", type=_n_jobs, default=1, help="fits run in parallel (1; -1: all CPUs)"
    )
    stab.add_argument("--seed", type=_integer, default=0, help="draws the fits' seeds (0)")
    stab.add_argument("--quiet", action="store_true", help="no progress bars")


def _run_states(args, argv):
    del argv  # states.json records the settings
    from ..evaluation.templates import DEFAULT_TEMPLATE_THRESHOLD
    from ..states import write_states

    if args.features != "presence":
        for given, option in (
            (args.templates, "--templates"),
            (args.template_threshold, "--template-threshold"),
        ):
            if given is not None:
                raise ValueError(f"{option} is used by --features presence only: leave it out.")
    result = write_states(
        [str(path) for path in args.sweeps],
        args.out,
        n_states=args.n_states,
        features=args.features,
        templates=(args.templates or "smith2009") if args.features == "presence" else None,
        template_threshold=(
            DEFAULT_TEMPLATE_THRESHOLD
            if args.template_threshold is None
            else args.template_threshold
        ),
        t_r=args.t_r,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,
    )
    columns = [c for c in ("temporal_fraction", "persistence", "counts") if c in result.metrics]
    summary = result.metrics.groupby(["method", "state"])[columns].mean()
    print("States per method (mean over subjects; persistence in windows)")
    print(summary.round(3).reset_index().to_markdown(index=False))
    print(f"\nstates: {args.out}")


def _run_stability(args, argv):
    del argv  # stability.json records the settings
    import nibabel as nib

    from .._utils.checks import check_enough_scans
    from .._utils.mask_grid import mask_grid_params
    from .._utils.run_folder import check_run_folder
    from ..evaluation.stability import STABILITY_FILE, stability, write_stability
    from ..evaluation.tables import METHOD_NAMES

    settings = {
        "method": args.method,
        "func": [str(Path(func).resolve()) for func in args.func],
        "mask": None if args.mask is None else str(Path(args.mask).resolve()),
        "n_runs": args.n_runs,
        "n_components": args.n_components,
        "seed": args.seed,
    }
    check_run_folder(args.out, STABILITY_FILE, settings)  # before the fits
    params = {}
    if args.mask is not None:  # the runs are resampled to its grid, as compare does
        params.update(mask_grid_params(args.mask))
    if args.n_components is not None:
        params["n_components"] = args.n_components
    estimator = METHOD_REGISTRY[args.method].estimator_class()(**params)
    for func in args.func:  # stability has no window option: a longer run is the fix
        check_enough_scans(func, nib.load(func).shape[3], estimator.window_length, None)
    result = stability(
        estimator,
        args.func,
        n_runs=args.n_runs,
        random_state=args.seed,
        n_jobs=args.n_jobs,
        verbose=0 if args.quiet else 1,
    )
    label = METHOD_NAMES[args.method]
    write_stability(result, args.out, settings=settings, title=f"{label}: {args.n_runs} runs")
    print(f"Stability of {label}'s maps over {args.n_runs} seeds (most stable first)")
    print(result.table[["stability_index", "n_runs", "n_maps"]].round(3).to_markdown())
    if sum(result.n_empty):
        print(f"Empty maps left out, per fit: {result.n_empty} (see the warning)")
    print(f"\nstability: {args.out}")
