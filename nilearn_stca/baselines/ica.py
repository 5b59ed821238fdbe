"""``ICADecomposition``: sliding-window group ICA with nilearn's CanICA."""

import numbers
import warnings

from nilearn.decomposition import CanICA

from .._base import DEFAULT_FBN_THRESHOLD
from .._param_rules import boolean, integer, number
from .._utils.checks import check_n_components, cleaning_dof
from .._utils.docs import fill_doc
from ._array_fits import canica_maps
from ._window import _NilearnWindowedDecomposition


def _canica_threshold(value, name):
    """Rule of CanICA's ``threshold``: None, "auto" or a float >= 0 (nilearn refuses ints)."""
    number(0, options=(None, "auto"))(value, name)
    if isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be None, 'auto' or a float (CanICA refuses integers), got {value!r}: "
            f"give {float(value)!r}."
        )


@fill_doc
class ICADecomposition(_NilearnWindowedDecomposition):
    """Static and sliding-window ICA baseline, wrapping :class:`nilearn.decomposition.CanICA`.

    :meth:`fit` runs CanICA on all subjects; :meth:`iter_window_maps` runs CanICA's steps on
    each sliding window of one run (see Notes). Every map, static or per window, is
    sign-flipped so that its heavier tail is positive, z-scored over the mask, and
    thresholded at ``fbn_threshold`` into functional brain networks (FBNs), exactly as
    :class:`~nilearn_stca.STCADecomposition`'s maps, so the methods compare one to one.

    Parameter names: every parameter of :class:`~nilearn.decomposition.CanICA` keeps its
    nilearn name, meaning and default (except ``n_components=20``, also nilearn's), and is
    passed to it unchanged. In particular ``threshold`` is CanICA's own threshold on the raw
    ICA maps (applied *before* our z-scoring). The z threshold of the FBNs, called
    ``threshold`` in :class:`~nilearn_stca.STCADecomposition`, is ``fbn_threshold`` here
    (and in :class:`SDLDecomposition`).

    Parameters
    ----------
    %(mask)s
    n_components : int, default=20
        Number of maps, static and per window. CanICA reduces each run (and each window)
        to ``n_components`` time components, and the cleaning removes each voxel's mean and
        linear trend (``detrend``; its mean alone with ``standardize`` only): a run of
        ``n`` scans holds ``n - 2`` components, and those beyond are numerical noise that
        FastICA would turn into maps (measured: a 50-scan run gives 50 maps for any larger
        ``n_components``, the last 2 from singular values 1e-7 times the others). ``fit``
        therefore refuses, before any work, more than ``n - 2`` for the shortest run
        (``do_cca`` scales every run's components alike; without it, the runs' sum), or
        more than the voxels of the mask. A window of ``window_length`` scans gives at most
        ``window_length - 2`` maps, the others all zeros: ``fit`` warns, naming
        ``n_components``, where it asks for more. Confounds take one more time component
        each from every run of the static fit.
    smoothing_fwhm : float, default=6
        Spatial smoothing (mm) of the data. Windows are cut from the run already smoothed.
    do_cca : bool, default=True
        Canonical correlation analysis across subjects (CanICA).
    threshold : None, "auto" or float, default="auto"
        CanICA's threshold on its raw ICA maps (see nilearn); not the FBN z threshold.
        ``None`` keeps the full maps (better recovery on the simulated data of the tests).
    n_init : int, default=10
        FastICA restarts, the most stable result is kept. Each window repeats them.
    random_state : int, RandomState or None, default=None
        Passed to every CanICA fit; an int makes static and window maps reproducible.
    %(standardize_whole_run)s
    standardize_confounds, detrend : bool, default=True
        Time-series cleaning, see :func:`nilearn.signal.clean`. Cleaning is applied to the
        whole run, then ``standardize`` and ``detrend`` again to each window.
    low_pass, high_pass, t_r : float, default=None
        Temporal filtering of the whole run (never of a window alone).
    dtype : default=None
    %(target_grid)s
    %(masker_settings)s
    n_jobs : int, default=1
        CPUs (-1: all) for FastICA's restarts, in the static fit and in every window, with
        the same results.
    verbose : int, default=0
    %(window_length)s
    %(window_stride)s
    %(fbn_threshold)s

    Attributes
    ----------
    estimator_ : CanICA
        The fitted static CanICA.
    masker_ : MultiNiftiMasker
        ``estimator_.masker_``; also cleans the runs cut into windows.
    mask_img_ : Nifti1Image
    components_ : ndarray of float32, shape (n_components, n_voxels)
        CanICA's maps, sign-flipped to a positive heavy tail and z-scored per map.
    %(decomposition_attributes)s

    Notes
    -----
    The window fits do not build a CanICA per window: each window's rows of the run masked
    by ``masker_`` go through CanICA's own steps (cleaning by :func:`nilearn.signal.clean`,
    PCA, CCA, FastICA restarts, threshold) on arrays, with the same parameters and random
    draws, without turning the window into an image and masking it again. The maps are
    those of a CanICA fitted on the window image run with one BLAS thread, to rounding
    error; FastICA's ``"cube"`` contrast is computed by multiplications instead of
    ``x ** 3``, much faster. With several BLAS threads, rounding differs, and FastICA may
    then reach other maps of a similar quality.
    ``memory`` caches the static fit only, not the window steps.
    """

    _nilearn_class = CanICA
    # Each window has n_init FastICA restarts to run in parallel; on 2 cores at 4 mm that is
    # faster than two windows at once (FastICA's large arrays share the memory bandwidth).
    _windows_in_parallel = False
    _param_rules = {
        **_NilearnWindowedDecomposition._param_rules,
        "do_cca": boolean,
        "threshold": _canica_threshold,
        "n_init": integer(1),
    }
    _voxel_bound_reason = (
        "CanICA's maps are components over the voxels, and there cannot be more "
        "independent maps than voxels"
    )

    def __init__(
        self,
        mask=None,
        n_components=20,
        smoothing_fwhm=6,
        do_cca=True,
        threshold="auto",
        n_init=10,
        random_state=None,
        standardize="zscore_sample",
        standardize_confounds=True,
        detrend=True,
        low_pass=None,
        high_pass=None,
        t_r=None,
        dtype=None,
        target_affine=None,
        target_shape=None,
        mask_strategy="epi",
        mask_args=None,
        memory=None,
        memory_level=0,
        n_jobs=1,
        verbose=0,
        window_length=40,
        window_stride=1,
        fbn_threshold=DEFAULT_FBN_THRESHOLD,
    ):
        super().__init__(
            n_components=n_components,
            window_length=window_length,
            window_stride=window_stride,
            fbn_threshold=fbn_threshold,
            mask=mask,
            smoothing_fwhm=smoothing_fwhm,
            standardize=standardize,
            standardize_confounds=standardize_confounds,
            detrend=detrend,
            low_pass=low_pass,
            high_pass=high_pass,
            t_r=t_r,
            target_affine=target_affine,
            target_shape=target_shape,
            mask_strategy=mask_strategy,
            mask_args=mask_args,
            memory=memory,
            memory_level=memory_level,
            n_jobs=n_jobs,
            verbose=verbose,
            random_state=random_state,
        )
        self.do_cca = do_cca
        self.threshold = threshold
        self.n_init = n_init
        self.dtype = dtype

    def _n_window_components(self):
        """The time components a window holds once cleaned (see ``n_components``)."""
        return self.window_length - cleaning_dof(self.standardize, self.detrend)

    def _check_params(self):
        super()._check_params()
        n_window = self._n_window_components()
        if n_window < 1:
            raise ValueError(
                f"window_length={self.window_length} leaves no time component in a window "
                f"once its cleaning removes each voxel's mean (detrend: and linear trend): "
                f"give window_length >= {self.window_length - n_window + 1}."
            )
        if self.n_components > n_window:
            warnings.warn(
                f"ICADecomposition: n_components={self.n_components} is more than the "
                f"{n_window} time components of a window of window_length="
                f"{self.window_length} scans: each window gives {n_window} maps, and its "
                f"other {self.n_components - n_window} are all zeros. Give n_components <= "
                f"{n_window}, or a longer window_length, for n_components maps per window.",
                RuntimeWarning,
                stacklevel=3,
            )

    def _check_n_components_for_data(self, n_scans, n_voxels):
        dof = cleaning_dof(self.standardize, self.detrend)
        if len(n_scans) == 1:
            bound = n_scans[0] - dof
            what = f"the {bound} time components of the run ({n_scans[0]} scans)"
            cca = ""
        elif self.do_cca:
            bound = min(n_scans) - dof
            what = f"the {bound} time components of the shortest run ({min(n_scans)} scans)"
            cca = ", and do_cca scales every run's components alike, noise included"
        else:
            bound = sum(n_scans) - dof * len(n_scans)
            what = f"the {bound} time components of the {len(n_scans)} runs together"
            cca = ""
        check_n_components(
            self.n_components,
            bound,
            what,
            "CanICA reduces each run to n_components time components, and the cleaning "
            "removes each voxel's mean (detrend: and its linear trend) from every run: "
            f"components beyond those are numerical noise{cca}",
        )
        super()._check_n_components_for_data(n_scans, n_voxels)

    def _window_overrides(self):
        # No more maps than the window's time components: the others would be noise.
        return {"n_components": min(self.n_components, self._n_window_components())}

    def _decompose_window(self, reduced):
        return canica_maps(
            reduced,
            n_components=self._window_n_components(),
            do_cca=self.do_cca,
            n_init=self.n_init,
            threshold=self.threshold,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
