"""STCA, ICA and SDL as nipype nodes: thin specs over the estimators of the Python API."""

import contextlib
import time
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)
from packaging.version import Version
from threadpoolctl import threadpool_limits

from .. import __version__
from .._utils.checks import read_confounds
from .._utils.mask_grid import mask_grid_params
from ..baselines import ICADecomposition, SDLDecomposition
from ..stca import STCADecomposition
from ..stca._training import torch_threads
from ..windows.sweep import write_window_sweep
from ._node_outputs import node_outputs


def _int(default, desc):
    return traits.Int(default, usedefault=True, desc=desc)


def _float(default, desc):
    return traits.Float(default, usedefault=True, desc=desc)


def _bool(default, desc):
    return traits.Bool(default, usedefault=True, desc=desc)


def _str(default, desc):
    return traits.Str(default, usedefault=True, desc=desc)


def _optional_int(default, desc):
    return traits.Either(None, traits.Int, default=default, usedefault=True, desc=desc)


def _optional_float(default, desc):
    return traits.Either(None, traits.Float, default=default, usedefault=True, desc=desc)


def _standardize(default, desc):
    methods = traits.Enum("zscore_sample", "psc")  # nilearn 0.14 refuses "zscore"
    return traits.Either(methods, traits.Bool, None, default=default, usedefault=True, desc=desc)


def _canica_threshold(default, desc):
    return traits.Either(
        traits.Enum("auto"), traits.Float, None, default=default, usedefault=True, desc=desc
    )


def _sdl_method(default, desc):
    others = [method for method in ("cd", "lars") if method != default]
    return traits.Enum(default, *others, usedefault=True, desc=desc)


def _sdl_coding(default, desc):
    others = [coding for coding in ("nilearn", "exact") if coding != default]
    return traits.Enum(default, *others, usedefault=True, desc=desc)


def _sdl_alpha(default, desc):
    return traits.Either(
        traits.Enum("auto"), traits.Float, default=default, usedefault=True, desc=desc
    )


def _widths(default, desc):
    return traits.Tuple(default, *[traits.Int] * 4, usedefault=True, desc=desc)


#: Parameters of every method exposed as node inputs: name -> (trait maker, description).
_SHARED_PARAMS = {
    "n_components": (_int, "number of maps, static and per window"),
    "window_length": (_int, "scans per sliding window"),
    "window_stride": (_int, "scans between consecutive windows"),
    "fbn_threshold": (_float, "z threshold of the FBNs (thresholded_file)"),
    "random_state": (_optional_int, "seed of every fit (None: not seeded)"),
    "smoothing_fwhm": (_optional_float, "spatial smoothing (mm) of the data"),
    "standardize": (_standardize, "voxel-wise standardisation (nilearn.signal.clean)"),
    "detrend": (_bool, "detrend the time series"),
    "low_pass": (_optional_float, "low-pass cutoff (Hz)"),
    "high_pass": (_optional_float, "high-pass cutoff (Hz)"),
    "t_r": (_optional_float, "repetition time (s), needed for filtering"),
}

_STCA_PARAMS = {
    **_SHARED_PARAMS,
    "n_epochs": (_int, "passes over all windows"),
    "learning_rate": (_float, "Adam learning rate"),
    "batch_size": (_int, "windows per optimizer step"),
    "autoencoder_widths": (_widths, "channel widths of the guiding autoencoder's 4 levels"),
    "decoder": (_str, "'autoencoder' (the paper's) or 'regression': what guides the attention"),
    "static_maps": (_str, "'clustered' (k-means of the window FBNs) or 'mean' (of the z-maps)"),
    "device": (_str, "'auto', 'cpu', 'cuda' or 'cuda:N'"),
    "conv_algorithm": (
        _str,
        "'auto' (fft on CPU, direct on CUDA), 'fft' (fast on CPU) or 'direct': same maps",
    ),
}

