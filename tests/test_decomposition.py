import pickle

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_STCA
from nilearn.maskers import NiftiMasker
from nilearn.masking import apply_mask
from sklearn.base import clone

from nilearn_stca import STCADecomposition
from nilearn_stca.maps import zscore_maps


def test_fitted_attributes(fitted, tiny_run):
    img, mask = tiny_run
    n_voxels = int(mask.get_fdata().sum())
    assert fitted.components_.shape == (3, n_voxels)
    assert fitted.components_img_.shape == (12, 12, 12, 3)
    assert fitted.n_elements_ == 3  # as in nilearn: the columns of transform()
    assert fitted.n_steps_ == len(fitted.loss_curve_) == 9  # starts 0, 5, ..., 40
    assert np.isfinite(fitted.loss_curve_).all()
    np.testing.assert_allclose(fitted.components_.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(fitted.components_.std(axis=1), 1, atol=1e-4)
    np.testing.assert_array_equal(fitted.mask_img_.get_fdata(), mask.get_fdata())


def test_mean_static_maps_are_the_mean_of_window_z_maps(tiny_run):
    img, mask = tiny_run
    est = STCADecomposition(mask=mask, static_maps="mean", **TINY_STCA).fit(img)
    windows = list(est.iter_window_maps(img))
    assert [start for start, _ in windows] == list(range(0, 41, 5))
    expected = zscore_maps(np.mean([maps for _, maps in windows], axis=0))
    np.testing.assert_allclose(est.components_, expected, atol=1e-5)


def test_clustered_static_maps_are_the_fbn_frequency_of_each_cluster(fitted, tiny_run):
    img, _ = tiny_run
    fbns = np.concatenate([maps >= 3.6 for _, maps in fitted.iter_window_maps(img)])
    fbns = fbns[fbns.any(axis=1)].astype(np.float32)
    # Each static map is a z-scored mean of some of the window FBNs: every FBN voxel of a
    # cluster is positive in its map, and the maps' supports cover every window FBN voxel.
    assert fitted.components_.shape == (3, fbns.shape[1])
    support = (fitted.components_ > fitted.components_.min(axis=1, keepdims=True)).any(axis=0)
    np.testing.assert_array_equal(support, fbns.any(axis=0))
    # The centroids are exact cluster means: rebuilding them from the labels gives them.
    from sklearn.cluster import KMeans

    from nilearn_stca.stca.static_maps import clustered_static_maps

    again = clustered_static_maps(iter([fbns * 10.0]), 3, 3.6, random_state=7)
    labels = KMeans(3, n_init=3, random_state=7).fit(fbns).labels_
    order = np.argsort(-np.bincount(labels, minlength=3), kind="stable")
    expected = zscore_maps(np.stack([fbns[labels == k].mean(axis=0) for k in order]))
    np.testing.assert_allclose(again, expected, atol=1e-5)


def test_window_maps(fitted, tiny_run):
    img, mask = tiny_run
    maps = dict(fitted.iter_window_maps(img))
    one = fitted.window_maps_img(img, 15)
    assert one.shape == (12, 12, 12, 3)
    np.testing.assert_allclose(apply_mask(one, mask), maps[15], atol=1e-5)
    np.testing.assert_allclose(maps[15].mean(axis=1), 0, atol=1e-5)
    # A window start between two strided windows is fine too; the last start is 40.
    assert fitted.window_maps_img(img, 40).shape == (12, 12, 12, 3)
    with pytest.raises(ValueError, match="start_scan=41"):
        fitted.window_maps_img(img, 41)
    fbns = fitted.fbns_img(img, 15).get_fdata()
    np.testing.assert_array_equal(
        fbns.reshape(-1, 3)[mask.get_fdata().ravel() > 0].T, maps[15] >= fitted.fbn_threshold
    )
    assert set(np.unique(fitted.fbns_img().get_fdata())) <= {0, 1}


@pytest.mark.parametrize("stride", [None, 10])
def test_fit_iter_window_maps_maps_each_window_once(fitted, tiny_run, stride, monkeypatch):
    """One pass: the same fit and maps as fit + iter_window_maps, each window mapped once."""
    from nilearn_stca.stca import decomposition

    img, mask = tiny_run
    expected = dict(fitted.iter_window_maps(img, stride=stride))
    mapped = []
    original = decomposition.iter_attention_logits

    def counting(network, run, starts, *args, **kwargs):
        for start, logits in original(network, run, starts, *args, **kwargs):
            mapped.append(start)
            yield start, logits

    monkeypatch.setattr(decomposition, "iter_attention_logits", counting)
    estimator = STCADecomposition(mask=mask, **TINY_STCA)
    windows = estimator.fit_iter_window_maps(img, stride=stride)
    assert estimator.n_steps_ == fitted.n_steps_ and not hasattr(estimator, "components_")
    got = dict(windows)
    assert sorted(got) == sorted(expected)
    for start in expected:
        np.testing.assert_array_equal(got[start], expected[start])
    np.testing.assert_array_equal(estimator.components_, fitted.components_)
    training_windows = list(range(0, 41, 5))
    assert mapped == training_windows + ([] if stride is None else [0, 10, 20, 30, 40])


def test_transform_inverse_transform_score(fitted, tiny_run):
    img, _ = tiny_run
    (loadings,) = fitted.transform(img)
    data = apply_mask(img, fitted.mask_img_)
    expected = np.linalg.lstsq(fitted.components_.T, data.T, rcond=None)[0].T
    np.testing.assert_allclose(loadings, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    (back,) = fitted.inverse_transform([loadings])
    np.testing.assert_allclose(
        apply_mask(back, fitted.mask_img_), loadings @ fitted.components_, atol=1e-3
    )
    # score: the cleaned run regressed, scan by scan, on the unit maps and a constant; the
    # maps' part alone is subtracted (nilearn's definition), computed here independently.
    cleaned = fitted.masker_.transform(img).astype(np.float64)
    unit = fitted.components_ / np.linalg.norm(fitted.components_, axis=1, keepdims=True)
    design = np.column_stack([unit.T, np.ones(unit.shape[1])])
    coef = np.linalg.lstsq(design, cleaned.T, rcond=None)[0][:-1]
    expected_score = 1 - np.sum((cleaned - coef.T @ unit) ** 2) / np.sum(cleaned**2)
    assert fitted.score(img) == pytest.approx(max(0.0, expected_score), rel=1e-5, abs=1e-7)
    per_component = fitted.score([img, img], per_component=True)
    both = np.vstack([cleaned, cleaned])
    expected_per_map = [
        max(0.0, 1 - np.var(both - np.outer(both @ u, u)) / np.var(both)) for u in unit
    ]
    np.testing.assert_allclose(per_component, expected_per_map, rtol=1e-5, atol=1e-7)
    with pytest.raises(TypeError, match="loadings must be a list"):
        fitted.inverse_transform(loadings)


def test_same_random_state_gives_identical_components(fitted, tiny_run):
    img, mask = tiny_run
    again = STCADecomposition(mask=mask, **TINY_STCA).fit(img)
    np.testing.assert_array_equal(again.components_, fitted.components_)
    assert again.loss_curve_ == fitted.loss_curve_
    other = STCADecomposition(mask=mask, **{**TINY_STCA, "random_state": 1}).fit(img)
    assert not np.array_equal(other.components_, fitted.components_)


def test_pickle_save_load_give_equal_outputs(fitted, tiny_run, tmp_path):
    img, _ = tiny_run
    reference = fitted.window_maps_img(img, 5).get_fdata()
    unpickled = pickle.loads(pickle.dumps(fitted))
    path = fitted.save(tmp_path / "stca.pkl")
    loaded = STCADecomposition.load(path, allow_pickle=True)
    for copy in (unpickled, loaded):
        assert next(copy.network_.parameters()).device.type == "cpu"
        np.testing.assert_array_equal(copy.components_, fitted.components_)
        np.testing.assert_array_equal(copy.window_maps_img(img, 5).get_fdata(), reference)
    assert [p.name for p in tmp_path.iterdir()] == ["stca.pkl"]
    with pytest.raises(TypeError, match="not a STCADecomposition"):
        pickle.dump({"not": "a model"}, open(tmp_path / "other.pkl", "wb"))
        STCADecomposition.load(tmp_path / "other.pkl", allow_pickle=True)


def test_clone_and_params():
    est = STCADecomposition(n_components=7, window_length=12)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    copy.set_params(n_components=3)
    assert copy.n_components == 3 and est.n_components == 7
    defaults = STCADecomposition()
    assert (defaults.n_components, defaults.window_length, defaults.window_stride) == (64, 40, 1)
    assert (defaults.n_epochs, defaults.learning_rate, defaults.batch_size) == (1, 1e-3, 1)
    assert (defaults.fbn_threshold, defaults.device) == (3.6, "auto")
    assert (defaults.decoder, defaults.static_maps) == ("regression", "clustered")


def test_paper_settings_are_the_papers_and_reach_compares_preset():
    from nilearn_stca import PAPER_SETTINGS
    from nilearn_stca.evaluation import paper_protocol

    paper = STCADecomposition(**PAPER_SETTINGS)
    assert (paper.n_components, paper.learning_rate, paper.decoder) == (64, 1e-4, "autoencoder")
    assert (paper.window_length, paper.window_stride, paper.n_epochs, paper.batch_size) == (
        40,
        1,
        1,
        1,
    )
    assert paper_protocol()["method_params"]["stca"] == PAPER_SETTINGS


def test_list_of_subjects_and_masker_as_mask(tiny_run):
    img, mask = tiny_run
    short = nib.Nifti1Image(img.get_fdata()[..., :25].astype(np.float32), img.affine)
    est = STCADecomposition(
        mask=NiftiMasker(mask_img=mask, standardize="zscore_sample"),
        **{**TINY_STCA, "window_stride": 3},
    )
    est.fit([img, short])
    # 14 windows in the first run (0..39 by 3) and 6 in the second (0..15 by 3).
    assert est.n_steps_ == 14 + 6


def test_batches_and_epochs(tiny_run):
    img, mask = tiny_run
    est = STCADecomposition(mask=mask, **{**TINY_STCA, "batch_size": 4, "n_epochs": 2}).fit(img)
    assert est.n_steps_ == 2 * 3  # 9 windows in batches of 4 -> 3 steps per epoch


def test_mask_computed_from_data(tiny_run):
    img, _ = tiny_run
    est = STCADecomposition(**{**TINY_STCA, "mask_strategy": "background"}).fit(img)
    assert est.mask_img_.shape == (12, 12, 12)
    assert est.components_.shape[1] == int(est.mask_img_.get_fdata().sum())


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"n_components": 0}, ValueError, r"n_components == .+, must be >= 1"),
        ({"n_components": 2.5}, TypeError, "n_components must be an instance of"),
        ({"window_stride": 0}, ValueError, r"window_stride == .+, must be >= 1"),
        ({"window_length": 1}, ValueError, r"window_length == .+, must be >= 2"),
        ({"n_epochs": 0}, ValueError, r"n_epochs == .+, must be >= 1"),
        ({"batch_size": 0}, ValueError, r"batch_size == .+, must be >= 1"),
        ({"learning_rate": 0}, ValueError, r"learning_rate == 0, must be > 0"),
        ({"autoencoder_widths": (4, 4)}, ValueError, "autoencoder_widths"),
        ({"device": "tpu"}, ValueError, "Unknown device='tpu'"),
        ({"device": "banana"}, ValueError, "Unknown device='banana'"),
        ({"conv_algorithm": "winograd"}, ValueError, "conv_algorithm must be one of"),
    ],
)
def test_bad_parameters(tiny_run, params, error, match):
    img, mask = tiny_run
    with pytest.raises(error, match=match):
        STCADecomposition(mask=mask, **{**TINY_STCA, **params}).fit(img)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_requested_without_cuda(tiny_run):
    img, mask = tiny_run
    with pytest.raises(ValueError, match="CUDA is not available"):
        STCADecomposition(mask=mask, **{**TINY_STCA, "device": "cuda"}).fit(img)


