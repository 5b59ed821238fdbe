"""The comparison workflow's own steps: scoring window maps, the shared mask and templates, the
report."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
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

from ..evaluation.bids import with_bids_columns
from ..evaluation.comparison import result_rows
from ..evaluation.metrics import STRATEGIES, score_maps
from ..evaluation.outputs import write_comparison_report
from ..evaluation.results_folder import (
    RESULT_COLUMNS,
    RESULTS_FILE,
    SETTINGS_FILE,
    TEMPLATES_FILE,
    read_results,
    static_maps_file,
    write_results,
)
from ..evaluation.templates import DEFAULT_TEMPLATE_THRESHOLD, load_rsn_templates
from ..windows.sweep import load_window_sweep
from ._node_outputs import node_outputs, top_entry


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
    windows_dir = Directory(exists=True, desc="one run's window sweep (write_window_sweep)")
    mask_file = File(
        exists=True,
        desc="mask of the maps (a decomposition's mask_file); if not given, the voxels where "
        "any static map is non-zero",
    )
    threshold = traits.Float(3.6, usedefault=True, desc="z threshold of the maps")
    strategy = traits.Enum(*STRATEGIES, usedefault=True, desc="matching of maps")
    subject = traits.Str(mandatory=True, desc="subject label of the rows")
    method = traits.Str(mandatory=True, desc="method label of the rows")
    fit_seconds = traits.Float(desc="runtime of the static rows (NaN if not given)")


class EvaluateIoUOutputSpec(TraitedSpec):
    out_csv = File(exists=True, desc="one row per (window, template), compare's columns")


class EvaluateIoU(SimpleInterface):
    """Match static and window maps to RSN templates by IoU: rows of ``compare``'s table.

    The maps (``components_file`` and every window of the sweep ``windows_dir``, read one
    window at a time) are masked with :func:`nilearn.masking.apply_mask`, thresholded at
    ``threshold`` and each template (from
    :func:`~nilearn_stca.evaluation.load_rsn_templates`, on the mask's grid) is matched to a
    map by :func:`~nilearn_stca.evaluation.score_maps`, as
    :func:`~nilearn_stca.evaluation.compare` does.

    ``out_csv`` has :func:`~nilearn_stca.evaluation.compare`'s columns (subject, method,
    window, template, component, iou, dice, runtime; :class:`ComparisonReport` adds the BIDS
    columns sub, ses and run) and is read back with
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
        with node_outputs(runtime, "EvaluateIoU", ["iou.csv"]) as staged:
            self._scores().to_csv(staged / "iou.csv", index=False)
        self._results["out_csv"] = str(Path(runtime.cwd) / "iou.csv")
        return runtime

    def _scores(self):
        """The rows of the static maps, then of every window of the sweep."""
        inputs = self.inputs
        mask_img = self._mask_img()
        templates = load_rsn_templates(
            inputs.templates,
            target_img=mask_img,
            threshold=inputs.template_threshold,
            names=inputs.template_names if isdefined(inputs.template_names) else None,
        )
        template_masks = apply_mask(templates.masks_img, mask_img).astype(bool)

        def rows(maps, window, seconds):
            scores = score_maps(
                maps,
                template_masks,
                templates.names,
                threshold=inputs.threshold,
                strategy=inputs.strategy,
            )
            return result_rows(inputs.subject, inputs.method, window, scores, seconds)

        fit_seconds = inputs.fit_seconds if isdefined(inputs.fit_seconds) else np.nan
        tables = [rows(apply_mask(inputs.components_file, mask_img), "static", fit_seconds)]
        if isdefined(inputs.windows_dir):
            sweep = _open_one_run_sweep(inputs.windows_dir)
            same_mask = _same_mask(sweep.masker.mask_img_, mask_img)
            for start, maps in sweep:
                if not same_mask:
                    maps = apply_mask(sweep.masker.inverse_transform(maps), mask_img)
                tables.append(rows(maps, start, np.nan))
        return pd.concat(tables, ignore_index=True)


def _open_one_run_sweep(windows_dir):
    """The sweep of one run; a clear error for a multi-run node's folder of run-* sweeps."""
    windows_dir = Path(windows_dir)
    if not (windows_dir / "sweep.json").exists() and any(windows_dir.glob("run-*")):
        raise ValueError(
            f"{windows_dir} holds the windows of several runs (run-* subfolders): score one "
            "run at a time, giving its run-* subfolder."
        )
    return load_window_sweep(windows_dir)


