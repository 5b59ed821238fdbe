"""The STCA network: a spatial-temporal convolutional attention block guided by a 3D autoencoder.

Plain :mod:`torch.nn` modules, following section 2.2 of Liu et al. (ISBI 2023). A window of
``T`` volumes enters as ``T`` channels, shape ``(batch, T, X, Y, Z)``. The block turns it
into ``C`` feature maps, weights them by channel attention (CA) and spatial attention (SA),
and the autoencoder reconstructs the window from the weighted maps. The ``C`` spatial
attention logits (SA before its sigmoid) are the functional brain network (FBN) maps.

Everything here is independent of nilearn and of files; :mod:`nilearn_stca.stca.decomposition`
wraps it in a scikit-learn style estimator.
"""

import torch
from torch import nn
from torch.nn import functional as F

#: Channel widths of the autoencoder's four levels. The paper does not give them. On the
#: simulator, recovery of the planted networks is the same for widths from (8, 8, 16, 16) to
#: (32, 32, 64, 64); these cost least per training step (benchmarks/autoencoder_widths.py).
DEFAULT_AUTOENCODER_WIDTHS = (16, 16, 32, 32)

#: Spatial size of the network's input must be a multiple of this (four 2x poolings).
SPATIAL_MULTIPLE = 16

#: How the window is reconstructed from the attention during training (the guiding
#: decoder): the paper's convolutional autoencoder, or least-squares regression on the maps.
DECODERS = ("autoencoder", "regression")

#: Ridge added to the maps' Gram matrix, relative to its mean diagonal, so that duplicate or
#: empty maps keep the regression solvable.
REGRESSION_RIDGE = 1e-3


def _masked_mean(x, mask):
    """Mean of ``x`` (B, C, X, Y, Z) over the voxels of ``mask`` (X, Y, Z), or over all."""
    if mask is None:
        return x.mean(dim=(2, 3, 4))
    return (x * mask).sum(dim=(2, 3, 4)) / mask.sum()


def _apply_mask(x, mask):
    return x if mask is None else x * mask


