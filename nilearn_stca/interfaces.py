"""Nipype interfaces: STCA, ICA and SDL as pipeline nodes, and their scoring against templates.

Each interface is a thin, pure-Python wrapper (:class:`~nipype.interfaces.base.SimpleInterface`)
around the estimator of the Python API, so a node gives exactly what the estimator gives:

- :class:`STCA`, :class:`ICA` and :class:`SDL` fit
  :class:`~nilearn_stca.STCADecomposition`,
  :class:`~nilearn_stca.baselines.ICADecomposition` and
  :class:`~nilearn_stca.baselines.SDLDecomposition` on their ``in_files`` and write the static
  z-maps, the binary FBNs and, window by window, the maps of every sliding window.
- :class:`EvaluateIoU` matches such maps to resting-state network templates by IoU, as
  :func:`~nilearn_stca.evaluation.compare` does, and writes the rows of its table.
- :class:`PrepareComparison` and :class:`ComparisonReport` are the first and last steps of
  :func:`~nilearn_stca.workflows.init_comparison_wf`: one mask and one set of binary templates
  for every node, then ``compare``'s output folder and report.

Windows folder
--------------
``windows_dir`` holds one 4D NIfTI file per sliding window, named
``window-<start>_maps.nii.gz`` with the window's first scan on 5 digits (e.g.
``window-00040_maps.nii.gz``): the window's z-maps, one volume per component, on the grid of
the static maps. Files are written one at a time while the windows are mapped
(:meth:`~nilearn_stca.STCADecomposition.iter_window_maps`), each under a hidden temporary name
renamed once complete, so memory stays flat however many windows a run has. With several
``in_files`` (one group fit), each run's windows go to a subfolder ``run-<i>`` (``run-01``,
``run-02``... in the order of ``in_files``); :class:`EvaluateIoU` scores the windows of one
run, i.e. a folder of window files (``windows_dir`` of a single-run node, or one ``run-*``
subfolder).
"""

import contextlib
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from nilearn.image import load_img, new_img_like
from nilearn.maskers import MultiNiftiMasker
from nilearn.masking import apply_mask
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
from threadpoolctl import threadpool_limits

from ._checks import read_confounds
from ._io import atomic_path, atomic_paths
from .baselines import ICADecomposition, SDLDecomposition
from .decomposition import STCADecomposition
from .evaluation.comparison import result_rows
from .evaluation.metrics import score_maps
from .evaluation.outputs import write_comparison_report
from .evaluation.results_folder import (
    RESULT_COLUMNS,
    RESULTS_FILE,
    SETTINGS_FILE,
    TEMPLATES_FILE,
    read_results,
)
from .evaluation.templates import DEFAULT_TEMPLATE_THRESHOLD, load_rsn_templates

__all__ = [
    "ICA",
    "SDL",
    "STCA",
    "ComparisonReport",
    "EvaluateIoU",
    "PrepareComparison",
    "list_window_files",
    "read_confounds",
    "write_window_maps",
]

_WINDOW_FILE = "window-{start:05d}_maps.nii.gz"
_WINDOW_PATTERN = re.compile(r"window-(\d+)_maps\.nii\.gz")


# ---------------------------------------------------------------------- windows folder
def write_window_maps(estimator, imgs, out_dir, confounds=None, stride=None):
    """Write the maps of every sliding window of each run, one file per window, streamed.

    Parameters
    ----------
    estimator : fitted STCADecomposition, ICADecomposition or SDLDecomposition
    imgs : list of str or Path
        The runs; with one run the files go to ``out_dir`` itself, with several to
        ``out_dir/run-01``, ``out_dir/run-02``...
    out_dir : str or Path
        Emptied first, so a rerun leaves no window of an earlier run.
    confounds : list of (str, Path or None), default=None
        One entry per run, as for the estimator's ``iter_window_maps``.
    stride : int, default=None
        Scans between mapped windows; the estimator's ``window_stride`` if None.

    Returns
    -------
    out_dir : Path
    """
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    confounds = [None] * len(imgs) if confounds is None else list(confounds)
    for i, (img, conf) in enumerate(zip(imgs, confounds, strict=True)):
        run_dir = out_dir if len(imgs) == 1 else out_dir / f"run-{i + 1:02d}"
        run_dir.mkdir(parents=True)
        for start, maps in estimator.iter_window_maps(img, confounds=conf, stride=stride):
            with atomic_path(run_dir / _WINDOW_FILE.format(start=start)) as partial:
                estimator.masker_.inverse_transform(maps).to_filename(partial)
    return out_dir


