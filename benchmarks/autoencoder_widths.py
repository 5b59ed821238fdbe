"""Autoencoder widths: recovery of the planted networks against the cost of a training step.

The paper does not give the guiding autoencoder's channel widths. For each candidate
(``--widths``), this benchmark

- fits :class:`~nilearn_stca.STCADecomposition` on simulated runs (the setting of
  ``tests/test_recovery.py``: three large Gaussian networks in a 14^3 brain at 4 mm, 300
  scans, snr 3; 8 maps, windows of 20 scans, one epoch at learning rate 1e-3, i.e. 281 Adam
  steps; one fit per ``--seeds`` value) and scores every window's maps against the planted
  networks active in it (mean IoU at z >= 3.6 and mean best correlation);
- times the FFT path's training step and window at the paper's size (4 mm, 64 maps, windows
  of 40 scans), in a child process as :mod:`benchmarks.stca_speed` does.

Run from the repository root::

    python -m benchmarks.autoencoder_widths           # 3 widths x 2 seeds: about 6 minutes
    python -m benchmarks.autoencoder_widths --quick   # 2 widths, 1 seed, 100 scans
"""

import argparse
import time
import warnings
from types import SimpleNamespace

import nibabel as nib
import numpy as np

from nilearn_stca import STCADecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation.truth import score_windows_against_truth

from ._common import default_threads, fill_size_defaults, header, in_child, paper_mask_img
from .stca_speed import measure_path

CANDIDATES = ("8,8,16,16", "16,16,32,32", "32,32,64,64")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.autoencoder_widths", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="2 widths, 1 seed, 100 scans")
    parser.add_argument("--widths", nargs="+", help="candidates, e.g. 16,16,32,32")
    parser.add_argument("--seeds", type=int, nargs="+", help="simulation seeds (default 0 1)")
    parser.add_argument("--n-scans", type=int, help="scans per simulated run (default 300)")
    args = parser.parse_args(argv)
    fill_size_defaults(
        args,
        quick={"widths": list(CANDIDATES[1:]), "seeds": [0], "n_scans": 100},
        full={"widths": list(CANDIDATES), "seeds": [0, 1], "n_scans": 300},
    )
    args.widths = [tuple(int(w) for w in text.split(",")) for text in args.widths]
    return args


def three_blob_networks():
    """Three Gaussian networks (81 core voxels each) in a 14^3 mask on a 16^3 grid at 4 mm.

    The planted networks of ``tests/test_recovery.py``: large enough for STCA's maps to
    reach them within one epoch on a CPU.
    """
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    grid = np.indices((16, 16, 16)).reshape(3, -1).T
    centres = np.array([(4, 4, 5), (11, 5, 10), (6, 11, 9)])
    squared = ((grid[:, None, :] - centres[None]) ** 2).sum(axis=-1)
    maps = np.exp(-squared / (2 * 2.2**2)).reshape(16, 16, 16, 3).astype(np.float32)
    mask = np.zeros((16, 16, 16), np.uint8)
    mask[1:15, 1:15, 1:15] = 1
    return nib.Nifti1Image(maps, affine), nib.Nifti1Image(mask, affine)


def recovery(widths, seed, n_scans):
    """Mean IoU and correlation with the planted networks after one epoch; fit seconds."""
    maps_img, mask_img = three_blob_networks()
    sim = simulate_dynamic_rsfmri(
        n_scans=n_scans, mask_img=mask_img, networks=maps_img, snr=3.0, random_state=seed
    )
    estimator = STCADecomposition(
        n_components=8,
        window_length=20,
        learning_rate=1e-3,
        decoder="autoencoder",
        autoencoder_widths=widths,
        mask=sim.mask_img,
        device="cpu",
        random_state=seed,
    )
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(sim.func[0])
    seconds = time.perf_counter() - tic
    scores = score_windows_against_truth(
        estimator.iter_window_maps(sim.func[0]),
        sim.maps_img,
        estimator.mask_img_,
        sim.amplitudes[0],
        estimator.window_length,
    )
    return float(scores.iou.mean()), float(scores.correlation.mean()), seconds


def main(argv=None):
    args = parse_args(argv)
    n_threads = default_threads()
    print(header(n_threads), flush=True)
    mask = np.asanyarray(paper_mask_img(4).dataobj) > 0
    lines = [
        "| autoencoder widths | mean IoU | mean correlation | fit (s) "
        "| s/step at 4 mm | s/window at 4 mm |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for widths in args.widths:
        results = [recovery(widths, seed, args.n_scans) for seed in args.seeds]
        iou, correlation, seconds = np.mean(results, axis=0)
        speed = in_child(
            measure_path,
            "fft",
            mask,
            SimpleNamespace(
                seed=0,
                window_length=40,
                n_components=64,
                autoencoder_widths=widths,
                steps=2,
                windows=2,
            ),
        )
        per_seed = ", ".join(f"{r[0]:.3f}" for r in results)
        print(
            f"{widths}: IoU {iou:.3f} (seeds: {per_seed}), correlation {correlation:.3f}, "
            f"{speed['s_step']:.2f} s/step at 4 mm",
            flush=True,
        )
        lines.append(
            f"| {widths} | {iou:.3f} | {correlation:.3f} | {seconds:.0f} "
            f"| {speed['s_step']:.2f} | {speed['s_window']:.3f} |"
        )
    print(f"\nMeans over seeds {args.seeds}, {args.n_scans} scans each:\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