_ICA_PARAMS = {
    **_SHARED_PARAMS,
    "threshold": (_canica_threshold, "CanICA's own threshold of its raw maps (not the FBNs')"),
    "n_init": (_int, "FastICA restarts (each window repeats them)"),
    "do_cca": (_bool, "canonical correlation analysis across subjects"),
}

_SDL_PARAMS = {
    **_SHARED_PARAMS,
    "alpha": (_sdl_alpha, "sparsity of the static fit ('auto': 0.5 * sqrt(n_scans))"),
    "window_alpha": (_optional_float, "sparsity of the window fits (None: alpha)"),
    "n_epochs": (_int, "passes over the data"),
    "batch_size": (_int, "samples per mini-batch"),
    "method": (_sdl_method, "lasso solver, 'cd' or 'lars'"),
    "window_coding": (_sdl_coding, "window codes: 'nilearn' (scikit-learn's) or 'exact'"),
}


class _DecompositionInputSpec(BaseInterfaceInputSpec):
    in_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="4D runs, fitted together (one group fit)"
    )
    mask_file = File(
        exists=True,
        desc="brain mask; the data are resampled to its grid (as compare does). If not given, "
        "one is computed from in_files (EPI mask)",
    )
    confounds_files = InputMultiObject(
        File(exists=True),
        desc="one confounds table per in_file (read_confounds: .tsv or .csv, with a header)",
    )
    windows = traits.Bool(True, usedefault=True, desc="also write every window's maps")
    sweep_stride = traits.Int(
        desc="scans between the windows written (default: window_stride); the fit is unchanged"
    )
    num_threads = traits.Int(
        desc="the estimator's n_jobs, and the threads of PyTorch, BLAS and OpenMP while the "
        "node runs (and the node's n_procs for nipype); default: the libraries' own"
    )


def _input_spec(name, estimator_class, params):
    """An input spec: the decomposition inputs plus one trait per estimator parameter.

    Every trait's default is the estimator's own (``estimator_class().get_params()``), so a
    node and the Python class cannot drift apart.
    """
    defaults = estimator_class().get_params()
    body = {param: make(defaults[param], desc) for param, (make, desc) in params.items()}
    body.update(__module__=__name__, __qualname__=name, __doc__=f"Inputs of :class:`{name[:-9]}`.")
    return type(name, (_DecompositionInputSpec,), body)


STCAInputSpec = _input_spec("STCAInputSpec", STCADecomposition, _STCA_PARAMS)
# The estimator's former name of fbn_threshold: nipype moves a value given to it there.
STCAInputSpec.add_class_trait(
    "threshold",
    traits.Float(desc="deprecated: use fbn_threshold", deprecated="0.3", new_name="fbn_threshold"),
)
STCAInputSpec.package_version = Version(__version__)
ICAInputSpec = _input_spec("ICAInputSpec", ICADecomposition, _ICA_PARAMS)
SDLInputSpec = _input_spec("SDLInputSpec", SDLDecomposition, _SDL_PARAMS)


class DecompositionOutputSpec(TraitedSpec):
    """Outputs of :class:`ICA` and :class:`SDL` (and of :class:`STCA`, with ``model_file``)."""

    components_file = File(exists=True, desc="static z-maps, one volume per component")
    thresholded_file = File(exists=True, desc="binary FBNs: components_file >= fbn_threshold")
    windows_dir = Directory(
        exists=True, desc="the window sweep (write_window_sweep), or one run-<i> sweep per run"
    )
    mask_file = File(exists=True, desc="the mask the maps live in (mask_img_)")
    fit_seconds = traits.Float(
        desc="wall-clock seconds of the fit (with windows on one run: fit and sweep, one pass)"
    )


class STCAOutputSpec(DecompositionOutputSpec):
    """Outputs of :class:`STCA`."""

    model_file = File(exists=True, desc="the fitted estimator as a pickle (for your own use)")
    model_dir = Directory(
        exists=True, desc="the fitted estimator as a model folder that loads without running code"
    )


