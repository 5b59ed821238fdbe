"""What STCA learns: diagnosis of its training and one row per lever, against the baselines.

For each simulator configuration (``--configs``) this benchmark simulates one run, masks it
as :class:`~nilearn_stca.STCADecomposition` does (detrend, per-voxel z-score over the run)
and reports:

- references on the same windows: maps that use the truth (each voxel's correlation with
  the planted signal of each network in the window: the best a map of that window can do),
  per-window PCA, SDL's window maps and ICA's and SDL's static maps (this package's
  baselines);
- for every lever (``--levers``), a network trained from the same seed on the same windows
  (stride 1, in a random order, one window per Adam step) and measured before and after
  training: the loss against steps, the share of each window's variance it reconstructs
  beside the share the planted networks carry, the gradient norm reaching the
  spatial-attention convolutions against the autoencoder's, what the attention logits
  follow (correlation over voxels with the planted maps, the window's voxel mean and
  temporal variance, the distance to the brain's edge and the noise), whether the maps stay
  distinct (mean absolute correlation between maps, and their effective number), what
  channel attention does (spread of its weights over windows), and the recovery: IoU of
  the best-matched map at z >= 3.6 and best correlation with the planted networks active in
  each window, the same IoU for the inactive networks, and the IoU of the static map (mean
  of the window z-maps).

The levers are network and training variants written here (the paper's block is
:class:`~nilearn_stca.stca.network.STCABlock`); one that earns its place becomes a parameter of
the estimator. Run from the repository root::

    python -m benchmarks.stca_learning                  # every lever, both configurations
    python -m benchmarks.stca_learning --quick          # 3 levers, 30 steps, one configuration
    python -m benchmarks.stca_learning --levers paper linear --configs smith --steps 400
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from nilearn.maskers import NiftiMasker
from nilearn.masking import apply_mask
from scipy.ndimage import distance_transform_edt
from torch import nn
from torch.nn import functional as F

from nilearn_stca.baselines import ICADecomposition, SDLDecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation.metrics import score_maps
from nilearn_stca.evaluation.truth import TRUTH_THRESHOLD
from nilearn_stca.maps import zscore_maps
from nilearn_stca.stca._grid import BrainBox
from nilearn_stca.stca.network import (
    GuidingAutoencoder,
    STCANetwork,
    brain_coordinates,
    regression_reconstruction,
)
from nilearn_stca.windows import window_starts

from ._common import default_threads, fill_size_defaults, header

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "rsn_templates"
YEO17 = SHARED / "yeo2011" / "yeo-17-liberal_network_4D_2mm_bin.nii.gz"

#: Simulator configurations. "smith" is the demo's data; "yeo17" changes the networks (the
#: 17 Yeo 2011 networks, or procedural ones where the file is absent), the TR, the SNR, the
#: run length and the seed; "states" is the demo's data with the networks switching together
#: as 4 discrete brain states (the simulator's state mode).
CONFIGS = {
    "smith": {"n_scans": 240, "resolution": 8, "snr": 3.0, "random_state": 0},
    "states": {"n_scans": 240, "resolution": 8, "snr": 3.0, "random_state": 0, "n_states": 4},
    # The paper's resolution (at the cost of about 8 times the voxels).
    "smith-4mm": {"n_scans": 240, "resolution": 4, "snr": 3.0, "random_state": 0},
    "yeo17": {
        "n_scans": 300,
        "resolution": 8,
        "snr": 1.5,
        "t_r": 2.0,
        "networks": str(YEO17) if YEO17.exists() else "procedural",
        "n_networks": 17,
        "random_state": 1,
    },
}

#: Each lever: what differs from the paper's configuration (its keys are those of
#: :func:`train_and_measure`). "paper" is the paper's network and protocol (lr 1e-4).
LEVERS = {
    "paper": {},
    "lr 1e-3": {"learning_rate": 1e-3},
    "lr 1e-3, warm-up + cosine decay": {"learning_rate": 1e-3, "schedule": "warmup_cosine"},
    "lr 1e-3, gradient clipping 1": {"learning_rate": 1e-3, "clip": 1.0},
    "lr 1e-3, batch 4": {"learning_rate": 1e-3, "batch_size": 4},
    "per-window z-score": {"learning_rate": 1e-3, "normalization": "window"},
    "global scaling per window": {"learning_rate": 1e-3, "normalization": "window_global"},
    "SA reads f (eq. 4 as written)": {"learning_rate": 1e-3, "sa_input": "f"},
    "attention convs init x0.1": {"learning_rate": 1e-3, "sa_init_scale": 0.1},
    "autoencoder depth 1": {"learning_rate": 1e-3, "decoder_depth": 1},
    "linear decoder (depth 0)": {"learning_rate": 1e-3, "decoder_depth": 0},
    "no batch norm": {"learning_rate": 1e-3, "batch_norm": False},
    "sparsity 0.1": {"learning_rate": 1e-3, "sparsity": 0.1},
    "decorrelation 1": {"learning_rate": 1e-3, "decorrelation": 1.0},
    "sparsity 1 + decorrelation 1": {"learning_rate": 1e-3, "sparsity": 1.0, "decorrelation": 1.0},
    "regression decoder": {"learning_rate": 1e-3, "decoder": "regression"},
    "regression decoder, sparsity 0.1": {
        "learning_rate": 1e-3,
        "decoder": "regression",
        "sparsity": 0.1,
    },
    "regression decoder, SA reads f": {
        "learning_rate": 1e-3,
        "decoder": "regression",
        "sa_input": "f",
    },
    "regression decoder, batch 4": {
        "learning_rate": 1e-3,
        "decoder": "regression",
        "batch_size": 4,
    },
    "regression decoder, global scaling per window": {
        "learning_rate": 1e-3,
        "decoder": "regression",
        "normalization": "window_global",
    },
    "regression decoder, heavy-tailed maps 0.1": {
        "learning_rate": 1e-3,
        "decoder": "regression",
        "heavy_tails": 0.1,
    },
    "regression decoder, heavy-tailed maps 1": {
        "learning_rate": 1e-3,
        "decoder": "regression",
        "heavy_tails": 1.0,
    },
    "regression decoder, Hoyer sparseness 0.1": {
        "learning_rate": 1e-3,
        "decoder": "regression",
        "hoyer": 0.1,
    },
    "regression decoder, Hoyer sparseness 1": {
        "learning_rate": 1e-3,
        "decoder": "regression",
        "hoyer": 1.0,
    },
}

#: Issue 24's levers: each adds to the regression decoder (the estimator's default before
#: them) what the paper's block cannot know about a window as a whole.
_REGRESSION = {"learning_rate": 1e-3, "decoder": "regression"}
LEVERS.update(
    {
        "CA pools mean, sd, max": {**_REGRESSION, "channel_pooling": "mean_std_max"},
        "coordinate channels": {**_REGRESSION, "coordinate_channels": True},
        "softmax competition": {**_REGRESSION, "map_activation": "softmax"},
        "refinement 1, sparsity 0.3": {**_REGRESSION, "refine_steps": 1, "refine_sparsity": 0.3},
        "refinement 2, sparsity 0.3": {**_REGRESSION, "refine_steps": 2, "refine_sparsity": 0.3},
        "refinement 3, sparsity 0.3": {**_REGRESSION, "refine_steps": 3, "refine_sparsity": 0.3},
        "refinement 3, sparsity 0.2": {**_REGRESSION, "refine_steps": 3, "refine_sparsity": 0.2},
        "refinement 3, sparsity 0.4": {**_REGRESSION, "refine_steps": 3, "refine_sparsity": 0.4},
        "softmax + refinement 3": {
            **_REGRESSION,
            "map_activation": "softmax",
            "refine_steps": 3,
            "refine_sparsity": 0.3,
        },
        "refinement 3 + CA pools + coordinates": {
            **_REGRESSION,
            "channel_pooling": "mean_std_max",
            "coordinate_channels": True,
            "refine_steps": 3,
            "refine_sparsity": 0.3,
        },
        "all four": {
            **_REGRESSION,
            "channel_pooling": "mean_std_max",
            "coordinate_channels": True,
            "map_activation": "softmax",
            "refine_steps": 3,
            "refine_sparsity": 0.3,
        },
        "regression decoder, 4 subjects": {**_REGRESSION, "n_subjects": 4},
        "refinement 3, sparsity 0.3, 4 subjects": {
            **_REGRESSION,
            "refine_steps": 3,
            "refine_sparsity": 0.3,
            "n_subjects": 4,
        },
    }
)
ISSUE_24_LEVERS = [
    "paper",
    "regression decoder",
    *list(LEVERS)[list(LEVERS).index("CA pools mean, sd, max") :],
]
QUICK_LEVERS = ["paper", "lr 1e-3", "regression decoder"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stca_learning", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="3 levers, 30 steps, smith only")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, help="default: both")
    parser.add_argument("--levers", nargs="+", choices=LEVERS, metavar="LEVER")
    parser.add_argument("--steps", type=int, help="Adam steps per lever (default 200)")
    parser.add_argument("--n-components", type=int, default=16, help="maps (default 16)")
    parser.add_argument("--eval-stride", type=int, default=5, help="score every Nth window")
    parser.add_argument("--seed", type=int, default=0, help="network and window-order seed")
    parser.add_argument("--seeds", type=int, nargs="+", help="several seeds (default: --seed)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument(
        "--issue-24", action="store_true", help="the levers of issue 24 (unless --levers)"
    )
    parser.add_argument("--no-references", action="store_true", help="skip SDL, ICA, PCA rows")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--json", type=Path, help="also append every row to this JSON-lines file")
    args = parser.parse_args(argv)
    if args.issue_24 and args.levers is None:
        args.levers = ISSUE_24_LEVERS
    return fill_size_defaults(
        args,
        quick={"configs": ["smith"], "levers": QUICK_LEVERS, "steps": 30},
        full={"configs": ["smith", "yeo17"], "levers": list(LEVERS), "steps": 200},
    )


# ---------------------------------------------------------------------- data
class Data:
    """One simulated run, masked as the estimator masks it, with its truth."""

    def __init__(self, name, window_length=40, n_subjects=1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sim = simulate_dynamic_rsfmri(**CONFIGS[name], n_subjects=n_subjects)
            masker = NiftiMasker(sim.mask_img, standardize="zscore_sample", detrend=True).fit()
            self.runs = [masker.transform(func).astype(np.float32) for func in sim.func]
            self.run = self.runs[0]
        self.name, self.sim, self.masker = name, sim, masker
        self.truth = apply_mask(sim.maps_img, sim.mask_img).astype(np.float32)
        self.truth_masks = self.truth >= TRUTH_THRESHOLD
        self.signals = sim.timecourses[0] * sim.amplitudes[0]
        self.window_length = window_length
        mask = np.asanyarray(sim.mask_img.dataobj) > 0
        self.box = BrainBox(mask, 16)
        self.edge_distance = distance_transform_edt(mask)[mask]
        self.starts = window_starts(len(self.run), window_length, 1)

    def window(self, start, subject=0):
        return self.runs[subject][start : start + self.window_length]

    def active(self, start):
        envelope = self.sim.amplitudes[0][start : start + self.window_length].mean(axis=0)
        return envelope > 0.5

    def network_share(self, start):
        """Share of the window's variance in the span of the planted maps, and the residual.

        Each volume is regressed on the planted maps (a few regressors, thousands of
        voxels), so the share hardly overfits; the residual's sd per voxel is the noise.
        """
        window = self.window(start) - self.window(start).mean(axis=0)
        coefficients = np.linalg.lstsq(self.truth.T, window.T, rcond=None)[0]
        noise = window - (self.truth.T @ coefficients).T
        return 1 - np.sum(noise**2) / np.sum(window**2), noise.std(axis=0)

    def truth_correlation_maps(self, start):
        """Each voxel's correlation with each planted signal over the window."""
        window = self.window(start) - self.window(start).mean(axis=0)
        signals = self.signals[start : start + self.window_length]
        signals = signals - signals.mean(axis=0)
        window = window / (np.linalg.norm(window, axis=0) + 1e-9)
        signals = signals / (np.linalg.norm(signals, axis=0) + 1e-9)
        return signals.T @ window


