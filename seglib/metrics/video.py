"""Video object segmentation: the region similarity J of DAVIS, frame by frame.
"""

from __future__ import annotations

import torch

from seglib.metrics.masks import paired_iou
from seglib.validation import check_masks


def j_scores(masks: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-frame region similarity J (the IoU of DAVIS), 1 when both masks are empty.

    Args:
        masks, targets: bool ``(T, H, W)``.

    Returns:
        float32 ``(T,)``.
    """
    check_masks("masks", masks, "(T, H, W)")
    check_masks("targets", targets, "(T, H, W)")
    if masks.shape != targets.shape:
        raise ValueError(f"masks and targets must have the same shape, got {tuple(masks.shape)} and "
                         f"{tuple(targets.shape)}")
    return paired_iou(masks, targets)