def test_bad_images(tiny_run):
    img, mask = tiny_run
    est = STCADecomposition(mask=mask, **TINY_STCA)
    volume = nib.Nifti1Image(img.get_fdata()[..., 0], img.affine)
    with pytest.raises(ValueError, match="imgs is a 3D image"):
        est.fit(volume)
    with pytest.raises(ValueError, match=r"imgs\[1\] has 9 scans, fewer than window_length=10"):
        est.fit([img, nib.Nifti1Image(img.get_fdata()[..., :9], img.affine)])
    data = img.get_fdata()
    data[3, 3, 3, 7] = np.nan
    with pytest.raises(ValueError, match="imgs contains NaN or infinite"):
        est.fit(nib.Nifti1Image(data, img.affine))
    data[3, 3, 3, 7] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        est.fit(nib.Nifti1Image(data, img.affine))
    with pytest.raises(ValueError, match="empty list"):
        est.fit([])
    with pytest.raises(ValueError, match="confounds has 2 entries for 1 images"):
        est.fit(img, confounds=[None, None])


def test_mask_on_another_grid(tiny_run):
    img, mask = tiny_run
    other = nib.Nifti1Image(np.ones((10, 10, 10), np.float32), np.diag([5.0, 5.0, 5.0, 1.0]))
    with pytest.raises(ValueError, match="different grids.*target_affine"):
        STCADecomposition(mask=other, **TINY_STCA).fit(img)
    # With a target grid the mask and the data are both resampled: no error.
    est = STCADecomposition(
        mask=other, target_affine=other.affine, target_shape=(10, 10, 10), **TINY_STCA
    ).fit(img)
    assert est.components_img_.shape == (10, 10, 10, 3)