def _standardize_rows(maps):
    maps = maps - maps.mean(axis=1, keepdims=True)
    return maps / (maps.std(axis=1, keepdims=True) + 1e-9)


def correlation(maps, targets):
    """(n_maps, n_targets) Pearson correlations over voxels."""
    return _standardize_rows(maps) @ _standardize_rows(targets).T / maps.shape[1]


def recovery(data, z_maps, start):
    """Scores of one window's maps against the planted networks.

    ``iou`` (every network, best-matched map), ``active`` / ``inactive`` (the IoU of the
    networks active in the window or not), ``corr`` (best correlation of a map with each
    active network) and ``lenient`` (the active networks' IoU when the maps are z-scored over
    the whole grid, the voxels outside the brain counted as zeros, as the authors' code does).
    """
    names = list(range(len(data.truth)))
    iou = score_maps(z_maps, data.truth_masks, names, 3.6)["iou"].to_numpy()
    raw = _standardize_rows(z_maps)
    n_grid = data.sim.mask_img.shape
    n_grid = n_grid[0] * n_grid[1] * n_grid[2]
    mean = raw.sum(axis=1, keepdims=True) / n_grid
    sd = np.sqrt((raw**2).sum(axis=1, keepdims=True) / n_grid - mean**2)
    lenient = score_maps((raw - mean) / sd, data.truth_masks, names, 3.6)["iou"].to_numpy()
    active = data.active(start)
    return {
        "iou": iou,
        "active": iou[active],
        "inactive": iou[~active],
        "corr": correlation(z_maps, data.truth).max(axis=0)[active],
        "lenient": lenient[active],
    }


