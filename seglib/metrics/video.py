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


REAPPEAR_FRAMES = 3
"""Frames after a hidden stretch that count as "reappearing" in :func:`visibility_counts`."""


def visibility_counts(masks: torch.Tensor, visible: torch.Tensor, targets: torch.Tensor,
                      reappear: int = REAPPEAR_FRAMES) -> dict[str, torch.Tensor]:
    """Per-clip sums and counts for J on visible frames and the accuracy of a visibility call.

    Frame 0 (the prompted frame) is left out. A frame is *visible* when the
    target shows at least one pixel, *hidden* otherwise, and *reappearing*
    when it is one of the first ``reappear`` visible frames after a hidden one.

    Args:
        masks: bool ``(B, T, H, W)`` predicted masks.
        visible: bool ``(B, T)`` the method's call: is the object visible?
        targets: bool ``(B, T, H, W)``.
        reappear: frames after a hidden stretch counted as reappearing.

    Returns:
        float64 ``(B,)`` tensors: ``j_sum`` and ``visible_frames`` (J summed
        over visible frames and their count), ``hidden_right`` and
        ``hidden_frames`` (hidden frames called hidden, and their count),
        ``false_hidden`` (visible frames called hidden), ``reappear_right`` and ``reappear_frames`` (reappearing frames called
        visible, and their count), ``reappear_j_sum``.
    """
    check_masks("masks", masks, "(B, T, H, W)")
    check_masks("targets", targets, "(B, T, H, W)")
    if masks.shape != targets.shape or visible.shape != masks.shape[:2]:
        raise ValueError(f"masks and targets must be (B,T,H,W) and visible (B,T) alike, got {tuple(masks.shape)}, "
                         f"{tuple(targets.shape)} and {tuple(visible.shape)}")
    if isinstance(reappear, bool) or not isinstance(reappear, int) or reappear < 1:
        raise ValueError(f"reappear must be an int >= 1, got {reappear!r}")
    shows = targets.flatten(2).any(dim=2)[:, 1:]
    called = visible.bool()[:, 1:]
    j = paired_iou(masks[:, 1:].flatten(0, 1), targets[:, 1:].flatten(0, 1)).view(shows.shape).double()
    hidden_before = torch.zeros_like(shows)
    since = torch.full(shows.shape[:1], reappear, dtype=torch.long)
    back = torch.zeros_like(shows)
    for t in range(shows.shape[1]):
        since = torch.where(~shows[:, t], torch.zeros_like(since), since + shows[:, t].long())
        back[:, t] = shows[:, t] & (since <= reappear) & hidden_before[:, t - 1] if t else False
        hidden_before[:, t] = (hidden_before[:, t - 1] if t else False) | ~shows[:, t]
    return {
        "j_sum": (j * shows).sum(1), "visible_frames": shows.sum(1).double(),
        "hidden_right": (~called & ~shows).sum(1).double(), "hidden_frames": (~shows).sum(1).double(),
        "false_hidden": (~called & shows).sum(1).double(),
        "reappear_right": (called & back).sum(1).double(), "reappear_frames": back.sum(1).double(),
        "reappear_j_sum": (j * back).sum(1),
    }
