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

from ._decoding import refine_maps, regression_reconstruction

#: Channel widths of the autoencoder's four levels. The paper does not give them. On the
#: simulator, recovery of the planted networks is the same for widths from (8, 8, 16, 16) to
#: (32, 32, 64, 64); these cost least per training step (benchmarks/autoencoder_widths.py).
DEFAULT_AUTOENCODER_WIDTHS = (16, 16, 32, 32)

#: Spatial size of the network's input must be a multiple of this (four 2x poolings).
SPATIAL_MULTIPLE = 16

#: How the window is reconstructed from the attention during training (the guiding
#: decoder): the paper's convolutional autoencoder, or least-squares regression on the maps.
DECODERS = ("autoencoder", "regression")

#: What channel attention pools from each feature map over the brain: the paper's mean, or
#: the mean, standard deviation and maximum (mean and max as CBAM pools them).
CHANNEL_POOLINGS = ("mean", "mean_std_max")

#: How the attention logits become maps: each map its own sigmoid (the paper), or a softmax
#: over the maps at each voxel, with a learned temperature (the maps compete for a voxel).
MAP_ACTIVATIONS = ("sigmoid", "softmax")

#: The settings of the levers on the paper's block, as the paper has it: a network saved
#: before they existed was built with these.
PAPER_BLOCK = {
    "channel_pooling": "mean",
    "coordinate_channels": False,
    "map_activation": "sigmoid",
    "refine_steps": 0,
    "refine_sparsity": 0.3,
}


def _apply_mask(x, mask):
    return x if mask is None else x * mask


def brain_statistics(f, mask, dims, pooling="mean"):
    """Per-channel statistics of feature maps ``f`` over the brain, shape (batch, C * k).

    ``f`` is zero outside ``mask`` (broadcastable to ``f``), and ``dims`` are its spatial
    axes; channels are last after the reduction. "mean" gives the brain mean (k = 1);
    "mean_std_max" the mean, standard deviation and maximum (k = 3).
    """
    n_voxels = mask.sum()
    mean = f.sum(dim=dims) / n_voxels
    if pooling == "mean":
        return mean
    second = (f * f).sum(dim=dims) / n_voxels
    std = (second - mean * mean).clamp_min(1e-12).sqrt()
    maximum = f.masked_fill(mask == 0, float("-inf")).amax(dim=dims)
    return torch.cat([mean, std, maximum], dim=-1)


