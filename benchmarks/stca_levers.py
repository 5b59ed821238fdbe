"""Issue 24's levers through the estimator itself: window recovery per lever, with seeds.

Each lever is a set of :class:`~nilearn_stca.STCADecomposition` parameters (the levers
that give the STCA block a window's global context: window-adaptive refinement, channel
attention pooling mean, sd and max, coordinate channels, softmax competition between maps,
and group training). Each is fitted from several seeds on one simulator configuration
(:data:`benchmarks.stca_learning.CONFIGS`) by the estimator's own path (the FFT path on
CPU), one epoch, and scored on every ``--eval-stride``-th window as
:mod:`benchmarks.stca_learning` scores: window IoU of the networks active in the window,
inactive IoU, window correlation, best-window IoU, and the static IoU of ``components_``.
SDL's window maps on the same windows are the reference. Run from the repository root::

    python -m benchmarks.stca_levers --configs smith yeo17 states --seeds 0 1
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import pandas as pd
import torch

from nilearn_stca import STCADecomposition
from nilearn_stca.baselines import SDLDecomposition
from nilearn_stca.evaluation.metrics import score_maps

from ._common import default_threads, header
from .stca_learning import CONFIGS, Data, recovery, summarize

_REFINE = {"refine_steps": 3, "refine_sparsity": 0.3}
LEVERS = {
    "before (regression decoder)": {},
    "CA pools mean, sd, max": {"channel_pooling": "mean_std_max"},
    "coordinate channels": {"coordinate_channels": True},
    "softmax competition": {"map_activation": "softmax"},
    "refinement 1, sparsity 0.3": {"refine_steps": 1, "refine_sparsity": 0.3},
    "refinement 3, sparsity 0.3": _REFINE,
    "refinement 3, sparsity 0.2": {"refine_steps": 3, "refine_sparsity": 0.2},
    "refinement 3, sparsity 0.4": {"refine_steps": 3, "refine_sparsity": 0.4},
    "softmax + refinement 3": {"map_activation": "softmax", **_REFINE},
    "refinement 3 + CA pools + coordinates": {
        "channel_pooling": "mean_std_max",
        "coordinate_channels": True,
        **_REFINE,
    },
    "all four": {
        "channel_pooling": "mean_std_max",
        "coordinate_channels": True,
        "map_activation": "softmax",
        **_REFINE,
    },
    "refinement 5, sparsity 0.3": {"refine_steps": 5, "refine_sparsity": 0.3},
    "refinement 10, sparsity 0.3": {"refine_steps": 10, "refine_sparsity": 0.3},
    # Nulls: the network at its random start (Adam's steps at 1e-12 leave it there).
    "before, untrained": {"learning_rate": 1e-12},
    "refinement 3, untrained": {**_REFINE, "learning_rate": 1e-12},
    "refinement 10, untrained": {
        "refine_steps": 10,
        "refine_sparsity": 0.3,
        "learning_rate": 1e-12,
    },
    "refinement 3, 4 subjects (group)": {**_REFINE, "n_subjects": 4},
    "refinement 3, 4 epochs on 1 subject": {**_REFINE, "n_epochs": 4},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stca_levers", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=["smith"])
    parser.add_argument("--levers", nargs="+", choices=LEVERS, default=list(LEVERS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n-components", type=int, default=16)
    parser.add_argument("--eval-stride", type=int, default=5)
    parser.add_argument("--no-sdl", action="store_true", help="skip the SDL reference")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", type=Path, help="append every row to this JSON-lines file")
    return parser.parse_args(argv)


def score(data, estimator, img, eval_stride):
    """Window readings of ``estimator``'s maps of ``img``, and its static IoU."""
    rows = [
        recovery(data, maps, start)
        for start, maps in estimator.iter_window_maps(img, stride=eval_stride)
    ]
    names = list(range(len(data.truth)))
    static = score_maps(estimator.components_, data.truth_masks, names, 3.6)["iou"].mean()
    return {**summarize(rows), "static_iou": float(static)}


def main(argv=None):
    args = parse_args(argv)
    threads = default_threads()
    if args.threads:
        torch.set_num_threads(threads := args.threads)
    print(header(threads, f"{args.n_components} maps, seeds {args.seeds}"), flush=True)
    n_subjects = max(LEVERS[lever].get("n_subjects", 1) for lever in args.levers)
    for name in args.configs:
        data = Data(name, n_subjects=n_subjects)
        funcs, mask = data.sim.func, data.sim.mask_img
        print(f"\n### {name}: {data.sim.description}\n", flush=True)
        rows = []
        if not args.no_sdl:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sdl = SDLDecomposition(n_components=args.n_components, mask=mask, random_state=0)
                started = time.perf_counter()
                sdl.fit(funcs[0])
                row = {"lever": "SDL (reference)", **score(data, sdl, funcs[0], args.eval_stride)}
            row["seconds"] = time.perf_counter() - started
            rows.append(row)
        for lever in args.levers:
            params = dict(LEVERS[lever])
            subjects = params.pop("n_subjects", 1)
            for seed in args.seeds:
                estimator = STCADecomposition(
                    n_components=args.n_components,
                    mask=mask,
                    device="cpu",
                    random_state=seed,
                    n_jobs=threads,
                    **params,
                )
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    estimator.fit(funcs[:subjects] if subjects > 1 else funcs[0])
                    seconds = time.perf_counter() - started
                    row = {"lever": lever, "seed": seed, "steps": estimator.n_steps_}
                    row.update(score(data, estimator, funcs[0], args.eval_stride))
                row["seconds"] = seconds
                rows.append(row)
                print(
                    f"  {lever} (seed {seed}): window IoU {row['window_iou']:.3f}, inactive "
                    f"{row['inactive_iou']:.3f}, corr {row['window_corr']:.3f}, static "
                    f"{row['static_iou']:.3f}, {row['steps']} steps, {seconds:.0f} s",
                    flush=True,
                )
                if args.json:
                    with args.json.open("a") as stream:
                        stream.write(json.dumps({"config": name, **row}, default=float) + "\n")
        table = pd.DataFrame(rows).groupby("lever", sort=False).mean(numeric_only=True)
        print(table.drop(columns="seed", errors="ignore").to_markdown(floatfmt=".3f"), flush=True)


if __name__ == "__main__":
    main()
