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
- :class:`States` finds brain states in window sweeps
  (:func:`~nilearn_stca.states.write_states`) and :class:`Stability` refits a method
  with other seeds and scores how stable each map is
  (:func:`~nilearn_stca.evaluation.stability.stability`).
- :class:`PrepareComparison` and :class:`ComparisonReport` are the first and last steps of
  :func:`~nilearn_stca.interfaces.workflows.init_comparison_wf`: one mask and one set of
  binary templates for every node, then ``compare``'s output folder and report, written
  inside the node's own folder (a :class:`~nipype.interfaces.io.DataSink` places it).

:mod:`nilearn_stca.interfaces.workflows` builds the comparison of
:func:`~nilearn_stca.evaluation.compare` out of these nodes, as a nipype workflow.

Windows folder
--------------
``windows_dir`` is a window sweep (:func:`~nilearn_stca.write_window_sweep`, read back with
:func:`~nilearn_stca.load_window_sweep`), the same store as the Python API's: the z-maps of
every sliding window in one float32 ``maps.npy`` written one window at a time, the mask and a
``sweep.json``, so memory stays flat however many windows a run has. With one run in
``in_files``, the fit and the sweep are one pass (STCA maps each window once). With several
``in_files`` (one group fit), each run's sweep is a subfolder ``run-<i>`` (``run-01``,
``run-02``... in the order of ``in_files``); :class:`EvaluateIoU` scores the windows of one
run (``windows_dir`` of a single-run node, or one ``run-*`` subfolder).

Working folder
--------------
A node writes only in its working folder: in a workflow, its own node folder. Run on its own
(``SDL(...).run()``), its working folder is the current folder (or ``run(cwd=...)``), where
the user keeps files: there a node replaces only what a node of this package wrote, as the
folder's ``.nilearn-stca-node`` file lists it, and refuses to start if one of its outputs
(``components.nii.gz``, ``windows``...) is there and not listed. Outputs are written to a
staging folder and moved in once complete; the working folder is locked meanwhile.
"""

from .._utils.checks import read_confounds
from .comparison_steps import ComparisonReport, EvaluateIoU, PrepareComparison
from .dynamics import Stability, States
from .methods import ICA, SDL, STCA

__all__ = [
    "ICA",
    "SDL",
    "STCA",
    "ComparisonReport",
    "EvaluateIoU",
    "PrepareComparison",
    "Stability",
    "States",
    "read_confounds",
]
