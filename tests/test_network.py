import pytest
import torch

from nilearn_stca.stca.network import STCABlock, STCANetwork, regression_reconstruction


@pytest.fixture
def windows():
    torch.manual_seed(0)
    return torch.randn(2, 6, 16, 16, 32)


def test_shapes(windows):
    net = STCANetwork(window_length=6, n_components=5, autoencoder_widths=(4, 4, 8, 8))
    reconstruction, logits = net(windows)
    assert reconstruction.shape == windows.shape
    assert logits.shape == (2, 5, 16, 16, 32)
    assert net.attention_logits(windows).shape == (2, 5, 16, 16, 32)


def test_attention_logits_match_full_forward(windows):
    net = STCANetwork(6, 5, (4, 4, 8, 8)).eval()
    mask = (torch.rand(16, 16, 32) > 0.3).float()
    with torch.no_grad():
        _, logits = net(windows, mask)
        torch.testing.assert_close(net.attention_logits(windows, mask), logits, rtol=0, atol=0)


def test_block_follows_the_paper_equations(windows):
    block = STCABlock(6, 8).eval()
    gelu = torch.nn.functional.gelu
    with torch.no_grad():
        f = gelu(block.embed(windows))
        gap = f.mean(dim=(2, 3, 4))
        ca = torch.sigmoid(
            block.channel_fc3(gelu(block.channel_fc2(gelu(block.channel_fc1(gap)))))
        )
        f1 = f * ca[:, :, None, None, None]
        sa = block.spatial_conv2(gelu(block.spatial_conv1(f1)))
        out, logits = block(windows)
    torch.testing.assert_close(logits, sa)
    torch.testing.assert_close(out, f1 * torch.sigmoid(sa))
    assert block.channel_fc1.out_features == 2  # C -> C/4 -> C/4 -> C
    assert block.channel_fc2.out_features == 2
    assert block.embed.kernel_size == (7, 7, 7)
    assert block.spatial_conv1.kernel_size == (7, 7, 7)
    assert block.spatial_conv2.kernel_size == (3, 3, 3)


def test_gradient_reaches_every_layer(windows):
    net = STCANetwork(6, 4, (4, 4, 8, 8))
    mask = torch.ones(16, 16, 32)
    reconstruction, _ = net(windows, mask)
    ((reconstruction - windows) ** 2).mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_masked_logits_do_not_depend_on_surrounding_space():
    """A brain padded with more empty space gives the same attention logits inside it."""
    torch.manual_seed(1)
    block = STCABlock(4, 3).eval()
    brain = torch.zeros(16, 16, 16)
    brain[3:13, 4:12, 2:14] = 1
    x = torch.randn(1, 4, 16, 16, 16) * brain
    big_mask = torch.zeros(32, 32, 32)
    big_mask[8:24, 8:24, 8:24] = brain
    big_x = torch.zeros(1, 4, 32, 32, 32)
    big_x[..., 8:24, 8:24, 8:24] = x
    with torch.no_grad():
        _, small = block(x, brain)
        _, big = block(big_x, big_mask)
    torch.testing.assert_close(big[..., 8:24, 8:24, 8:24], small, rtol=0, atol=1e-5)


def test_regression_decoder_reconstructs_windows_made_of_its_maps():
    torch.manual_seed(0)
    maps = torch.rand(2, 3, 500)
    timecourses = torch.randn(2, 20, 3)
    windows = timecourses @ maps
    reconstruction = regression_reconstruction(windows, maps)
    assert reconstruction.shape == windows.shape
    # Exact but for the small ridge that keeps collinear maps solvable.
    assert float((reconstruction - windows).norm()) < 0.02 * float(windows.norm())
    # What no map covers cannot be reconstructed: an orthogonal pattern is left out.
    other = torch.randn(2, 20, 500)
    residual = other - regression_reconstruction(other, maps)
    assert float(residual.square().sum()) > 0.9 * float(other.square().sum())


def test_regression_decoder_has_no_autoencoder_and_a_gradient_to_the_attention():
    network = STCANetwork(window_length=6, n_components=3, decoder="regression")
    assert network.autoencoder is None
    assert not any("autoencoder" in name for name, _ in network.named_parameters())
    x = torch.randn(1, 6, 16, 16, 16)
    mask = torch.zeros(16, 16, 16)
    mask[2:14, 3:13, 2:12] = 1
    reconstruction, sa = network(x * mask, mask)
    assert reconstruction.shape == x.shape and sa.shape == (1, 3, 16, 16, 16)
    assert float(reconstruction.detach()[..., mask == 0].abs().max()) == 0
    ((reconstruction - x * mask) ** 2).sum().backward()
    assert float(network.stca.spatial_conv2.weight.grad.abs().sum()) > 0
    assert float(network.stca.embed.weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="decoder must be one of"):
        STCANetwork(window_length=6, n_components=3, decoder="unet")


def _identity_embedding_block(n_channels):
    """A block whose embedding copies its input and whose attention gates are all 0.5."""
    block = STCABlock(n_channels, n_channels).eval()
    with torch.no_grad():
        for layer in (block.embed, block.channel_fc3, block.spatial_conv2):
            layer.weight.zero_()
            layer.bias.zero_()
        for c in range(n_channels):
            block.embed.weight[c, c, 3, 3, 3] = 1.0  # the 7x7x7 kernel's centre tap
    return block


def test_block_on_a_hand_computed_case():
    # Embedding = identity, channel attention sigmoid(0) = 0.5, spatial logits 0 (gate 0.5):
    # out = 0.5 * 0.5 * gelu(x) inside the mask and 0 outside, by the paper's eqs. 1-5.
    torch.manual_seed(2)
    x = torch.randn(1, 3, 8, 8, 8)
    mask = torch.zeros(8, 8, 8)
    mask[2:6, 1:7, 3:8] = 1
    with torch.no_grad():
        out, logits = _identity_embedding_block(3)(x, mask)
    torch.testing.assert_close(out, 0.25 * torch.nn.functional.gelu(x) * mask)
    assert torch.count_nonzero(logits) == 0


def test_attention_is_a_gate_in_0_1_and_zero_outside_the_brain(windows):
    torch.manual_seed(3)
    block = STCABlock(6, 4).eval()
    mask = (torch.rand(16, 16, 32) > 0.4).float()
    with torch.no_grad():
        out, logits = block(windows, mask)
        f1, same_logits = block.attention_logits(windows, mask)
    torch.testing.assert_close(same_logits, logits, rtol=0, atol=0)
    outside = mask == 0
    assert torch.count_nonzero(out[..., outside]) == 0
    assert torch.count_nonzero(logits[..., outside]) == 0
    inside = f1 != 0
    gate = out[inside] / f1[inside]
    assert float(gate.min()) > 0 and float(gate.max()) < 1
    weights = block.channel_attention(torch.nn.functional.gelu(block.embed(windows)), mask)
    assert float(weights.min()) > 0 and float(weights.max()) < 1