def test_not_fitted(tiny_run):
    from sklearn.exceptions import NotFittedError

    img, _ = tiny_run
    with pytest.raises(NotFittedError):
        next(STCADecomposition().iter_window_maps(img))


def test_progress_bars_only_when_verbose(tiny_run, capsys):
    img, mask = tiny_run
    STCADecomposition(mask=mask, **TINY_STCA).fit(img)
    assert "STCA training" not in capsys.readouterr().err
    STCADecomposition(mask=mask, verbose=1, **TINY_STCA).fit(img)
    err = capsys.readouterr().err
    assert "STCA training" in err and "9/9" in err


@pytest.mark.parametrize("as_frame", [False, True])
def test_confounds_are_regressed_out_of_every_run(fitted, tiny_run, as_frame):
    img, mask = tiny_run
    confound = np.sin(np.arange(img.shape[3]) / 3.0)[:, None]
    confounds = pd.DataFrame(confound, columns=["drift"]) if as_frame else confound
    est = clone(fitted).fit(img, confounds=[confounds])
    run = est._masked_run(img, confounds)
    centred = confound - confound.mean()
    assert np.abs(centred.T @ run).max() < 1e-3 * np.abs(run).sum(axis=0).max()
    without = est._masked_run(img)
    assert not np.allclose(run, without)
    loadings = est.transform(img, confounds=[confounds])
    assert loadings[0].shape == (img.shape[3], est.n_components)
    assert np.isfinite(est.score(img, confounds=[confounds]))


