"""Sliding windows: where they start, and the maps of every window of a run on disk.

- :mod:`.starts`: :func:`window_starts` and :func:`subject_windows`, the start scans of the
  windows of one run or of a group, windows never crossing two subjects;
- :mod:`.sweep`: :func:`~.sweep.write_window_sweep` and :func:`~.sweep.load_window_sweep`,
  every window's maps streamed to a folder and memory-mapped back (:class:`~.sweep.WindowSweep`),
  for any method. Also ``nilearn_stca.write_window_sweep`` etc.

The sweep is not imported here: it needs the estimators' window API, which needs the starts.
"""

from .starts import subject_windows, window_starts

__all__ = ["subject_windows", "window_starts"]
