"""How much of each reading chance alone reaches, at the paper's scale.

The paper's scale: one 1,200-scan run at 4 mm, 64 maps per window, 40-scan windows at
stride 1 (1,161 windows: 74,304 maps). Two nulls, scored against the planted networks
under every reading of this package:

- **untrained network**: the paper's network (``PAPER_SETTINGS``) at its random start;
- **random smooth maps**: white noise smoothed by a Gaussian whose width is chosen so the
  maps' neighbour correlation matches the untrained network's maps.

Readings (z >= 3.6): **window IoU**, mean over (window, active network) of the best map's
IoU; **best-window IoU**, per network the best IoU over all windows and maps, mean over
networks (the reading the authors' notebook appears to use); **lenient best-window IoU**,
the same with maps z-scored over the whole grid, outside-brain voxels counted as zeros (the
authors' code); **static IoU**, the mean of the window z-maps, map by map. Run from the
repository root (about a minute on a GPU, much longer on CPU)::

    python -m benchmarks.stca_null --device cuda
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from nilearn_stca.evaluation.metrics import score_maps
from nilearn_stca.maps import zscore_maps
from nilearn_stca.stca.network import STCANetwork

from ._common import default_threads, header
from .stca_learning import CONFIGS, Data

CONFIGS.setdefault(
    "paper-scale", {"n_scans": 1200, "resolution": 4, "snr": 3.0, "random_state": 0}
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stca_null", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", default="paper-scale", choices=CONFIGS)
    parser.add_argument("--n-components", type=int, default=64)
    parser.add_argument("--stride", type=int, default=1, help="scans between windows")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def neighbour_correlation(maps, box):
    """Mean correlation of the maps' values at voxels one step apart along x, in the brain."""
    boxes = box.to_box(torch.as_tensor(zscore_maps(maps))[None])[0]
    mask = box.mask_tensor().bool()
    both = mask[1:] & mask[:-1]
    return float((boxes[:, 1:][:, both] * boxes[:, :-1][:, both]).mean())


def smooth_noise(n_maps, box, sigma, generator, device):
    """``n_maps`` maps of white noise smoothed by a Gaussian of ``sigma`` voxels (C, n_voxels)."""
    noise = torch.randn((n_maps, 1, *box.shape), generator=generator, device=device)
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    for axis in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = len(kernel)
        padding = [0, 0, 0]
        padding[axis] = radius
        noise = F.conv3d(noise, kernel.reshape(shape), padding=tuple(padding))
    return box.to_vectors(noise[:, 0].cpu()[None])[0].numpy()


class Readings:
    """Accumulates the readings of one null over the windows."""

    def __init__(self, data):
        self.data = data
        self.window, self.best, self.best_lenient = [], None, None
        self.static = None
        grid = data.sim.mask_img.shape
        self.n_grid = grid[0] * grid[1] * grid[2]

    def add(self, maps, start):
        names = list(range(len(self.data.truth)))
        z = zscore_maps(maps)
        iou = score_maps(z, self.data.truth_masks, names, 3.6)["iou"].to_numpy()
        mean = maps.sum(axis=1, keepdims=True) / self.n_grid
        sd = np.sqrt((maps**2).sum(axis=1, keepdims=True) / self.n_grid - mean**2)
        lenient = score_maps((maps - mean) / sd, self.data.truth_masks, names, 3.6)
        lenient = lenient["iou"].to_numpy()
        self.window.append(iou[self.data.active(start)])
        self.best = iou if self.best is None else np.maximum(self.best, iou)
        self.best_lenient = (
            lenient if self.best_lenient is None else np.maximum(self.best_lenient, lenient)
        )
        self.static = z if self.static is None else self.static + z

    def result(self):
        names = list(range(len(self.data.truth)))
        static = score_maps(zscore_maps(self.static), self.data.truth_masks, names, 3.6)
        return {
            "window_iou": float(np.concatenate(self.window).mean()),
            "best_window_iou": float(self.best.mean()),
            "lenient_best_window_iou": float(self.best_lenient.mean()),
            "static_iou": float(static["iou"].mean()),
            "windows": len(self.window),
        }


def main(argv=None):
    args = parse_args(argv)
    threads = default_threads()
    if args.threads:
        torch.set_num_threads(threads := args.threads)
    print(header(threads, f"{args.n_components} maps, windows every {args.stride} scans"))
    data = Data(args.config)
    starts = data.starts[:: args.stride]
    print(f"{data.sim.description}\n{len(starts)} windows, device {args.device}", flush=True)
    torch.manual_seed(args.seed)
    network = STCANetwork(40, args.n_components).to(args.device).eval()
    mask = data.box.mask_tensor(args.device)
    untrained, random = Readings(data), Readings(data)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    sigma = None
    started = time.perf_counter()
    for start in starts:
        x = data.box.to_box(torch.from_numpy(data.window(start)))[None].to(args.device)
        with torch.no_grad():
            maps = data.box.to_vectors(network.attention_logits(x, mask).cpu())[0].numpy()
        if sigma is None:
            target = neighbour_correlation(maps, data.box)
            candidates = np.arange(0.5, 4.01, 0.25)
            achieved = [
                neighbour_correlation(
                    smooth_noise(8, data.box, s, generator, args.device), data.box
                )
                for s in candidates
            ]
            sigma = float(candidates[np.argmin(np.abs(np.array(achieved) - target))])
            print(f"neighbour correlation {target:.3f}: sigma {sigma} voxels", flush=True)
        untrained.add(maps, start)
        random.add(smooth_noise(args.n_components, data.box, sigma, generator, args.device), start)
    rows = {"untrained network": untrained.result(), "random smooth maps": random.result()}
    print(f"{time.perf_counter() - started:.0f} s")
    print("| null | window IoU | best-window IoU | lenient best-window IoU | static IoU |")
    print("|---|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['window_iou']:.3f} | {row['best_window_iou']:.3f} | "
            f"{row['lenient_best_window_iou']:.3f} | {row['static_iou']:.3f} |"
        )
        if args.json:
            with args.json.open("a") as stream:
                stream.write(json.dumps({"config": args.config, "null": name, **row}) + "\n")


if __name__ == "__main__":
    main()
