"""Semantic segmentation metrics.

Almost everything is read off one table, the confusion matrix ``cm`` of shape
``(C, C)``: ``cm[i, j]`` counts the pixels whose true class is ``i`` and whose
predicted class is ``j``. Pixels whose target is ``ignore_index`` (255 by
default) are not counted. With ``TP = diag(cm)``, ``FN = row sums - TP`` and
``FP = column sums - TP``:

* pixel accuracy ``= trace(cm) / sum(cm)``;
* IoU (Jaccard index) of class c ``= TP / (TP + FP + FN)``;
* Dice (F1 score) of class c ``= 2 TP / (2 TP + FP + FN)``.

A class that appears neither in the target nor in the prediction has
``0 / 0``: its IoU and Dice are NaN and the means skip it.

Two metrics read a class's *scores* (its predicted probability at every
pixel) instead of a label map: :func:`threshold_iou`, the class's IoU at
each of several decision thresholds, and :func:`pixel_precision_recall`,
the precision-recall curve of the pixels ranked by score, whose average
precision does not depend on any threshold.

The boundary F1 score looks only at region outlines, where masks from
low-resolution decoders are usually wrong; :class:`~seglib.metrics.evaluation.SegmentationMeter`
accumulates all of these over batches and :func:`~seglib.metrics.evaluation.evaluate_segmentation` runs a
model over a data set with it.

Shapes: label maps are integer ``(B, H, W)`` (a single ``(H, W)`` map is
accepted too), logits float ``(B, C, H, W)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from seglib.validation import check_int, check_tensor

__all__ = [
    "boundary_f1",
    "confusion_matrix",
    "dice_per_class",
    "iou_per_class",
    "mean_dice",
    "mean_iou",
    "per_image_mean_iou",
    "pixel_accuracy",
    "pixel_precision_recall",
    "threshold_iou",
]


# -- input checks ---------------------------------------------------------------------------------


def _check_ignore_index(ignore_index: Any) -> None:
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")


def _check_label_map(name: str, labels: Any) -> None:
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor label map, got {type(labels).__name__}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise TypeError(
            f"{name} must be an integer label map (int64 class ids), got dtype {labels.dtype}"
            + ("; for logits take .argmax(dim=1) first" if labels.is_floating_point() else "")
        )
    if labels.dim() not in (2, 3):
        raise ValueError(f"{name} must have shape (B,H,W) or (H,W), got {tuple(labels.shape)}")


def _check_pair(pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate two label maps and return them as ``(B, H, W)``."""
    _check_label_map("pred", pred)
    _check_label_map("target", target)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {tuple(pred.shape)} "
            f"and target {tuple(target.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(f"pred and target must be on the same device, got {pred.device} and {target.device}")
    if pred.dim() == 2:
        return pred.unsqueeze(0), target.unsqueeze(0)
    return pred, target


def _valid_mask(target: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    """Bool tensor of ``target``'s shape, False where the target is ``ignore_index``."""
    if ignore_index is None:
        return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_index


def _check_class_ids(name: str, values: torch.Tensor, num_classes: int, ignore_index: int | None) -> None:
    """Raise unless every value of the 1-D tensor ``values`` lies in ``[0, num_classes)``."""
    bad = (values < 0) | (values >= num_classes)
    if bool(bad.any()):
        allowed = f"[0, {num_classes})" + (f" or {ignore_index} (ignore)" if ignore_index is not None else "")
        raise ValueError(
            f"{name} must hold class ids in {allowed} with num_classes={num_classes}, "
            f"got {int(bad.sum())} pixel(s) with other values, e.g. {int(values[bad][0])}"
        )


def _check_confusion(cm: Any) -> None:
    if not isinstance(cm, torch.Tensor):
        raise TypeError(f"cm must be a torch.Tensor confusion matrix, got {type(cm).__name__}")
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"cm must be a square (C,C) confusion matrix with C >= 1, got shape {tuple(cm.shape)}")
    if cm.is_floating_point() and not bool((cm == cm.round()).all()) or cm.dtype == torch.bool or cm.is_complex():
        raise TypeError(f"cm must hold integer pixel counts, got dtype {cm.dtype} with fractional values")
    if cm.numel() and int(cm.min()) < 0:
        raise ValueError(f"cm must hold counts >= 0, got {int(cm.min())}")


# -- confusion matrix and the scores read from it ----------------------------------------------