def list_window_files(windows_dir):
    """The window files of a folder written by :func:`write_window_maps`, by start scan.

    Parameters
    ----------
    windows_dir : str or Path
        A folder of ``window-<start>_maps.nii.gz`` files (one run's windows).

    Returns
    -------
    windows : list of (int, Path)
        ``(start_scan, file)`` for every window, in increasing ``start_scan``.
    """
    windows_dir = Path(windows_dir)
    found = [(_WINDOW_PATTERN.fullmatch(path.name), path) for path in windows_dir.iterdir()]
    windows = sorted((int(match.group(1)), path) for match, path in found if match)
    if not windows and any(windows_dir.glob("run-*")):
        raise ValueError(
            f"{windows_dir} holds the windows of several runs (run-* subfolders): score one "
            "run at a time, giving its run-* subfolder."
        )
    return windows


# ---------------------------------------------------------------------- estimator parameters
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
    methods = traits.Enum("zscore_sample", "zscore", "psc")
    return traits.Either(methods, traits.Bool, None, default=default, usedefault=True, desc=desc)


def _canica_threshold(default, desc):
    return traits.Either(
        traits.Enum("auto"), traits.Float, None, default=default, usedefault=True, desc=desc
    )


def _sdl_method(default, desc):
    others = [method for method in ("cd", "lars") if method != default]
    return traits.Enum(default, *others, usedefault=True, desc=desc)


def _widths(default, desc):
    return traits.Tuple(default, *[traits.Int] * 4, usedefault=True, desc=desc)


#: Parameters of every method exposed as node inputs: name -> (trait maker, description).
_SHARED_PARAMS = {
    "n_components": (_int, "number of maps, static and per window"),
    "window_length": (_int, "scans per sliding window"),
    "window_stride": (_int, "scans between consecutive windows"),
    "random_state": (_optional_int, "seed of every fit (None: not seeded)"),
    "smoothing_fwhm": (_optional_float, "spatial smoothing (mm) of the data"),
    "standardize": (_standardize, "voxel-wise standardisation (nilearn.signal.clean)"),
    "detrend": (_bool, "detrend the time series"),
    "low_pass": (_optional_float, "low-pass cutoff (Hz)"),
    "high_pass": (_optional_float, "high-pass cutoff (Hz)"),
    "t_r": (_optional_float, "repetition time (s), needed for filtering"),
}

_FBN_THRESHOLD_DESC = "z threshold of the FBNs (thresholded_file)"

_STCA_PARAMS = {
    **_SHARED_PARAMS,
    "threshold": (_float, _FBN_THRESHOLD_DESC),
    "n_epochs": (_int, "passes over all windows"),
    "learning_rate": (_float, "Adam learning rate"),
    "batch_size": (_int, "windows per optimizer step"),
    "autoencoder_widths": (_widths, "channel widths of the guiding autoencoder's 4 levels"),
    "decoder": (_str, "'autoencoder' (the paper's) or 'regression': what guides the attention"),
    "static_maps": (_str, "'clustered' (k-means of the window FBNs) or 'mean' (of the z-maps)"),
    "device": (_str, "'auto', 'cpu', 'cuda' or 'cuda:N'"),
    "conv_algorithm": (_str, "'fft' (fast) or 'direct' (the plain reference): same maps"),
}

_ICA_PARAMS = {
    **_SHARED_PARAMS,
    "fbn_threshold": (_float, _FBN_THRESHOLD_DESC),
    "threshold": (_canica_threshold, "CanICA's own threshold of its raw maps (not the FBNs')"),
    "n_init": (_int, "FastICA restarts (each window repeats them)"),
    "do_cca": (_bool, "canonical correlation analysis across subjects"),
}