# ---------------------------------------------------------------------- decompositions
@contextlib.contextmanager
def _limited_threads(num_threads):
    """Limit PyTorch's, BLAS's and OpenMP's threads to ``num_threads``; restore them after.

    Nipype's MultiProc runs several nodes at once: with every library using all the cores,
    the threads outnumber the cores and PyTorch slows down several-fold.
    """
    if not isdefined(num_threads):
        yield
        return
    with torch_threads(num_threads), threadpool_limits(limits=num_threads):
        yield


class _Decomposition(SimpleInterface):
    """Fit ``_estimator_class`` on ``in_files`` and write its static and window maps."""

    _estimator_class = None
    _params = {}
    output_spec = DecompositionOutputSpec

    def _make_estimator(self):
        params = {name: getattr(self.inputs, name) for name in self._params}
        if isdefined(self.inputs.num_threads):
            params["n_jobs"] = self.inputs.num_threads  # the processors nipype reserved
        if isdefined(self.inputs.mask_file):
            params.update(mask_grid_params(self.inputs.mask_file))
        return self._estimator_class(**params)

    #: The node's outputs in its working folder (``windows`` is also one, written on demand).
    _output_names = ("components.nii.gz", "fbns.nii.gz", "mask.nii.gz")

    def _run_interface(self, runtime):
        in_files = list(self.inputs.in_files)
        confounds = (
            [read_confounds(path) for path in self.inputs.confounds_files]
            if isdefined(self.inputs.confounds_files)
            else None
        )
        writes = [*self._output_names, *(["windows"] if self.inputs.windows else [])]
        node = type(self).__name__
        with (
            node_outputs(runtime, node, writes, replaces=["windows"]) as staged,
            _limited_threads(self.inputs.num_threads),
        ):
            self._fit_and_write(in_files, confounds, staged, Path(runtime.cwd))
        return runtime

    def _fit_and_write(self, in_files, confounds, staged, out_dir):
        """Fit, and write the outputs into ``staged``; they are moved to ``out_dir`` after."""
        estimator = self._make_estimator()
        windows_dir = staged / "windows"
        stride = self.inputs.sweep_stride if isdefined(self.inputs.sweep_stride) else None
        started = time.perf_counter()
        if self.inputs.windows and len(in_files) == 1:
            # One pass: STCA maps each window once for its static maps and the sweep.
            conf = None if confounds is None else confounds[0]
            write_window_sweep(estimator, in_files[0], windows_dir, conf, stride, fit=True)
            self._results["fit_seconds"] = time.perf_counter() - started
        else:
            estimator.fit(in_files, confounds=confounds)
            self._results["fit_seconds"] = time.perf_counter() - started
            if self.inputs.windows:
                confounds = [None] * len(in_files) if confounds is None else confounds
                for i, (img, conf) in enumerate(zip(in_files, confounds, strict=True)):
                    windows_dir.mkdir(exist_ok=True)
                    run_dir = windows_dir / f"run-{i + 1:02d}"
                    write_window_sweep(estimator, img, run_dir, conf, stride)
        if self.inputs.windows:
            self._results["windows_dir"] = str(out_dir / "windows")
        outputs = {
            "components_file": (estimator.components_img_, "components.nii.gz"),
            "thresholded_file": (estimator.fbns_img(), "fbns.nii.gz"),
            "mask_file": (estimator.mask_img_, "mask.nii.gz"),
        }
        for name, (img, filename) in outputs.items():
            img.to_filename(staged / filename)
            self._results[name] = str(out_dir / filename)
        self._save_model(estimator, staged, out_dir)

    def _save_model(self, estimator, staged, out_dir):
        """Nothing to save for the baselines (their nilearn estimators are not kept)."""


