"""One HCP-size subject through the paper's protocol, end to end, on this machine.

The protocol per subject (Liu et al., ISBI 2023): one 1200-scan run at 4 mm (49 x 58 x 47),
64 maps, windows of 40 scans at stride 1, one epoch of Adam at learning rate 1e-4
(1,160 steps), then the dynamic maps of all 1,161 windows. Here the run is simulated (the
simulator's networks, nilearn's MNI brain mask on the paper's grid), written to an
uncompressed NIfTI file, and a child process times, with the package defaults (``--paper``:
with :data:`~nilearn_stca.stca.decomposition.PAPER_SETTINGS`, the paper's decoder and learning
rate):

1. ``write_window_sweep(STCADecomposition(n_components=64), run, fit=True)``: training,
   then one pass over every window that makes the static maps and streams every window's
   maps to disk (``--two-passes``: ``fit``, whose static maps map every window, then
   :func:`~nilearn_stca.write_window_sweep`, which maps them again);
2. evaluation: every window's maps scored against the planted networks active in it
   (:func:`~nilearn_stca.evaluation.truth.score_windows_against_truth`), reading the sweep
   back one window at a time.

It prints the time of each stage, the child's peak resident memory (``ru_maxrss``) and the
mean IoU and correlation with the planted networks.

Run from the repository root::

    python -m benchmarks.hcp_subject           # the paper's size: about 45 minutes
    python -m benchmarks.hcp_subject --quick   # 8 mm, 120 scans: a smoke run of a minute
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from nilearn_stca import PAPER_SETTINGS, STCADecomposition, write_window_sweep
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation.truth import score_windows_against_truth

from ._common import (
    default_threads,
    fill_size_defaults,
    header,
    in_child,
    paper_mask_img,
    peak_rss_mib,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hcp_subject", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="8 mm grid, 120 scans")
    parser.add_argument("--resolution", type=int, help="grid (mm), default 4")
    parser.add_argument("--n-scans", type=int, help="scans in the run, default 1200")
    parser.add_argument("--n-components", type=int, default=64)
    parser.add_argument("--paper", action="store_true", help="the paper's decoder and rate")
    parser.add_argument(
        "--two-passes",
        action="store_true",
        help="fit, then sweep (every window mapped twice), as before fit_iter_window_maps",
    )
    parser.add_argument("--snr", type=float, default=1.0, help="simulator's SNR")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", help="folder for the run and the sweep (default: temp)")
    return fill_size_defaults(
        parser.parse_args(argv),
        quick={"resolution": 8, "n_scans": 120},
        full={"resolution": 4, "n_scans": 1200},
    )


def run_protocol(func_file, mask_img, sim, work_dir, args):
    """Child process: fit, sweep and evaluate; times, peak memory and scores."""
    default_threads()
    times = {}
    tic = time.perf_counter()
    settings = {**PAPER_SETTINGS, "n_components": args.n_components} if args.paper else {}
    estimator = STCADecomposition(
        n_components=args.n_components,
        mask=mask_img,
        device="cpu",
        random_state=args.seed,
        **settings,
    )
    if args.two_passes:
        estimator.fit(func_file)
        times["fit (training + static maps)"] = time.perf_counter() - tic
        tic = time.perf_counter()
        sweep = write_window_sweep(estimator, func_file, Path(work_dir) / "sweep")
        times["dynamic sweep to disk"] = time.perf_counter() - tic
    else:
        sweep = write_window_sweep(estimator, func_file, Path(work_dir) / "sweep", fit=True)
        times["fit and dynamic sweep to disk, one pass"] = time.perf_counter() - tic

    tic = time.perf_counter()
    scores = score_windows_against_truth(
        sweep, sim.maps_img, estimator.mask_img_, sim.amplitudes[0], estimator.window_length
    )
    times["evaluation"] = time.perf_counter() - tic
    return {
        "times": times,
        "n_steps": estimator.n_steps_,
        "n_windows": len(sweep),
        "sweep_gib": sweep.maps.nbytes / 2**30,
        "peak_rss_mib": peak_rss_mib(),
        "iou": float(scores.iou.mean()),
        "correlation": float(scores.correlation.mean()),
    }


def main(argv=None):
    args = parse_args(argv)
    n_threads = default_threads()
    mask_img = paper_mask_img(args.resolution)
    tic = time.perf_counter()
    sim = simulate_dynamic_rsfmri(
        n_scans=args.n_scans, mask_img=mask_img, snr=args.snr, random_state=args.seed
    )
    simulated = time.perf_counter() - tic
    print(header(n_threads, sim.description), flush=True)
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="hcp_subject_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        func_file = work_dir / "func.nii"
        sim.func[0].to_filename(func_file)
        func = sim.func
        sim.func = None  # the child reads the run from disk, as a user's pipeline would
        del func
        result = in_child(run_protocol, func_file, mask_img, sim, work_dir, args)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    total = sum(result["times"].values())
    print(f"simulation (not counted): {simulated:.0f} s")
    print(
        f"{result['n_steps']} training steps, {result['n_windows']} windows of "
        f"{args.n_components} maps ({result['sweep_gib']:.1f} GiB on disk)\n"
    )
    print("| stage | minutes |\n|---|---:|")
    for stage, seconds in result["times"].items():
        print(f"| {stage} | {seconds / 60:.1f} |")
    print(f"| **total** | **{total / 60:.1f}** |\n")
    print(
        f"peak RSS of the child: {result['peak_rss_mib']:.0f} MiB; mean over (window, active "
        f"network) pairs: IoU {result['iou']:.3f}, correlation {result['correlation']:.3f}"
    )
    return result


if __name__ == "__main__":
    main()