def _confusion_matrices(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None
) -> torch.Tensor:
    """One confusion matrix per image, int64 ``(B, C, C)``, after checking all inputs."""
    pred, target = _check_pair(pred, target)
    check_int("num_classes", num_classes, 1)
    _check_ignore_index(ignore_index)
    valid = _valid_mask(target, ignore_index)
    image = torch.arange(target.shape[0], device=target.device).view(-1, 1, 1).expand_as(target)
    true, predicted, image = target[valid].long(), pred[valid].long(), image[valid]
    _check_class_ids("target", true, num_classes, ignore_index)
    _check_class_ids("pred", predicted, num_classes, None)
    keys = (image * num_classes + true) * num_classes + predicted
    counts = torch.bincount(keys, minlength=target.shape[0] * num_classes**2)
    return counts.view(target.shape[0], num_classes, num_classes)


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = 255
) -> torch.Tensor:
    """Count (true class, predicted class) pairs over all pixels of a batch.

    Args:
        pred: integer ``(B, H, W)`` (or ``(H, W)``) predicted class ids in ``[0, C)``.
        target: integer label map of the same shape, ids in ``[0, C)`` or ``ignore_index``.
        num_classes: C.
        ignore_index: target value of pixels that are skipped (the prediction
            there may be anything); ``None`` to count every pixel.

    Returns:
        int64 ``(C, C)`` on the inputs' device: rows are true classes,
        columns predicted classes.

    Example::

        >>> confusion_matrix(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 0], [1, 255]]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    return _confusion_matrices(pred, target, num_classes, ignore_index).sum(dim=0)


def _iou(cm: torch.Tensor) -> torch.Tensor:
    """IoU per class of ``(..., C, C)`` confusion matrices, float64 ``(..., C)``, NaN for 0/0."""
    cm = cm.to(torch.float64)
    tp = cm.diagonal(dim1=-2, dim2=-1)
    return tp / (cm.sum(dim=-1) + cm.sum(dim=-2) - tp)


def pixel_accuracy(cm: torch.Tensor) -> float:
    """Fraction of counted pixels whose class is right: ``trace(cm) / sum(cm)``.

    Args:
        cm: ``(C, C)`` confusion matrix (rows true, columns predicted).

    Returns:
        A float in [0, 1]; NaN when ``cm`` counts no pixel.
    """
    _check_confusion(cm)
    cm = cm.to(torch.float64)
    return float(cm.trace() / cm.sum())


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every class, ``TP / (TP + FP + FN)``.

    Args:
        cm: ``(C, C)`` confusion matrix (rows true, columns predicted).

    Returns:
        float64 ``(C,)``; NaN for a class absent from both target and prediction.
    """
    _check_confusion(cm)
    return _iou(cm)


def mean_iou(cm: torch.Tensor) -> float:
    """Mean IoU over the classes that are defined (NaN classes skipped).

    This is the dataset-level mIoU of the PASCAL VOC and Cityscapes
    benchmarks when ``cm`` sums the whole data set.

    Args:
        cm: ``(C, C)`` confusion matrix.

    Returns:
        A float in [0, 1]; NaN when no class is defined.
    """
    return float(torch.nanmean(iou_per_class(cm)))


