"""Video object segmentation: the region similarity J of DAVIS, frame by frame.
"""

from __future__ import annotations

import torch

from seglib.metrics.masks import paired_iou
from seglib.metrics.uncertainty import Estimate, bootstrap_interval
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


def hidden_auc(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """How well a visibility score ranks the hidden frames below the visible ones, pooled over clips.

    The area under the ROC curve of "hidden" against "visible": the chance that
    a hidden frame drawn at random scores lower than a visible frame drawn at
    random (ties count half). 0.5 for a score that ignores the frame, 1 for one
    that puts every hidden frame below every visible one, whatever the threshold.
    Frame 0 (the prompted frame) is left out, as in :func:`visibility_counts`.

    Args:
        scores: float ``(B, T)``, higher for "visible" (the occlusion head's logits).
        targets: bool ``(B, T, H, W)``.

    Returns:
        The AUC, NaN when the frames after frame 0 are all hidden or all visible.
    """
    return _auc(*_scores_and_shows(scores, targets))


def hidden_auc_estimate(scores: torch.Tensor, targets: torch.Tensor, resamples: int = 1000) -> Estimate:
    """:func:`hidden_auc` with its 95 % bootstrap interval over the clips (shapes as there)."""
    values, shows = _scores_and_shows(scores, targets)
    low, high = bootstrap_interval(lambda index: _auc(values[index], shows[index]), len(values), resamples=resamples)
    return Estimate(_auc(values, shows), low, high)


def _scores_and_shows(scores: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The scores float64 ``(B, T - 1)`` and whether the target shows, bool ``(B, T - 1)``, after frame 0."""
    check_masks("targets", targets, "(B, T, H, W)")
    if not isinstance(scores, torch.Tensor) or scores.shape != targets.shape[:2]:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"scores must be a float tensor (B, T) = {tuple(targets.shape[:2])}, got {got}")
    return scores[:, 1:].double(), targets.flatten(2).any(dim=2)[:, 1:]


def _auc(values: torch.Tensor, shows: torch.Tensor) -> float:
    hidden, visible = values[~shows], values[shows]
    if not len(hidden) or not len(visible):
        return float("nan")
    below = (hidden[:, None] < visible[None, :]).double() + 0.5 * (hidden[:, None] == visible[None, :]).double()
    return float(below.mean())
