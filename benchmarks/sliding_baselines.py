"""Sliding-window ICA and SDL: nilearn fitted on each window image vs the array path.

For each baseline (:class:`~nilearn_stca.baselines.ICADecomposition`, CanICA, and
:class:`~nilearn_stca.baselines.SDLDecomposition`, DictLearning), the same windows of one
simulated run are decomposed by

- ``plain``: a nilearn estimator fitted on each window's image (the reference), with the
  libraries' default threads;
- ``plain-1blas``: the same with one BLAS thread, as the fast path runs its windows, to
  separate the effect of threads from that of the array path;
- ``fast``: the array path, the default of ``iter_window_maps``;
- ``fast-exact`` (SDL only): the array path with ``window_coding="exact"``: the exact lasso
  codes where float32 descent cannot converge, and the initialisation's FastICA contrast
  by multiplications.

Each path runs in its own child process, so that its peak resident memory (``ru_maxrss``) is
its own. The maps are scored against the simulator's planted networks (mean IoU over all
networks, z threshold 3.6).

Run from the repository root::

    python -m benchmarks.sliding_baselines              # 4 mm MNI grid, 10 windows of 40 scans
    python -m benchmarks.sliding_baselines --n-jobs 2   # the same, every path with n_jobs=2
    python -m benchmarks.sliding_baselines --quick      # 8 mm grid, 2 windows: under a minute

With ``n_jobs`` > 1 the fast path's worker processes start with the first windows: their
start-up (about 2 s) is part of the time per window.
"""

import argparse
import copy
import time
import warnings
from contextlib import nullcontext

import numpy as np
from threadpoolctl import threadpool_limits

from nilearn_stca.baselines import ICADecomposition, SDLDecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation.truth import score_against_truth

from ._common import (
    default_threads,
    fill_size_defaults,
    header,
    in_child,
    mib,
    peak_rss_mib,
    reset_window_peak,
    window_peak_mib,
)

METHODS = {"ica": ICADecomposition, "sdl": SDLDecomposition}
PATHS = ("plain", "plain-1blas", "fast", "fast-exact")


