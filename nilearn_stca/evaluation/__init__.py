"""Evaluation of component maps against reference networks: overlap metrics and matching."""

from .metrics import dice_matrix, iou_matrix, match_components
from .templates import load_rsn_templates

__all__ = ["dice_matrix", "iou_matrix", "load_rsn_templates", "match_components"]
