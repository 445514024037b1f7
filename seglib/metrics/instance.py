"""Instance segmentation metrics.

* :func:`match_instances`: greedy matching of predicted to true masks at an
  IoU threshold, highest score first (the matching inside COCO's AP).
* :func:`coco_mask_ap`: COCO's average precision with the official evaluator
  (pycocotools ``COCOeval``) for masks (``"segm"``) and boxes (``"bbox"``):
  AP averaged over IoU thresholds 0.50:0.05:0.95, AP50, AP75, AP by object
  area (small < 32², medium < 96², large) and the average recalls.

Panoptic quality is in :mod:`seglib.metrics.panoptic`. Shapes: instance masks
bool ``(N, H, W)``, boxes float ``(N, 4)`` xyxy in pixels.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Sequence

import numpy as np
import torch

from seglib.common import markdown_table
from seglib.metrics.masks import mask_iou
from seglib.validation import check_same_size, check_tensor

__all__ = ["AREA_RANGES", "ERROR_KINDS", "area_counts", "coco_mask_ap", "coco_summary", "error_counts", "match_instances"]


def _check_masks(name: str, masks, dim: int = 3) -> None:
    if not isinstance(masks, torch.Tensor) or masks.dtype != torch.bool:
        got = masks.dtype if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise TypeError(f"{name} must be a bool tensor of masks, got {got}")
    if masks.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimensions {'(N,H,W)' if dim == 3 else '(H,W)'}, "
                         f"got shape {tuple(masks.shape)}")


def match_instances(pred_masks: torch.Tensor, pred_scores: torch.Tensor, gt_masks: torch.Tensor,
                    iou_threshold: float = 0.5) -> torch.Tensor:
    """Match predicted masks to true masks, highest score first.

    Each prediction, in order of decreasing score, takes the still unmatched
    true mask it overlaps most, if their IoU reaches ``iou_threshold``.
    Matched predictions are true positives, the others false positives;
    unmatched true masks are false negatives.

    Args:
        pred_masks: bool ``(P, H, W)``.
        pred_scores: float ``(P,)`` confidences.
        gt_masks: bool ``(G, H, W)``.
        iou_threshold: in ``(0, 1]``.

    Returns:
        int64 ``(P,)``: the index of the matched true mask, ``-1`` if none.
    """
    _check_masks("pred_masks", pred_masks)
    _check_masks("gt_masks", gt_masks)
    check_same_size("gt_masks", gt_masks, "pred_masks", pred_masks)
    check_tensor("pred_scores", pred_scores, "(P,)", "float")
    if pred_scores.shape != pred_masks.shape[:1]:
        raise ValueError(f"pred_scores must have shape ({pred_masks.shape[0]},), got {tuple(pred_scores.shape)}")
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    matched = torch.full((pred_masks.shape[0],), -1, dtype=torch.int64)
    if pred_masks.shape[0] == 0 or gt_masks.shape[0] == 0:
        return matched
    ious = mask_iou(pred_masks, gt_masks).cpu()
    taken = torch.zeros(gt_masks.shape[0], dtype=torch.bool)
    for p in torch.argsort(pred_scores.detach().cpu(), descending=True, stable=True).tolist():
        candidates = ious[p].masked_fill(taken, -1.0)
        best = int(candidates.argmax())
        if float(candidates[best]) >= iou_threshold:
            matched[p] = best
            taken[best] = True
    return matched


# -- COCO average precision -----------------------------------------------------------------------

_SUMMARY = {"ap": 0, "ap50": 1, "ap75": 2, "ap_small": 3, "ap_medium": 4, "ap_large": 5,
            "ar1": 6, "ar10": 7, "ar100": 8, "ar_small": 9, "ar_medium": 10, "ar_large": 11}
"""Keys of the returned metrics -> index in ``COCOeval.stats`` (the twelve lines of ``summarize()``)."""


def _rle(masks: torch.Tensor) -> list[dict]:
    """COCO run-length encodings of bool ``(N, H, W)`` masks (pycocotools wants Fortran order)."""
    from pycocotools import mask as mask_utils

    array = np.asfortranarray(masks.cpu().numpy().transpose(1, 2, 0).astype(np.uint8))
    encoded = mask_utils.encode(array)
    for item in encoded:
        item["counts"] = item["counts"].decode("ascii")
    return encoded


def _xywh(boxes: torch.Tensor) -> list[list[float]]:
    boxes = boxes.detach().float().cpu()
    return torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()


def _check_instances(name: str, items, with_scores: bool) -> None:
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"{name} must be a list of dicts (one per image), got {type(items).__name__}")
    keys = ("boxes", "labels", "masks") + (("scores",) if with_scores else ())
    for i, item in enumerate(items):
        if not isinstance(item, dict) or any(k not in item for k in keys):
            got = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise ValueError(f"{name}[{i}] must be a dict with keys {keys}, got {got}")
        masks = item["masks"]
        if masks.dim() == 4 and masks.shape[1] == 1:
            masks = masks[:, 0]
        if masks.dim() != 3 or masks.shape[0] != item["labels"].shape[0] or item["boxes"].shape != (masks.shape[0], 4):
            raise ValueError(f"{name}[{i}]: masks (n,H,W), boxes (n,4) and labels (n,) must agree, got masks "
                             f"{tuple(item['masks'].shape)}, boxes {tuple(item['boxes'].shape)}, labels "
                             f"{tuple(item['labels'].shape)}")


def _binary(masks: torch.Tensor) -> torch.Tensor:
    """bool ``(n, H, W)`` from bool masks or float ``(n, [1,] H, W)`` probabilities (> 0.5)."""
    if masks.dim() == 4:
        masks = masks[:, 0]
    return masks if masks.dtype == torch.bool else masks > 0.5


def coco_mask_ap(predictions: Sequence[dict], targets: Sequence[dict], iou_types: Sequence[str] = ("segm", "bbox"),
                 categories: Sequence[int] | None = None) -> dict[str, float]:
    """COCO's summary of instance predictions (AP, AP50, AP75, AP and AR by area), by pycocotools' ``COCOeval``.

    The ground truth and the results are built in memory: one COCO image per
    entry, annotations with RLE masks, ``area`` (mask pixels), ``bbox``
    (xywh) and ``iscrowd = 0``. The results of each evaluation carry only
    what it reads: RLE masks for ``"segm"`` (pycocotools then takes the mask's
    pixel count as its area) and boxes for ``"bbox"``. Handing a box along
    with a mask, as is easy to do, makes pycocotools take the box's area for
    the detection's area, which sorts false positives into the wrong size
    range of AP_S/M/L.

    COCO's rules that matter here: a category's precision is interpolated at
    101 recall points (0, 0.01, ..., 1), each the best precision at that
    recall or beyond, and averaged; AP is the mean over the categories that
    have ground truth. A category without any ground-truth object has no AP,
    so its detections lower no score: ``unscored_detections`` counts them.

    Args:
        predictions: one dict per image with ``boxes`` ``(n, 4)`` xyxy,
            ``labels`` ``(n,)``, ``scores`` ``(n,)`` and ``masks`` bool
            ``(n, H, W)`` or float ``(n, 1, H, W)`` probabilities (> 0.5 is on).
        targets: one dict per image with ``boxes``, ``labels`` and bool
            ``masks``.
        iou_types: any of ``"segm"`` (mask AP) and ``"bbox"`` (box AP).
        categories: the class ids of the data set (default: every label of
            the targets and the predictions).

    Returns:
        For masks ``mask_ap``, ``mask_ap50``, ``mask_ap75``, ``mask_ap_small``,
        ``mask_ap_medium``, ``mask_ap_large``, ``mask_ar1``, ``mask_ar10``,
        ``mask_ar100``, ``mask_ar_small``, ``mask_ar_medium``, ``mask_ar_large``
        (the twelve numbers of COCO's summary), the same with ``box_`` for
        boxes, in [0, 1], NaN where COCO has nothing to average (e.g. no large
        objects); and ``unscored_detections``. With no prediction at all every
        AP and AR is 0.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    _check_instances("predictions", predictions, with_scores=True)
    _check_instances("targets", targets, with_scores=False)
    if len(predictions) != len(targets):
        raise ValueError(f"predictions and targets must have one entry per image, got {len(predictions)} "
                         f"and {len(targets)}")
    if not targets:
        raise ValueError("targets must hold at least one image")
    for i, (pred, target) in enumerate(zip(predictions, targets)):
        if tuple(pred["masks"].shape[-2:]) != tuple(target["masks"].shape[-2:]):
            raise ValueError(f"predictions[{i}] has masks of size {tuple(pred['masks'].shape[-2:])}, but targets[{i}] "
                             f"of size {tuple(target['masks'].shape[-2:])}: predict on images of the targets' size")
    unknown = [t for t in iou_types if t not in ("segm", "bbox")]
    if unknown or not iou_types:
        raise ValueError(f"iou_types must be a non-empty subset of ('segm', 'bbox'), got {iou_types!r}")
    seen = {int(c) for item in (*targets, *predictions) for c in item["labels"].tolist()}
    if categories is None:
        categories = sorted(seen)
    elif isinstance(categories, (str, bytes)) or not all(isinstance(c, int) for c in categories) \
            or not seen <= set(categories):
        raise ValueError(f"categories must be a sequence of int class ids holding every label {sorted(seen)}, "
                         f"got {categories!r}")

    images, annotations, results = [], [], {"segm": [], "bbox": []}
    for image_id, (pred, target) in enumerate(zip(predictions, targets), start=1):
        masks = _binary(target["masks"])
        height, width = masks.shape[-2:]
        images.append({"id": image_id, "height": int(height), "width": int(width)})
        for rle, box, label, area in zip(_rle(masks), _xywh(target["boxes"]), target["labels"].tolist(),
                                         masks.flatten(1).sum(1).tolist()):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                "segmentation": rle, "area": float(area), "bbox": box, "iscrowd": 0})
        found = zip(_rle(_binary(pred["masks"])), _xywh(pred["boxes"]), pred["labels"].tolist(), pred["scores"].tolist())
        for rle, box, label, score in found:
            results["segm"].append({"image_id": image_id, "category_id": int(label), "segmentation": rle,
                                    "score": float(score)})
            results["bbox"].append({"image_id": image_id, "category_id": int(label), "bbox": box,
                                    "score": float(score)})
    dataset = {"info": {"description": "seglib.metrics.instance.coco_mask_ap"}, "images": images,
               "annotations": annotations, "categories": [{"id": int(c), "name": str(c)} for c in sorted(categories)]}
    with_truth = {a["category_id"] for a in annotations}
    metrics = {"unscored_detections": float(sum(r["category_id"] not in with_truth for r in results["bbox"]))}
    for iou_type in iou_types:
        prefix = "mask_" if iou_type == "segm" else "box_"
        if not results[iou_type]:
            metrics.update({prefix + key: 0.0 for key in _SUMMARY})
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            ground_truth = COCO()
            ground_truth.dataset = dataset
            ground_truth.createIndex()
            detections = ground_truth.loadRes(results[iou_type])
            evaluator = COCOeval(ground_truth, detections, iouType=iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        for key, index in _SUMMARY.items():
            value = float(evaluator.stats[index])
            metrics[prefix + key] = value if value >= 0 else float("nan")
    return metrics


ERROR_KINDS = ("correct", "wrong class", "duplicate, same class", "duplicate, other class", "background", "missed")
"""What :func:`error_counts` sorts detections and objects into."""


def error_counts(predictions: Sequence[dict], targets: Sequence[dict], score_threshold: float = 0.5) -> dict[str, int]:
    """Sort the confident detections and the true objects into :data:`ERROR_KINDS`.

    Detections scoring at least ``score_threshold`` are matched to objects
    regardless of class (greedy, mask IoU >= 0.5, highest score first). A
    matched detection is ``correct`` or of the ``wrong class``; an unmatched
    one is a duplicate when it overlaps an object at IoU >= 0.5 that another
    detection took (of the ``same class`` as that detection, or of an
    ``other class``), else a false alarm on the ``background``; an object no
    detection matched is ``missed``.

    Args:
        predictions: one dict per image with ``masks`` bool ``(n, H, W)``, ``labels`` and ``scores`` ``(n,)``.
        targets: one dict per image with ``masks`` bool ``(k, H, W)`` and ``labels`` ``(k,)``.
        score_threshold: the lowest score counted.
    """
    _check_instances("predictions", predictions, with_scores=True)
    _check_instances("targets", targets, with_scores=False)
    if len(predictions) != len(targets):
        raise ValueError(f"predictions and targets must have one entry per image, got {len(predictions)} "
                         f"and {len(targets)}")
    counts = dict.fromkeys(ERROR_KINDS, 0)
    for prediction, truth in zip(predictions, targets):
        keep = prediction["scores"] >= score_threshold
        masks, labels = _binary(prediction["masks"])[keep], prediction["labels"][keep]
        true_masks = _binary(truth["masks"])
        found = match_instances(masks, prediction["scores"][keep], true_masks)
        hit = found >= 0
        right = labels[hit] == truth["labels"][found[hit]]
        counts["correct"] += int(right.sum())
        counts["wrong class"] += int((~right).sum())
        for j in (~hit).nonzero().flatten().tolist():
            iou = mask_iou(masks[j:j + 1], true_masks)[0] if len(true_masks) else torch.zeros(1)
            if float(iou.max()) < 0.5:
                counts["background"] += 1
                continue
            owner = int((found == int(iou.argmax())).nonzero()[0])  # greedy: an object this close was taken
            counts["duplicate, same class" if labels[owner] == labels[j] else "duplicate, other class"] += 1
        counts["missed"] += len(true_masks) - int(hit.sum())
    return counts


#: COCO's area ranges in pixels (object area = mask pixels).
AREA_RANGES = {"small": (0, 32 ** 2), "medium": (32 ** 2, 96 ** 2), "large": (96 ** 2, float("inf"))}


def area_counts(targets: Sequence[dict]) -> dict[str, int]:
    """How many true objects fall in each of COCO's :data:`AREA_RANGES` (mask area in pixels).

    Args:
        targets: one dict per image with bool ``masks`` ``(k, H, W)`` (and ``boxes``, ``labels``).
    """
    _check_instances("targets", targets, with_scores=False)
    areas = torch.cat([_binary(t["masks"]).flatten(1).sum(dim=1) for t in targets]).double()
    return {name: int(((areas >= low) & (areas < high)).sum()) for name, (low, high) in AREA_RANGES.items()}


def coco_summary(metrics: dict[str, float]) -> str:
    """COCO's twelve summary lines for masks and boxes side by side, as a Markdown table.

    Args:
        metrics: the result of :func:`coco_mask_ap` with both iou types.
    """
    rows = [("AP", "IoU 0.50:0.95", "all", "ap"), ("AP50", "IoU 0.50", "all", "ap50"),
            ("AP75", "IoU 0.75", "all", "ap75"), ("AP_S", "0.50:0.95", "small", "ap_small"),
            ("AP_M", "0.50:0.95", "medium", "ap_medium"), ("AP_L", "0.50:0.95", "large", "ap_large"),
            ("AR1", "1 detection", "all", "ar1"), ("AR10", "10 detections", "all", "ar10"),
            ("AR100", "100 detections", "all", "ar100"), ("AR_S", "100", "small", "ar_small"),
            ("AR_M", "100", "medium", "ar_medium"), ("AR_L", "100", "large", "ar_large")]
    missing = [f"{prefix}{key}" for *_, key in rows for prefix in ("mask_", "box_") if f"{prefix}{key}" not in metrics]
    if missing:
        raise ValueError(f"metrics must hold COCO's twelve numbers for masks and boxes, missing {missing[:3]}")
    cells = [[name, what, area, *(("n/a" if math.isnan(metrics[p + key]) else f"{metrics[p + key]:.3f}")
                                   for p in ("mask_", "box_"))] for name, what, area, key in rows]
    return markdown_table(["metric", "IoU / detections", "area", "masks", "boxes"], cells)


# -- panoptic quality -----------------------------------------------------------------------------