def dice_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Dice coefficient (F1 score) of every class, ``2 TP / (2 TP + FP + FN)``.

    Dice and IoU are monotone in each other: ``Dice = 2 IoU / (1 + IoU)``.

    Args:
        cm: ``(C, C)`` confusion matrix (rows true, columns predicted).

    Returns:
        float64 ``(C,)``; NaN for a class absent from both target and prediction.
    """
    _check_confusion(cm)
    cm = cm.to(torch.float64)
    tp = cm.diagonal()
    return 2 * tp / (cm.sum(dim=1) + cm.sum(dim=0))


def mean_dice(cm: torch.Tensor) -> float:
    """Mean Dice over the classes that are defined (NaN classes skipped)."""
    return float(torch.nanmean(dice_per_class(cm)))


def per_image_mean_iou(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = 255
) -> float:
    """Mean over images of each image's own mIoU.

    Each image gets its own confusion matrix; its mIoU averages the IoU of the
    classes present in that image's target or prediction; images with no
    counted pixel are skipped. The result is the mean of these per-image
    values (for maps without ignored pixels this is
    ``torchmetrics.functional.segmentation.mean_iou(pred, target, C, input_format="index").mean()``).

    This is not the dataset-level mIoU (:func:`mean_iou` of the summed
    confusion matrix): per image, a class that fills three pixels weighs as
    much as one that fills the whole image. Example with two 2x2 images and
    classes {0, 1}::

        image 1: target [[0, 0], [0, 0]], pred [[0, 0], [0, 0]] -> IoU_0 = 1             mIoU 1
        image 2: target [[0, 0], [1, 1]], pred [[0, 0], [0, 0]] -> IoU_0 = 2/4, IoU_1 = 0 mIoU 0.25

        per-image mean IoU = (1 + 0.25) / 2 = 0.625
        dataset-level mIoU: cm = [[6, 0], [2, 0]] -> IoU_0 = 6/8, IoU_1 = 0 -> 0.375

    ``torchmetrics.segmentation.MeanIoU`` (torchmetrics 1.9, default
    ``per_class=False``) is a third variant: it averages IoU over all (image,
    present class) pairs, ``(1 + 0.5 + 0) / 3 = 0.5`` above. It agrees with
    this function whenever every image has the same number of present classes.

    Args:
        pred: integer ``(B, H, W)`` (or ``(H, W)``) predicted class ids.
        target: integer label map of the same shape; ``ignore_index`` pixels are skipped.
        num_classes: C.
        ignore_index: target value to skip, or ``None``.

    Returns:
        A float in [0, 1]; NaN when no image has a counted pixel.
    """
    per_image = torch.nanmean(_iou(_confusion_matrices(pred, target, num_classes, ignore_index)), dim=1)
    return float(torch.nanmean(per_image))


# -- boundary F1 ---------------------------------------------------------------------------------


def _class_boundaries(labels: torch.Tensor, class_id: int) -> torch.Tensor:
    """Pixels of ``class_id`` with an 8-neighbour of another label, bool ``(B, H, W)``.

    The image border is not a boundary.
    """
    inside = (labels == class_id).unsqueeze(1).float()
    touches_other = F.max_pool2d(1 - inside, kernel_size=3, stride=1, padding=1) > 0
    return (inside.bool() & touches_other).squeeze(1)


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels within chessboard distance ``radius`` of a True pixel of bool ``(B, H, W)``."""
    if radius == 0:
        return mask
    grown = F.max_pool2d(mask.unsqueeze(1).float(), kernel_size=2 * radius + 1, stride=1, padding=radius)
    return grown.squeeze(1) > 0


def _boundary_f1_per_image(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, tolerance: int, ignore_index: int | None
) -> torch.Tensor:
    """Boundary F1 of each image of ``(B, H, W)`` maps, float64 ``(B,)``, NaN where undefined."""
    pred = torch.where(_valid_mask(target, ignore_index), pred, target)
    scores = torch.full((target.shape[0], num_classes), math.nan, dtype=torch.float64, device=target.device)
    # A class in neither map has no outline (NaN): only the classes present cost time, whatever num_classes is.
    present = torch.unique(torch.cat([pred.flatten(), target.flatten()])).tolist()
    for class_id in (c for c in present if 0 <= c < num_classes):
        pred_edge = _class_boundaries(pred, class_id)
        true_edge = _class_boundaries(target, class_id)
        n_pred = pred_edge.sum(dim=(1, 2)).double()
        n_true = true_edge.sum(dim=(1, 2)).double()
        precision = (pred_edge & _dilate(true_edge, tolerance)).sum(dim=(1, 2)) / n_pred.clamp_min(1)
        recall = (true_edge & _dilate(pred_edge, tolerance)).sum(dim=(1, 2)) / n_true.clamp_min(1)
        total = precision + recall
        f1 = torch.where(total > 0, 2 * precision * recall / total.clamp_min(1e-12), torch.zeros_like(total))
        scores[:, class_id] = torch.where((n_pred > 0) | (n_true > 0), f1, torch.full_like(f1, math.nan))
    return torch.nanmean(scores, dim=1)


