"""The FFT evaluation of the STCA block gives the plain network's numbers."""

import numpy as np
import pytest
import torch
from conftest import TINY_STCA
from nilearn.datasets import load_mni152_brain_mask

from nilearn_stca import STCADecomposition
from nilearn_stca.maps import threshold_maps, zscore_maps
from nilearn_stca.stca._grid import BrainBox
from nilearn_stca.stca._spectral import SpectralGrid
from nilearn_stca.stca._training import iter_attention_logits
from nilearn_stca.stca.network import STCANetwork


def _masks():
    """An MNI brain at 8 mm, a mask filling its whole grid, and an odd-shaped blob."""
    mni = np.asanyarray(load_mni152_brain_mask(resolution=8).dataobj) > 0
    full = np.ones((9, 11, 7), bool)
    grid = np.indices((13, 10, 15))
    blob = ((grid[0] - 6) / 5) ** 2 + ((grid[1] - 4) / 4) ** 2 + ((grid[2] - 9) / 6) ** 2 < 1
    return {"mni": mni, "full": full, "blob": blob}


@pytest.fixture(scope="module", params=["mni", "full", "blob"])
def setting(request):
    torch.manual_seed(0)
    box = BrainBox(_masks()[request.param])
    network = STCANetwork(window_length=12, n_components=8, autoencoder_widths=(4, 4, 8, 8))
    run = torch.randn(30, box.n_voxels).numpy()
    return network.eval(), box, run


def test_grid_covers_the_brain_with_a_margin(setting):
    _, box, _ = setting
    grid = SpectralGrid(box, radius=3)
    extents = [s.stop - s.start for s in box.region]
    assert grid.shape[0] == extents[0]
    assert all(
        side >= extent + 3 for side, extent in zip(grid.shape[1:], extents[1:], strict=True)
    )
    vectors = torch.randn(2, 3, box.n_voxels)
    grids = grid.to_grid(vectors)
    np.testing.assert_array_equal(grid.to_vectors(grids), vectors)
    boxes = box.to_box(vectors)
    np.testing.assert_array_equal(grid.from_box(boxes), grids)
    np.testing.assert_array_equal(grid.to_box(grids), boxes)
    assert grid.mask.sum() == box.n_voxels
    np.testing.assert_array_equal(grids * grid.mask, grids)


def test_attention_logits_and_fbns_equal_the_direct_ones(setting):
    network, box, run = setting
    starts = np.array([0, 1, 7, 18])
    results = {
        algorithm: dict(iter_attention_logits(network, run, starts, 12, box, algorithm))
        for algorithm in ("fft", "direct")
    }
    for start in starts:
        fft, direct = results["fft"][start], results["direct"][start]
        assert fft.shape == (8, box.n_voxels)
        assert np.abs(fft - direct).max() <= 1e-4 * max(1.0, np.abs(direct).max())
        for threshold in (3.6, 1.5):
            np.testing.assert_array_equal(
                threshold_maps(zscore_maps(fft), threshold),
                threshold_maps(zscore_maps(direct), threshold),
            )
    # The lower threshold selects voxels, so the equality above compares real networks.
    assert threshold_maps(zscore_maps(results["direct"][0]), 1.5).any()


def _assert_training_agrees(network, box, run):
    """The loss and every gradient of a float64 ``network`` agree between the two paths."""
    grid = SpectralGrid(box, radius=3)
    grid.mask = grid.mask.double()
    mask = box.mask_tensor(dtype=torch.float64)
    windows = box.to_box(torch.from_numpy(run[None, 3:15]).double())

    def gradients(forward):
        network.zero_grad()
        reconstruction, sa = forward()
        loss = (((reconstruction - windows) ** 2) * mask).sum() + sa.square().sum()
        loss.backward()
        return float(loss.detach()), {k: p.grad.clone() for k, p in network.named_parameters()}

    network.train()
    loss_direct, direct = gradients(lambda: network(windows, mask))
    loss_fft, fft = gradients(lambda: grid.forward(network, windows))
    assert loss_fft == pytest.approx(loss_direct, rel=1e-10)
    for name, gradient in direct.items():
        scale = max(1.0, float(gradient.abs().max()))
        assert float((fft[name] - gradient).abs().max()) <= 1e-8 * scale, name


@pytest.mark.parametrize("decoder", ["autoencoder", "regression"])
def test_training_gradients_equal_the_direct_ones(setting, decoder):
    network, box, run = setting
    network = STCANetwork(**{**network.config, "decoder": decoder}).double()
    network.load_state_dict(setting[0].state_dict(), strict=decoder == "autoencoder")
    _assert_training_agrees(network, box, run)


LEVERS = {
    "channel pooling": {"channel_pooling": "mean_std_max"},
    "coordinates": {"coordinate_channels": True},
    "softmax": {"map_activation": "softmax"},
    "refinement": {"refine_steps": 2, "refine_sparsity": 0.1},
    "all": {
        "channel_pooling": "mean_std_max",
        "coordinate_channels": True,
        "map_activation": "softmax",
        "refine_steps": 1,
    },
}


