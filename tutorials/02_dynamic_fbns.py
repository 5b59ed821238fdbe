# %% [markdown]
# # 2. Dynamic functional brain networks
#
# STCA's point is *dynamic* FBNs: one set of maps per sliding window of the run. Here we fit
# STCA on one simulated run whose planted networks fade in and out, stream the maps of every
# window, threshold them into FBNs, and check, window by window, how well the maps follow one
# planted network while it switches on and off. Sparse dictionary learning (SDL) on the same
# windows gives a point of comparison.
#
# Small by default (8 mm, 120 scans, 16 maps: minutes on a CPU); set
# `NILEARN_STCA_TUTORIAL_FULL=1` for 4 mm, 1200 scans and the paper's 64 maps (hours on a CPU).

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from nilearn.image import index_img
from nilearn.plotting import find_xyz_cut_coords, plot_roi
from sklearn.exceptions import ConvergenceWarning

from nilearn_stca import STCADecomposition
from nilearn_stca.baselines import SDLDecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation.truth import score_windows_against_truth
from nilearn_stca.windows import window_starts

# DictLearning's lasso rarely converges fully on 40-scan windows; its warnings are noise here.
warnings.filterwarnings("ignore", category=ConvergenceWarning)
FULL_SIZE = os.environ.get("NILEARN_STCA_TUTORIAL_FULL") == "1"
WINDOW_LENGTH = 40
SDL_STRIDE = 8  # SDL maps every 8th window only (see below)
data = simulate_dynamic_rsfmri(
    n_scans=1200 if FULL_SIZE else 120,
    resolution=4 if FULL_SIZE else 8,
    snr=3.0,
    random_state=0,
)
img, amplitudes = data.func[0], data.amplitudes[0]
print(data.description)

# %% [markdown]
# ## Sliding windows
#
# As in the paper, a window is 40 consecutive scans and windows start one scan apart (stride
# 1), so a run of `n` scans has `n - 39` windows. Each planted network has an on/off envelope
# (`data.amplitudes`); a window "sees" a network when its envelope, averaged over the window,
# exceeds 0.5.

# %%
starts = window_starts(img.shape[3], WINDOW_LENGTH, 1)
window_envelopes = np.array([amplitudes[s : s + WINDOW_LENGTH].mean(axis=0) for s in starts])
print(f"{len(starts)} windows of {WINDOW_LENGTH} scans")
# The network whose presence changes most from window to window.
network = int(np.argmax(window_envelopes.std(axis=0)))
name = data.network_names[network]

fig, (top, bottom) = plt.subplots(
    2, 1, figsize=(10, 4.5), sharex=True, gridspec_kw={"height_ratios": (3, 1)}
)
top.imshow(amplitudes.T, aspect="auto", cmap="Greys", interpolation="nearest")
top.set_yticks(range(len(data.network_names)), data.network_names, fontsize=7)
top.set_title("On/off envelopes of the planted networks (black: on)")
for row, start in enumerate(starts[::10]):
    bottom.plot([start, start + WINDOW_LENGTH - 1], [row, row], lw=3)
bottom.set(yticks=[], xlabel="scan", title="Every 10th window (a window starts at every scan)")
plt.show()

# %% [markdown]
# ## Fitting STCA
#
# STCA learns per optimizer step, one window per step: the paper's single epoch over a
# 1200-scan run is 1,161 steps, this short run's far fewer.

# %%
stca = STCADecomposition(
    n_components=64 if FULL_SIZE else 16,
    window_length=WINDOW_LENGTH,
    window_stride=1,
    mask=data.mask_img,
    random_state=0,
)
stca.fit(data.func)
print(f"{stca.n_steps_} steps, loss {stca.loss_curve_[0]:.3f} -> {stca.loss_curve_[-1]:.3f}")

# %% [markdown]
# ## Streaming the window maps
#
# `iter_window_maps` yields `(start_scan, z_maps)` one window at a time: only one window's
# maps are in memory. At the paper's size (1,160 windows x 64 maps x ~29,000 voxels at 4 mm)
# all of a subject's window maps at once would take about 9 GB. Here each window is scored
# against the planted networks as it comes and then dropped: IoU of the best-matching FBN
# (z >= 3.6) and the best correlation of any unthresholded map with the planted map.
# `active_threshold=-1` scores every network in every window, on or off.


