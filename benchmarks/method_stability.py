"""Do the maps come back with another seed? ICA, SDL and STCA refitted with other seeds.

For each simulator configuration (``--configs``, those of :mod:`benchmarks.stca_learning`)
this benchmark simulates one run and, for each method, runs
:func:`~nilearn_stca.evaluation.stability.stability` (``--n-runs`` fits with seeds drawn from
0, all maps clustered by absolute spatial correlation, as ICASSO does). It prints, per method, the
stability index of the clusters (mean intra-cluster minus mean extra-cluster similarity;
mean and minimum), the mean intra-cluster similarity, how many clusters hold a map of every
run, the mean number of runs with a map in a cluster (a cluster of a single map has an
intra-cluster similarity of 1), the mean IoU of the clusters' centrotypes with the planted
networks (z >= 3.6, each network's best map) and the time of the fits. Run from the
repository root::

    python -m benchmarks.method_stability           # smith and states, 5 runs, 16 maps
    python -m benchmarks.method_stability --quick   # smith at 120 scans, 3 runs, 8 maps
"""

import argparse
import time
import warnings

from nilearn_stca.baselines import ICADecomposition, SDLDecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation.stability import stability
from nilearn_stca.evaluation.truth import score_against_truth
from nilearn_stca.stca import STCADecomposition

from ._common import default_threads, fill_size_defaults, header
from .stca_learning import CONFIGS

METHODS = {
    "ICA": ICADecomposition,
    "SDL": SDLDecomposition,
    "STCA": lambda **params: STCADecomposition(device="cpu", **params),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.method_stability", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smith, 120 scans, 3 runs, 8 maps")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, help="default: smith states")
    parser.add_argument("--n-runs", type=int, help="fits per method, default 5")
    parser.add_argument("--n-components", type=int, help="maps per fit, default 16")
    parser.add_argument("--n-scans", type=int, help="default: the configuration's")
    return fill_size_defaults(
        parser.parse_args(argv),
        quick={"configs": ["smith"], "n_runs": 3, "n_components": 8, "n_scans": 120},
        full={"configs": ["smith", "states"], "n_runs": 5, "n_components": 16, "n_scans": 0},
    )


def measure(sim, make_estimator, args):
    """One method's stability on the simulated run: the summary row."""
    estimator = make_estimator(n_components=args.n_components, mask=sim.mask_img)
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stability(estimator, sim.func[0], n_runs=args.n_runs, random_state=0)
    seconds = time.perf_counter() - tic
    table = result.table
    iou = score_against_truth(
        result.components_, sim.maps_img, sim.mask_img, network_names=sim.network_names
    )["iou"].mean()
    return {
        "index mean": table["stability_index"].mean(),
        "index min": table["stability_index"].min(),
        "intra mean": table["intra_similarity"].mean(),
        "clusters with every run": f"{(table['n_runs'] == args.n_runs).sum()} / {len(table)}",
        # A cluster of one map has an intra-cluster similarity of 1 by definition: the runs
        # per cluster tell how many of the clusters are such singletons.
        "runs per cluster": table["n_runs"].mean(),
        "centrotype IoU": iou,
        "s per fit": seconds / args.n_runs,
    }


def main(argv=None):
    args = parse_args(argv)
    n_threads = default_threads()
    print(header(n_threads), flush=True)
    for name in args.configs:
        config = dict(CONFIGS[name])
        if args.n_scans:
            config["n_scans"] = args.n_scans
        sim = simulate_dynamic_rsfmri(**config)
        print(f"\n{name}: {sim.description}\n")
        print(f"{args.n_runs} fits of {args.n_components} maps per method:\n")
        rows = {method: measure(sim, make, args) for method, make in METHODS.items()}
        columns = list(next(iter(rows.values())))
        print("| method | " + " | ".join(columns) + " |")
        print("|---|" + "---:|" * len(columns))
        for method, row in rows.items():
            cells = [v if isinstance(v, str) else f"{v:.2f}" for v in row.values()]
            print(f"| {method} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
