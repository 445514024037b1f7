"""Segment everything: SAM's automatic mask generator, for the small SAM.

What SAM's demo opens with needs no user at all:

1. prompt the model with every point of a regular grid (``points_per_side``
   squared single clicks), each answered with three masks and their
   predicted IoU;
2. keep a mask only if its predicted IoU is at least ``iou_threshold`` and
   it is *stable*: thresholding its logits at ``-offset`` and ``+offset``
   gives nearly the same mask (the IoU of the two, SAM's stability score, at
   least ``stability_threshold``);
3. remove duplicates (many grid points fall on the same object) with
   non-maximum suppression on the masks' boxes, best predicted IoU first.

:func:`object_recall` measures the result as SAM's paper does for its
zero-shot object proposals: the share of ground-truth objects that some
generated mask covers with an IoU of at least 0.5 (or 0.75).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torchvision.ops import masks_to_boxes, nms

from seglib.metrics.masks import mask_iou
from seglib.models.promptable.model import SmallSam
from seglib.validation import check_image, check_masks


class GeneratedMasks(NamedTuple):
    """The masks kept for one image, best first: ``masks`` bool ``(K, H, W)``,
    ``iou_predictions`` ``(K,)``, ``stability`` ``(K,)``, ``points`` ``(K, 2)``
    (the grid point that produced each)."""

    masks: torch.Tensor
    iou_predictions: torch.Tensor
    stability: torch.Tensor
    points: torch.Tensor


def grid_points(points_per_side: int, size: int) -> torch.Tensor:
    """Cell centres of a ``points_per_side`` square grid over a ``size`` image: float ``(n*n, 2)`` (x, y) pixels."""
    if isinstance(points_per_side, bool) or not isinstance(points_per_side, int) or points_per_side < 1:
        raise ValueError(f"points_per_side must be an int >= 1, got {points_per_side!r}")
    step = size / points_per_side
    axis = (torch.arange(points_per_side, dtype=torch.float32) + 0.5) * step
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


def stability_scores(logits: torch.Tensor, offset: float = 1.0) -> torch.Tensor:
    """SAM's stability: IoU of ``logits > offset`` with ``logits > -offset``; float ``(...,)`` for ``(..., H, W)``."""
    high = (logits > offset).flatten(-2).sum(-1)
    low = (logits > -offset).flatten(-2).sum(-1)
    return torch.where(low > 0, high / low.clamp(min=1), torch.zeros_like(high, dtype=torch.float32)).float()


class PromptGrid(NamedTuple):
    """Every answer of :func:`prompt_grid` for one image: ``logits`` float ``(3P, H, W)``,
    ``iou_predictions`` ``(3P,)`` and ``points`` ``(3P, 2)``: three candidates for each of P grid points."""

    logits: torch.Tensor
    iou_predictions: torch.Tensor
    points: torch.Tensor


@torch.no_grad()
def prompt_grid(model: SmallSam, image: torch.Tensor, points_per_side: int = 8, batch_size: int = 256) -> PromptGrid:
    """Step 1 of the module docstring: the three answers to each click of the grid (on the CPU).

    Args:
        model: a trained :class:`SmallSam`.
        image: float ``(3, H, W)`` in [0, 1], of the model's size.
        points_per_side: the grid of single-click prompts (SAM: 32).
        batch_size: prompts decoded at once.
    """
    if not isinstance(model, SmallSam):
        raise TypeError(f"model must be a SmallSam, got {type(model).__name__}")
    check_image("image", image)
    size = model.image_size
    if tuple(image.shape[-2:]) != (size, size):
        raise ValueError(f"image must be {size} x {size}, the model's size, got {tuple(image.shape[-2:])}")
    device = next(model.parameters()).device
    points = grid_points(points_per_side, size).to(device)
    features = model.encode(image[None].to(device))
    logits, iou = [], []
    for start in range(0, len(points), batch_size):
        chunk = points[start:start + batch_size]
        masks, scores = model.decode(features.expand(len(chunk)), chunk[:, None],
                                     torch.ones(len(chunk), 1, dtype=torch.int64, device=device))
        logits.append(masks.cpu())
        iou.append(scores.cpu())
    return PromptGrid(torch.cat(logits).flatten(0, 1), torch.cat(iou).flatten(), points.cpu().repeat_interleave(3, 0))


