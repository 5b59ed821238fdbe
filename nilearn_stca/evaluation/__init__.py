"""Evaluation of component maps against reference networks: overlap metrics and matching."""

from .metrics import dice_matrix, iou_matrix, match_components

__all__ = ["dice_matrix", "iou_matrix", "match_components"]