def _same_mask(mask_a, mask_b):
    """Whether two masks select the same voxels on the same grid."""
    return (
        mask_a.shape == mask_b.shape
        and np.allclose(mask_a.affine, mask_b.affine)
        and np.array_equal(np.asanyarray(mask_a.dataobj) > 0, np.asanyarray(mask_b.dataobj) > 0)
    )


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
        cwd = Path(runtime.cwd)
        given_mask = isdefined(inputs.mask_file)
        writes = [TEMPLATES_FILE] if given_mask else ["mask.nii.gz", TEMPLATES_FILE]
        with node_outputs(runtime, "PrepareComparison", writes, ["mask.nii.gz"]) as staged:
            if given_mask:
                mask_img = load_img(inputs.mask_file)
            else:
                masker = MultiNiftiMasker(mask_strategy="epi").fit(list(inputs.in_files))
                mask_img = masker.mask_img_
                mask_img.to_filename(staged / "mask.nii.gz")
            templates = load_rsn_templates(
                inputs.templates,
                target_img=mask_img,
                threshold=inputs.template_threshold,
                names=inputs.template_names if isdefined(inputs.template_names) else None,
            )
            templates.masks_img.to_filename(staged / TEMPLATES_FILE)
        self._results.update(
            mask_file=inputs.mask_file if given_mask else str(cwd / "mask.nii.gz"),
            templates_file=str(cwd / TEMPLATES_FILE),
            template_names=templates.names,
        )
        return runtime


def node_folder(runtime, name):
    """The folder ``name`` inside the node's working folder, where a node writes its output
    folder (a :class:`~nipype.interfaces.io.DataSink` places it): never a path outside."""
    path = Path(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(
            f"out_dir={name!r} must be a folder name inside the node's working folder (e.g. "
            "'comparison'); connect out_dir to a DataSink to place it."
        )
    return Path(runtime.cwd) / path


def _files_or_lists(desc):
    """A list of files, or of lists of files (what a JoinNode collects from Merge nodes)."""
    item = traits.Either(File(exists=True), traits.List(File(exists=True)))
    return traits.List(item, mandatory=True, desc=desc)


class ComparisonReportInputSpec(BaseInterfaceInputSpec):
    in_csvs = _files_or_lists("EvaluateIoU tables (lists of lists are flattened)")
    maps_files = _files_or_lists("static maps of each table, in the same order")
    templates_file = File(exists=True, mandatory=True, desc="binary templates on the grid")
    out_dir = traits.Str(
        "comparison",
        usedefault=True,
        desc="the folder to fill, inside the node's working folder (a DataSink places it)",
    )
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

    Fills the folder ``out_dir`` of the node's working folder, which a
    :class:`~nipype.interfaces.io.DataSink` then copies where the results are wanted (as
    :func:`~nilearn_stca.interfaces.workflows.init_comparison_wf` does), so that the node
    writes nothing outside its own folder. Writes ``results.csv`` (the ``in_csvs`` concatenated in
    order), ``templates.nii.gz``,
    ``maps/<subject>_method-<method>_desc-static_components.nii.gz`` (each table's static
    maps, named after its subject and method columns), ``results.tsv``,
    ``dataset_description.json`` and ``comparison.json`` (``settings``), then calls
    :func:`~nilearn_stca.evaluation.write_comparison_report` (Table 1, figures and
    ``report.html``). The folder is filled in a staging folder and moved in once complete:
    if writing fails (e.g. on a full disk), no partial file remains.

    Examples
    --------
    >>> from nilearn_stca.interfaces import ComparisonReport
    >>> report = ComparisonReport(paper=True)
    >>> report.inputs.out_dir
    'comparison'
    >>> report.inputs.in_csvs = ["ica_iou.csv", "stca_iou.csv"]  # doctest: +SKIP
    """

    input_spec = ComparisonReportInputSpec
    output_spec = ComparisonReportOutputSpec

    def _run_interface(self, runtime):
        inputs = self.inputs
        out_dir = node_folder(runtime, inputs.out_dir)
        tables = [read_results(path) for path in _flatten(inputs.in_csvs)]
        settings = inputs.settings if isdefined(inputs.settings) else {}
        results = pd.concat(tables, ignore_index=True)[RESULT_COLUMNS]
        if "subjects" in settings and "imgs" in settings:
            results = with_bids_columns(results, settings["subjects"], settings["imgs"])
        # The folder is filled in a staging folder and moved in once complete, so a failure
        # leaves an earlier comparison's files as they were, consistent with each other.
        node = "ComparisonReport"
        with node_outputs(runtime, node, [top_entry(inputs.out_dir)]) as staged:
            folder = staged / inputs.out_dir
            (folder / "maps").mkdir(parents=True)
            for table, maps_file in zip(tables, _flatten(inputs.maps_files), strict=True):
                subject, method = table.subject.iloc[0], table.method.iloc[0]
                shutil.copyfile(maps_file, static_maps_file(folder, subject, method))
            shutil.copyfile(inputs.templates_file, folder / TEMPLATES_FILE)
            (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, default=str))
            write_results(results, folder, stage=lambda path: path)  # staged already
            files = write_comparison_report(
                folder,
                parameters=inputs.parameters if isdefined(inputs.parameters) else None,
                paper=inputs.paper,
                threshold=inputs.threshold,
            )
        self._results.update(
            results_file=str(out_dir / RESULTS_FILE),
            report_file=str(out_dir / Path(files["report"]).relative_to(folder)),
            out_dir=str(out_dir),
        )
        return runtime
