"""The STCA block's convolutions evaluated exactly through the FFT, on the brain alone.

The plain block (:class:`~nilearn_stca.network.STCABlock`) runs three direct 3D
convolutions (7x7x7, 7x7x7 and 3x3x3) over the whole padded box. Two facts make them much
cheaper here:

- every feature map is zero outside the brain mask, and only voxels inside the mask are
  ever read, so a circular (FFT) convolution on the mask's bounding box plus a margin of
  one kernel radius gives the same values inside the mask as a zero-padded direct one;
- in the Fourier domain a convolution is one small matrix product per frequency.

The kernel spectra come from the weights through small DFTs, so the weights' gradients
flow through them during training. Only the DFTs along the last two axes are applied to the
kernel; along the first axis its seven taps are kept and folded into the data side. The full
spectrum of a 64 x 64 x 7^3 kernel (64 x 64 x n_frequencies complex numbers, gigabytes at
4 mm) is therefore never built: each frequency costs seven small matrix products instead of
one, all done as one batched complex matrix product.

Values agree with the direct path to float32 rounding (about 1e-6 relative); the tests
compare the two on the same weights and windows.
"""

import math

import torch
from scipy.fft import next_fast_len
from torch.nn import functional as F


class SpectralGrid:
    """FFT grid over the brain's bounding box, with a margin of one kernel radius.

    Parameters
    ----------
    box : BrainBox
        Geometry of the masked data; the grid covers ``box.region``.
    radius : int, default=3
        Largest kernel radius the grid serves (3 for the 7x7x7 convolutions).
    device : str or torch.device, default="cpu"

    Attributes
    ----------
    shape : tuple of int
        FFT sizes, each at least the region's side plus ``radius``.
    n_frequencies : int
        Number of frequencies of the real FFT over ``shape``.
    mask : Tensor, shape ``shape``
        The brain mask on the grid (0 or 1).
    """

    def __init__(self, box, radius=3, device="cpu"):
        self.box = box
        self.radius = int(radius)
        self.device = torch.device(device)
        self._extent = tuple(s.stop - s.start for s in box.region)
        self.shape = tuple(next_fast_len(e + self.radius) for e in self._extent)
        self._half = (*self.shape[:2], self.shape[2] // 2 + 1)
        self.n_frequencies = math.prod(self._half)
        box_coords = torch.as_tensor(box.flat_indices).reshape(-1)
        coords = (
            torch.stack(torch.unravel_index(box_coords, box.shape))
            - torch.tensor([s.start for s in box.region])[:, None]
        )
        self.flat_indices = (
            torch.as_tensor((coords[0] * self.shape[1] + coords[1]) * self.shape[2] + coords[2])
            .to(self.device)
            .long()
        )
        flat = torch.zeros(math.prod(self.shape), device=self.device)
        flat[self.flat_indices] = 1
        self.mask = flat.reshape(self.shape)
        self._dft_cache = {}

    # ------------------------------------------------------------------ layout
    def from_box(self, boxes):
        """Crop boxes ``(..., *box.shape)`` to the region and zero-pad them to the grid."""
        region = boxes[(..., *self.box.region)]
        pads = []
        for side, extent in zip(reversed(self.shape), reversed(self._extent), strict=True):
            pads += [0, side - extent]
        return F.pad(region, pads)

    def to_box(self, grids):
        """Put grids ``(..., *shape)`` back into the box (zeros outside the region)."""
        region = grids[(..., *(slice(0, e) for e in self._extent))]
        pads = []
        for side, s in zip(reversed(self.box.shape), reversed(self.box.region), strict=True):
            pads += [s.start, side - s.stop]
        return F.pad(region, pads)

    def to_grid(self, vectors):
        """Scatter masked vectors ``(..., n_voxels)`` into grids ``(..., *shape)``."""
        lead = vectors.shape[:-1]
        flat = vectors.new_zeros((*lead, math.prod(self.shape)))
        flat[..., self.flat_indices] = vectors
        return flat.reshape(*lead, *self.shape)

    def to_vectors(self, grids):
        """Gather grids ``(..., *shape)`` into masked vectors ``(..., n_voxels)``."""
        return grids.reshape(*grids.shape[:-3], -1)[..., self.flat_indices]

    # ------------------------------------------------------------------ DFT factors
    def dft(self, axis, kernel_size, dtype=torch.float32):
        """``D[tap, frequency] = exp(2 pi i f (tap - r) / L)`` for one axis, complex.

        With it, the spectrum of a cross-correlation kernel ``w`` with zero padding ``r``
        is ``sum_tap w[tap] D[tap, f]`` along each axis.
        """
        key = (axis, kernel_size, dtype)
        if key not in self._dft_cache:
            if kernel_size % 2 == 0 or kernel_size // 2 > self.radius:
                raise ValueError(
                    f"A {kernel_size}-wide kernel needs an odd size and a radius of at most "
                    f"{self.radius}."
                )
            length = self.shape[axis]
            taps = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2
            frequencies = torch.arange(self._half[axis], dtype=torch.float64)
            phase = 2 * math.pi * taps[:, None] * frequencies[None, :] / length
            self._dft_cache[key] = torch.polar(torch.ones_like(phase), phase).to(
                device=self.device, dtype=(torch.ones(1, dtype=dtype) * 1j).dtype
            )
        return self._dft_cache[key]

    def kernel_factors(self, conv):
        """DFT of ``conv``'s kernel along the last two axes, taps along the first kept.

        Returns the real and imaginary parts, each of shape ``(Fy * Fz, kx, C_in, C_out)``;
        differentiable in the weights.
        """
        weight = conv.weight
        c_out, c_in, kx, ky, kz = weight.shape
        dy, dz = self.dft(1, ky, weight.dtype), self.dft(2, kz, weight.dtype)
        dyz = (dy[:, None, :, None] * dz[None, :, None, :]).reshape(ky * kz, -1)
        taps = weight.permute(3, 4, 2, 1, 0).reshape(ky * kz, kx * c_in * c_out)
        shape = (-1, kx, c_in, c_out)
        return (dyz.real.T @ taps).reshape(shape), (dyz.imag.T @ taps).reshape(shape)

    # ------------------------------------------------------------------ convolutions
    def conv(self, grids, conv):
        """``conv(grids)`` inside the mask, ``grids`` (B, C_in, *shape) zero outside it."""
        spectra = torch.fft.rfftn(grids, dim=(-3, -2, -1))
        batch, c_in, la, fy, fz = spectra.shape
        real, imag = self.kernel_factors(conv)
        kx = real.shape[1]
        factors = torch.complex(real, imag).reshape(fy * fz, kx * c_in, -1)
        dx = self.dft(0, kx, real.dtype)
        data = spectra.permute(3, 4, 0, 2, 1).reshape(fy * fz, batch, la, 1, c_in)
        data = (data * dx.T.reshape(1, 1, la, kx, 1)).reshape(fy * fz, batch * la, kx * c_in)
        out = torch.bmm(data, factors).reshape(fy, fz, batch, la, -1).permute(2, 4, 3, 0, 1)
        out = torch.fft.irfftn(out, s=self.shape, dim=(-3, -2, -1))
        return out + conv.bias[:, None, None, None]

    def attention_logits(self, block, grids):
        """``(f1, SA)`` of :meth:`STCABlock.attention_logits` for windows on the grid.

        ``grids`` (B, T, *shape) must be zero outside the mask (see :meth:`to_grid`).
        """
        mask = self.mask
        f = mask * F.gelu(self.conv(grids, block.embed))
        f1 = f * block.channel_attention(f, mask)[:, :, None, None, None]
        hidden = mask * F.gelu(self.conv(f1, block.spatial_conv1))
        sa = mask * self.conv(hidden, block.spatial_conv2)
        return f1, sa

    def forward(self, network, boxes):
        """``network(boxes, box.mask_tensor())``, with the STCA block evaluated on the grid."""
        f1, sa = self.attention_logits(network.stca, self.from_box(boxes))
        attended = self.to_box(f1 * torch.sigmoid(sa))
        return network.autoencoder(attended), self.to_box(sa)
