"""Overlap of instance masks and boxes.

* :func:`mask_iou`: IoU of every pair of two stacks of masks, ``(N, M)``;
* :func:`box_iou`: the same for xyxy boxes;
* :func:`paired_iou`: IoU of the masks at the same index, ``(N,)`` (promptable models).

One convention everywhere in seglib: **the IoU of two empty masks is 1**.
Two empty sets are the same set, and "nothing to find, nothing found" is a
correct answer, the convention of video benchmarks (DAVIS's J) for an
absent object. An empty mask against a non-empty one has IoU 0.
(pycocotools returns 0 for two empty masks; COCO's objects are never empty.)
"""

from __future__ import annotations

import torch
import torchvision


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU between every pair of binary masks.

    Args:
        a: bool ``(N, H, W)`` masks.
        b: bool ``(M, H, W)`` masks.

    Returns:
        float32 ``(N, M)``: ``|a_i & b_j| / |a_i | b_j|``, 1 when both masks
        are empty (the module's convention). Pixel counts are exact up to
        2**24 pixels per mask.
    """
    for name, masks in (("a", a), ("b", b)):
        if not isinstance(masks, torch.Tensor) or masks.dtype != torch.bool:
            got = masks.dtype if isinstance(masks, torch.Tensor) else type(masks).__name__
            raise TypeError(f"{name} must be a bool tensor of masks (N,H,W), got {got}")
        if masks.dim() != 3:
            raise ValueError(f"{name} must have shape (N,H,W), got {tuple(masks.shape)}")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"a and b must have the same (H,W), got {tuple(a.shape[1:])} and {tuple(b.shape[1:])}")
    a_flat, b_flat = a.flatten(1).float(), b.flatten(1).float()
    intersection = a_flat @ b_flat.T
    union = a_flat.sum(dim=1, keepdim=True) + b_flat.sum(dim=1) - intersection
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union))



def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU between every pair of boxes (``torchvision.ops.box_iou`` with input checks).

    Args:
        a: float ``(N, 4)`` boxes, xyxy in pixels.
        b: float ``(M, 4)`` boxes, xyxy in pixels.

    Returns:
        float ``(N, M)``.
    """
    for name, boxes in (("a", a), ("b", b)):
        if not isinstance(boxes, torch.Tensor) or not boxes.is_floating_point():
            got = boxes.dtype if isinstance(boxes, torch.Tensor) else type(boxes).__name__
            raise TypeError(f"{name} must be a float tensor of boxes (N,4), got {got}")
        if boxes.dim() != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{name} must have shape (N,4) in xyxy format, got {tuple(boxes.shape)}")
        flipped = (boxes[:, 2:] < boxes[:, :2]).any(dim=1)
        if bool(flipped.any()):
            index = int(flipped.nonzero()[0])
            raise ValueError(
                f"{name} must be xyxy with x2 >= x1 and y2 >= y1, got {boxes[index].tolist()} at row {index}"
            )
    return torchvision.ops.box_iou(a, b)


def paired_iou(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of each predicted mask with the target mask at the same index.

    Args:
        predicted: bool ``(..., H, W)``.
        target: bool, same shape.

    Returns:
        float32 ``(...)``; 1 where both masks are empty (the module's convention).
    """
    for name, value in (("predicted", predicted), ("target", target)):
        if not isinstance(value, torch.Tensor) or value.dtype != torch.bool or value.dim() < 2:
            got = (value.dtype, tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__
            raise TypeError(f"{name} must be a bool tensor (..., H, W), got {got}")
    if predicted.shape != target.shape:
        raise ValueError(f"predicted and target must have the same shape, got {tuple(predicted.shape)} "
                         f"and {tuple(target.shape)}")
    inter = (predicted & target).flatten(-2).sum(-1).float()
    union = (predicted | target).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
