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

from .._checks import read_confounds
from .comparison_steps import ComparisonReport, EvaluateIoU, PrepareComparison
from .methods import ICA, SDL, STCA
from .window_files import list_window_files, write_window_maps

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
