"""``SDLDecomposition``: sliding-window sparse dictionary learning with nilearn's DictLearning."""

import math

from nilearn.decomposition import DictLearning
from nilearn.image import load_img

from .._base import DEFAULT_FBN_THRESHOLD
from .._param_rules import integer, number, one_of
from .._utils.docs import fill_doc
from ._array_fits import dict_learning_maps
from ._window import _NilearnWindowedDecomposition

#: ``window_coding`` values: scikit-learn's (nilearn's) final codes, or the exact minimiser.
WINDOW_CODINGS = ("nilearn", "exact")

#: ``alpha="auto"``: the sparsity per square root of the number of scans (measured in
#: ``benchmarks/sdl_alpha.py``).
AUTO_ALPHA_PER_SQRT_SCAN = 0.5


@fill_doc
class SDLDecomposition(_NilearnWindowedDecomposition):
    """Static and sliding-window sparse dictionary learning (SDL) baseline.

    Wraps :class:`nilearn.decomposition.DictLearning`: :meth:`fit` runs it on all subjects;
    :meth:`iter_window_maps` runs its steps, with sparsity ``window_alpha``, on each
    sliding window of one run (see Notes). Every map, static or per window, is sign-flipped
    so that its heavier tail is positive, z-scored over the mask, and thresholded at
    ``fbn_threshold`` into functional brain networks (FBNs), as
    :class:`~nilearn_stca.STCADecomposition`'s.

    Parameter names: every parameter of :class:`~nilearn.decomposition.DictLearning` keeps
    its nilearn name, meaning and default, and is passed to it unchanged. The FBN z
    threshold, ``threshold`` in :class:`~nilearn_stca.STCADecomposition`, is called
    ``fbn_threshold`` here, as in :class:`ICADecomposition` (whose ``threshold`` is
    CanICA's own).

    Parameters
    ----------
    n_components : int, default=20
        Number of maps, static and per window. At most the number of voxels in the mask
        (``fit`` refuses more before the dictionary learning): the maps are the
        dictionary's codes of the voxels. The dictionary may have more atoms than time
        components (measured: 100 maps from one 50-scan run, all non-zero), but atoms that
        code no voxel give all-zero maps (measured: 40 maps on 64 voxels, 39 non-zero);
        ``fit`` warns, naming ``n_components``, when some static maps are all zeros.
    n_epochs : int, default=1
        Passes over the voxels: scikit-learn's ``max_iter`` is the batches per pass times
        ``n_epochs``, an integer.
    alpha : float or "auto", default=2.0
        Sparsity of the static fit. nilearn's default, 10, is chosen for group data: the
        lasso codes each voxel's row of the PCA-reduced runs, whose scale grows as the
        square root of the number of scans, so 10 finds no map on a single run of 60 or 100
        scans. Measured on single simulated runs of 60 to 1200 scans at 8 and 4 mm, on three
        simulator configurations (``benchmarks/sdl_alpha.py``, ``benchmarks/README.md``),
        2 finds maps on every run and has the best mean IoU with the planted networks over
        the three of the values tried (fixed 1, 2, 5, 10; 0.1 to 0.7 times the square root
        of the number of scans): 0.58, 0.32 and 0.99, against 0.36, 0.30 and 0.50 for 10.
        It is also ``window_alpha``'s default. "auto": ``0.5 * sqrt(n_scans)``, ``n_scans``
        counted over all runs, the best scaled rule on two of the configurations (worst
        case 0.33 against 0.29 for 2, mean 0.59 against 0.63). ``alpha_`` holds the value
        used.
    reduction_ratio : "auto" or float in (0, 1], default="auto"
    dict_init : Niimg-like, default=None
        Initial maps of the static fit, one per component (``n_components`` volumes); the
        window fits ignore it.
    random_state : int, RandomState or None, default=None
        Passed to every DictLearning fit; an int makes static and window maps reproducible.
    batch_size : int, default=20
    method : {"cd", "lars"}, default="cd"
    %(mask)s
    smoothing_fwhm : float, default=4
        Spatial smoothing (mm). Windows are cut from the run already smoothed.
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
        CPUs (-1: all). The maps of several windows are computed that many windows at a
        time, in worker processes, with the same results (not when ``random_state`` is a
        ``RandomState`` instance, which the windows draw from in turn).
    verbose : int, default=0
    %(window_length)s
    %(window_stride)s
    window_alpha : float or None, default=2.0
        Sparsity of the window fits; None uses ``alpha`` ("auto": ``0.5 *
        sqrt(window_length)``). The data of a window have a
        smaller scale than a whole run (about the square root of the number of scans), so
        nilearn's ``alpha=10`` zeroes every map of a 40-scan window ("No component found").
        On 40-scan windows of the simulated data, 1 to 4 give 20 maps (2: best overlap with
        the planted networks), 6 keeps a single map and 10 none.
    window_coding : {"nilearn", "exact"}, default="nilearn"
        How the window fits compute the lasso codes of the voxels (the maps). "nilearn":
        as nilearn's DictLearning does, so the window maps are those of a DictLearning
        fitted on the window image with one BLAS thread, to float32 rounding. "exact": in
        float32, scikit-learn's descent cannot reach its own tolerance for about a third of
        the voxels and runs all its 1000 sweeps; those voxels get the exact lasso minimiser
        on the support found instead (an objective as low or lower), and the CanICA
        initialisation's FastICA contrast is computed by multiplications (the same to
        rounding, which the dictionary amplifies). Faster; the maps differ from nilearn's by
        a few hundredths in z, with the same mean IoU (``benchmarks/README.md``). The exact
        codes need scikit-learn 1.8 or later (its compiled kernel); with an older release
        only the contrast changes.
    %(fbn_threshold)s

    Attributes
    ----------
    estimator_ : DictLearning
        The fitted static DictLearning.
    alpha_ : float
        The sparsity of the static fit (``alpha``, or its "auto" value).
    masker_ : MultiNiftiMasker
        ``estimator_.masker_``; also cleans the runs cut into windows.
    mask_img_ : Nifti1Image
    components_ : ndarray of float32, shape (n_components, n_voxels)
        The dictionary's maps, sign-flipped to a positive heavy tail and z-scored per map.
    %(decomposition_attributes)s

    Notes
    -----
    The window fits do not build a DictLearning per window: each window's rows of the run
    masked by ``masker_`` go through DictLearning's own steps (cleaning by
    :func:`nilearn.signal.clean`, PCA, CanICA initialisation, online dictionary learning) on
    arrays, with the same parameters and random draws, without turning the window into an
    image and masking it again. Scikit-learn's online dictionary learning
    (``method="cd"``) is run by calling its compiled coordinate-descent kernel directly
    instead of fitting a ``Lasso`` per voxel: the learnt dictionary and the codes are
    scikit-learn's bit for bit (with ``window_coding="exact"``, see there, the codes of the
    voxels whose float32 descent cannot converge are the exact minimiser instead). See
    :mod:`nilearn_stca.baselines._online_dictionary`.

    With the default ``window_coding="nilearn"``, the maps are then those of a DictLearning
    fitted on the window image with one BLAS thread, to float32 rounding. With several BLAS
    threads, rounding differs, and nilearn's own maps may differ slightly. ``memory``
    caches the static fit only, not the window steps.
    """

    _nilearn_class = DictLearning
    _param_rules = {
        **_NilearnWindowedDecomposition._param_rules,
        # scikit-learn takes max_iter = batches per epoch * n_epochs: an integer.
        "n_epochs": integer(1),
        "alpha": number(0, options=("auto",)),
        "reduction_ratio": number(0, above=True, maximum=1, options=("auto",)),
        "batch_size": integer(1),
        "method": one_of("cd", "lars"),
        "window_alpha": number(0, options=(None,)),
        "window_coding": one_of(
            *WINDOW_CODINGS,
            hint=" 'nilearn' gives nilearn's codes, 'exact' the exact lasso minimiser.",
        ),
    }
    _zero_maps_hint = (
        "The dictionary learning left those atoms unused (no voxel's code uses them at this "
        "alpha): lower n_components, or alpha."
    )
    _voxel_bound_reason = (
        "the maps are the dictionary's codes of the voxels, and there cannot be more "
        "independent maps than voxels (scikit-learn's dictionary learning leaves the atoms "
        "beyond them unused, as all-zero maps)"
    )

    def __init__(
        self,
        n_components=20,
        n_epochs=1,
        alpha=2.0,
        reduction_ratio="auto",
        dict_init=None,
        random_state=None,
        batch_size=20,
        method="cd",
        mask=None,
        smoothing_fwhm=4,
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
        n_jobs=1,
        verbose=0,
        memory=None,
        memory_level=0,
        window_length=40,
        window_stride=1,
        window_alpha=2.0,
        window_coding="nilearn",
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
        self.n_epochs = n_epochs
        self.alpha = alpha
        self.reduction_ratio = reduction_ratio
        self.dict_init = dict_init
        self.batch_size = batch_size
        self.method = method
        self.dtype = dtype
        self.window_alpha = window_alpha
        self.window_coding = window_coding

    def _check_params(self):
        super()._check_params()
        if self.dict_init is not None:
            shape = load_img(self.dict_init).shape
            n_maps = shape[3] if len(shape) == 4 else 1
            if len(shape) not in (3, 4) or n_maps != self.n_components:
                raise ValueError(
                    f"dict_init has {n_maps} maps (shape {shape}) for n_components="
                    f"{self.n_components}: give one initial map per component, as a 4D image."
                )

    def _alpha_for(self, n_scans):
        """``alpha``, with "auto" resolved for data of ``n_scans`` scans."""
        if isinstance(self.alpha, str) and self.alpha == "auto":
            return AUTO_ALPHA_PER_SQRT_SCAN * math.sqrt(n_scans)
        return self.alpha

    def _static_overrides(self, n_scans):
        return {"alpha": self._alpha_for(n_scans)}

    @property
    def alpha_(self):
        """The sparsity of the static fit: the fitted DictLearning's ``alpha``."""
        return self.estimator_.alpha

    def _window_overrides(self):
        if self.window_alpha is None:
            alpha = self._alpha_for(self.window_length)
        else:
            alpha = self.window_alpha
        # dict_init holds maps of the static fit's scale and grid; each window starts afresh.
        return {"alpha": alpha, "dict_init": None}

    def _decompose_window(self, reduced):
        return dict_learning_maps(
            reduced,
            n_components=self.n_components,
            alpha=self._window_overrides()["alpha"],
            batch_size=self.batch_size,
            method=self.method,
            n_epochs=self.n_epochs,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            exact_codes=self.window_coding == "exact",
        )

    def _empty_window_hint(self, static=False):
        if static:
            return "Lower alpha (sparsity of the static fit) or give a longer run."
        return "Lower window_alpha (sparsity of the window fits) or lengthen window_length."