class STCABlock(nn.Module):
    """Spatial-temporal convolutional attention block.

    ``f = GELU(Conv3d_7(x))``; channel attention
    ``CA = sigmoid(W3 GELU(W2 GELU(W1 GAP(f))))`` with widths C -> C/4 -> C/4 -> C;
    ``f1 = f * CA``; spatial attention logits ``SA = Conv3d_3(GELU(Conv3d_7(f1)))``;
    output ``f1 * sigmoid(SA)``.

    Parameters
    ----------
    in_channels : int
        Number of volumes in a window (T).
    n_components : int
        Number of feature maps, hence of FBN maps (C).
    reduction : int, default=4
        Width reduction of the channel-attention MLP.

    Notes
    -----
    When a brain ``mask`` is passed to :meth:`forward`, every feature map is set to zero
    outside it and the global average pooling runs over brain voxels only. The attention
    maps then depend on the brain alone, not on how much empty space surrounds it, so a
    cropped brain box and a padded cube give the same logits.
    """

    def __init__(self, in_channels, n_components, reduction=4):
        super().__init__()
        hidden = max(1, n_components // reduction)
        self.embed = nn.Conv3d(in_channels, n_components, kernel_size=7, padding=3)
        self.channel_fc1 = nn.Linear(n_components, hidden)
        self.channel_fc2 = nn.Linear(hidden, hidden)
        self.channel_fc3 = nn.Linear(hidden, n_components)
        self.spatial_conv1 = nn.Conv3d(n_components, n_components, kernel_size=7, padding=3)
        self.spatial_conv2 = nn.Conv3d(n_components, n_components, kernel_size=3, padding=1)

    def channel_attention(self, f, mask=None):
        """Channel weights in (0, 1), shape (batch, C)."""
        return self.channel_weights(_masked_mean(f, mask))

    def channel_weights(self, pooled):
        """Channel weights from the feature maps' brain means ``pooled`` (batch, C)."""
        hidden = F.gelu(self.channel_fc2(F.gelu(self.channel_fc1(pooled))))
        return torch.sigmoid(self.channel_fc3(hidden))

    def attention_logits(self, x, mask=None):
        """Return ``(f1, SA)``: the channel-weighted features and the spatial-attention logits."""
        f = _apply_mask(F.gelu(self.embed(x)), mask)
        f1 = f * self.channel_attention(f, mask)[:, :, None, None, None]
        hidden = _apply_mask(F.gelu(self.spatial_conv1(f1)), mask)
        sa = _apply_mask(self.spatial_conv2(hidden), mask)
        return f1, sa

    def forward(self, x, mask=None):
        """Return ``(out, SA)`` with ``out = f1 * sigmoid(SA)``."""
        f1, sa = self.attention_logits(x, mask)
        return f1 * torch.sigmoid(sa), sa


class ResidualConvBlock(nn.Module):
    """Three 3x3x3 convolutions with batch normalisation and a residual connection."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        layers = []
        for i in range(3):
            layers.append(
                nn.Conv3d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1)
            )
            layers.append(nn.BatchNorm3d(out_channels))
            if i < 2:
                layers.append(nn.GELU())
        self.body = nn.Sequential(*layers)
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv3d(in_channels, out_channels, kernel_size=1)
        )

    def forward(self, x):
        return F.gelu(self.body(x) + self.shortcut(x))


class GuidingAutoencoder(nn.Module):
    """3D convolutional autoencoder that reconstructs the window from the attended maps.

    Four down levels (residual block, then 2x max-pooling) and four up levels (trilinear 2x
    upsampling, then a residual block), and a final 1x1x1 convolution back to the ``T``
    channels of the window. There are no skip connections: the reconstruction has to pass
    through the bottleneck. (Measured on the simulator, U-Net skips lower the reconstruction
    error but do not bring the attention maps closer to the planted networks.)

    Parameters
    ----------
    in_channels : int
        Number of attended feature maps (C).
    out_channels : int
        Number of volumes to reconstruct (T).
    widths : sequence of int
        Channel width of each level, from the finest to the coarsest: four levels in
        :class:`STCANetwork`; fewer give a shallower bottleneck, none a 1x1x1 linear decoder.
    """

    def __init__(self, in_channels, out_channels, widths=DEFAULT_AUTOENCODER_WIDTHS):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        self.down = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.down.append(ResidualConvBlock(previous, width))
            previous = width
        self.up = nn.ModuleList()
        for width in reversed(widths):
            self.up.append(ResidualConvBlock(previous, width))
            previous = width
        self.head = nn.Conv3d(previous, out_channels, kernel_size=1)

    def forward(self, x):
        for block in self.down:
            x = F.max_pool3d(block(x), kernel_size=2)
        for block in self.up:
            x = block(F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False))
        return self.head(x)


def regression_reconstruction(windows, maps):
    """Least-squares reconstruction of ``windows`` from spatial ``maps``.

    Each window is modelled as its maps times one time course per map, the time courses
    fitted by (lightly ridged) least squares, as in the first stage of dual regression. The
    result is differentiable with respect to the maps.

    Parameters
    ----------
    windows : Tensor, shape (B, T, N)
        Voxel time series of each window (voxels last).
    maps : Tensor, shape (B, C, N)
        Nonnegative spatial maps (the attention ``sigmoid(SA)``), zero outside the brain.

    Returns
    -------
    reconstruction : Tensor, shape (B, T, N)
    """
    gram = maps @ maps.transpose(1, 2)
    scale = gram.diagonal(dim1=1, dim2=2).mean(dim=1).clamp_min(1e-12)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    gram = gram + REGRESSION_RIDGE * scale[:, None, None] * eye
    timecourses = torch.linalg.solve(gram, maps @ windows.transpose(1, 2))  # (B, C, T)
    return timecourses.transpose(1, 2) @ maps


class STCANetwork(nn.Module):
    """STCA block followed by its guiding autoencoder.

    Parameters
    ----------
    window_length : int
        Number of volumes per window (T), the input channels.
    n_components : int
        Number of attention maps (C).
    autoencoder_widths : sequence of 4 int, default=DEFAULT_AUTOENCODER_WIDTHS
        Channel widths of the autoencoder levels (``decoder="autoencoder"`` only).
    decoder : {"autoencoder", "regression"}, default="autoencoder"
        "autoencoder": the paper's guiding autoencoder reconstructs the window from the
        attended features ``f1 * sigmoid(SA)``. "regression": the window is reconstructed
        from the attention maps ``sigmoid(SA)`` themselves, with one least-squares time
        course per map (:func:`regression_reconstruction`); there is no decoder to learn.

    Notes
    -----
    Spatial sizes must be multiples of 16 (:data:`SPATIAL_MULTIPLE`) for the four poolings.
    """

    def __init__(
        self,
        window_length,
        n_components,
        autoencoder_widths=DEFAULT_AUTOENCODER_WIDTHS,
        decoder="autoencoder",
    ):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}.")
        self.config = {
            "window_length": int(window_length),
            "n_components": int(n_components),
            "autoencoder_widths": tuple(int(w) for w in autoencoder_widths),
            "decoder": decoder,
        }
        self.stca = STCABlock(window_length, n_components)
        self.autoencoder = (
            GuidingAutoencoder(n_components, window_length, autoencoder_widths)
            if decoder == "autoencoder"
            else None
        )

    def forward(self, x, mask=None):
        """Return ``(reconstruction, SA logits)`` for windows ``x`` of shape (B, T, X, Y, Z)."""
        if self.autoencoder is not None:
            attended, sa = self.stca(x, mask)
            return self.autoencoder(attended), sa
        sa = self.attention_logits(x, mask)
        maps = _apply_mask(torch.sigmoid(sa), mask)
        reconstruction = regression_reconstruction(x.flatten(2), maps.flatten(2))
        return reconstruction.reshape(x.shape), sa

    def attention_logits(self, x, mask=None):
        """SA logits alone, shape (B, C, X, Y, Z), without running the autoencoder."""
        return self.stca.attention_logits(x, mask)[1]