def test_regression_decoder_fits_pickles_and_refuses_unknown_decoders(tiny_run, tmp_path):
    img, mask = tiny_run
    est = STCADecomposition(mask=mask, decoder="regression", **TINY_STCA).fit(img)
    assert est.network_.autoencoder is None
    assert np.isfinite(est.loss_curve_).all() and est.n_steps_ == 9
    loaded = STCADecomposition.load(est.save(tmp_path / "stca.pkl"), allow_pickle=True)
    assert loaded.network_.config["decoder"] == "regression"
    np.testing.assert_array_equal(
        dict(loaded.iter_window_maps(img))[5], dict(est.iter_window_maps(img))[5]
    )
    with pytest.raises(ValueError, match="decoder must be one of"):
        STCADecomposition(mask=mask, decoder="unet", **TINY_STCA).fit(img)


def test_clustered_static_maps_fall_back_to_the_mean_without_any_fbn():
    from nilearn_stca.stca.static_maps import clustered_static_maps, mean_static_maps

    rng = np.random.RandomState(0)
    windows = [zscore_maps(rng.rand(3, 50)) for _ in range(4)]  # uniform: no z >= 3.6
    with pytest.warns(RuntimeWarning, match="No window map reaches z >= 3.6"):
        static = clustered_static_maps(iter(windows), 3, 3.6)
    np.testing.assert_allclose(static, mean_static_maps(iter(windows)), atol=1e-6)


