# %% [markdown]
# # 5. Brain states of STCA, ICA and SDL
#
# Dynamic-connectivity studies summarise the windows of a run as a few recurring *brain
# states* (Allen et al. 2014: k-means on windowed patterns), then describe each subject by
# how long it stays in each state and how it moves between them. Here the windows' network
# maps of the three methods are grouped into states, and the states are scored against
# the truth: the simulator's state mode plants discrete states (each a set of co-active
# networks) and returns the state of every scan.
#
# Small by default (2 subjects of 240 scans at 8 mm, 6 networks: a minute or two on a
# CPU); set `NILEARN_STCA_TUTORIAL_FULL=1` for 3 subjects of 1200 scans at 4 mm with 10
# networks, the paper's 40-scan windows and each method's default number of maps (hours
# on a CPU).

# %%
import os
import shutil
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from nilearn.image import index_img, math_img
from nilearn.plotting import plot_stat_map
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Bunch

from nilearn_stca import STCADecomposition, write_window_sweep
from nilearn_stca.baselines import ICADecomposition, SDLDecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation import compare
from nilearn_stca.evaluation.state_figures import plot_occupancy, plot_states
from nilearn_stca.evaluation.truth import TRUTH_THRESHOLD
from nilearn_stca.states import (
    fit_map_states,
    fit_states,
    planted_window_states,
    presence_table,
    score_states,
    state_metrics,
)
from nilearn_stca.windows import window_starts

# FastICA and DictLearning's lasso rarely converge fully on short windows: noise here.
warnings.filterwarnings("ignore", category=ConvergenceWarning)
FULL_SIZE = os.environ.get("NILEARN_STCA_TUTORIAL_FULL") == "1"
N_STATES = 3
WINDOW_LENGTH = 40 if FULL_SIZE else 20
SWEEP_STRIDE = 5  # scans between the windows whose maps are scored and grouped
METHODS = {"ica": "ICA", "sdl": "SDL", "stca": "STCA"}
data = simulate_dynamic_rsfmri(
    n_subjects=3 if FULL_SIZE else 2,
    n_scans=1200 if FULL_SIZE else 240,
    resolution=4 if FULL_SIZE else 8,
    networks="procedural",
    n_networks=10 if FULL_SIZE else 6,
    n_states=N_STATES,
    snr=3.0,
    random_state=0,
)
subjects = [f"sub-{i:02d}" for i in range(1, len(data.func) + 1)]
print(data.description)

# %% [markdown]
# ## The planted states
#
# `data.state_networks` says which networks each state holds (shared by all subjects);
# `data.states` gives each subject's state at every scan. The states last tens of scans
# (here 24 to 72: the simulator's 30 to 90 scans, shortened for a run under 300 scans).
# `state_metrics` gives, per state, the occupancy (`temporal_fraction`), the mean dwell
# time (`persistence`, in scans here, and in seconds with `t_r`) and how many times the
# state is entered (`counts`), with neurocaps' names.

# %%
print(pd.DataFrame(data.state_networks.astype(int), columns=data.network_names).to_string())
for subject, sequence in zip(subjects, data.states, strict=True):
    metrics = state_metrics(sequence, N_STATES, t_r=data.t_r)
    print(f"\n{subject}: {metrics.transition_frequency} switches")
    print(metrics.per_state.round(2).to_string())

# %% [markdown]
# The methods' maps are scored every `SWEEP_STRIDE` scans, on windows of `WINDOW_LENGTH`
# scans; the planted state of a window is the state of most of its scans
# (`planted_window_states`). Drawn as `plot_states` draws a method's states, with each
# state's profile the presence a perfect method would find: 1 for the state's networks,
# 0 for the others.

# %%
n_scans = data.func[0].shape[3]
starts = window_starts(n_scans, WINDOW_LENGTH, SWEEP_STRIDE)
planted = {
    subject: planted_window_states(sequence, starts, WINDOW_LENGTH)
    for subject, sequence in zip(subjects, data.states, strict=True)
}
planted_states = Bunch(
    n_states=N_STATES,
    centroids=pd.DataFrame(
        data.state_networks.astype(float),
        columns=data.network_names,
        index=pd.Index(range(N_STATES), name="state"),
    ),
    sequences=planted,
    starts={subject: starts for subject in subjects},
)
plot_states(planted_states, title="Planted states")
plt.show()

