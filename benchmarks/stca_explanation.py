"""A test of why STCA's maps miss networks: are they fixed, local temporal detectors?

Issue 24's explanation: every spatial-attention value is a fixed function of the window's
time series in a neighbourhood of about 15^3 voxels, so a map lights whatever voxels match
its temporal detector, whichever network they are in. Three predictions, each measured on
windows edited in the span of the planted maps (each network's time course in the window is
its least-squares coefficient on the planted maps; the noise and everything else stay):

- **swap**: give networks A and B each other's time course. A detector follows the time
  course: the map that matched A best now matches B better than A ("follows", near 1). A
  map tied to a place stays on A (near 0).
- **same time course**: give B the time course of A. Detectors merge the two: the map that
  matched A best now also covers B (its correlation with B rises by "merge gain").
- **identity over windows**: for each network, the share of the windows where its
  best-matched map is the one most often best ("same map"). Detectors of fixed time
  courses, with networks whose time courses change every window, give low shares.

Each row: a lever of :mod:`benchmarks.stca_learning` trained as there (or untrained), on
the active networks of every ``--eval-stride``-th window. Run from the repository root::

    python -m benchmarks.stca_explanation --configs smith --steps 200
"""

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nilearn_stca.maps import zscore_maps

from ._common import default_threads, header
from .stca_learning import CONFIGS, LEVERS, Data, correlation, train_and_measure


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stca_explanation", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=["smith"])
    parser.add_argument(
        "--levers", nargs="+", choices=LEVERS, default=["regression decoder"], metavar="LEVER"
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--n-components", type=int, default=16)
    parser.add_argument("--eval-stride", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", type=Path, help="append every row to this JSON-lines file")
    return parser.parse_args(argv)


def window_maps(network, data, window, device):
    """z-scored FBN maps (C, n_voxels) of one window given as (T, n_voxels)."""
    x = data.box.to_box(torch.from_numpy(np.ascontiguousarray(window, np.float32)))[None]
    with torch.no_grad():
        _, maps = network.window_fbn_maps(x.to(device), data.box.mask_tensor(device), data.box)
    return zscore_maps(maps[0].cpu().numpy())


def edited(window, coefficients, truth, network, new_timecourse):
    """``window`` with ``network``'s time course (in the planted maps' span) replaced."""
    change = new_timecourse - coefficients[network]
    return window + change[:, None] * truth[network][None, :]


def explain(network, data, eval_starts, device):
    """The three measures of the module's docstring for one trained network."""
    truth = data.truth
    follows, merge_gain, best = [], [], []
    for start in eval_starts:
        window = data.window(start)
        centred = window - window.mean(axis=0)
        coefficients = np.linalg.lstsq(truth.T, centred.T, rcond=None)[0]  # (K, T)
        original = correlation(window_maps(network, data, window, device), truth)  # (C, K)
        best.append(original.argmax(axis=0))
        active = np.flatnonzero(data.active(start))
        for a, b in itertools.permutations(active, 2):
            map_a = original[:, a].argmax()
            swapped = edited(window, coefficients, truth, a, coefficients[b])
            swapped = edited(swapped, coefficients, truth, b, coefficients[a])
            after = correlation(window_maps(network, data, swapped, device)[[map_a]], truth)[0]
            follows.append(after[b] > after[a])
            merged = edited(window, coefficients, truth, b, coefficients[a])
            after = correlation(window_maps(network, data, merged, device)[[map_a]], truth)[0]
            merge_gain.append(after[b] - original[map_a, b])
    best = np.array(best)  # (windows, networks)
    same = [np.mean(column == np.bincount(column).argmax()) for column in best.T]
    return {
        "follows": float(np.mean(follows)),
        "merge_gain": float(np.mean(merge_gain)),
        "same_map": float(np.mean(same)),
        "pairs": len(follows),
    }


def main(argv=None):
    args = parse_args(argv)
    threads = default_threads()
    if args.threads:
        torch.set_num_threads(threads := args.threads)
    print(header(threads, f"{args.steps} steps, {args.n_components} maps, seed {args.seed}"))
    for name in args.configs:
        data = Data(name)
        eval_starts = data.starts[:: args.eval_stride]
        rows = []
        for lever in args.levers:
            for steps in (0, args.steps):
                _, network = train_and_measure(
                    data,
                    steps,
                    args.n_components,
                    eval_starts[:2],
                    seed=args.seed,
                    device=args.device,
                    return_network=True,
                    **LEVERS[lever],
                )
                network.eval()
                row = {"lever": lever if steps else f"{lever}, untrained", "steps": steps}
                row.update(explain(network, data, eval_starts, args.device))
                rows.append(row)
                print(f"  {row}", flush=True)
                if args.json:
                    with args.json.open("a") as stream:
                        stream.write(json.dumps({"config": name, **row}) + "\n")
        print(f"\n### {name}\n")
        print(pd.DataFrame(rows).set_index("lever").to_markdown(floatfmt=".3f"), flush=True)


if __name__ == "__main__":
    main()