def summarize(window_rows):
    """Means over (window, network) pairs, and the best-window reading."""
    if not window_rows:
        return {}
    parts = {key: np.concatenate([row[key] for row in window_rows]) for key in window_rows[0]}
    best = np.max([row["iou"] for row in window_rows], axis=0)
    return {
        "window_iou": parts["active"].mean(),
        "inactive_iou": parts["inactive"].mean() if parts["inactive"].size else np.nan,
        "window_corr": parts["corr"].mean(),
        "lenient_iou": parts["lenient"].mean(),
        "best_window_iou": best.mean(),
    }


# ---------------------------------------------------------------------- references
def references(data, eval_starts, n_components):
    rows = []
    truth_rows, sparse_rows, pca_rows = [], [], []
    for start in eval_starts:
        maps = data.truth_correlation_maps(start)
        truth_rows.append(recovery(data, zscore_maps(maps), start))
        sparse = np.where(maps >= np.quantile(maps, 0.95, axis=1, keepdims=True), maps, 0)
        sparse_rows.append(recovery(data, zscore_maps(sparse), start))
        window = data.window(start) - data.window(start).mean(axis=0)
        _, singular, vt = np.linalg.svd(window, full_matrices=False)
        maps = vt[:n_components] * singular[:n_components, None]
        skew = np.mean(_standardize_rows(maps) ** 3, axis=1)
        pca_rows.append(recovery(data, zscore_maps(maps * np.sign(skew)[:, None]), start))
    rows.append(_reference_row("truth-correlation maps (uses the truth)", truth_rows))
    rows.append(_reference_row("the same, top 5% of voxels kept (sparse)", sparse_rows))
    rows.append(_reference_row(f"window PCA ({n_components} maps)", pca_rows))
    func, mask = data.sim.func[0], data.sim.mask_img
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls, params in [
            ("SDL", SDLDecomposition, {}),
            ("ICA", ICADecomposition, {"n_init": 1}),
        ]:
            started = time.perf_counter()
            est = cls(n_components=n_components, mask=mask, random_state=0, **params).fit(func)
            static = score_maps(
                est.components_, data.truth_masks, list(range(len(data.truth))), 3.6
            )
            window_rows = []
            if name == "SDL":
                for start, maps in est.iter_window_maps(func, stride=int(eval_starts[1])):
                    window_rows.append(recovery(data, maps, start))
            row = _reference_row(name, window_rows)
            row.update(static_iou=static["iou"].mean(), seconds=time.perf_counter() - started)
            rows.append(row)
    return rows


