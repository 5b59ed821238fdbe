"""The STCA block's convolutions evaluated exactly through the FFT, on the brain alone.

The plain block (:class:`~nilearn_stca.stca.network.STCABlock`) runs three direct 3D
convolutions (7x7x7, 7x7x7 and 3x3x3) over the whole padded box. Two facts make them much
cheaper here:

- every feature map is zero outside the brain mask, and only voxels inside the mask are
  ever read, so a convolution that is circular along y and z, over the mask's bounding box
  plus a margin of one kernel radius, gives the same values inside the mask as a
  zero-padded direct one;
- after a 2D FFT over y and z, a convolution is, for each (y, z) frequency, a sum over the
  kernel's x taps of small matrix products (voxels along x by channels in, times channels
  in by channels out): batched complex matrix products that run near the CPU's peak. Along
  x, each tap reads the maps shifted by its offset; rows shifted out of the box read zero,
  so x needs no margin.

Feature maps are kept in the layout ``(Y, Z, X, batch, channels)``: the FFT then runs over
the two leading axes and leaves every frequency's (x, batch, channel) block contiguous, so
the x taps are plain slices and no data is reordered between the FFTs and the products.
The kernel spectra come from the weights through small DFTs, so the weights' gradients
flow through them during training; without gradients they are computed once per weight
version. Values agree with the direct path to float32 rounding (about 1e-6 relative); the
tests compare the two on the same weights and windows.
"""

import math

import torch
from scipy.fft import next_fast_len
from torch.nn import functional as F

from ._decoding import regression_reconstruction
from .network import brain_coordinates, brain_statistics