@pytest.mark.parametrize("lever", LEVERS)
def test_levers_give_the_direct_path_numbers(setting, lever):
    """Each lever's logits, FBN maps, loss and gradients agree between the two paths."""
    _, box, run = setting
    torch.manual_seed(1)
    config = {"window_length": 12, "n_components": 8, "decoder": "regression"}
    network = STCANetwork(**config, **LEVERS[lever]).double()
    _assert_training_agrees(network, box, run)
    # The FBN maps of both paths, in float64: the refinement's least squares and thresholds
    # amplify float32 rounding (up to 3e-3 relative measured with every lever), which would
    # hide a real difference.
    maps = {
        algorithm: dict(
            iter_attention_logits(network, run.astype(np.float64), [0, 9], 12, box, algorithm)
        )
        for algorithm in ("fft", "direct")
    }
    for start in (0, 9):
        fft, direct = maps["fft"][start], maps["direct"][start]
        # 1e-6: the grid of iter_attention_logits keeps its kernel spectra in float32.
        assert np.abs(fft - direct).max() <= 1e-6 * max(1.0, np.abs(direct).max())
        if not network.maps_are_logits:
            assert fft.min() >= 0  # decoded maps are nonnegative
            assert np.count_nonzero(fft) > 0


def test_estimator_fft_and_direct_agree(tiny_run):
    img, mask = tiny_run
    # Mean static maps: k-means of FBNs could flip on a voxel at the threshold.
    fft = STCADecomposition(mask=mask, static_maps="mean", **TINY_STCA).fit(img)
    direct = STCADecomposition(
        mask=mask, conv_algorithm="direct", static_maps="mean", **TINY_STCA
    ).fit(img)
    assert fft.conv_algorithm == "auto" and fft._conv_path() == "fft"  # on CPU
    np.testing.assert_allclose(fft.loss_curve_, direct.loss_curve_, rtol=1e-4)
    # Nine steps at learning rate 1e-3 let float32 rounding grow to a few thousandths in z.
    np.testing.assert_allclose(fft.components_, direct.components_, atol=1e-2)
    # With the same weights, the window maps agree to float32 rounding.
    direct.network_.load_state_dict(fft.network_.state_dict())
    for (start, a), (_, b) in zip(
        fft.iter_window_maps(img), direct.iter_window_maps(img), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-4, err_msg=f"window {start}")


def test_batched_windows_and_cached_kernels_give_the_same_logits(setting):
    network, box, run = setting
    starts = np.arange(5)
    one = dict(iter_attention_logits(network, run, starts, 12, box, batch_size=1))
    three = dict(iter_attention_logits(network, run, starts, 12, box, batch_size=3))
    for start in starts:
        np.testing.assert_allclose(three[start], one[start], atol=1e-5)

    # Without gradients the kernel spectra are kept, until the weights change.
    grid = SpectralGrid(box)
    windows = grid.to_grid(torch.from_numpy(run[None, :12]))
    with torch.no_grad():
        before = grid.attention_logits(network.stca, windows)[1]
        other = STCANetwork(**network.config)
        network_copy = STCANetwork(**network.config)
        network_copy.load_state_dict(network.state_dict())
        network_copy.stca.load_state_dict(other.stca.state_dict())
        changed = grid.attention_logits(network_copy.stca, windows)[1]
        network_copy.stca.load_state_dict(network.stca.state_dict())
        again = grid.attention_logits(network_copy.stca, windows)[1]
    assert float((changed - before).abs().max()) > 1e-2
    np.testing.assert_allclose(again, before, atol=1e-5)


def test_window_iteration_leaves_inference_mode_between_windows(setting):
    network, box, run = setting
    windows = iter_attention_logits(network, run, np.arange(3), 12, box)
    next(windows)
    # The caller's code between windows, or after it stops iterating, runs normally.
    assert not torch.is_inference_mode_enabled()
    weights = STCANetwork(**network.config).stca.embed.weight
    assert not weights.is_inference()
    with torch.inference_mode():
        frozen = STCANetwork(**network.config).eval()
    assert frozen.stca.embed.weight.is_inference()
    assert len(dict(iter_attention_logits(frozen, run, np.arange(2), 12, box))) == 2


def test_auto_conv_algorithm_is_fft_on_cpu_and_direct_elsewhere():
    from nilearn_stca.stca._training import resolve_conv_algorithm

    assert resolve_conv_algorithm("auto", "cpu") == "fft"
    assert resolve_conv_algorithm("auto", "cuda") == "direct"
    assert resolve_conv_algorithm("fft", "cuda") == "fft"
    assert resolve_conv_algorithm("direct", "cpu") == "direct"
