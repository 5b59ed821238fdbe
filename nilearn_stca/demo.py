"""The demo: STCA on the simulator's data, scored against the planted networks."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from nilearn.datasets import load_mni152_template  # noqa: E402
from nilearn.image import index_img  # noqa: E402
from nilearn.plotting import find_xyz_cut_coords, plot_stat_map  # noqa: E402

from .datasets import simulate_dynamic_rsfmri  # noqa: E402
from .decomposition import STCADecomposition  # noqa: E402
from .evaluation.truth import (  # noqa: E402
    TRUTH_THRESHOLD,
    score_against_truth,
    score_windows_against_truth,
)
from .maps import threshold_fbn_img  # noqa: E402

#: Settings of the demo: small enough for a few minutes on 2 CPU cores, with enough optimizer
#: steps for the attention maps to leave their random initialisation.
DEMO_SIMULATION = {"n_scans": 240, "resolution": 8, "snr": 3.0, "random_state": 0}
DEMO_STCA = {
    "n_components": 16,
    "window_length": 40,
    "window_stride": 1,
    "n_epochs": 1,
    "learning_rate": 1e-3,
    "random_state": 0,
}


def plot_matched_maps(maps_imgs, truth_maps_img, titles, threshold, output_file):
    """One panel per known network: a map (z >= threshold) over the network's outline.

    ``maps_imgs`` and ``titles`` give, for each known network in order, the 3D map to show.
    """
    n_columns = 2
    n_rows = -(-len(titles) // n_columns)
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(14, 2.6 * n_rows), squeeze=False)
    background = load_mni152_template(resolution=2)
    for index, (ax, map_img, title) in enumerate(
        zip(axes.ravel(), maps_imgs, titles, strict=False)
    ):
        truth = threshold_fbn_img(index_img(truth_maps_img, index), TRUTH_THRESHOLD)
        display = plot_stat_map(
            map_img,
            bg_img=background,
            threshold=threshold,
            cut_coords=find_xyz_cut_coords(truth),
            axes=ax,
            title=title,
            colorbar=False,
            black_bg=False,
            annotate=False,
        )
        display.add_contours(truth, levels=[0.5], colors="limegreen", linewidths=1.5)
    for ax in axes.ravel()[len(titles) :]:
        ax.set_axis_off()
    fig.suptitle(f"Maps at z >= {threshold} (red) and planted networks (green outline)")
    fig.savefig(output_file, dpi=80)
    plt.close(fig)


def _plot_static_and_best_windows(estimator, data, scores, windows, out_dir):
    plot_matched_maps(
        [index_img(estimator.components_img_, int(c)) for c in scores.component],
        data.maps_img,
        [f"{r.network}: static map {r.component}, IoU {r.iou:.2f}" for r in scores.itertuples()],
        estimator.threshold,
        out_dir / "components.png",
    )
    best = windows.loc[windows.groupby("network", sort=False).correlation.idxmax()]
    best = best.set_index("network").reindex(data.network_names)
    maps, titles = [], []
    for network, row in best.iterrows():
        if np.isnan(row.start_scan):  # never active in this run
            maps.append(index_img(estimator.components_img_, 0))
            titles.append(f"{network}: never active")
            continue
        window_img = estimator.window_maps_img(data.func[0], int(row.start_scan))
        maps.append(index_img(window_img, int(row.correlated_component)))
        titles.append(
            f"{network}: window {int(row.start_scan)}, map {int(row.correlated_component)}, "
            f"r = {row.correlation:.2f}"
        )
    plot_matched_maps(
        maps, data.maps_img, titles, estimator.threshold, out_dir / "best_windows.png"
    )


def run_demo(out_dir, simulation=None, stca=None, verbose=1):
    """Simulate rsfMRI, fit STCA, score its maps against the planted networks, write results.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (created). Results are written to a temporary folder beside it
        and moved in at the end, so an interrupted run leaves no partial output.
    simulation, stca : dict, default=None
        Overrides of :data:`DEMO_SIMULATION` and :data:`DEMO_STCA`.
    verbose : int, default=1

    Returns
    -------
    scores : pandas.DataFrame
        For each planted network (``iou.csv``): the static maps' matched component, its IoU
        and Dice, and the mean over the windows where the network is active of the best
        window map's IoU and correlation (per window in ``window_iou.csv``).
    """
    out_dir = Path(out_dir)
    simulation = {**DEMO_SIMULATION, **(simulation or {})}
    stca = {**DEMO_STCA, **(stca or {})}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        data = simulate_dynamic_rsfmri(**simulation)
        estimator = STCADecomposition(mask=data.mask_img, verbose=verbose, **stca)
        estimator.fit(data.func)
        scores = score_against_truth(
            estimator.components_,
            data.maps_img,
            estimator.mask_img_,
            threshold=estimator.threshold,
            network_names=data.network_names,
        )
        windows = score_windows_against_truth(
            estimator.iter_window_maps(data.func[0]),
            data.maps_img,
            estimator.mask_img_,
            data.amplitudes[0],
            estimator.window_length,
            threshold=estimator.threshold,
            network_names=data.network_names,
        )
        windows.to_csv(work / "window_iou.csv", index=False)
        per_network = windows.groupby("network", sort=False)[["iou", "correlation"]].mean()
        scores = scores.join(per_network.add_prefix("window_mean_"), on="network")
        scores.to_csv(work / "iou.csv", index=False)
        estimator.components_img_.to_filename(work / "components.nii.gz")
        estimator.fbns_img().to_filename(work / "fbns.nii.gz")
        data.maps_img.to_filename(work / "planted_networks.nii.gz")
        _plot_static_and_best_windows(estimator, data, scores, windows, work)
        (work / "parameters.json").write_text(
            json.dumps(
                {
                    "simulation": simulation,
                    "stca": stca,
                    "description": data.description,
                    "n_steps": estimator.n_steps_,
                    "final_loss": estimator.loss_curve_[-1],
                },
                indent=2,
            )
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return scores