_SDL_PARAMS = {
    **_SHARED_PARAMS,
    "fbn_threshold": (_float, _FBN_THRESHOLD_DESC),
    "alpha": (_float, "sparsity of the static fit"),
    "window_alpha": (_optional_float, "sparsity of the window fits (None: alpha)"),
    "n_epochs": (_int, "passes over the data"),
    "batch_size": (_int, "samples per mini-batch"),
    "method": (_sdl_method, "lasso solver, 'cd' or 'lars'"),
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
        desc="threads of PyTorch, BLAS and OpenMP while the node runs (and the node's n_procs "
        "for nipype); default: the libraries' own"
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
ICAInputSpec = _input_spec("ICAInputSpec", ICADecomposition, _ICA_PARAMS)
SDLInputSpec = _input_spec("SDLInputSpec", SDLDecomposition, _SDL_PARAMS)


class DecompositionOutputSpec(TraitedSpec):
    """Outputs of :class:`ICA` and :class:`SDL` (and of :class:`STCA`, with ``model_file``)."""

    components_file = File(exists=True, desc="static z-maps, one volume per component")
    thresholded_file = File(exists=True, desc="binary FBNs: components_file >= threshold")
    windows_dir = Directory(exists=True, desc="one window-<start>_maps.nii.gz per window")
    mask_file = File(exists=True, desc="the mask the maps live in (mask_img_)")
    fit_seconds = traits.Float(desc="wall-clock seconds of the fit")


class STCAOutputSpec(DecompositionOutputSpec):
    """Outputs of :class:`STCA`."""

    model_file = File(exists=True, desc="the fitted estimator (STCADecomposition.load)")


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
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        with threadpool_limits(limits=num_threads):
            yield
    finally:
        torch.set_num_threads(previous)


class _Decomposition(SimpleInterface):
    """Fit ``_estimator_class`` on ``in_files`` and write its static and window maps."""

    _estimator_class = None
    _params = {}
    output_spec = DecompositionOutputSpec

    def _make_estimator(self):
        params = {name: getattr(self.inputs, name) for name in self._params}
        if isdefined(self.inputs.mask_file):
            mask_img = load_img(self.inputs.mask_file)
            params.update(
                mask=self.inputs.mask_file,
                target_affine=mask_img.affine,
                target_shape=mask_img.shape[:3],
            )
        return self._estimator_class(**params)

    def _run_interface(self, runtime):
        out_dir = Path(runtime.cwd)
        in_files = list(self.inputs.in_files)
        confounds = (
            [read_confounds(path) for path in self.inputs.confounds_files]
            if isdefined(self.inputs.confounds_files)
            else None
        )
        with _limited_threads(self.inputs.num_threads):
            self._fit_and_write(in_files, confounds, out_dir)
        return runtime

    def _fit_and_write(self, in_files, confounds, out_dir):
        estimator = self._make_estimator()
        started = time.perf_counter()
        estimator.fit(in_files, confounds=confounds)
        self._results["fit_seconds"] = time.perf_counter() - started
        outputs = {
            "components_file": (estimator.components_img_, "components.nii.gz"),
            "thresholded_file": (estimator.fbns_img(), "fbns.nii.gz"),
            "mask_file": (estimator.mask_img_, "mask.nii.gz"),
        }
        for name, (img, filename) in outputs.items():
            with atomic_path(out_dir / filename) as partial:
                img.to_filename(partial)
            self._results[name] = str(out_dir / filename)
        if self.inputs.windows:
            stride = self.inputs.sweep_stride if isdefined(self.inputs.sweep_stride) else None
            windows_dir = write_window_maps(
                estimator, in_files, out_dir / "windows", confounds, stride
            )
            self._results["windows_dir"] = str(windows_dir)
        self._save_model(estimator, out_dir)

    def _save_model(self, estimator, out_dir):
        """Nothing to save for the baselines (their nilearn estimators are not kept)."""


class STCA(_Decomposition):
    """Fit :class:`~nilearn_stca.STCADecomposition` and write its maps, FBNs and model.

    The inputs are the estimator's parameters, with its names and defaults, plus the data:
    ``in_files`` (fitted together), ``mask_file`` (the data are resampled to its grid, as
    :func:`~nilearn_stca.evaluation.compare` does), ``confounds_files``, ``windows``,
    ``sweep_stride`` and ``num_threads`` (threads of PyTorch, BLAS and OpenMP while the node
    runs, restored afterwards; nipype reserves that many processors for the node; default:
    the libraries' own). Outputs: ``components_file`` (``components_img_``),
    ``thresholded_file`` (``fbns_img()``: 1 where a map is at least ``threshold``),
    ``windows_dir`` (one file per sliding window, see the module's docstring), ``mask_file``,
    ``fit_seconds`` and ``model_file`` (``est.save``; read it with
    :meth:`STCADecomposition.load <nilearn_stca.STCADecomposition.load>`).

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
    >>> STCADecomposition.load(result.outputs.model_file)  # doctest: +SKIP
    STCADecomposition(n_components=20, random_state=0, ...)
    """

    input_spec = STCAInputSpec
    output_spec = STCAOutputSpec
    _estimator_class = STCADecomposition
    _params = _STCA_PARAMS

    def _save_model(self, estimator, out_dir):
        self._results["model_file"] = str(estimator.save(out_dir / "model.pkl"))


class ICA(_Decomposition):
    """Fit :class:`~nilearn_stca.baselines.ICADecomposition` (CanICA) and write its maps.

    Inputs and outputs as :class:`STCA`'s (without ``model_file``). The FBN z threshold is
    ``fbn_threshold``; ``threshold`` is CanICA's own, as in the Python class.

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

    Inputs and outputs as :class:`STCA`'s (without ``model_file``); the FBN z threshold is
    ``fbn_threshold``.

    Examples
    --------
    >>> from nilearn_stca.interfaces import SDL
    >>> sdl = SDL(window_alpha=2.0, sweep_stride=10)
    >>> sdl.inputs.alpha, sdl.inputs.window_alpha
    (10, 2.0)
    >>> sdl.inputs.in_files = ["sub-01_task-rest_bold.nii.gz"]  # doctest: +SKIP
    >>> result = sdl.run()  # doctest: +SKIP
    """

    input_spec = SDLInputSpec
    _estimator_class = SDLDecomposition
    _params = _SDL_PARAMS


# ---------------------------------------------------------------------- scoring
class _TemplatesInputSpec(BaseInterfaceInputSpec):
    """The reference networks, as :func:`~nilearn_stca.evaluation.load_rsn_templates` takes."""

    templates = traits.Either(
        traits.Enum("smith2009"),
        File(exists=True),
        default="smith2009",
        usedefault=True,
        desc="'smith2009', a 4D map image or a 3D label atlas (load_rsn_templates)",
    )
    template_threshold = traits.Float(
        DEFAULT_TEMPLATE_THRESHOLD, usedefault=True, desc="threshold of the template maps"
    )
    template_names = traits.List(traits.Str, desc="one name per template")


class EvaluateIoUInputSpec(_TemplatesInputSpec):
    components_file = File(exists=True, mandatory=True, desc="4D static z-maps")
    windows_dir = Directory(exists=True, desc="one run's window maps (window-*_maps.nii.gz)")
    mask_file = File(
        exists=True,
        desc="mask of the maps (a decomposition's mask_file); if not given, the voxels where "
        "any static map is non-zero",
    )
    threshold = traits.Float(3.6, usedefault=True, desc="z threshold of the maps")
    strategy = traits.Enum("max", "hungarian", usedefault=True, desc="matching of maps")
    subject = traits.Str(mandatory=True, desc="subject label of the rows")
    method = traits.Str(mandatory=True, desc="method label of the rows")
    fit_seconds = traits.Float(desc="runtime of the static rows (NaN if not given)")


class EvaluateIoUOutputSpec(TraitedSpec):
    out_csv = File(exists=True, desc="one row per (window, template), compare's columns")


class EvaluateIoU(SimpleInterface):
    """Match static and window maps to RSN templates by IoU: rows of ``compare``'s table.

    The maps (``components_file`` and every file of ``windows_dir``) are masked with
    :func:`nilearn.masking.apply_mask`, thresholded at ``threshold`` and each template (from
    :func:`~nilearn_stca.evaluation.load_rsn_templates`, on the mask's grid) is matched to a
    map by :func:`~nilearn_stca.evaluation.score_maps`, as
    :func:`~nilearn_stca.evaluation.compare` does.

    ``out_csv`` has :func:`~nilearn_stca.evaluation.compare`'s columns (subject, method,
    window, template, component, iou, dice, runtime) and is read back with
    :func:`~nilearn_stca.evaluation.read_results`. ``window`` is "static" or the window's
    first scan. ``runtime`` is ``fit_seconds`` (connect a decomposition's output) on the
    static rows, NaN if not given, and NaN on window rows, whose mapping time is not recorded.

    Examples
    --------
    >>> from nilearn_stca.interfaces import EvaluateIoU
    >>> evaluate = EvaluateIoU(subject="sub-01", method="stca", strategy="hungarian")
    >>> evaluate.inputs.templates
    'smith2009'
    >>> evaluate.inputs.components_file = "components.nii.gz"  # doctest: +SKIP
    >>> evaluate.inputs.windows_dir = "windows"  # doctest: +SKIP
    >>> result = evaluate.run()  # doctest: +SKIP
    """

    input_spec = EvaluateIoUInputSpec
    output_spec = EvaluateIoUOutputSpec

    def _mask_img(self):
        if isdefined(self.inputs.mask_file):
            return load_img(self.inputs.mask_file)
        maps_img = load_img(self.inputs.components_file)
        support = np.any(np.asanyarray(maps_img.dataobj) != 0, axis=3)
        if not support.any():
            raise ValueError("components_file is all zeros: give mask_file.")
        return new_img_like(maps_img, support.astype(np.uint8), copy_header=False)

    def _run_interface(self, runtime):
        inputs = self.inputs
        mask_img = self._mask_img()
        templates = load_rsn_templates(
            inputs.templates,
            target_img=mask_img,
            threshold=inputs.template_threshold,
            names=inputs.template_names if isdefined(inputs.template_names) else None,
        )
        template_masks = apply_mask(templates.masks_img, mask_img).astype(bool)

        def rows(maps_file, window, seconds):
            scores = score_maps(
                apply_mask(maps_file, mask_img),
                template_masks,
                templates.names,
                threshold=inputs.threshold,
                strategy=inputs.strategy,
            )
            return result_rows(inputs.subject, inputs.method, window, scores, seconds)

        fit_seconds = inputs.fit_seconds if isdefined(inputs.fit_seconds) else np.nan
        tables = [rows(inputs.components_file, "static", fit_seconds)]
        if isdefined(inputs.windows_dir):
            tables += [
                rows(path, start, np.nan) for start, path in list_window_files(inputs.windows_dir)
            ]
        out_csv = Path(runtime.cwd) / "iou.csv"
        with atomic_path(out_csv) as partial:
            pd.concat(tables, ignore_index=True).to_csv(partial, index=False)
        self._results["out_csv"] = str(out_csv)
        return runtime


# ---------------------------------------------------------------------- comparison steps
class PrepareComparisonInputSpec(_TemplatesInputSpec):
    in_files = InputMultiObject(File(exists=True), mandatory=True, desc="every subject's run")
    mask_file = File(exists=True, desc="the mask of every method; if not given, EPI mask")


class PrepareComparisonOutputSpec(TraitedSpec):
    mask_file = File(exists=True, desc="the given mask, or the EPI mask of all in_files")
    templates_file = File(exists=True, desc="binary templates (uint8) on the mask's grid")
    template_names = traits.List(traits.Str, desc="one name per template")


class PrepareComparison(SimpleInterface):
    """One mask and one set of binary templates for every subject and method.

    Without ``mask_file``, the mask is the EPI mask of all runs together
    (:class:`~nilearn.maskers.MultiNiftiMasker` with ``mask_strategy="epi"``), as
    :func:`~nilearn_stca.evaluation.compare` computes it. The templates are loaded with
    :func:`~nilearn_stca.evaluation.load_rsn_templates` on the mask's grid and written
    binary, so the nodes that score against them use ``template_threshold=0.5``.

    Examples
    --------
    >>> from nilearn_stca.interfaces import PrepareComparison
    >>> prepare = PrepareComparison(templates="smith2009")
    >>> prepare.inputs.in_files = ["sub-01_bold.nii.gz", "sub-02_bold.nii.gz"]  # doctest: +SKIP
    >>> result = prepare.run()  # doctest: +SKIP
    """

    input_spec = PrepareComparisonInputSpec
    output_spec = PrepareComparisonOutputSpec

    def _run_interface(self, runtime):
        inputs = self.inputs
        if isdefined(inputs.mask_file):
            mask_file = inputs.mask_file
        else:
            masker = MultiNiftiMasker(mask_strategy="epi").fit(list(inputs.in_files))
            mask_file = str(Path(runtime.cwd) / "mask.nii.gz")
            with atomic_path(mask_file) as partial:
                masker.mask_img_.to_filename(partial)
        templates = load_rsn_templates(
            inputs.templates,
            target_img=load_img(mask_file),
            threshold=inputs.template_threshold,
            names=inputs.template_names if isdefined(inputs.template_names) else None,
        )
        templates_file = str(Path(runtime.cwd) / TEMPLATES_FILE)
        with atomic_path(templates_file) as partial:
            templates.masks_img.to_filename(partial)
        self._results.update(
            mask_file=mask_file, templates_file=templates_file, template_names=templates.names
        )
        return runtime


def _files_or_lists(desc):
    """A list of files, or of lists of files (what a JoinNode collects from Merge nodes)."""
    item = traits.Either(File(exists=True), traits.List(File(exists=True)))
    return traits.List(item, mandatory=True, desc=desc)


class ComparisonReportInputSpec(BaseInterfaceInputSpec):
    in_csvs = _files_or_lists("EvaluateIoU tables (lists of lists are flattened)")
    maps_files = _files_or_lists("static maps of each table, in the same order")
    templates_file = File(exists=True, mandatory=True, desc="binary templates on the grid")
    out_dir = Directory(mandatory=True, desc="output folder (created; files overwritten)")
    settings = traits.Dict(desc="written to comparison.json and shown in the report")
    parameters = traits.Dict(desc="more parameters shown in the report")
    paper = traits.Bool(False, usedefault=True, desc="add the paper's Table 1 beside ours")
    threshold = traits.Float(3.6, usedefault=True, desc="z threshold of the maps' figures")


class ComparisonReportOutputSpec(TraitedSpec):
    results_file = File(exists=True, desc="results.csv: every table, concatenated")
    report_file = File(exists=True, desc="report.html")
    out_dir = Directory(exists=True, desc="the filled output folder")


def _flatten(items):
    return [path for item in items for path in ([item] if isinstance(item, str) else item)]


class ComparisonReport(SimpleInterface):
    """Fill a folder as :func:`~nilearn_stca.evaluation.compare` does, and write its report.

    Writes ``results.csv`` (the ``in_csvs`` concatenated in order), ``templates.nii.gz``,
    ``maps/<subject>_<method>.nii.gz`` (each table's static maps, named after its subject
    and method columns) and ``comparison.json`` (``settings``), then calls
    :func:`~nilearn_stca.evaluation.write_comparison_report` (Table 1, figures and
    ``report.html``). Files of an earlier report in ``out_dir`` are overwritten, each step's
    files together once all are written: if writing fails (e.g. on a full disk), the files of
    that step are left as they were and no partial file remains.

    Examples
    --------
    >>> from nilearn_stca.interfaces import ComparisonReport
    >>> report = ComparisonReport(out_dir="/tmp/comparison", paper=True)
    >>> report.inputs.in_csvs = ["ica_iou.csv", "stca_iou.csv"]  # doctest: +SKIP
    """

    input_spec = ComparisonReportInputSpec
    output_spec = ComparisonReportOutputSpec

    def _run_interface(self, runtime):
        inputs = self.inputs
        out_dir = Path(inputs.out_dir)
        (out_dir / "maps").mkdir(parents=True, exist_ok=True)
        tables = [read_results(path) for path in _flatten(inputs.in_csvs)]
        settings = inputs.settings if isdefined(inputs.settings) else {}
        results = pd.concat(tables, ignore_index=True)[RESULT_COLUMNS]
        # The folder's files are renamed together once all are written, so a failure leaves
        # an earlier comparison's files as they were, consistent with each other.
        with atomic_paths() as stage:
            for table, maps_file in zip(tables, _flatten(inputs.maps_files), strict=True):
                subject, method = table.subject.iloc[0], table.method.iloc[0]
                shutil.copyfile(maps_file, stage(out_dir / "maps" / f"{subject}_{method}.nii.gz"))
            shutil.copyfile(inputs.templates_file, stage(out_dir / TEMPLATES_FILE))
            stage(out_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, default=str))
            results.to_csv(stage(out_dir / RESULTS_FILE), index=False)
        files = write_comparison_report(
            out_dir,
            parameters=inputs.parameters if isdefined(inputs.parameters) else None,
            paper=inputs.paper,
            threshold=inputs.threshold,
        )
        self._results.update(
            results_file=str(out_dir / RESULTS_FILE),
            report_file=str(files["report"]),
            out_dir=str(out_dir),
        )
        return runtime
