"""STCA training step and per-window inference: the plain path vs the FFT path.

Three ways to run the same network (64 maps, 40-scan windows, the default autoencoder) on
the MNI brain mask on the paper's 4 mm grid (49 x 58 x 47):

- ``plain-cube``: direct convolutions over the whole grid padded to a 64^3 cube, the plain
  implementation the speed-ups are measured against;
- ``plain-box``: direct convolutions over the brain's bounding box padded to multiples of 16
  (``conv_algorithm="direct"``, the reference the tests compare against);
- ``fft``: the STCA block through the FFT on the brain alone (``conv_algorithm="fft"``,
  the default of :class:`~nilearn_stca.STCADecomposition`).

Each path runs in its own child process, from the same initial weights and data: first the
attention logits of ``--windows`` windows (after one untimed window), one window per
forward pass (the fastest batch for every path on this machine), then ``--steps`` Adam
steps (after one untimed step). The parent checks that the paths give the same logits and
the same FBNs (z >= 3.6) for every window.

Run from the repository root::

    python -m benchmarks.stca_speed           # 4 mm, 3 steps and 10 windows per path
    python -m benchmarks.stca_speed --quick   # 8 mm, 2 steps and 2 windows: a smoke run
"""

import argparse
import time

import numpy as np
import torch

from nilearn_stca.maps import threshold_maps, zscore_maps
from nilearn_stca.stca._grid import BrainBox
from nilearn_stca.stca._training import iter_attention_logits, train_network
from nilearn_stca.stca.network import DEFAULT_AUTOENCODER_WIDTHS, SPATIAL_MULTIPLE, STCANetwork

from ._common import (
    default_threads,
    fill_size_defaults,
    header,
    in_child,
    mib,
    paper_mask_img,
    reset_window_peak,
    window_peak_mib,
)

PATHS = {"plain-cube": "direct", "plain-box": "direct", "fft": "fft"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stca_speed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="8 mm grid, 2 steps, 2 windows")
    parser.add_argument("--resolution", type=int, help="grid (mm), default 4")
    parser.add_argument("--steps", type=int, help="timed training steps per path (default 3)")
    parser.add_argument("--windows", type=int, help="timed windows per path (default 10)")
    parser.add_argument("--n-components", type=int, default=64)
    parser.add_argument("--window-length", type=int, default=40)
    parser.add_argument(
        "--autoencoder-widths", type=int, nargs=4, default=list(DEFAULT_AUTOENCODER_WIDTHS)
    )
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--seed", type=int, default=0)
    return fill_size_defaults(
        parser.parse_args(argv),
        quick={"resolution": 8, "steps": 2, "windows": 2},
        full={"resolution": 4, "steps": 3, "windows": 10},
    )


def measure_path(path, mask, args):
    """Child process: logits of the windows, then training steps, by one path."""
    default_threads()
    box = BrainBox(mask, SPATIAL_MULTIPLE, crop=path != "plain-cube")
    algorithm = PATHS[path]
    torch.manual_seed(args.seed)
    network = STCANetwork(args.window_length, args.n_components, args.autoencoder_widths)
    rng = np.random.RandomState(args.seed)
    n_scans = args.window_length + max(args.steps, args.windows)
    run = rng.standard_normal((n_scans, box.n_voxels)).astype(np.float32)
    resettable = reset_window_peak()

    network.eval()
    inference = dict(
        window_length=args.window_length, box=box, conv_algorithm=algorithm, batch_size=1
    )
    for _ in iter_attention_logits(network, run, [0], **inference):
        pass
    tic = time.perf_counter()
    logits = [
        window_logits
        for _, window_logits in iter_attention_logits(
            network, run, np.arange(args.windows), **inference
        )
    ]
    seconds_per_window = (time.perf_counter() - tic) / args.windows

    training = dict(
        box=box,
        window_length=args.window_length,
        window_stride=1,
        n_epochs=1,
        batch_size=1,
        learning_rate=1e-4,
        conv_algorithm=algorithm,
    )
    train_network(network, [run[: args.window_length]], rng=rng, **training)
    tic = time.perf_counter()
    losses = train_network(
        network, [run[: args.window_length + args.steps - 1]], rng=rng, **training
    )
    seconds_per_step = (time.perf_counter() - tic) / len(losses)
    return {
        "path": path,
        "box": box.shape,
        "s_step": seconds_per_step,
        "s_window": seconds_per_window,
        "peak_rss_mib": window_peak_mib() if resettable else None,
        "logits": logits,
    }


def compare_logits(row, reference, threshold=3.6):
    """Largest logit difference and number of voxels whose FBN membership differs."""
    difference, changed = 0.0, 0
    for a, b in zip(row["logits"], reference["logits"], strict=True):
        difference = max(difference, float(np.abs(a - b).max()))
        fbns_a = threshold_maps(zscore_maps(a), threshold)
        fbns_b = threshold_maps(zscore_maps(b), threshold)
        changed += int((fbns_a != fbns_b).sum())
    n_fbn_voxels = sum(
        int(threshold_maps(zscore_maps(b), threshold).sum()) for b in reference["logits"]
    )
    return difference, changed, n_fbn_voxels


def markdown_table(rows):
    reference = rows[0]
    lines = [
        "| path | box | s/step | s/window | peak RSS (MiB) "
        f"| step speed-up vs {reference['path']} | window speed-up "
        "| max abs logit diff | FBN voxels changed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        difference, changed, n_fbn = compare_logits(row, reference)
        lines.append(
            f"| {row['path']} | {'x'.join(map(str, row['box']))} | {row['s_step']:.2f} "
            f"| {row['s_window']:.3f} | {mib(row['peak_rss_mib'])} "
            f"| {reference['s_step'] / row['s_step']:.1f} "
            f"| {reference['s_window'] / row['s_window']:.1f} "
            f"| {difference:.1e} | {changed} of {n_fbn} |"
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    n_threads = default_threads()
    mask = np.asanyarray(paper_mask_img(args.resolution).dataobj) > 0
    print(
        header(
            n_threads,
            f"MNI mask on a {'x'.join(map(str, mask.shape))} grid at {args.resolution} mm, "
            f"{int(mask.sum())} voxels; {args.n_components} maps, windows of "
            f"{args.window_length} scans, autoencoder widths {tuple(args.autoencoder_widths)}",
        ),
        flush=True,
    )
    rows = []
    for path in args.paths:
        row = in_child(measure_path, path, mask, args)
        rows.append(row)
        print(
            f"{path:>10}: {row['s_step']:7.2f} s/step, {row['s_window']:7.3f} s/window, "
            f"peak RSS {mib(row['peak_rss_mib'])} MiB",
            flush=True,
        )
    print()
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