def select_masks(grid: PromptGrid, iou_threshold: float = 0.7, stability_threshold: float = 0.8,
                 offset: float = 1.0, nms_threshold: float = 0.7, min_area: int = 4) -> GeneratedMasks:
    """Steps 2 and 3 of the module docstring: filter the grid's answers, then remove duplicates.

    Args:
        grid: a :class:`PromptGrid`.
        iou_threshold: lowest predicted IoU kept (SAM: 0.88).
        stability_threshold: lowest stability kept (SAM: 0.95).
        offset: logit offset of the stability score (SAM: 1.0).
        nms_threshold: box IoU above which the lower-scored mask is a duplicate (SAM: 0.7).
        min_area: smallest mask kept, in pixels.
    """
    for name, value in (("iou_threshold", iou_threshold), ("stability_threshold", stability_threshold),
                        ("nms_threshold", nms_threshold)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    iou, stability = grid.iou_predictions, stability_scores(grid.logits, offset)
    masks = grid.logits > 0
    keep = (iou >= iou_threshold) & (stability >= stability_threshold) & (masks.flatten(1).sum(1) >= min_area)
    masks, iou, stability, points = masks[keep], iou[keep], stability[keep], grid.points[keep]
    if len(masks):
        order = nms(masks_to_boxes(masks).float(), iou.float(), nms_threshold)
        masks, iou, stability, points = masks[order], iou[order], stability[order], points[order]
    return GeneratedMasks(masks, iou, stability, points)


def generate_masks(model: SmallSam, image: torch.Tensor, points_per_side: int = 8, **filters) -> GeneratedMasks:
    """Every mask the model finds in ``image``: :func:`select_masks` of :func:`prompt_grid` (``filters`` go to it)."""
    return select_masks(prompt_grid(model, image, points_per_side), **filters)


def object_recall(generated: list[GeneratedMasks], targets: list[torch.Tensor],
                  thresholds: tuple[float, ...] = (0.5, 0.75)) -> dict[float, torch.Tensor]:
    """Which ground-truth objects some generated mask covers with IoU >= each threshold.

    Args:
        generated: one :class:`GeneratedMasks` per image.
        targets: bool ``(N_i, H, W)`` the objects of each image.
        thresholds: IoU thresholds.

    Returns:
        threshold -> bool ``(sum N_i,)``, one entry per object in image order.
    """
    if len(generated) != len(targets):
        raise ValueError(f"generated and targets must hold one entry per image, got {len(generated)} and "
                         f"{len(targets)}")
    best = []
    for found, objects in zip(generated, targets):
        check_masks("targets", objects, "(N, H, W)")
        if len(found.masks) and len(objects):
            best.append(mask_iou(objects, found.masks).amax(dim=1))
        else:
            best.append(torch.zeros(len(objects)))
    best = torch.cat(best)
    return {t: best >= t for t in thresholds}


FILTERS = {"strict": (0.8, 0.9), "middle": (0.7, 0.8), "loose": (0.5, 0.6), "none": (0.0, 0.0)}
"""Named ``(iou_threshold, stability_threshold)`` pairs of :func:`filter_sweep`: three chosen on validation
scenes, and ``"none"``, which keeps every mask of at least ``min_area`` pixels and leaves only NMS."""


def filter_sweep(grids: list[PromptGrid], targets: list[torch.Tensor],
                 filters: dict[str, tuple[float, float]] | None = None) -> dict[str, dict]:
    """Object recall and masks per image of each filter setting, on grids computed once.

    Args:
        grids: one :class:`PromptGrid` per image.
        targets: bool ``(N_i, H, W)`` the objects of each image.
        filters: name -> ``(iou_threshold, stability_threshold)`` (default :data:`FILTERS`).

    Returns:
        name -> ``{"recall50": float, "recall75": float, "masks_per_image": float, "found": [GeneratedMasks]}``.
    """
    out = {}
    for name, (iou_min, stable_min) in (filters or FILTERS).items():
        found = [select_masks(grid, iou_min, stable_min) for grid in grids]
        recall = object_recall(found, targets)
        out[name] = {"recall50": float(recall[0.5].float().mean()), "recall75": float(recall[0.75].float().mean()),
                     "masks_per_image": sum(len(f.masks) for f in found) / max(len(found), 1), "found": found}
    return out