def _reference_row(name, window_rows):
    return {"lever": name, **summarize(window_rows)}


# ---------------------------------------------------------------------- lever networks
class LeverNetwork(STCANetwork):
    """The paper's network with the levers' variants of its block and decoder."""

    def __init__(
        self,
        window_length,
        n_components,
        *,
        decoder="autoencoder",
        sa_input="f1",
        decoder_depth=4,
        batch_norm=True,
        sa_init_scale=1.0,
        **options,
    ):
        super().__init__(window_length, n_components, decoder=decoder, **options)
        self.sa_input = sa_input
        widths = self.config["autoencoder_widths"][:decoder_depth]
        if decoder == "autoencoder" and decoder_depth < 4:
            # The guiding autoencoder with fewer levels; depth 0 is a 1x1x1 linear decoder.
            self.autoencoder = GuidingAutoencoder(n_components, window_length, widths)
        if not batch_norm and self.autoencoder is not None:
            for module in self.autoencoder.modules():
                for name, child in module.named_children():
                    if isinstance(child, nn.BatchNorm3d):
                        setattr(module, name, nn.Identity())
        with torch.no_grad():
            for conv in (self.stca.spatial_conv1, self.stca.spatial_conv2):
                conv.weight.mul_(sa_init_scale)

    def block(self, x, mask):
        """``(f, CA, features gated by SA, SA)``."""
        stca = self.stca
        coordinates = brain_coordinates(mask)[None] if stca.coordinate_channels else None
        f = F.gelu(stca.embed(stca.with_coordinates(x, coordinates))) * mask
        weights = stca.channel_attention(f, mask)
        f1 = f * weights[:, :, None, None, None]
        source = f1 if self.sa_input == "f1" else f
        hidden = F.gelu(stca.spatial_conv1(stca.with_coordinates(source, coordinates))) * mask
        sa = stca.spatial_conv2(hidden) * mask
        return f, weights, source * torch.sigmoid(sa), sa

    def forward(self, x, mask=None):
        _, _, attended, sa = self.block(x, mask)
        if self.autoencoder is None:
            maps = self.decode_maps(x.flatten(2), sa.flatten(2), mask.reshape(1, 1, -1))
            reconstruction = regression_reconstruction(x.flatten(2), maps)
            return reconstruction.reshape(x.shape), sa
        return self.autoencoder(attended), sa

    def window_fbn_maps(self, x, mask, box):
        """The FBN maps of window boxes ``x``, as masked vectors ``(B, C, n_voxels)``."""
        _, weights, _, sa = self.block(x, mask)
        return weights, self.fbn_maps(box.to_vectors(x), box.to_vectors(sa))


