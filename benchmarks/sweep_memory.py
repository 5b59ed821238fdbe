"""Peak memory of the dynamic sweep as the number of windows grows: it should stay flat.

For each window count (``--n-windows``), a child process fits
:class:`~nilearn_stca.STCADecomposition` (64 maps, windows of 40 scans) on a short run (two
training steps: the weights do not matter for memory), then writes the maps of every window
of a longer simulated run to disk with :func:`~nilearn_stca.write_window_sweep` and reads
them back window by window. It reports the peak resident memory (Linux VmHWM) during the
sweep alone, and what the same maps would take if held in memory.

Run from the repository root::

    python -m benchmarks.sweep_memory           # 4 mm, 40 and 400 windows
    python -m benchmarks.sweep_memory --quick   # 8 mm, 5 and 50 windows
"""

import argparse
import tempfile
import time
from pathlib import Path

from nilearn.image import index_img

from nilearn_stca import write_window_sweep
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
        prog="python -m benchmarks.sweep_memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="8 mm grid, 5 and 50 windows")
    parser.add_argument("--resolution", type=int, help="grid (mm), default 4")
    parser.add_argument("--n-windows", type=int, nargs="+", help="default 40 400")
    parser.add_argument("--n-components", type=int, default=64)
    return fill_size_defaults(
        parser.parse_args(argv),
        quick={"resolution": 8, "n_windows": [5, 50]},
        full={"resolution": 4, "n_windows": [40, 400]},
    )


def sweep_peak(func_file, mask_img, n_windows, n_components, work_dir):
    """Child process: fit on 41 scans, then sweep ``n_windows`` windows; peak RSS, time."""
    default_threads()
    estimator = stca_fitted_briefly(func_file, mask_img, n_components, WINDOW_LENGTH)
    resettable = reset_window_peak()
    tic = time.perf_counter()
    sweep = write_window_sweep(
        estimator,
        index_img(func_file, slice(0, n_windows + WINDOW_LENGTH - 1)),
        Path(work_dir) / f"sweep_{n_windows}",
    )
    total = sum(float(maps[0, 0]) for _, maps in sweep)  # read back window by window
    return {
        "n_windows": len(sweep),
        "seconds": time.perf_counter() - tic,
        "peak_mib": window_peak_mib() if resettable else None,
        "maps_gib": sweep.maps.nbytes / 2**30,
        "checksum": total,
    }


def main(argv=None):
    args = parse_args(argv)
    n_threads = default_threads()
    mask_img = paper_mask_img(args.resolution)
    n_scans = max(args.n_windows) + WINDOW_LENGTH - 1
    sim = simulate_dynamic_rsfmri(n_scans=n_scans, mask_img=mask_img, random_state=0)
    print(header(n_threads, sim.description), flush=True)
    lines = [
        "| windows | peak RSS during the sweep (MiB) | maps written (GiB) | s/window |",
        "|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="sweep_memory_") as work_dir:
        func_file = Path(work_dir) / "func.nii"
        sim.func[0].to_filename(func_file)
        for n_windows in sorted(args.n_windows):
            row = in_child(sweep_peak, func_file, mask_img, n_windows, args.n_components, work_dir)
            lines.append(
                f"| {row['n_windows']} | {mib(row['peak_mib'])} | {row['maps_gib']:.2f} "
                f"| {row['seconds'] / row['n_windows']:.3f} |"
            )
            print(lines[-1], flush=True)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