def parse_args(argv=None):
    """Command-line options; ``--quick`` shrinks the problem to a smoke test."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sliding_baselines", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="8 mm grid, 2 windows, n_init=2")
    parser.add_argument("--resolution", type=int, help="grid (mm) of the MNI mask (default 4)")
    parser.add_argument("--n-windows", type=int, help="windows per path (default 10)")
    parser.add_argument("--window-length", type=int, default=40, help="scans per window")
    parser.add_argument("--n-init", type=int, help="CanICA's FastICA restarts (default 10)")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=["ica", "sdl"])
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        help="the estimators' n_jobs, the same for every path: CanICA's FastICA restarts "
        "(plain), windows in worker processes (fast)",
    )
    parser.add_argument("--snr", type=float, default=3.0, help="simulator's SNR")
    parser.add_argument("--seed", type=int, default=0, help="simulator's and fits' seed")
    return fill_size_defaults(
        parser.parse_args(argv),
        quick={"resolution": 8, "n_windows": 2, "n_init": 2},
        full={"resolution": 4, "n_windows": 10, "n_init": 10},
    )


def run_path(estimator, run, starts, path):
    """Child process: the maps of ``starts`` by one path, its time and peak memory.

    Returns
    -------
    result : dict
        ``seconds`` (per window), ``maps`` (list of arrays), ``rss_before_mib`` (peak
        after imports and receiving the data), ``peak_rss_mib`` (the child's ``ru_maxrss``)
        and ``window_peak_mib`` (peak RSS while mapping the windows; None off Linux).
    """
    default_threads()
    rss_before = peak_rss_mib()
    resettable = reset_window_peak()
    if path == "fast-exact":
        estimator = copy.copy(estimator).set_params(window_coding="exact")
    fast = path.startswith("fast")
    iterate = estimator._iter_run_maps if fast else estimator._iter_run_maps_plain
    limits = threadpool_limits(limits=1, user_api="blas") if path == "plain-1blas" else None
    with limits or nullcontext(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tic = time.perf_counter()
        maps = [window_maps for _, window_maps in iterate(run, starts)]
        seconds = (time.perf_counter() - tic) / len(starts)
    return {
        "seconds": seconds,
        "maps": maps,
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak_rss_mib(),
        "window_peak_mib": window_peak_mib() if resettable else None,
    }


def make_estimator(method, args):
    params = {
        "random_state": args.seed,
        "window_length": args.window_length,
        "n_jobs": args.n_jobs,
    }
    if method == "ica":
        params["n_init"] = args.n_init
    return METHODS[method](**params)


def window_starts(n_scans, window_length, n_windows):
    """``n_windows`` window starts spread evenly over the run."""
    return [int(s) for s in np.linspace(0, n_scans - window_length, n_windows).round()]


def mean_iou(maps, sim, mask_img):
    return float(
        np.mean([score_against_truth(m, sim.maps_img, mask_img).iou.mean() for m in maps])
    )


def benchmark_method(method, sim, starts, args):
    """Fit one baseline statically, then time each path on the same windows."""
    estimator = make_estimator(method, args)
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # The static fit is not timed: one BLAS thread only makes it quicker here.
        warnings.simplefilter("ignore")
        estimator.fit(sim.func[0])
        run = estimator._masked_run(sim.func[0])
    rows = []
    for path in args.paths:
        if path == "fast-exact" and method != "sdl":
            continue
        result = in_child(run_path, estimator, run, starts, path)
        result.update(
            method=method,
            path=path,
            n_voxels=run.shape[1],
            iou=mean_iou(result["maps"], sim, estimator.mask_img_),
        )
        rows.append(result)
        print(
            f"{method} {path:>11}: {result['seconds']:8.2f} s/window, peak RSS "
            f"{mib(result['window_peak_mib'])} MiB during the windows, child ru_maxrss "
            f"{result['peak_rss_mib']:.0f} MiB (before windows {result['rss_before_mib']:.0f}), "
            f"mean IoU {result['iou']:.4f}",
            flush=True,
        )
    return rows


def _max_abs_difference(row, reference):
    pairs = zip(row["maps"], reference["maps"], strict=True)
    return max(float(np.abs(a - b).max()) for a, b in pairs)


def markdown_table(rows):
    """One line per method and path: time, speed-up, memory, IoU and map difference."""
    lines = [
        "| method | path | s/window | plain / path | peak RSS windows (MiB) "
        "| child ru_maxrss (MiB) | mean IoU | IoU - plain IoU | max abs z diff vs plain-1blas |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method in dict.fromkeys(row["method"] for row in rows):
        by_path = {row["path"]: row for row in rows if row["method"] == method}
        plain = by_path.get("plain")
        reference = by_path.get("plain-1blas")
        for path, row in by_path.items():
            ratio = f"{plain['seconds'] / row['seconds']:.1f}" if plain else "-"
            delta = f"{row['iou'] - plain['iou']:+.4f}" if plain else "-"
            diff = f"{_max_abs_difference(row, reference):.2g}" if reference else "-"
            lines.append(
                f"| {method} | {path} | {row['seconds']:.2f} | {ratio} | "
                f"{mib(row['window_peak_mib'])} | {row['peak_rss_mib']:.0f} | "
                f"{row['iou']:.4f} | {delta} | {diff} |"
            )
    return "\n".join(lines)


def main(argv=None):
    """Run the benchmark and print its results, then a markdown table."""
    args = parse_args(argv)
    n_threads = default_threads()
    n_scans = 2 * args.window_length + 20 * max(args.n_windows - 2, 0)
    sim = simulate_dynamic_rsfmri(
        n_scans=n_scans,
        resolution=args.resolution,
        snr=args.snr,
        networks="procedural",
        random_state=args.seed,
    )
    starts = window_starts(n_scans, args.window_length, args.n_windows)
    print(
        f"{header(n_threads, sim.description)}\n"
        f"{len(starts)} windows of {args.window_length} scans starting at {starts}; "
        f"CanICA n_init={args.n_init}; n_jobs={args.n_jobs}",
        flush=True,
    )
    rows = [row for method in args.methods for row in benchmark_method(method, sim, starts, args)]
    print()
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