class SpectralGrid:
    """Grid over the brain's bounding box on which the STCA block is evaluated by FFT.

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
        Grid size along the box's x, y and z axes: the region's x extent; along y and z,
        FFT sizes of at least the extent plus ``radius``.
    mask : Tensor, shape (Y, Z, X, 1, 1)
        The brain mask in the grid layout (0 or 1).

    Notes
    -----
    Grid tensors have the layout ``(Y, Z, X, batch, channels)``; :meth:`to_grid`,
    :meth:`from_box` and their inverses convert from and to masked vectors and boxes.
    """

    def __init__(self, box, radius=3, device="cpu"):
        self.box = box
        self.radius = int(radius)
        self.device = torch.device(device)
        self._extent = tuple(s.stop - s.start for s in box.region)
        ex, ey, ez = self._extent
        self.shape = (
            ex,
            next_fast_len(ey + self.radius),
            next_fast_len(ez + self.radius),
        )
        self._layout_shape = (self.shape[1], self.shape[2], self.shape[0])
        self.n_voxels = box.n_voxels
        box_coords = torch.as_tensor(box.flat_indices).reshape(-1)
        x, y, z = (
            torch.stack(torch.unravel_index(box_coords, box.shape))
            - torch.tensor([s.start for s in box.region])[:, None]
        )
        ny, nz, lx = self._layout_shape
        self.flat_indices = ((y * nz + z) * lx + x).long().to(self.device)
        flat = torch.zeros(math.prod(self._layout_shape), device=self.device)
        flat[self.flat_indices] = 1
        self.mask = flat.reshape(*self._layout_shape, 1, 1)
        self._dft_cache = {}
        self._factor_cache = {}
        self._coordinates = None

    # ------------------------------------------------------------------ layout
    def to_grid(self, vectors):
        """Scatter masked vectors ``(B, C, n_voxels)`` into a grid ``(Y, Z, X, B, C)``."""
        batch, channels, _ = vectors.shape
        flat = vectors.new_zeros((math.prod(self._layout_shape), batch, channels))
        flat[self.flat_indices] = vectors.permute(2, 0, 1)
        return flat.reshape(*self._layout_shape, batch, channels)

    def to_vectors(self, grids):
        """Gather a grid ``(Y, Z, X, B, C)`` into masked vectors ``(B, C, n_voxels)``."""
        flat = grids.reshape(-1, *grids.shape[3:])[self.flat_indices]
        return flat.permute(1, 2, 0).contiguous()

    def from_box(self, boxes):
        """Move boxes ``(B, C, *box.shape)`` onto the grid (zeros outside the region)."""
        _, ey, ez = self._extent
        region = boxes[(..., *self.box.region)].permute(3, 4, 2, 0, 1)
        ny, nz, _ = self._layout_shape
        return F.pad(region, (0, 0, 0, 0, 0, 0, 0, nz - ez, 0, ny - ey))

    def to_box(self, grids):
        """Put a grid ``(Y, Z, X, B, C)`` back into boxes ``(B, C, *box.shape)``."""
        _, ey, ez = self._extent
        region = grids[:ey, :ez].permute(3, 4, 2, 0, 1)
        pads = []
        for side, s in zip(reversed(self.box.shape), reversed(self.box.region), strict=True):
            pads += [s.start, side - s.stop]
        return F.pad(region, pads)

    # ------------------------------------------------------------------ kernel spectra
    def dft(self, axis, kernel_size, dtype=torch.float32):
        """``D[tap, f] = exp(2 pi i f (tap - r) / N)`` along the grid's y (1) or z (2) axis.

        With it, the spectrum of a cross-correlation kernel ``w`` of radius ``r`` is
        ``sum_tap w[tap] D[tap, f]`` along that axis; along z only the frequencies of the
        real FFT are kept.
        """
        key = (axis, kernel_size, dtype)
        if key not in self._dft_cache:
            if kernel_size % 2 == 0 or kernel_size // 2 > self.radius:
                raise ValueError(
                    f"A {kernel_size}-wide kernel needs an odd size and a radius of at most "
                    f"{self.radius}."
                )
            length = self.shape[axis]
            n_frequencies = length // 2 + 1 if axis == 2 else length
            taps = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2
            frequencies = torch.arange(n_frequencies, dtype=torch.float64)
            phase = 2 * math.pi * taps[:, None] * frequencies[None, :] / length
            complex_dtype = (torch.ones(1, dtype=dtype) * 1j).dtype
            self._dft_cache[key] = torch.polar(torch.ones_like(phase), phase).to(
                device=self.device, dtype=complex_dtype
            )
        return self._dft_cache[key]

    def kernel_factors(self, conv):
        """``conv``'s kernel transformed along y and z, x taps kept, complex.

        Returns a tensor of shape ``(kx, Fy * Fz, C_in, C_out)``, differentiable in the
        weights. Without gradients, the result is kept until the weights change.
        """
        weight = conv.weight
        # Inference tensors have no version counter: their spectra are never kept.
        caching = not torch.is_grad_enabled() and not weight.is_inference()
        if caching:
            version = (weight._version, weight.dtype, weight.data_ptr())
            cached = self._factor_cache.get(id(conv))
            if cached is not None and cached[0] == version:
                return cached[1]
        c_out, c_in, kx, ky, kz = weight.shape
        dy, dz = self.dft(1, ky, weight.dtype), self.dft(2, kz, weight.dtype)
        # Separable: along z, then along y (7 + 7 products per frequency instead of 49).
        taps = weight.permute(2, 3, 4, 1, 0).reshape(kx * ky, kz, c_in * c_out)
        along_z = dz.T @ taps.to(dz.dtype)
        along_yz = dy.T @ along_z.reshape(kx, ky, -1)
        factors = along_yz.reshape(kx, -1, c_in, c_out)
        if caching:
            self._factor_cache[id(conv)] = (version, factors)
        return factors

    # ------------------------------------------------------------------ convolutions
    def conv(self, grids, conv):
        """``conv(grids)`` inside the mask; ``grids`` (Y, Z, X, B, C_in) zero outside it."""
        ny, nz, lx, batch, c_in = grids.shape
        spectra = torch.fft.rfftn(grids, dim=(0, 1))
        fz = spectra.shape[1]
        # torch returns the transformed axes innermost; one transposing copy makes each
        # frequency's (x, batch, channel) block contiguous for the products.
        spectra = spectra.reshape(ny * fz, lx * batch, c_in).contiguous()
        out = _TapProducts.apply(spectra, self.kernel_factors(conv), batch)
        out = torch.fft.irfftn(out.reshape(ny, fz, lx, batch, -1), s=(ny, nz), dim=(0, 1))
        return out.add_(conv.bias)

    def attention_logits(self, block, grids):
        """``(f1, SA)`` of :meth:`STCABlock.attention_logits` for windows on the grid.

        ``grids`` (Y, Z, X, B, T) must be zero outside the mask (see :meth:`to_grid`).
        """
        # In-place masking is safe for autograd here: no backward needs the masked tensors.
        mask = self.mask.to(grids.dtype)
        f = F.gelu(self.conv(self._with_coordinates(block, grids), block.embed)).mul_(mask)
        pooled = brain_statistics(f, mask, (0, 1, 2), block.channel_pooling)
        f1 = f * block.channel_weights(pooled)
        hidden = self.conv(self._with_coordinates(block, f1), block.spatial_conv1)
        hidden = F.gelu(hidden).mul_(mask)
        sa = self.conv(hidden, block.spatial_conv2).mul_(mask)
        return f1, sa

    def _with_coordinates(self, block, grids):
        """``grids`` with the brain's coordinate channels appended, if ``block`` reads them."""
        if not block.coordinate_channels:
            return grids
        if self._coordinates is None:
            box_mask = self.box.mask_tensor(self.device, dtype=torch.float64)
            self._coordinates = self.from_box(brain_coordinates(box_mask)[None])
        coordinates = self._coordinates.to(grids.dtype)
        return torch.cat([grids, coordinates.expand(*grids.shape[:4], 3)], dim=4)

    def forward(self, network, boxes):
        """``network(boxes, box.mask_tensor())``, with the STCA block evaluated on the grid."""
        grids = self.from_box(boxes)
        f1, sa = self.attention_logits(network.stca, grids)
        if network.autoencoder is None:  # decoder="regression", on the brain's voxels
            windows = self.to_vectors(grids)
            maps = network.decode_maps(windows, self.to_vectors(sa))
            reconstruction = regression_reconstruction(windows, maps)
            return self.box.to_box(reconstruction), self.to_box(sa)
        attended = self.to_box(f1 * torch.sigmoid(sa))
        return network.autoencoder(attended), self.to_box(sa)


