"""Peak memory of the states step as the number of windows grows: it should stay flat.

For each window count (``--n-windows``), a child process fits
:class:`~nilearn_stca.STCADecomposition` on a short run (two training steps: the weights do
not matter for memory) and writes the window sweep of that many windows of a longer
simulated run (:func:`~nilearn_stca.write_window_sweep`). Then, for each kind of features,
another child runs :func:`~nilearn_stca.states.write_states` on that sweep and
reports the peak resident memory (Linux VmHWM) of the states step alone, beside what the
window maps would take if held in memory.

Run from the repository root::

    python -m benchmarks.states_memory           # 4 mm, 40 and 400 windows of 64 maps
    python -m benchmarks.states_memory --quick   # 8 mm, 10 and 100 windows of 16 maps
"""

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from nilearn.image import index_img

from nilearn_stca.datasets import simulate_dynamic_rsfmri

from ._common import (
    default_threads,
    fill_size_defaults,
    header,
    in_child,
    mib,
    paper_mask_img,
    reset_window_peak,
    stca_fitted_briefly,
    window_peak_mib,
)

WINDOW_LENGTH = 40


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.states_memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="8 mm, 10 and 100 windows, 16 maps")
    parser.add_argument("--resolution", type=int, help="grid (mm), default 4")
    parser.add_argument("--n-windows", type=int, nargs="+", help="default 40 400")
    parser.add_argument("--n-components", type=int, help="maps per window, default 64")
    return fill_size_defaults(
        parser.parse_args(argv),
        quick={"resolution": 8, "n_windows": [10, 100], "n_components": 16},
        full={"resolution": 4, "n_windows": [40, 400], "n_components": 64},
    )


def write_sweep(func_file, mask_img, n_windows, n_components, sweep_dir):
    """Child process: fit STCA on 41 scans, then write the sweep of ``n_windows`` windows."""
    from nilearn_stca import write_window_sweep

    default_threads()
    estimator = stca_fitted_briefly(func_file, mask_img, n_components, WINDOW_LENGTH)
    run = index_img(func_file, slice(0, n_windows + WINDOW_LENGTH - 1))
    return len(write_window_sweep(estimator, run, sweep_dir))


def states_peak(sweep_dir, features, templates_file, out_dir):
    """Child process: the states step on one sweep; its peak RSS and time."""
    from nilearn_stca import load_window_sweep
    from nilearn_stca.states import write_states

    default_threads()
    sweep = load_window_sweep(sweep_dir)
    resettable = reset_window_peak()
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = write_states(
            {"sub-01": sweep_dir},
            out_dir,
            n_states=3,
            features=features,
            templates=templates_file if features == "presence" else None,
            template_threshold=0.5,
        )
    return {
        "seconds": time.perf_counter() - tic,
        "peak_mib": window_peak_mib() if resettable else None,
        "maps_mib": sweep.maps.nbytes / 2**20,
        "n_windows": len(result.sequences),
    }


def main(argv=None):
    args = parse_args(argv)
    n_threads = default_threads()
    mask_img = paper_mask_img(args.resolution)
    n_scans = max(args.n_windows) + WINDOW_LENGTH - 1
    sim = simulate_dynamic_rsfmri(n_scans=n_scans, mask_img=mask_img, random_state=0)
    print(header(n_threads, sim.description), flush=True)
    lines = [
        "| features | windows | peak RSS of the states step (MiB) | window maps (MiB) | "
        "s/window |",
        "|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="states_memory_") as work_dir:
        work_dir = Path(work_dir)
        func_file, templates_file = work_dir / "func.nii", work_dir / "templates.nii.gz"
        sim.func[0].to_filename(func_file)
        sim.maps_img.to_filename(templates_file)
        sim.func = None
        for n_windows in sorted(args.n_windows):
            windows_dir = work_dir / f"sweep_{n_windows}"
            in_child(write_sweep, func_file, mask_img, n_windows, args.n_components, windows_dir)
            for features in ("maps", "presence"):
                out_dir = work_dir / f"states_{features}_{n_windows}"
                row = in_child(states_peak, windows_dir, features, templates_file, out_dir)
                lines.append(
                    f"| {features} | {row['n_windows']} | {mib(row['peak_mib'])} | "
                    f"{row['maps_mib']:.0f} | {row['seconds'] / row['n_windows']:.3f} |"
                )
                print(lines[-1], flush=True)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