class STCA(_Decomposition):
    """Fit :class:`~nilearn_stca.STCADecomposition` and write its maps, FBNs and model.

    The inputs are the estimator's parameters, with its names and defaults, plus the data:
    ``in_files`` (fitted together), ``mask_file`` (the data are resampled to its grid, as
    :func:`~nilearn_stca.evaluation.compare` does), ``confounds_files``, ``windows``,
    ``sweep_stride`` and ``num_threads`` (the estimator's ``n_jobs``, and the threads of
    PyTorch, BLAS and OpenMP while the node runs, restored afterwards; nipype reserves that
    many processors for the node; default: the libraries' own). Outputs:
    ``components_file`` (``components_img_``),
    ``thresholded_file`` (``fbns_img()``: 1 where a map is at least ``fbn_threshold``),
    ``windows_dir`` (the window sweep, see the module's docstring), ``mask_file``,
    ``fit_seconds``, ``model_dir`` (``est.save``: a model folder, which loads without
    running code, to share) and ``model_file`` (the same as a pickle, for your own use);
    read either with :meth:`STCADecomposition.load <nilearn_stca.STCADecomposition.load>`
    (a pickle with ``allow_pickle=True``: loading one runs its code).

    Examples
    --------
    >>> from nilearn_stca import STCADecomposition
    >>> from nilearn_stca.interfaces import STCA
    >>> stca = STCA(n_components=20, random_state=0)
    >>> stca.inputs.window_length
    40
    >>> stca.inputs.in_files = ["sub-01_task-rest_bold.nii.gz"]  # doctest: +SKIP
    >>> stca.inputs.mask_file = "mask.nii.gz"  # doctest: +SKIP
    >>> result = stca.run()  # doctest: +SKIP
    >>> STCADecomposition.load(result.outputs.model_dir)  # doctest: +SKIP
    STCADecomposition(n_components=20, random_state=0, ...)
    """

    input_spec = STCAInputSpec
    output_spec = STCAOutputSpec
    _estimator_class = STCADecomposition
    _params = _STCA_PARAMS

    _output_names = (*_Decomposition._output_names, "model", "model.pkl")

    def _save_model(self, estimator, staged, out_dir):
        estimator.save(staged / "model", format="folder")
        estimator.save(staged / "model.pkl")
        self._results.update(
            model_dir=str(out_dir / "model"), model_file=str(out_dir / "model.pkl")
        )


class ICA(_Decomposition):
    """Fit :class:`~nilearn_stca.baselines.ICADecomposition` (CanICA) and write its maps.

    Inputs and outputs as :class:`STCA`'s (without ``model_file``). As on every node, the
    FBN z threshold is ``fbn_threshold``; ``threshold`` is CanICA's own, as in the Python
    class.

    Examples
    --------
    >>> from nilearn_stca.interfaces import ICA
    >>> ica = ICA(n_init=1, random_state=0)
    >>> ica.inputs.fbn_threshold, ica.inputs.threshold
    (3.6, 'auto')
    >>> ica.inputs.in_files = ["sub-01_task-rest_bold.nii.gz"]  # doctest: +SKIP
    >>> result = ica.run()  # doctest: +SKIP
    """

    input_spec = ICAInputSpec
    _estimator_class = ICADecomposition
    _params = _ICA_PARAMS


class SDL(_Decomposition):
    """Fit :class:`~nilearn_stca.baselines.SDLDecomposition` (DictLearning), write its maps.

    Inputs and outputs as :class:`STCA`'s (without ``model_file``).

    Examples
    --------
    >>> from nilearn_stca.interfaces import SDL
    >>> sdl = SDL(window_alpha=2.0, sweep_stride=10)
    >>> sdl.inputs.alpha, sdl.inputs.window_alpha
    ('auto', 2.0)
    >>> sdl.inputs.in_files = ["sub-01_task-rest_bold.nii.gz"]  # doctest: +SKIP
    >>> result = sdl.run()  # doctest: +SKIP
    """

    input_spec = SDLInputSpec
    _estimator_class = SDLDecomposition
    _params = _SDL_PARAMS


# ---------------------------------------------------------------------- scoring