# %%
def score(estimator, stride):
    return score_windows_against_truth(
        estimator.iter_window_maps(img, stride=stride),
        data.maps_img,
        data.mask_img,
        amplitudes,
        WINDOW_LENGTH,
        active_threshold=-1.0,
        network_names=data.network_names,
    )


def active_pairs(scores):
    """Rows of (window, network) pairs where the network is on, as in the README."""
    networks = scores.network.map(data.network_names.index)
    return scores[window_envelopes[scores.start_scan, networks] > 0.5]


stca_scores = score(stca, stride=1)
print("STCA, mean over (window, active network) pairs:")
print(active_pairs(stca_scores)[["iou", "correlation"]].mean().round(3).to_string())

# %% [markdown]
# ## The same windows with SDL
#
# `SDLDecomposition` fits a fresh dictionary on each window (nilearn's `DictLearning`); that
# costs about a second per window on a CPU, so every 8th window is mapped.

# %%
sdl = SDLDecomposition(n_components=stca.n_components, mask=data.mask_img, random_state=0)
sdl.fit(data.func)
sdl_scores = score(sdl, stride=SDL_STRIDE)
print("SDL, mean over (window, active network) pairs:")
print(active_pairs(sdl_scores)[["iou", "correlation"]].mean().round(3).to_string())

# %% [markdown]
# ## One network fading in and out
#
# The planted network's envelope beside, for each window (placed at its centre scan), the
# best match among that window's maps: the IoU of the best FBN and the best correlation of an
# unthresholded map. If a method follows the network, its match rises and falls with the
# envelope; the printed correlation between the two curves measures that. STCA's window maps
# follow the networks less closely than SDL's at this budget (see the README's "What to
# expect").

# %%
centre = WINDOW_LENGTH // 2
fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
axes[0].plot(amplitudes[:, network], color="grey", lw=1, label="envelope")
axes[0].fill_between(
    starts + centre, window_envelopes[:, network], color="grey", alpha=0.4, label="window mean"
)
axes[0].set(ylabel="envelope", title=f"Planted network: {name}")
axes[0].legend(fontsize=8)
for label, scores in (("STCA", stca_scores), ("SDL", sdl_scores)):
    rows = scores[scores.network == name]
    axes[1].plot(rows.start_scan + centre, rows.correlation, "o-", ms=3, label=f"{label} r")
    axes[1].plot(rows.start_scan + centre, rows.iou, "--", label=f"{label} IoU")
    tracking = np.corrcoef(window_envelopes[rows.start_scan, network], rows.correlation)[0, 1]
    print(f"{label}: correlation of its best match with the envelope over windows {tracking:.2f}")
axes[1].set(xlabel="scan (window centre)", ylabel="best match", ylim=(-0.05, 1))
axes[1].legend(ncol=4, fontsize=8)
plt.show()

# %% [markdown]
# ## FBNs of a few windows
#
# `fbns_img(img, start_scan)` thresholds one window's maps at z >= 3.6 into binary FBNs. For
# a window where the planted network is on and one where it is off, the FBN of the map that
# correlates best with it (its outline in green), for each method.

# %%
candidates = starts[::SDL_STRIDE]  # the windows SDL mapped
envelope = window_envelopes[candidates, network]
shown = sorted([candidates[np.argmax(envelope)], candidates[np.argmin(envelope)]])
fig, axes = plt.subplots(len(shown), 2, figsize=(12, 2.6 * len(shown)), squeeze=False)
planted = index_img(data.maps_img, network)
cut_coords = find_xyz_cut_coords(planted)
for row, start in enumerate(shown):
    for column, (label, estimator, scores) in enumerate(
        (("STCA", stca, stca_scores), ("SDL", sdl, sdl_scores))
    ):
        match = scores[(scores.network == name) & (scores.start_scan == start)].iloc[0]
        fbn = index_img(estimator.fbns_img(img, int(start)), int(match.correlated_component))
        n_voxels = int(np.asarray(fbn.dataobj).sum())
        with warnings.catch_warnings():
            # An FBN may be empty (no voxel at z >= 3.6): nilearn then warns as it plots.
            warnings.filterwarnings("ignore", "empty mask|.*masked element", UserWarning)
            display = plot_roi(fbn, axes=axes[row, column], cut_coords=cut_coords)
        display.title(
            f"{label}, window {start} (envelope {window_envelopes[start, network]:.1f}): "
            f"{n_voxels} voxels, r = {match.correlation:.2f}",
            size=9,
        )
        display.add_contours(planted, levels=[0.5], colors="limegreen", linewidths=1)
plt.show()