# %% [markdown]
# ## Network presence in every window
#
# `compare(..., windows=True)` fits each method on each subject and scores the maps of its
# sliding windows against the planted networks (IoU of each network's best-matching map
# at z >= 3.6). What makes the small run small: every 5th window is scored
# (`sweep_stride`; STCA still trains on every window), 6 maps per method (as many as
# planted networks) and 2 FastICA runs per CanICA fit instead of 10.

# %%
started = time.perf_counter()
results = compare(
    data.func,
    methods=tuple(METHODS),
    templates=data.maps_img,  # the planted networks, binarised where a map reaches 0.5
    template_threshold=TRUTH_THRESHOLD,
    template_names=data.network_names,
    mask_img=data.mask_img,
    subjects=subjects,
    window_length=WINDOW_LENGTH,
    window_stride=1,
    sweep_stride=SWEEP_STRIDE,
    n_components=None if FULL_SIZE else 6,
    method_params=None if FULL_SIZE else {"ica": {"n_init": 2}},
    verbose=0,
)
print(f"compare: {time.perf_counter() - started:.0f} s")
windows = results[results.window != "static"]
print("mean IoU of the window maps with the planted networks:")
print(windows.groupby("method").iou.mean().rename(METHODS).round(3).to_string())

# %% [markdown]
# `presence_table` turns one subject's rows for one method into a windows x networks table:
# the presence vector of every window. A network that a method finds while it is on, and
# not while it is off, makes the vectors of the states differ.

# %%
presence = {
    method: {subject: presence_table(results, subject, method) for subject in subjects}
    for method in METHODS
}
presence["sdl"]["sub-01"].head().round(2)

# %% [markdown]
# ## States from the presence vectors
#
# `fit_states` runs k-means on the presence vectors of all windows of all subjects of one
# method, so that the states are shared by the subjects, as in group dFNC. The number of
# states is given here (the planted 3); without it `fit_states` picks it by silhouette. A
# method's state numbers are its own: its state 0 is not the planted state 0.

# %%
states = {method: fit_states(presence[method], n_states=N_STATES) for method in METHODS}
for method, label in METHODS.items():
    plot_states(states[method], title=label)
plt.show()

# %% [markdown]
# ## Occupancy, dwell time and transitions per subject
#
# `state_metrics` on each subject's sequence of windows: `persistence` is in windows, and in
# seconds with `t_r` and `step`, the scans between two scored windows. On every subject the
# occupancies sum to 1.

# %%
tables = []
for method, label in METHODS.items():
    for subject in subjects:
        metrics = state_metrics(
            states[method].sequences[subject], N_STATES, t_r=data.t_r, step=SWEEP_STRIDE
        )
        table = metrics.per_state.reset_index().assign(
            method=method, subject=subject, switches=metrics.transition_frequency
        )
        tables.append(table)
        print(
            f"{label} {subject}: occupancy sums to {table.temporal_fraction.sum():.2f}, "
            f"{metrics.transition_frequency} switches"
        )
state_table = pd.concat(tables, ignore_index=True)
state_table.round(2).head(N_STATES)

# %%
plot_occupancy(state_table, title="Occupancy of each method's states")
plt.show()

# %% [markdown]
# ## Against the planted states
#
# `score_states` compares a recovered sequence with the planted one: the adjusted Rand
# index (1 for the same grouping of the windows whatever the state numbers, about 0 by
# chance) and the occupancy error (the mean absolute difference between the sorted
# occupancies). For scale, the same labels shuffled over the windows give the chance level.

# %%
rng = np.random.default_rng(0)


def score_table(found):
    """Mean over subjects of the scores of each method's state sequences."""
    rows = []
    for method, label in METHODS.items():
        for subject in subjects:
            sequence = found[method].sequences[subject]
            scores = score_states(sequence, planted[subject], N_STATES)
            shuffled = score_states(rng.permutation(sequence), planted[subject], N_STATES)
            rows.append(
                {**scores, "method": label, "shuffled_adjusted_rand": shuffled["adjusted_rand"]}
            )
    return pd.DataFrame(rows).groupby("method", sort=False).mean()


presence_scores = score_table(states)
print("States from the presence vectors:")
print(presence_scores.to_markdown(floatfmt=".2f"))

