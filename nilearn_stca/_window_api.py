"""The window API shared by every method: one run -> maps per sliding window, and FBNs."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._utils.checks import load_4d_run, mask_run
from .maps import threshold_fbn_img
from .windows import window_starts


def check_stride(stride, default):
    """``stride``, or ``default`` if None; a positive integer or a ValueError naming it."""
    stride = default if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer or None, got {stride!r}.")
    return int(stride)


class WindowMapsMixin:
    """``iter_window_maps``, ``window_maps_img`` and ``fbns_img`` for a fitted decomposition.

    A class using it has ``masker_``, ``components_img_`` and ``window_length`` /
    ``window_stride`` once fitted, its z threshold in ``fbn_threshold``, and implements
    ``_iter_run_maps(run, starts)``, which yields ``(start, maps)`` for the given window
    starts of one masked, cleaned run.
    """

    def _fbn_threshold(self):
        """The z threshold of the FBNs."""
        return self.fbn_threshold

    def __sklearn_is_fitted__(self):
        return hasattr(self, "components_")

    def _iter_run_maps(self, run, starts):
        raise NotImplementedError

    def _masked_run(self, img, confounds=None):
        check_is_fitted(self)
        # The fitted window_length cannot change here: a shorter run is the only way out.
        img = load_4d_run(img, "img", self.window_length, window_option=None)
        return mask_run(self.masker_, img, confounds)

    def iter_window_maps(self, img, confounds=None, stride=None):
        """Yield the maps of every sliding window of one run, one window at a time.

        Parameters
        ----------
        img : Niimg-like
            One 4D run, on the fitted mask's grid (or resampled to it by ``masker_``).
        confounds : CSV path, ndarray, DataFrame or None, default=None
            Regressed out of the whole run (by ``masker_``) before it is cut into windows.
        stride : int, default=None
            Scans between the starts of consecutive windows; ``window_stride`` if None. A
            larger stride maps fewer windows (e.g. every 10th for a quick look) without
            changing how the model was fitted.

        Yields
        ------
        start_scan : int
            First scan of the window; windows start ``stride`` scans apart.
        maps : ndarray of float32, shape (n_components, n_voxels)
            The window's maps, z-scored per map over the mask. Only one window's maps (or one
            small batch) are held at a time, so memory does not grow with the number of
            windows; ``masker_.inverse_transform(maps)`` gives an image.
        """
        stride = check_stride(stride, self.window_stride)
        run = self._masked_run(img, confounds)
        yield from self._iter_run_maps(run, window_starts(len(run), self.window_length, stride))

    def fit_iter_window_maps(self, img, confounds=None, stride=None):
        """Fit on one run, then iterate over the maps of its windows.

        The same as ``fit(img, confounds=[confounds])`` followed by
        ``iter_window_maps(img, confounds, stride)`` (see there); the fit happens when this
        method is called. STCA's version maps each window once for both its static maps
        and the returned maps.
        """
        if stride is not None:
            check_stride(stride, None)  # a bad stride fails before the fit, not after
        self.fit([img], confounds=None if confounds is None else [confounds])
        return self.iter_window_maps(img, confounds, stride)

    def window_maps_img(self, img, start_scan, confounds=None):
        """The maps of the window starting at ``start_scan``, as a 4D image.

        ``start_scan`` may be any scan from 0 to ``n_scans - window_length``, on the stride
        or not; the maps are those :meth:`iter_window_maps` gives for that window.
        """
        run = self._masked_run(img, confounds)
        last = len(run) - self.window_length
        if isinstance(start_scan, bool) or not isinstance(start_scan, (int, np.integer)):
            raise TypeError(f"start_scan must be an integer, got {start_scan!r}.")
        if not 0 <= start_scan <= last:
            raise ValueError(
                f"start_scan={start_scan} is outside the run: a window of {self.window_length} "
                f"scans must start between 0 and {last}."
            )
        ((_, maps),) = self._iter_run_maps(run, [int(start_scan)])
        return self.masker_.inverse_transform(maps)

    def fbns_img(self, img=None, start_scan=None, confounds=None):
        """Binary FBNs (z at or above the threshold): static maps, or one window's.

        Parameters
        ----------
        img : Niimg-like, default=None
            One 4D run; None for the FBNs of the static ``components_img_``.
        start_scan : int, default=None
            Required with ``img``: the window whose FBNs to return.
        confounds : CSV path, ndarray, DataFrame or None, default=None

        Returns
        -------
        fbn_img : Nifti1Image
            1 inside each network, 0 elsewhere (uint8), one volume per map.
        """
        check_is_fitted(self)
        threshold = self._fbn_threshold()
        if img is None:
            return threshold_fbn_img(self.components_img_, threshold)
        if start_scan is None:
            raise ValueError("start_scan is required with img: which window's FBNs to return.")
        return threshold_fbn_img(self.window_maps_img(img, start_scan, confounds), threshold)
