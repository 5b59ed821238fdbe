"""``STCADecomposition``: STCA as a nilearn-style decomposition estimator."""

import warnings

import numpy as np
import torch
from nilearn.maskers import MultiNiftiMasker, NiftiMasker
from sklearn.base import clone
from sklearn.utils import check_random_state

from .._base import DEFAULT_FBN_THRESHOLD, BaseWindowedDecomposition
from .._param_rules import (
    MASKER_RULES,
    WINDOW_RULES,
    boolean,
    check_stride,
    integer,
    integers,
    number,
    one_of,
)
from .._utils.checks import check_fbn_threshold, load_runs_for_fit, mask_run, resolve_device
from .._utils.docs import fill_doc
from ..maps import zscore_maps
from ..windows import window_starts
from ._grid import BrainBox
from ._persistence import NetworkPicklingMixin
from ._training import (
    CONV_ALGORITHM_CHOICES,
    iter_attention_logits,
    resolve_conv_algorithm,
    torch_threads,
    torch_threads_for,
    train_network,
)
from .network import (
    CHANNEL_POOLINGS,
    DECODERS,
    DEFAULT_AUTOENCODER_WIDTHS,
    MAP_ACTIVATIONS,
    PAPER_BLOCK,
    SPATIAL_MULTIPLE,
    STCANetwork,
)
from .static_maps import STATIC_MAPS, static_maps_accumulator

#: The paper's settings where the defaults differ, and its number of maps: with these
#: (and the default windows of 40 scans at stride 1, one epoch, one window per step and
#: z >= 3.6) the estimator trains as Liu et al. (2023) describe. Static maps are not
#: defined by the paper; the default ``static_maps`` is kept.
PAPER_SETTINGS = {
    "n_components": 64,
    "learning_rate": 1e-4,
    "decoder": "autoencoder",
    **{name: value for name, value in PAPER_BLOCK.items() if name != "refine_sparsity"},
}

#: The parameters that build the network (those of :class:`STCANetwork` but its first two).
NETWORK_PARAMS = ("autoencoder_widths", "decoder", *PAPER_BLOCK)


def _check_device(value, name):
    """Rule: a device :func:`resolve_device` knows and finds (CUDA absent fails here)."""
    del name  # resolve_device names device itself
    resolve_device(value)


#: The rules ``fit`` checks the parameters with (:mod:`nilearn_stca._param_rules`): the
#: shared ones, with STCA's between the window and the masker rules; the deprecated
#: ``threshold`` is checked apart (:meth:`STCADecomposition._check_params`).
_PARAM_RULES = {
    **WINDOW_RULES,
    "n_epochs": integer(1),
    "batch_size": integer(1),
    "learning_rate": number(0, above=True),
    "decoder": one_of(
        *DECODERS,
        hint=" 'autoencoder' is the paper's guiding autoencoder, 'regression' reconstructs "
        "each window from the attention maps.",
    ),
    "channel_pooling": one_of(*CHANNEL_POOLINGS),
    "coordinate_channels": boolean,
    "map_activation": one_of(*MAP_ACTIVATIONS),
    "refine_steps": integer(0),
    "refine_sparsity": number(0, maximum=1),
    "static_maps": one_of(*STATIC_MAPS),
    "conv_algorithm": one_of(*CONV_ALGORITHM_CHOICES),
    "autoencoder_widths": integers(4, 1),
    "device": _check_device,
    **MASKER_RULES,
}