def test_threshold_is_deprecated_in_favour_of_fbn_threshold(fitted, tiny_run):
    img, mask = tiny_run
    old = STCADecomposition(mask=mask, threshold=1.0, **TINY_STCA)
    with pytest.warns(FutureWarning, match="fbn_threshold=1.0") as caught:
        windows = dict(old.fit_iter_window_maps(img))
    assert len([w for w in caught if w.category is FutureWarning]) == 1  # said once
    assert sorted(windows) == list(range(0, 41, 5))
    new = STCADecomposition(mask=mask, fbn_threshold=1.0, **TINY_STCA).fit(img)
    np.testing.assert_array_equal(old.components_, new.components_)
    assert not np.array_equal(new.components_, fitted.components_)  # 1.0 is not 3.6
    np.testing.assert_array_equal(old.fbns_img().get_fdata(), new.fbns_img().get_fdata())
    assert old.get_params()["threshold"] == 1.0 and clone(old).threshold == 1.0
    with pytest.raises(ValueError, match="threshold must be a finite z value"):
        STCADecomposition(mask=mask, threshold=-1.0, **TINY_STCA).fit(img)


def test_n_jobs_sets_torch_threads_while_training_and_mapping(fitted, tiny_run, monkeypatch):
    from nilearn_stca.stca import _spectral

    img, mask = tiny_run
    seen = {"training": set(), "mapping": set()}
    forward, logits = _spectral.SpectralGrid.forward, _spectral.SpectralGrid.attention_logits

    def recording_forward(self, *args):  # a training step (its logits are recorded too)
        seen["training"].add(torch.get_num_threads())
        return forward(self, *args)

    def recording_logits(self, *args):
        seen["mapping"].add(torch.get_num_threads())
        return logits(self, *args)

    monkeypatch.setattr(_spectral.SpectralGrid, "forward", recording_forward)
    monkeypatch.setattr(_spectral.SpectralGrid, "attention_logits", recording_logits)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = STCADecomposition(mask=mask, n_jobs=1, **{**TINY_STCA, "conv_algorithm": "fft"})
        windows = dict(one.fit_iter_window_maps(img))
        assert seen == {"training": {1}, "mapping": {1}}
        assert torch.get_num_threads() == 2  # restored
        seen["training"].clear(), seen["mapping"].clear()
        default = STCADecomposition(mask=mask, **{**TINY_STCA, "conv_algorithm": "fft"})
        default.fit(img)
        assert seen == {"training": {2}, "mapping": {2}}  # None: PyTorch's own
    finally:
        torch.set_num_threads(before)
    for start, maps in fitted.iter_window_maps(img):
        np.testing.assert_allclose(windows[start], maps, atol=1e-3)
    with pytest.raises(ValueError, match="n_jobs must be None, a positive integer or -1"):
        STCADecomposition(mask=mask, n_jobs=0, **TINY_STCA).fit(img)
