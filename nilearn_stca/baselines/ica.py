"""``ICADecomposition``: sliding-window group ICA with nilearn's CanICA."""

from nilearn.decomposition import CanICA

from .._docs import fill_doc
from ._array_fits import canica_maps
from ._window import _WindowedDecomposition

_CANICA_PARAMS = (
    "mask",
    "n_components",
    "smoothing_fwhm",
    "do_cca",
    "threshold",
    "n_init",
    "random_state",
    "standardize",
    "standardize_confounds",
    "detrend",
    "low_pass",
    "high_pass",
    "t_r",
    "dtype",
    "target_affine",
    "target_shape",
    "mask_strategy",
    "mask_args",
    "memory",
    "memory_level",
    "n_jobs",
    "verbose",
)


@fill_doc
class ICADecomposition(_WindowedDecomposition):
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
        Number of maps, static and per window.
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
    _nilearn_params = _CANICA_PARAMS

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
        fbn_threshold=3.6,
    ):
        self.mask = mask
        self.n_components = n_components
        self.smoothing_fwhm = smoothing_fwhm
        self.do_cca = do_cca
        self.threshold = threshold
        self.n_init = n_init
        self.random_state = random_state
        self.standardize = standardize
        self.standardize_confounds = standardize_confounds
        self.detrend = detrend
        self.low_pass = low_pass
        self.high_pass = high_pass
        self.t_r = t_r
        self.dtype = dtype
        self.target_affine = target_affine
        self.target_shape = target_shape
        self.mask_strategy = mask_strategy
        self.mask_args = mask_args
        self.memory = memory
        self.memory_level = memory_level
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.window_length = window_length
        self.window_stride = window_stride
        self.fbn_threshold = fbn_threshold

    def _decompose_window(self, reduced):
        return canica_maps(
            reduced,
            n_components=self.n_components,
            do_cca=self.do_cca,
            n_init=self.n_init,
            threshold=self.threshold,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