def boundary_f1(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int | None = None,
    tolerance: int = 2,
    ignore_index: int | None = 255,
) -> float:
    """Boundary F1 score (BF score, Csurka et al., BMVC 2013), averaged over images.

    Definition used here, for every image and every class c:

    1. The boundary of c in a label map is the set of pixels of class c that
       have at least one 8-neighbour with another label (the image border does
       not count). Where the target is ``ignore_index`` the prediction takes
       that value too, so both maps share the same void: what is predicted
       inside it does not count, and pixels along it are boundary pixels of
       both maps (PASCAL VOC draws its ignore band on object outlines).
    2. precision = fraction of predicted boundary pixels of c that lie within
       ``tolerance`` pixels of a true boundary pixel of c, in *chessboard*
       distance (a ``(2 t + 1) x (2 t + 1)`` square, done by max-pool
       dilation); recall = fraction of true boundary pixels of c within
       ``tolerance`` of a predicted one.
    3. F1_c = 2 P R / (P + R) (0 when P + R = 0, or when only one of the two
       maps has a boundary of c); undefined when neither has one.

    The score of an image is the mean F1_c over its defined classes; the
    result is the mean over images that have at least one defined class.
    It grows with ``tolerance`` and is 1 for identical maps.

    Args:
        pred: integer ``(B, H, W)`` (or ``(H, W)``) predicted class ids.
        target: integer label map of the same shape.
        num_classes: C; ``None`` takes the largest class id seen plus one.
        tolerance: distance in pixels, ``>= 0`` (0 asks for exact overlap).
        ignore_index: target value to skip, or ``None``.

    Returns:
        A float in [0, 1]; NaN when no image has a boundary in either map.
    """
    pred, target = _check_pair(pred, target)
    check_int("tolerance", tolerance, 0)
    _check_ignore_index(ignore_index)
    valid = _valid_mask(target, ignore_index)
    if num_classes is None:
        seen = torch.cat([pred[valid], target[valid]])
        num_classes = int(seen.max()) + 1 if seen.numel() else 0
    else:
        check_int("num_classes", num_classes, 1)
    _check_class_ids("target", target[valid], num_classes, ignore_index)
    _check_class_ids("pred", pred[valid], num_classes, None)
    return float(torch.nanmean(_boundary_f1_per_image(pred, target, num_classes, tolerance, ignore_index)))


# -- accumulation over a data set ----------------------------------------------------------------


# -- overlap of instance masks and boxes ---------------------------------------------------------




def _check_scores(scores: Any, truth: Any) -> tuple[torch.Tensor, torch.Tensor]:
    check_tensor("scores", scores, "(N, H, W)", "float", ndim=range(1, 5))
    check_tensor("truth", truth, "(N, H, W)", "bool", ndim=range(1, 5))
    if scores.shape != truth.shape:
        raise ValueError(f"scores and truth must have the same shape, got {tuple(scores.shape)} and {tuple(truth.shape)}")
    if not bool(truth.any()):
        raise ValueError("truth must hold at least one positive pixel")
    return scores.flatten(), truth.flatten().to(scores.device)


def threshold_iou(scores: torch.Tensor, truth: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """IoU of ``scores > t`` with ``truth`` for every threshold ``t``, float64 ``(T,)``.

    Args:
        scores: float ``(N, H, W)``, e.g. the softmax probability of one class.
        truth: bool ``(N, H, W)``, the pixels of that class (at least one).
        thresholds: float ``(T,)``.
    """
    scores, truth = _check_scores(scores, truth)
    check_tensor("thresholds", thresholds, "(T,)", "float")
    ordered, order = thresholds.to(scores).sort()
    # a pixel lies above the k-th smallest threshold iff k < (number of thresholds below its score)
    below = torch.searchsorted(ordered, scores, side="left")  # (P,) in [0, T]
    counts = torch.stack([torch.bincount(below[truth], minlength=ordered.numel() + 1),
                          torch.bincount(below[~truth], minlength=ordered.numel() + 1)])
    hits, alarms = counts.flip(1).cumsum(1).flip(1)[:, 1:].double()  # true / false pixels above each threshold
    iou = hits / (alarms + int(truth.sum()))
    return torch.empty_like(iou).scatter_(0, order.to(iou.device), iou)


def pixel_precision_recall(scores: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Precision-recall curve of the pixels ranked by ``scores``, and its average precision.

    The pixels are sorted by score, highest first. At every distinct score
    ``s`` (pixels with equal scores enter together), the pixels scoring at
    least ``s`` are called positive: precision = true pixels among them / their
    number, recall = true pixels among them / all true pixels. The average
    precision is ``sum_k (R_k - R_{k-1}) P_k`` over the distinct scores (the
    area under the step curve, without interpolation, as scikit-learn's
    ``average_precision_score``): 1 when every true pixel outranks every
    other, about the fraction of true pixels for a random ranking.

    Args:
        scores: float ``(N, H, W)``.
        truth: bool ``(N, H, W)`` (at least one true pixel).

    Returns:
        ``(precision, recall, ap)``: float64 ``(S,)`` each, one value per
        distinct score from the highest down, and a float.
    """
    scores, truth = _check_scores(scores, truth)
    ranked, order = scores.sort(descending=True, stable=True)
    found = truth[order].double().cumsum(dim=0)
    last = torch.ones_like(ranked, dtype=torch.bool)
    last[:-1] = ranked[1:] != ranked[:-1]  # the last pixel of each group of equal scores
    ends = last.nonzero().squeeze(1)
    precision = found[ends] / (ends + 1).double()
    recall = found[ends] / found[-1]
    gained = torch.diff(recall, prepend=recall.new_zeros(1))
    return precision, recall, float((gained * precision).sum())
