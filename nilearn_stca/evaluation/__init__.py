"""Evaluation against reference networks: templates, overlap metrics, matching, the
three-method comparison, its tables, figures and report; and the stability of a method's
maps across seeds (:mod:`.stability`, ICASSO-like).

``compare``, ``paper_protocol`` and ``PRESETS`` are loaded on first use (PEP 562): they need
STCA, hence torch, which scoring, tables, figures and reports do not.
"""

from .._utils.lazy import lazy_attributes
from .metrics import dice_matrix, iou_matrix, match_components, score_maps
from .outputs import write_comparison_report
from .results_folder import read_results
from .tables import (
    PAPER_TABLE1_MEAN_IOU,
    TABLE1_READINGS,
    format_table,
    paper_comparison,
    table1,
)
from .templates import load_rsn_templates

_LAZY = {"compare": "comparison", "paper_protocol": "comparison", "PRESETS": "comparison"}

__all__ = [
    "PAPER_TABLE1_MEAN_IOU",
    "PRESETS",
    "TABLE1_READINGS",
    "compare",
    "dice_matrix",
    "format_table",
    "iou_matrix",
    "load_rsn_templates",
    "match_components",
    "paper_comparison",
    "paper_protocol",
    "read_results",
    "score_maps",
    "table1",
    "write_comparison_report",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
