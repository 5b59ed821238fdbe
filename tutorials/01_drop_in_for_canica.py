# %% [markdown]
# # 1. STCA as a drop-in for nilearn's CanICA
#
# A typical nilearn script decomposes resting-state runs with `CanICA`. `STCADecomposition`
# takes the same data, the same masking parameters and gives the same attributes
# (`components_img_`, `transform`, `inverse_transform`, `score`), plus maps per sliding window.
#
# The data are simulated (`nilearn_stca.datasets.simulate_dynamic_rsfmri`) so that we know the
# true networks. This notebook runs small by default (it is executed by the test suite); set
# the environment variable `NILEARN_STCA_TUTORIAL_FULL=1` for the paper's 4 mm, 1200-scan size
# (hours on a CPU).

# %%
import os

import matplotlib.pyplot as plt
from nilearn.decomposition import CanICA
from nilearn.image import index_img
from nilearn.plotting import plot_stat_map

from nilearn_stca import STCADecomposition
from nilearn_stca.datasets import simulate_dynamic_rsfmri
from nilearn_stca.evaluation.truth import score_against_truth

FULL_SIZE = os.environ.get("NILEARN_STCA_TUTORIAL_FULL") == "1"
data = simulate_dynamic_rsfmri(
    n_scans=1200 if FULL_SIZE else 120,
    resolution=4 if FULL_SIZE else 8,
    snr=3.0,
    random_state=0,
)
print(data.description)

# %% [markdown]
# ## The nilearn way: CanICA

# %%
canica = CanICA(n_components=10, mask=data.mask_img, smoothing_fwhm=None, random_state=0)
canica.fit(data.func)
print(canica.components_img_.shape)

# %% [markdown]
# ## The same with STCA
#
# Only the class changes. The defaults are the paper's windows (40 scans, stride 1), 64 maps
# and one epoch, with three measured departures (the regression decoder, learning rate 1e-3,
# clustered static maps; see the README). `STCADecomposition(**PAPER_SETTINGS)` trains as the
# paper does.

# %%
stca = STCADecomposition(
    n_components=64 if FULL_SIZE else 10,
    mask=data.mask_img,
    random_state=0,
)
stca.fit(data.func)
print(stca.components_img_.shape, "after", stca.n_steps_, "training steps")

# %% [markdown]
# Both estimators answer the same questions.

# %%
for name, estimator in (("CanICA", canica), ("STCA", stca)):
    (loadings,) = estimator.transform(data.func[0])
    print(
        f"{name}: loadings {loadings.shape}, explained variance {estimator.score(data.func):.3f}"
    )

# %% [markdown]
# ## Side by side
#
# For each planted network, the best-matching map of each method (z-scored maps for STCA;
# CanICA's maps are z-scored here too, and given the positive tail, before thresholding).

# %%
from nilearn_stca.maps import flip_to_positive_tail, zscore_maps  # noqa: E402

ica_z = zscore_maps(flip_to_positive_tail(canica.components_))
scores = {
    "CanICA": score_against_truth(
        ica_z, data.maps_img, data.mask_img, network_names=data.network_names
    ),
    "STCA": score_against_truth(
        stca.components_, data.maps_img, data.mask_img, network_names=data.network_names
    ),
}
for name, table in scores.items():
    print(name, "mean IoU with the planted networks:", round(table.iou.mean(), 3))

# %%
fig, axes = plt.subplots(3, 2, figsize=(12, 7))
for row, network in enumerate(range(3)):
    for column, (name, maps_img) in enumerate(
        (("CanICA", canica.masker_.inverse_transform(ica_z)), ("STCA", stca.components_img_))
    ):
        component = int(scores[name].component[network])
        plot_stat_map(
            index_img(maps_img, component),
            threshold=3.6,
            axes=axes[row, column],
            title=f"{name}: {data.network_names[network]}",
            colorbar=False,
        )
plt.show()

# %% [markdown]
# ## Dynamic maps
#
# STCA also gives maps per window, streamed one window at a time.

# %%
for start, z_maps in stca.iter_window_maps(data.func[0]):
    if start % 20 == 0:
        print(
            f"window at scan {start}: {(z_maps >= stca.fbn_threshold).sum(axis=1)[:5]} FBN voxels"
        )