@fill_doc
class STCADecomposition(NetworkPicklingMixin, BaseWindowedDecomposition):
    """Spatial-temporal convolutional attention (STCA) decomposition of fMRI.

    Finds dynamic functional brain networks (FBNs) as in Liu et al. (ISBI 2023): a 3D
    convolution turns each sliding window of ``window_length`` volumes into
    ``n_components`` feature maps, channel and spatial attention weight them, and the
    window is reconstructed from the attention (mean squared error). The spatial attention
    logits of a window, z-scored over the brain, are its FBN maps; voxels at
    ``z >= fbn_threshold`` form the networks. Use it as a drop-in for
    :class:`nilearn.decomposition.CanICA`.

    The defaults depart from the paper where the paper's settings were measured not to
    recover the simulator's networks: ``decoder="regression"`` (the paper's is a 3D
    convolutional autoencoder), ``learning_rate=1e-3`` (the paper's 1e-4) and
    ``static_maps="clustered"`` (the paper defines no static map). :data:`PAPER_SETTINGS`
    restores the paper's (``STCADecomposition(**PAPER_SETTINGS)``), as does
    ``compare(..., **paper_protocol())``.

    Parameters
    ----------
    n_components : int, default=64
        Number of attention maps (the paper's 64): the channels of the STCA block, each
        giving one map over the voxels of the mask. At most the number of voxels in the
        mask (more maps than voxels cannot be independent); refused above it before the
        network is built.
    %(window_length)s
    %(window_stride)s
    n_epochs : int, default=1
        Passes over all windows of all subjects. STCA learns per optimizer step, not per
        epoch: one epoch on a 1200-scan run is 1,161 steps, on a 240-scan run 201.
    learning_rate : float, default=1e-3
        Adam learning rate. The paper's is 1e-4; measured on the simulator, 1e-3 recovers
        more within one epoch with either decoder, and 3e-3 or 3e-4 less
        (``benchmarks/README.md``).
    batch_size : int, default=1
        Windows per optimizer step.
    %(fbn_threshold)s
    autoencoder_widths : tuple of 4 int, default=(16, 16, 32, 32)
        Channel widths of the guiding autoencoder's levels (not given in the paper). Wider
        autoencoders recover the simulator's networks no better and cost more per step
        (see ``benchmarks/README.md``).
    decoder : {"regression", "autoencoder"}, default="regression"
        What guides the attention during training. "autoencoder" (the paper's): a 3D
        convolutional autoencoder reconstructs the window from the attended features
        ``f1 * sigmoid(SA)``. "regression": the window is reconstructed from the attention
        maps ``sigmoid(SA)`` themselves, each with one least-squares time course (as the
        first stage of dual regression), so that a map must cover voxels that fluctuate
        together; there are no decoder weights and ``autoencoder_widths`` is unused.
        Measured on two simulator configurations (``benchmarks/README.md``), the paper's
        autoencoder reconstructs almost nothing of a window (loss stays near 1) and its maps
        stay near their random start, while "regression" raises the window IoU with the
        planted networks several-fold (e.g. 0.012 to 0.062 and 0.004 to 0.012 after 120
        steps) and trains about 5 times faster per step.
    channel_pooling : {"mean", "mean_std_max"}, default="mean"
        What channel attention reads from each feature map over the brain: its mean (the
        paper's), or its mean, standard deviation and maximum. On z-scored windows the means
        are near zero in every window, so the paper's channel weights hardly change.
    coordinate_channels : bool, default=False
        Give the STCA block each voxel's position in the brain as three more input
        channels (the paper's block sees only time series and the zero padding).
    map_activation : {"sigmoid", "softmax"}, default="sigmoid"
        How the logits become the maps a window is rebuilt from (``decoder="regression"``):
        a sigmoid per map (the paper's), or a softmax over the maps at each voxel with a
        learned temperature, so that maps compete for voxels.
    refine_steps : int, default=0
        Window-adaptive refinement (``decoder="regression"``): the attention proposes maps,
        then each step fits their time courses to the window by least squares and
        re-estimates every voxel's weights on them as a sparse nonnegative code (unrolled
        dual regression with soft thresholding). The window is rebuilt from, and the FBN
        maps are, the refined maps; training runs through the steps. 0: none (the paper).
    refine_sparsity : float, default=0.3
        The refinement's soft threshold, as a correlation between a voxel and a map's time
        course (0 to 1): higher gives sparser maps.
    static_maps : {"clustered", "mean"}, default="clustered"
        How ``components_`` are made from the window maps (the paper defines no static
        map). "clustered": the FBNs (z >= ``fbn_threshold``) of all maps of all training
        windows are grouped by k-means into ``n_components`` clusters, and each static map
        is how often each voxel belongs to its cluster's FBNs (z-scored); the same network
        is found whichever map carries it in each window. "mean": the mean of the window
        z-maps, map by map, which blurs when a map shows different networks in different
        windows. Measured on two simulator configurations, "clustered" raises the static
        IoU with the planted networks from 0.04 to 0.27 and from 0.00 to 0.10
        (``benchmarks/README.md``).
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where the network runs; "auto" takes CUDA when available.
    conv_algorithm : {"auto", "fft", "direct"}, default="auto"
        How the STCA block's 3D convolutions are computed, in training and for the maps.
        "fft" evaluates them through the FFT on the brain's bounding box only; "direct"
        runs plain zero-padded convolutions over the whole box (the reference
        implementation, 10 to 20 times slower on CPU). Both give the same attention maps
        for the same weights, to float32 rounding (see ``benchmarks/``). "auto": "fft"
        while the network is on CPU, "direct" on CUDA (cuDNN), where the FFT path has not
        been measured; decided at each call, so a network moved to another device follows.
    %(mask)s
    smoothing_fwhm : float, default=None
        Spatial smoothing (mm) applied by the masker.
    %(standardize_whole_run)s
    standardize_confounds : bool, default=True
    detrend : bool, default=True
    low_pass, high_pass, t_r : float, default=None
        Temporal filtering, see :func:`nilearn.signal.clean`.
    %(target_grid)s
    %(masker_settings)s
    n_jobs : int or None, default=None
        CPUs: PyTorch's threads while training and mapping windows (restored after each
        call), and the MultiNiftiMasker's jobs (parallel masking over subjects). -1 is every
        CPU, -2 all but one (as in joblib). None (the default; nilearn's decompositions
        default to 1) keeps PyTorch's own thread count, one per core, and masks with one
        job: one thread is measured about 1.6 times slower than two for STCA on 2 cores.
        The maps agree across values to float32 rounding (threads change the order of
        PyTorch's sums).
    verbose : int, default=0
        0: silent; 1 or more: a progress bar over training steps and windows.
    random_state : int, RandomState or None, default=None
        Seeds the network's initialisation and the order of the windows. With the same
        value on CPU, ``components_`` are identical.
    threshold : float
        Deprecated: the former name of ``fbn_threshold``, the name all three estimators
        share (CanICA owns ``threshold``). It still works, with a ``FutureWarning``, and
        will be removed in 0.3. Given with an ``fbn_threshold`` other than its default
        (3.6) and another value, it is refused: which one was meant is unknown.

    Attributes
    ----------
    masker_ : MultiNiftiMasker
    mask_img_ : Nifti1Image
    network_ : STCANetwork
        The trained network (a plain :class:`torch.nn.Module`).
    loss_curve_ : list of float
        Training loss (mean squared error over brain voxels) at every optimizer step.
    n_steps_ : int
    components_ : ndarray, shape (n_components, n_voxels)
        Static maps, z-scored per map over the mask, made from the z-maps of every training
        window (every subject, stride ``window_stride``) as ``static_maps`` says.
    %(decomposition_attributes)s

    References
    ----------
    Liu et al., "Spatial-temporal convolutional attention for discovering and
    characterizing functional brain networks in task fMRI" / resting-state dynamic FBNs,
    IEEE ISBI 2023.
    """

    _param_rules = _PARAM_RULES
    _voxel_bound_reason = (
        "each of STCA's channels gives one attention map over the voxels of the mask, "
        "and there cannot be more independent maps than voxels"
    )
    _zero_maps_hint = (
        "The training windows' maps hold fewer FBNs (z >= fbn_threshold) than that, so "
        "k-means found fewer groups: lower n_components or fbn_threshold, or train longer."
    )

    def __init__(
        self,
        n_components=64,
        window_length=40,
        window_stride=1,
        n_epochs=1,
        learning_rate=1e-3,
        batch_size=1,
        fbn_threshold=DEFAULT_FBN_THRESHOLD,
        autoencoder_widths=DEFAULT_AUTOENCODER_WIDTHS,
        decoder="regression",
        channel_pooling="mean",
        coordinate_channels=False,
        map_activation="sigmoid",
        refine_steps=0,
        refine_sparsity=0.3,
        static_maps="clustered",
        device="auto",
        conv_algorithm="auto",
        mask=None,
        smoothing_fwhm=None,
        standardize="zscore_sample",
        standardize_confounds=True,
        detrend=True,
        low_pass=None,
        high_pass=None,
        t_r=None,
        target_affine=None,
        target_shape=None,
        mask_strategy="epi",
        mask_args=None,
        memory=None,
        memory_level=0,
        n_jobs=None,
        verbose=0,
        random_state=None,
        threshold="deprecated",
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
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.autoencoder_widths = autoencoder_widths
        self.decoder = decoder
        self.channel_pooling = channel_pooling
        self.coordinate_channels = coordinate_channels
        self.map_activation = map_activation
        self.refine_steps = refine_steps
        self.refine_sparsity = refine_sparsity
        self.static_maps = static_maps
        self.device = device
        self.conv_algorithm = conv_algorithm
        self.threshold = threshold

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        super()._check_params()
        self._check_decoder_levers()
        self._check_deprecated_threshold()

    def _check_decoder_levers(self):
        """Refuse the levers that act on the maps a window is rebuilt from, without them."""
        if self.decoder == "regression":
            return
        for name, paper in (("map_activation", "sigmoid"), ("refine_steps", 0)):
            if getattr(self, name) != paper:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} needs decoder='regression': the "
                    f"autoencoder rebuilds a window from the attended features, not from the "
                    f"maps. Set decoder='regression', or {name}={paper!r}."
                )

    def _check_deprecated_threshold(self):
        """Check ``threshold`` where given: refused beside another ``fbn_threshold``, else
        used with a ``FutureWarning``."""
        if self._fbn_threshold_name() == "fbn_threshold":
            return
        check_fbn_threshold(self.threshold, "threshold")
        if self.fbn_threshold not in (DEFAULT_FBN_THRESHOLD, self.threshold):
            raise ValueError(
                f"fbn_threshold={self.fbn_threshold!r} and threshold={self.threshold!r} are "
                "both given: threshold is the deprecated name of fbn_threshold; give "
                "fbn_threshold alone."
            )
        warnings.warn(
            "STCADecomposition's threshold is now fbn_threshold (the name of all three "
            f"estimators); threshold will be removed in 0.3: use fbn_threshold="
            f"{self.threshold!r}.",
            FutureWarning,
            stacklevel=5,
        )

    def _fbn_threshold_name(self):
        """The name in use: ``fbn_threshold``, or the deprecated ``threshold`` where given."""
        unset = isinstance(self.threshold, str) and self.threshold == "deprecated"
        return "fbn_threshold" if unset else "threshold"

    def _fbn_threshold(self):
        return getattr(self, self._fbn_threshold_name())

    def _make_masker(self):
        if isinstance(self.mask, (NiftiMasker, MultiNiftiMasker)):
            return clone(self.mask)
        return MultiNiftiMasker(
            mask_img=self.mask,
            smoothing_fwhm=self.smoothing_fwhm,
            standardize=self.standardize,
            standardize_confounds=self.standardize_confounds,
            detrend=self.detrend,
            low_pass=self.low_pass,
            high_pass=self.high_pass,
            t_r=self.t_r,
            target_affine=self.target_affine,
            target_shape=self.target_shape,
            mask_strategy=self.mask_strategy,
            mask_args=self.mask_args,
            memory=self.memory,
            memory_level=self.memory_level,
            n_jobs=1 if self.n_jobs is None else self.n_jobs,
            verbose=max(0, self.verbose - 1),
        )

    # ------------------------------------------------------------------ fitting
    def _fit(self, imgs, confounds):
        """Train STCA on every sliding window of every subject, then the static maps."""
        runs, static = self._train(imgs, confounds)
        self._set_static_maps(runs, static)

    def fit_iter_window_maps(self, img, confounds=None, stride=None):
        """Train on one run, then iterate over the maps of its windows, mapping each once.

        Gives the same fitted estimator and the same maps as ``fit(img)`` followed by
        ``iter_window_maps(img, confounds, stride)``, but the static maps are accumulated
        from the windows as they are yielded (when ``stride`` is ``window_stride``), so no
        window is mapped twice and the run is masked once. The network is trained when this
        method is called; ``components_`` are set once the returned iterator is exhausted.

        Parameters
        ----------
        img : Niimg-like
            One 4D run.
        confounds : CSV path, ndarray, DataFrame or None, default=None
        stride : int, default=None
            Scans between yielded windows; ``window_stride`` if None. Another stride maps
            the training windows for the static maps first, then the windows asked for.

        Returns
        -------
        windows : iterator of (int, ndarray of float32, shape (n_components, n_voxels))
            ``(start_scan, maps)`` as :meth:`iter_window_maps` yields them.
        """
        if stride is not None:
            check_stride(stride, None)  # a bad stride fails before the training
        (run,), static = self._train([img], None if confounds is None else [confounds])
        stride = check_stride(stride, self.window_stride)
        return self._iter_windows_and_static_maps(run, static, stride)

    def _iter_windows_and_static_maps(self, run, static, stride):
        training_starts = window_starts(len(run), self.window_length, self.window_stride)
        if stride == self.window_stride:
            for start, maps in self._iter_run_maps(run, training_starts):
                static.add(maps)
                yield start, maps
            self._set_components(static.result())
            return
        self._set_static_maps([run], static)
        yield from self._iter_run_maps(run, window_starts(len(run), self.window_length, stride))

    def _train(self, imgs, confounds):
        """Check, mask and train; return the masked runs and an empty static-map accumulator."""
        self._check_params()
        device = resolve_device(self.device)
        runs_and_confounds = load_runs_for_fit(self, imgs, confounds)
        loaded = [img for img, _ in runs_and_confounds]

        masker = self._make_masker()
        self._fit_mask(masker, loaded)
        runs = [mask_run(masker, img, conf) for img, conf in runs_and_confounds]
        box = BrainBox(np.asanyarray(masker.mask_img_.dataobj) > 0, SPATIAL_MULTIPLE)

        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        rng = np.random.RandomState(seed)
        # Weights are drawn on CPU, then moved: the same seed gives the same start on any device.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = STCANetwork(
                self.window_length,
                self.n_components,
                **{name: getattr(self, name) for name in NETWORK_PARAMS},
            ).to(device)

        for attribute in ("components_", "components_img_"):
            self.__dict__.pop(attribute, None)
        self.masker_ = masker
        self.mask_img_ = masker.mask_img_
        self._box = box
        self.network_ = network
        with torch_threads(torch_threads_for(self.n_jobs)):
            self.loss_curve_ = train_network(
                network,
                runs,
                box,
                window_length=self.window_length,
                window_stride=self.window_stride,
                n_epochs=self.n_epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                rng=rng,
                conv_algorithm=self._conv_path(),
                verbose=self.verbose,
            )
        self.n_steps_ = len(self.loss_curve_)
        static = static_maps_accumulator(
            self.static_maps, self.n_components, self._fbn_threshold(), seed
        )
        return runs, static

    def _set_static_maps(self, runs, static):
        """``components_`` from the maps of every training window of ``runs``."""
        for run in runs:
            starts = window_starts(len(run), self.window_length, self.window_stride)
            for _, maps in self._iter_run_maps(run, starts, desc="STCA static maps"):
                static.add(maps)
        self._set_components(static.result())

    def _conv_path(self):
        """``conv_algorithm`` resolved for the device the network is on now."""
        device_type = next(self.network_.parameters()).device.type
        return resolve_conv_algorithm(self.conv_algorithm, device_type)

    def _iter_run_maps(self, run, starts, desc="STCA windows"):
        """Yield ``(start, z-maps)``: spatial attention logits z-scored per map over the mask."""
        show_progress = self.verbose and len(starts) > 1
        for start, logits in iter_attention_logits(
            self.network_,
            run,
            starts,
            self.window_length,
            self._box,
            conv_algorithm=self._conv_path(),
            verbose=show_progress,
            desc=desc,
            num_threads=torch_threads_for(self.n_jobs),
        ):
            yield start, zscore_maps(logits).astype(np.float32)
