"""The sparsity of SDL's static fit on single-subject runs: fixed values against one scaled
to the run.

nilearn's ``DictLearning`` keeps ``alpha=10``, chosen for group data. Its lasso codes each
voxel's row of the PCA-reduced data, whose scale grows as the square root of the number of
scans (the data are z-scored per voxel, and the reduced rows are principal components times
their singular values), so a fixed ``alpha`` that suits hundreds of scans of many subjects
zeroes every map of one short run. For each run size and grid, this benchmark fits
:class:`~nilearn_stca.baselines.SDLDecomposition` statically with several fixed ``alpha``
and with ``alpha = c * sqrt(n_scans)`` for several ``c``, and prints the static IoU with the
planted networks (z >= 3.6, best-matched map), the number of non-empty maps and the fit
time. Run from the repository root::

    python -m benchmarks.sdl_alpha             # 100, 300, 1200 scans at 8 and 4 mm
    python -m benchmarks.sdl_alpha --quick     # 100 and 300 scans at 8 mm
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from nilearn_stca.baselines import SDLDecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation.truth import score_against_truth

from ._common import default_threads, header

FIXED = (1.0, 2.0, 5.0, 10.0)
PER_SQRT_SCAN = (0.1, 0.2, 0.3, 0.5, 0.7)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sdl_alpha", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="100 and 300 scans at 8 mm")
    parser.add_argument("--n-scans", type=int, nargs="+", help="default: 100 300 1200")
    parser.add_argument("--resolutions", type=int, nargs="+", help="mm, default: 8 4")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="simulation seeds")
    parser.add_argument("--snr", type=float, default=1.0)
    parser.add_argument("--t-r", type=float, default=0.72, help="repetition time (s)")
    parser.add_argument("--fixed", type=float, nargs="*", help=f"fixed alphas (default {FIXED})")
    parser.add_argument(
        "--per-sqrt-scan",
        type=float,
        nargs="*",
        help=f"c of alpha = c * sqrt(n_scans) (default {PER_SQRT_SCAN})",
    )
    parser.add_argument(
        "--networks", default="auto", help="simulator's networks: auto (Smith 2009), procedural"
    )
    args = parser.parse_args(argv)
    if args.n_scans is None:
        args.n_scans = [100, 300] if args.quick else [100, 300, 1200]
    if args.resolutions is None:
        args.resolutions = [8] if args.quick else [8, 4]
    return args


def candidates(n_scans, fixed=FIXED, per_sqrt_scan=PER_SQRT_SCAN):
    """(label, alpha) pairs: the fixed values, then the scaled ones."""
    rows = [(f"alpha={a:g}", a) for a in fixed]
    rows += [(f"{c:g} x sqrt(n_scans)", c * np.sqrt(n_scans)) for c in per_sqrt_scan]
    return rows


def main(argv=None):
    args = parse_args(argv)
    threads = default_threads()
    print(
        header(
            threads, f"networks {args.networks}, snr {args.snr}, TR {args.t_r}, seeds {args.seeds}"
        )
    )
    rows = []
    for resolution in args.resolutions:
        for n_scans in args.n_scans:
            for seed in args.seeds:
                sim = simulate_dynamic_rsfmri(
                    n_scans=n_scans,
                    resolution=resolution,
                    snr=args.snr,
                    t_r=args.t_r,
                    networks=args.networks,
                    random_state=seed,
                )
                fixed = FIXED if args.fixed is None else args.fixed
                scaled = PER_SQRT_SCAN if args.per_sqrt_scan is None else args.per_sqrt_scan
                for label, alpha in candidates(n_scans, fixed, scaled):
                    est = SDLDecomposition(mask=sim.mask_img, alpha=alpha, random_state=0)
                    started = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        est.fit(sim.func[0])
                    seconds = time.perf_counter() - started
                    scores = score_against_truth(est.components_, sim.maps_img, sim.mask_img)
                    rows.append(
                        {
                            "grid": f"{resolution} mm",
                            "scans": n_scans,
                            "seed": seed,
                            "alpha": label,
                            "value": alpha,
                            "static IoU": scores["iou"].mean(),
                            "maps found": int(np.count_nonzero(est.components_.any(axis=1))),
                            "fit s": seconds,
                        }
                    )
                    print(
                        f"  {resolution} mm, {n_scans} scans, seed {seed}, {label} "
                        f"({alpha:.2f}): IoU {rows[-1]['static IoU']:.3f}, "
                        f"{rows[-1]['maps found']} maps, {seconds:.1f} s",
                        flush=True,
                    )
    table = pd.DataFrame(rows)
    summary = table.groupby(["grid", "scans", "alpha"], sort=False)[
        ["value", "static IoU", "maps found", "fit s"]
    ].mean()
    print(summary.to_markdown(floatfmt=".3f"))
    table["run"] = table["grid"] + ", " + table["scans"].astype(str) + " scans"
    wide = table.pivot_table(index="alpha", columns="run", values="static IoU", sort=False)
    wide["mean"] = wide.mean(axis=1)
    wide["worst"] = wide.drop(columns="mean").min(axis=1)
    print()
    print(wide.to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