def _tap_rows(n_rows, tap, kx, batch):
    """Rows read (input) and written (output) by one x tap: ``out[x] += in[x + shift]``."""
    shift = (tap - kx // 2) * batch
    rows_in = slice(max(shift, 0), n_rows + min(shift, 0))
    rows_out = slice(max(-shift, 0), n_rows - max(shift, 0))
    return rows_in, rows_out


class _TapProducts(torch.autograd.Function):
    """``out[f, x] = sum_tap spectra[f, x + shift(tap)] @ factors[tap, f]``, zero past the ends.

    ``spectra`` (F, X * B, C_in) and ``factors`` (kx, F, C_in, C_out) are complex; rows are
    (x, batch) pairs, so a tap shifts them by a multiple of the batch size. The backward pass
    is written out so that the conjugate transposes it needs cost two copies of small
    tensors instead of one copy of the kernel spectrum per tap (as autograd's bmm would).
    """

    @staticmethod
    def forward(ctx, spectra, factors, batch):
        ctx.save_for_backward(spectra, factors)
        ctx.batch = batch
        kx, n_rows = factors.shape[0], spectra.shape[1]
        out = torch.bmm(spectra, factors[kx // 2])
        for tap in range(kx):
            if tap != kx // 2:
                rows_in, rows_out = _tap_rows(n_rows, tap, kx, batch)
                out[:, rows_out] += torch.bmm(spectra[:, rows_in], factors[tap])
        return out

    @staticmethod
    def backward(ctx, grad_out):
        spectra, factors = ctx.saved_tensors
        kx, n_rows = factors.shape[0], spectra.shape[1]
        # The inverse FFT's gradient comes with the frequency axes innermost.
        grad_out = grad_out.contiguous()
        grad_spectra = grad_factors = None
        if ctx.needs_input_grad[0]:
            # conj(G @ W^H) = conj(G) @ W^T: only G is conjugated, W is read transposed.
            grad_conj = grad_out.conj().resolve_conj()
            total_conj = torch.zeros_like(spectra)
            for tap in range(kx):
                rows_in, rows_out = _tap_rows(n_rows, tap, kx, ctx.batch)
                total_conj[:, rows_in] += torch.bmm(
                    grad_conj[:, rows_out], factors[tap].transpose(1, 2)
                )
            grad_spectra = total_conj.conj().resolve_conj()
        if ctx.needs_input_grad[1]:
            spectra_conj = spectra.conj().resolve_conj()
            grad_factors = torch.empty_like(factors)
            for tap in range(kx):
                rows_in, rows_out = _tap_rows(n_rows, tap, kx, ctx.batch)
                torch.bmm(
                    spectra_conj[:, rows_in].transpose(1, 2),
                    grad_out[:, rows_out],
                    out=grad_factors[tap],
                )
        return grad_spectra, grad_factors, None