def _normalize(window, how):
    if how == "window":
        return (window - window.mean(axis=0)) / (window.std(axis=0) + 1e-6)
    if how == "window_global":
        return (window - window.mean(axis=0)) / (window.std() + 1e-6)
    return window


def _gradient_norm(modules):
    squares = [p.grad.pow(2).sum() for m in modules for p in m.parameters() if p.grad is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


def _regularizers(sa, mask, n_brain, sparsity, decorrelation, box, heavy_tails=0.0, hoyer=0.0):
    """Per-window means of the attention's sparsity and of its maps' squared correlations.

    ``heavy_tails`` weighs the mean absolute value of each logit map z-scored over the brain:
    at unit variance it is smallest for a map with a few voxels far above a flat rest (the
    maps that z >= 3.6 can threshold), as FastICA's contrast rewards non-Gaussian sources.
    ``hoyer`` weighs the L1 / L2 ratio of each attention map ``sigmoid(SA)`` (Hoyer's
    sparseness, as in sparse NMF): the square root of the share of the brain a flat map
    covers, whatever the map's scale, which the least-squares time courses absorb.
    """
    batch, n_maps = sa.shape[:2]
    penalty = sa.new_zeros(())
    if heavy_tails:
        maps = box.to_vectors(sa)
        maps = (maps - maps.mean(dim=2, keepdim=True)) / (maps.std(dim=2, keepdim=True) + 1e-6)
        penalty = penalty + heavy_tails * maps.abs().mean()
    if hoyer:
        maps = box.to_vectors(torch.sigmoid(sa))
        ratio = maps.sum(dim=2) / (maps.norm(dim=2) * maps.shape[2] ** 0.5 + 1e-12)
        penalty = penalty + hoyer * ratio.mean()
    if sparsity:
        penalty = penalty + sparsity * (torch.sigmoid(sa) * mask).sum() / (
            n_brain * n_maps * batch
        )
    if decorrelation:
        maps = box.to_vectors(sa)  # (B, C, n_voxels)
        maps = maps - maps.mean(dim=2, keepdim=True)
        maps = maps / (maps.norm(dim=2, keepdim=True) + 1e-6)
        gram = maps @ maps.transpose(1, 2)
        off = gram - torch.diag_embed(gram.diagonal(dim1=1, dim2=2))
        penalty = penalty + decorrelation * off.pow(2).sum() / (batch * n_maps * (n_maps - 1))
    return penalty


def measure_maps(network, data, eval_starts, normalization, device="cpu"):
    """What the FBN maps follow, and the recovery, over the evaluation windows."""
    mask = data.box.mask_tensor(device)
    rows = {key: [] for key in ("recovery", "follow", "ca", "distinct")}
    static = np.zeros((network.config["n_components"], data.box.n_voxels))
    network.eval()
    with torch.no_grad():
        for start in eval_starts:
            window = data.window(start)
            x = data.box.to_box(torch.from_numpy(_normalize(window, normalization)))[None]
            weights, maps = network.window_fbn_maps(x.to(device), mask, data.box)
            z_maps = zscore_maps(maps[0].cpu().numpy())
            static += z_maps
            rows["ca"].append(weights[0].cpu().numpy())
            _, noise = data.network_share(start)
            targets = np.stack(
                [window.mean(axis=0), window.var(axis=0), data.edge_distance, noise]
            )
            follow = np.abs(correlation(z_maps, targets)).mean(axis=0)
            planted = np.abs(correlation(z_maps, data.truth[data.active(start)]))
            rows["follow"].append(
                [planted.max(axis=0).mean() if planted.size else np.nan, *follow]
            )
            pairwise = np.abs(correlation(z_maps, z_maps))
            eigen = np.linalg.eigvalsh(correlation(z_maps, z_maps))
            effective = eigen.sum() ** 2 / np.sum(eigen**2)
            n = len(z_maps)
            rows["distinct"].append([(pairwise.sum() - n) / (n * (n - 1)), effective])
            rows["recovery"].append(recovery(data, z_maps, start))
    static = zscore_maps(static / len(eval_starts))
    static_scores = score_maps(static, data.truth_masks, list(range(len(data.truth))), 3.6)
    follow = np.nanmean(rows["follow"], axis=0)
    distinct = np.mean(rows["distinct"], axis=0)
    return {
        **summarize(rows["recovery"]),
        "static_iou": static_scores["iou"].mean(),
        "follows_planted": follow[0],
        "follows_mean": follow[1],
        "follows_variance": follow[2],
        "follows_edge": follow[3],
        "follows_noise": follow[4],
        "map_abs_corr": distinct[0],
        "effective_maps": distinct[1],
        "ca_spread": np.std(rows["ca"], axis=0).mean(),
    }


def train_and_measure(
    data,
    steps,
    n_components,
    eval_starts,
    seed=0,
    learning_rate=1e-4,
    schedule=None,
    clip=None,
    batch_size=1,
    normalization="run",
    sparsity=0.0,
    decorrelation=0.0,
    heavy_tails=0.0,
    hoyer=0.0,
    n_subjects=1,
    device="cpu",
    return_network=False,
    **network_options,
):
    """Train one lever's network from ``seed`` and measure it before and after.

    ``n_subjects`` > 1 trains one network on the windows of the first ``n_subjects`` runs
    of ``data`` (group training, in a random order over all of them); the scores are those
    of the first run's windows, as always. ``return_network``: return ``(row, network)``.
    """
    torch.manual_seed(seed)
    network = LeverNetwork(data.window_length, n_components, **network_options).to(device)
    before = measure_maps(network, data, eval_starts, normalization, device)
    mask = data.box.mask_tensor(device)
    n_brain = mask.sum()
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    scheduler = None
    if schedule == "warmup_cosine":
        warmup = max(1, steps // 10)

        def factor(step):
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, steps - warmup)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    rng = np.random.RandomState(seed)
    if n_subjects > len(data.runs):
        raise ValueError(f"{n_subjects} subjects asked, the data has {len(data.runs)}")
    pairs = [(subject, start) for subject in range(n_subjects) for start in data.starts]
    # Random orders of all windows, one after the other, for steps * batch_size windows.
    n_orders = 1 + (steps * batch_size) // len(pairs)
    order = np.concatenate([rng.permutation(len(pairs)) for _ in range(n_orders)])
    losses, shares, reconstructed, grad_sa, grad_ae = [], [], [], [], []
    network.train()
    started = time.perf_counter()
    for step in range(steps):
        batch = [pairs[i] for i in order[step * batch_size : (step + 1) * batch_size]]
        windows = np.stack(
            [_normalize(data.window(s, subject), normalization) for subject, s in batch]
        )
        x = data.box.to_box(torch.from_numpy(windows)).to(device)
        reconstruction, sa = network(x, mask)
        loss = ((reconstruction - x) ** 2 * mask).sum() / (n_brain * x.shape[0] * x.shape[1])
        total = loss + _regularizers(
            sa, mask, n_brain, sparsity, decorrelation, data.box, heavy_tails, hoyer
        )
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_sa.append(_gradient_norm([network.stca.spatial_conv1, network.stca.spatial_conv2]))
        # The regression decoder has no weights: no ratio then.
        decoder = [network.autoencoder] if network.autoencoder is not None else []
        grad_ae.append(_gradient_norm(decoder) if decoder else np.nan)
        if clip:
            torch.nn.utils.clip_grad_norm_(network.parameters(), clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(float(loss.detach()))
        variance = float((x**2 * mask).sum() / (n_brain * x.shape[0] * x.shape[1]))
        reconstructed.append(1 - losses[-1] / variance)
        if batch[0][0] == 0:  # the share is known for the first run
            shares.append(np.mean([data.network_share(s)[0] for _, s in batch]))
    seconds = time.perf_counter() - started
    after = measure_maps(network, data, eval_starts, normalization, device)
    quarter = max(1, steps // 4)
    row = {
        "loss_start": np.mean(losses[:quarter]),
        "loss_end": np.mean(losses[-quarter:]),
        "reconstructed_end": np.mean(reconstructed[-quarter:]),
        "network_share": np.mean(shares),
        "grad_sa_over_ae": np.mean(grad_sa) / max(np.mean(grad_ae), 1e-12),
        "steps": steps,
        "seconds": seconds,
    }
    row.update(after)
    row.update(
        {
            f"untrained_{k}": before[k]
            for k in ("window_iou", "window_corr", "best_window_iou", "follows_planted")
        }
    )
    return (row, network) if return_network else row


COLUMNS = {
    "window_iou": "window IoU",
    "inactive_iou": "inactive IoU",
    "window_corr": "window corr",
    "static_iou": "static IoU",
    "lenient_iou": "lenient IoU",
    "best_window_iou": "best-window IoU",
    "loss_end": "loss (last 1/4)",
    "reconstructed_end": "var. reconstructed",
    "network_share": "var. of networks",
    "grad_sa_over_ae": "grad SA / AE",
    "follows_planted": "|r| planted",
    "follows_mean": "|r| mean",
    "follows_variance": "|r| variance",
    "follows_edge": "|r| edge",
    "follows_noise": "|r| noise",
    "map_abs_corr": "|r| between maps",
    "effective_maps": "effective maps",
    "ca_spread": "CA sd over windows",
    "untrained_window_corr": "untrained corr",
    "untrained_best_window_iou": "untrained best-window IoU",
    "seconds": "train s",
}


def main(argv=None):
    args = parse_args(argv)
    threads = default_threads()
    if args.threads:
        torch.set_num_threads(threads := args.threads)
    levers = list(args.levers)
    seeds = args.seeds or [args.seed]
    print(header(threads, f"{args.steps} steps, {args.n_components} maps, seeds {seeds}"))
    print(f"device: {args.device}")
    n_subjects = max(LEVERS[lever].get("n_subjects", 1) for lever in levers)
    for name in args.configs:
        data = Data(name, n_subjects=n_subjects)
        eval_starts = data.starts[:: args.eval_stride]
        print(f"\n### {name}: {data.sim.description}\n")
        rows = [] if args.no_references else references(data, eval_starts, args.n_components)
        for row in rows:
            _write_json(args.json, {"config": name, "seed": None, **row})
        for lever in levers:
            for seed in seeds:
                row = train_and_measure(
                    data,
                    args.steps,
                    args.n_components,
                    eval_starts,
                    seed=seed,
                    device=args.device,
                    **LEVERS[lever],
                )
                row["lever"] = lever if len(seeds) == 1 else f"{lever} (seed {seed})"
                rows.append(row)
                _write_json(args.json, {"config": name, "seed": seed, "name": lever, **row})
                print(
                    f"  {row['lever']}: window IoU {row['window_iou']:.3f}, "
                    f"corr {row['window_corr']:.3f}, {row['seconds']:.1f} s",
                    flush=True,
                )
        table = pd.DataFrame(rows).set_index("lever")
        table = table[[c for c in COLUMNS if c in table]].rename(columns=COLUMNS)
        print(table.to_markdown(floatfmt=".3f"), flush=True)


def _write_json(path, row):
    if path is not None:
        with path.open("a") as stream:
            stream.write(json.dumps(row, default=float) + "\n")


if __name__ == "__main__":
    main()