def brain_coordinates(mask):
    """Coordinate channels (3, X, Y, Z) for a brain ``mask`` (X, Y, Z): zero outside it.

    Each axis runs from -1 to 1 over the brain's extent along it, so the channels are the
    same whatever empty space pads the brain's box.
    """
    axes = []
    for axis, size in enumerate(mask.shape):
        other = tuple(a for a in range(mask.dim()) if a != axis)
        present = torch.nonzero(mask.amax(dim=other) > 0).flatten()
        low, high = present.min(), present.max()
        index = torch.arange(size, dtype=mask.dtype, device=mask.device)
        values = (2 * index - (low + high)) / (high - low).clamp_min(1)
        shape = [1, 1, 1]
        shape[axis] = size
        axes.append(values.reshape(shape).expand(mask.shape))
    return torch.stack(axes) * mask


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
    channel_pooling : {"mean", "mean_std_max"}, default="mean"
        What channel attention pools from each feature map over the brain
        (:data:`CHANNEL_POOLINGS`): the paper's global mean, or mean, standard deviation and
        maximum. On z-scored windows the mean is near zero for every window, so the paper's
        channel weights hardly vary; the spread and the peak do.
    coordinate_channels : bool, default=False
        Give the embedding and the first spatial-attention convolution three more input
        channels, the voxel's position in the brain (:func:`brain_coordinates`), so the
        attention can depend on where a voxel is, not only on its neighbourhood's time series.

    Notes
    -----
    When a brain ``mask`` is passed to :meth:`forward`, every feature map is set to zero
    outside it and the global average pooling runs over brain voxels only. The attention
    maps then depend on the brain alone, not on how much empty space surrounds it, so a
    cropped brain box and a padded cube give the same logits.
    """

    def __init__(
        self,
        in_channels,
        n_components,
        reduction=4,
        channel_pooling="mean",
        coordinate_channels=False,
    ):
        super().__init__()
        if channel_pooling not in CHANNEL_POOLINGS:
            raise ValueError(
                f"channel_pooling must be one of {CHANNEL_POOLINGS}, got {channel_pooling!r}."
            )
        self.channel_pooling = channel_pooling
        self.coordinate_channels = bool(coordinate_channels)
        n_coordinates = 3 if self.coordinate_channels else 0
        n_pooled = n_components * (1 if channel_pooling == "mean" else 3)
        hidden = max(1, n_components // reduction)
        self.embed = nn.Conv3d(in_channels + n_coordinates, n_components, kernel_size=7, padding=3)
        self.channel_fc1 = nn.Linear(n_pooled, hidden)
        self.channel_fc2 = nn.Linear(hidden, hidden)
        self.channel_fc3 = nn.Linear(hidden, n_components)
        self.spatial_conv1 = nn.Conv3d(
            n_components + n_coordinates, n_components, kernel_size=7, padding=3
        )
        self.spatial_conv2 = nn.Conv3d(n_components, n_components, kernel_size=3, padding=1)

    def channel_attention(self, f, mask=None):
        """Channel weights in (0, 1), shape (batch, C)."""
        if mask is None:
            mask = torch.ones(f.shape[2:], dtype=f.dtype, device=f.device)
        return self.channel_weights(brain_statistics(f, mask, (2, 3, 4), self.channel_pooling))

    def channel_weights(self, pooled):
        """Channel weights from the feature maps' pooled statistics (batch, C * k)."""
        hidden = F.gelu(self.channel_fc2(F.gelu(self.channel_fc1(pooled))))
        return torch.sigmoid(self.channel_fc3(hidden))

    def with_coordinates(self, x, coordinates):
        """``x`` with the ``coordinates`` channels appended, if the block reads them."""
        if not self.coordinate_channels:
            return x
        return torch.cat([x, coordinates.to(x.dtype).expand(len(x), -1, -1, -1, -1)], dim=1)

    def attention_logits(self, x, mask=None):
        """Return ``(f1, SA)``: the channel-weighted features and the spatial-attention logits."""
        coordinates = None
        if self.coordinate_channels:
            if mask is None:
                mask = torch.ones(x.shape[2:], dtype=x.dtype, device=x.device)
            coordinates = brain_coordinates(mask)[None]
        f = _apply_mask(F.gelu(self.embed(self.with_coordinates(x, coordinates))), mask)
        f1 = f * self.channel_attention(f, mask)[:, :, None, None, None]
        hidden = self.spatial_conv1(self.with_coordinates(f1, coordinates))
        hidden = _apply_mask(F.gelu(hidden), mask)
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
        from the attention maps themselves, with one least-squares time course per map
        (:func:`regression_reconstruction`); there is no decoder to learn.
    channel_pooling : {"mean", "mean_std_max"}, default="mean"
        See :class:`STCABlock`.
    coordinate_channels : bool, default=False
        See :class:`STCABlock`.
    map_activation : {"sigmoid", "softmax"}, default="sigmoid"
        How the logits become the attention maps (``decoder="regression"`` only):
        ``sigmoid(SA)`` per map (the paper), or a softmax over the maps at each voxel with a
        learned temperature, so maps compete for a voxel.
    refine_steps : int, default=0
        Steps of window-adaptive refinement of the attention maps (:func:`refine_maps`,
        ``decoder="regression"`` only): the attention proposes, the window decides.
    refine_sparsity : float, default=0.3
        Soft threshold of the refinement's sparse code, as a correlation.

    Notes
    -----
    Spatial sizes must be multiples of 16 (:data:`SPATIAL_MULTIPLE`) for the four poolings.
    With the paper's settings the FBN maps are the SA logits; with a softmax or refinement
    they are the maps the window is reconstructed from (:meth:`fbn_maps`).
    """

    def __init__(
        self,
        window_length,
        n_components,
        autoencoder_widths=DEFAULT_AUTOENCODER_WIDTHS,
        decoder="autoencoder",
        channel_pooling="mean",
        coordinate_channels=False,
        map_activation="sigmoid",
        refine_steps=0,
        refine_sparsity=0.3,
    ):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}.")
        if map_activation not in MAP_ACTIVATIONS:
            raise ValueError(
                f"map_activation must be one of {MAP_ACTIVATIONS}, got {map_activation!r}."
            )
        if decoder == "autoencoder" and (map_activation != "sigmoid" or refine_steps):
            raise ValueError(
                "map_activation='softmax' and refine_steps > 0 need decoder='regression': the "
                "autoencoder reconstructs from the attended features, not from the maps."
            )
        self.config = {
            "window_length": int(window_length),
            "n_components": int(n_components),
            "autoencoder_widths": tuple(int(w) for w in autoencoder_widths),
            "decoder": decoder,
            "channel_pooling": channel_pooling,
            "coordinate_channels": bool(coordinate_channels),
            "map_activation": map_activation,
            "refine_steps": int(refine_steps),
            "refine_sparsity": float(refine_sparsity),
        }
        self.stca = STCABlock(
            window_length,
            n_components,
            channel_pooling=channel_pooling,
            coordinate_channels=coordinate_channels,
        )
        self.autoencoder = (
            GuidingAutoencoder(n_components, window_length, autoencoder_widths)
            if decoder == "autoencoder"
            else None
        )
        if map_activation == "softmax":
            # log of the softmax's inverse temperature, learned.
            self.log_sharpness = nn.Parameter(torch.zeros(()))

    @property
    def maps_are_logits(self):
        """Whether the FBN maps are the SA logits (the paper) rather than the decoded maps."""
        return self.config["map_activation"] == "sigmoid" and not self.config["refine_steps"]

    def forward(self, x, mask=None):
        """Return ``(reconstruction, SA logits)`` for windows ``x`` of shape (B, T, X, Y, Z)."""
        if self.autoencoder is not None:
            attended, sa = self.stca(x, mask)
            return self.autoencoder(attended), sa
        sa = self.attention_logits(x, mask)
        flat_mask = None if mask is None else mask.reshape(1, 1, -1)
        maps = self.decode_maps(x.flatten(2), sa.flatten(2), flat_mask)
        reconstruction = regression_reconstruction(x.flatten(2), maps)
        return reconstruction.reshape(x.shape), sa

    def attention_logits(self, x, mask=None):
        """SA logits alone, shape (B, C, X, Y, Z), without running the autoencoder."""
        return self.stca.attention_logits(x, mask)[1]

    def decode_maps(self, windows, logits, mask=None):
        """The maps a window is rebuilt from (``decoder="regression"``), shape (B, C, N).

        ``windows`` (B, T, N) and ``logits`` (B, C, N) are masked vectors or flattened
        boxes; ``mask`` (broadcastable, or None) zeroes the maps outside the brain.
        """
        if self.config["map_activation"] == "softmax":
            maps = torch.softmax(logits * self.log_sharpness.exp(), dim=1)
        else:
            maps = torch.sigmoid(logits)
        maps = _apply_mask(maps, mask)
        return refine_maps(
            windows, maps, self.config["refine_steps"], self.config["refine_sparsity"], mask
        )

    def fbn_maps(self, windows, logits, mask=None):
        """The FBN maps of windows (B, C, N): the logits, or the decoded maps (see Notes)."""
        if self.maps_are_logits:
            return logits
        return self.decode_maps(windows, logits, mask)
