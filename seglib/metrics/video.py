import torch

from seglib.metrics.masks import paired_iou


def j_scores(masks: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-frame region similarity J (the IoU of DAVIS), 1 when both masks are empty.

    Args:
        masks, targets: bool ``(T, H, W)``.

    Returns:
        float32 ``(T,)``.
    """
    return paired_iou(masks, targets)