# %% [markdown]
# ## States from the window maps themselves
#
# The presence vectors need templates. Without them, `fit_map_states` groups the windows'
# FBN maps themselves: each window becomes the map of the voxels in any of its FBNs, the
# maps are reduced by incremental PCA and grouped by k-means. It reads the maps from window
# sweeps, one window at a time, so memory does not grow with the number of windows.
# `write_window_sweep(..., fit=True)` fits a method on one run and writes the maps of its
# windows in the same pass (the same settings as `compare` above).


# %%
def estimator(method):
    settings = dict(
        mask=data.mask_img, window_length=WINDOW_LENGTH, window_stride=1, random_state=0
    )
    if not FULL_SIZE:
        settings["n_components"] = 6
        if method == "ica":
            settings["n_init"] = 2
    classes = {"ica": ICADecomposition, "sdl": SDLDecomposition, "stca": STCADecomposition}
    return classes[method](**settings)


shutil.rmtree("sweeps", ignore_errors=True)
os.mkdir("sweeps")
started = time.perf_counter()
map_states = {}
for method in METHODS:
    sweeps = {
        subject: write_window_sweep(
            estimator(method), img, f"sweeps/{subject}_{method}", stride=SWEEP_STRIDE, fit=True
        )
        for subject, img in zip(subjects, data.func, strict=True)
    }
    map_states[method] = fit_map_states(sweeps, n_states=N_STATES)
print(f"sweeps and map states: {time.perf_counter() - started:.0f} s")
map_scores = score_table(map_states)
print("States from the window maps:")
print(map_scores.to_markdown(floatfmt=".2f"))

# %% [markdown]
# `state_maps_img` holds one map per state: the share of the state's windows whose FBNs
# hold each voxel. For the method whose map states follow the planted ones best, each state
# map beside the outline of the planted state that most of its windows are in.

# %%
best = map_scores.adjusted_rand.idxmax()
method = {label: name for name, label in METHODS.items()}[best]
found = np.concatenate([map_states[method].sequences[s] for s in subjects])
truth = np.concatenate([planted[s] for s in subjects])
fig, axes = plt.subplots(N_STATES, 1, figsize=(8, 2.4 * N_STATES))
for state, ax in enumerate(axes):
    match = np.bincount(truth[found == state], minlength=N_STATES).argmax()
    networks = np.flatnonzero(data.state_networks[match])
    planted_map = math_img("np.max(img, axis=-1)", img=index_img(data.maps_img, networks))
    display = plot_stat_map(
        index_img(map_states[method].state_maps_img, state),
        bg_img=None,
        axes=ax,
        vmax=1,
        cmap="hot",
        title=f"{best} state {state} (mostly planted state {match})",
    )
    display.add_contours(planted_map, levels=[TRUTH_THRESHOLD], colors="limegreen")
plt.show()

# %% [markdown]
# ## What the numbers say
#
# The scores, both ways, side by side:

# %%
summary = pd.concat({"presence": presence_scores, "maps": map_scores}, names=["features"])
columns = ["features", "method", "adjusted_rand", "occupancy_error"]
print(summary.reset_index()[columns].to_markdown(index=False, floatfmt=".2f"))
best_presence = presence_scores.adjusted_rand.idxmax()
print(
    f"best from the presence vectors: {best_presence}, adjusted Rand index "
    f"{presence_scores.adjusted_rand.max():.2f}"
)

# %% [markdown]
# On this small run SDL's window states follow the planted ones best, both ways (an
# adjusted Rand index of about 0.6 to 0.7, against about 0 for the shuffled labels), and
# their occupancies are within a few hundredths of the planted ones. STCA's follow them
# only in part (about 0.2), as its window maps match the planted networks less well than
# SDL's (the mean window IoU above). ICA's are at chance: on 20-scan windows CanICA's 6 maps
# hardly overlap any planted network (a mean window IoU near 0), k-means then puts almost
# every window in one state, hence its large occupancy error.
#
# These are one seed, one setting of each method and a few dozen windows per subject. The
# scores move by a tenth or more with another seed, and with the number of maps: with 10
# maps per method (measured apart from this tutorial), ICA's presence states reach an
# adjusted Rand index of about 0.25 while its window IoU stays near 0.02, and STCA's about
# 0.18; SDL stays first. The occupancies, dwell times and transitions of a method's states
# are only as good as its window maps; longer runs and windows (the full size) give each
# method more scans per window to find its networks.
