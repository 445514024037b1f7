"""Instance and panoptic segmentation metrics.

* :func:`match_instances`: greedy matching of predicted to true masks at an
  IoU threshold, highest score first (the matching inside COCO's AP).
* :func:`coco_mask_ap`: COCO's average precision with the official evaluator
  (pycocotools ``COCOeval``) for masks (``"segm"``) and boxes (``"bbox"``):
  AP averaged over IoU thresholds 0.50:0.05:0.95, AP50 and AP75.
* :func:`panoptic_quality`: PQ = SQ x RQ (Kirillov et al., CVPR 2019) on
  panoptic maps, with the same rules as ``torchmetrics.detection.PanopticQuality``.
* :func:`panoptic_from_instances` and :func:`fill_stuff`: build a panoptic
  prediction from instance masks pasted over a stuff map.

Shapes: instance masks bool ``(N, H, W)``, boxes float ``(N, 4)`` xyxy in
pixels, panoptic maps int64 ``(B, H, W)`` (or ``(H, W)``) holding
``class_id * divisor + instance`` (``SceneBatch.panoptic`` uses divisor 1000).
"""

from __future__ import annotations

import contextlib
import io
from typing import Collection, Sequence

import numpy as np
import torch

from seglib.metrics import mask_iou

__all__ = [
    "coco_mask_ap",
    "fill_stuff",
    "match_instances",
    "panoptic_from_instances",
    "panoptic_pairs",
    "panoptic_quality",
]


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
    if not isinstance(pred_scores, torch.Tensor) or pred_scores.shape != pred_masks.shape[:1]:
        got = tuple(pred_scores.shape) if isinstance(pred_scores, torch.Tensor) else type(pred_scores).__name__
        raise ValueError(f"pred_scores must be a tensor of shape ({pred_masks.shape[0]},), got {got}")
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

_SUMMARY = {"ap": 0, "ap50": 1, "ap75": 2, "ap_small": 3, "ap_medium": 4, "ap_large": 5}


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
                 ) -> dict[str, float]:
    """COCO AP, AP50 and AP75 of instance predictions, by pycocotools' ``COCOeval``.

    The ground truth and the results are built in memory: one COCO image per
    entry, annotations with RLE masks, ``area`` (mask pixels), ``bbox``
    (xywh) and ``iscrowd = 0``; categories are the labels that occur.

    Args:
        predictions: one dict per image with ``boxes`` ``(n, 4)`` xyxy,
            ``labels`` ``(n,)``, ``scores`` ``(n,)`` and ``masks`` bool
            ``(n, H, W)`` or float ``(n, 1, H, W)`` probabilities (> 0.5 is on).
        targets: one dict per image with ``boxes``, ``labels`` and bool
            ``masks``.
        iou_types: any of ``"segm"`` (mask AP) and ``"bbox"`` (box AP).

    Returns:
        ``{"mask_ap", "mask_ap50", "mask_ap75", "mask_ap_small", "mask_ap_medium",
        "mask_ap_large"}`` and the same with ``box_`` for boxes, in [0, 1];
        NaN where COCO has nothing to average (e.g. no large objects). With
        no prediction at all every AP is 0.
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
    unknown = [t for t in iou_types if t not in ("segm", "bbox")]
    if unknown or not iou_types:
        raise ValueError(f"iou_types must be a non-empty subset of ('segm', 'bbox'), got {iou_types!r}")

    images, annotations, results, categories = [], [], [], set()
    for image_id, (pred, target) in enumerate(zip(predictions, targets), start=1):
        masks = _binary(target["masks"])
        height, width = masks.shape[-2:]
        images.append({"id": image_id, "height": int(height), "width": int(width)})
        labels = target["labels"].tolist()
        categories.update(labels)
        for rle, box, label, area in zip(_rle(masks), _xywh(target["boxes"]), labels,
                                         masks.flatten(1).sum(1).tolist()):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                "segmentation": rle, "area": float(area), "bbox": box, "iscrowd": 0})
        pred_masks = _binary(pred["masks"])
        for rle, box, label, score in zip(_rle(pred_masks), _xywh(pred["boxes"]), pred["labels"].tolist(),
                                          pred["scores"].tolist()):
            results.append({"image_id": image_id, "category_id": int(label), "segmentation": rle,
                            "bbox": box, "score": float(score)})
    dataset = {"info": {"description": "seglib.instance_metrics.coco_mask_ap"}, "images": images,
               "annotations": annotations, "categories": [{"id": int(c), "name": str(c)} for c in sorted(categories)]}

    metrics = {}
    for iou_type in iou_types:
        prefix = "mask_" if iou_type == "segm" else "box_"
        if not results:
            metrics.update({prefix + key: 0.0 for key in _SUMMARY})
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            ground_truth = COCO()
            ground_truth.dataset = dataset
            ground_truth.createIndex()
            detections = ground_truth.loadRes(results)
            evaluator = COCOeval(ground_truth, detections, iouType=iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        for key, index in _SUMMARY.items():
            value = float(evaluator.stats[index])
            metrics[prefix + key] = value if value >= 0 else float("nan")
    return metrics


# -- panoptic quality -----------------------------------------------------------------------------


def _check_panoptic(name: str, panoptic) -> torch.Tensor:
    if not isinstance(panoptic, torch.Tensor) or panoptic.is_floating_point() or panoptic.dtype == torch.bool:
        got = panoptic.dtype if isinstance(panoptic, torch.Tensor) else type(panoptic).__name__
        raise TypeError(f"{name} must be an integer panoptic map (class * divisor + instance), got {got}")
    if panoptic.dim() not in (2, 3):
        raise ValueError(f"{name} must have shape (B,H,W) or (H,W), got {tuple(panoptic.shape)}")
    return panoptic.unsqueeze(0) if panoptic.dim() == 2 else panoptic


def _check_categories(things, stuffs) -> tuple[list[int], list[int]]:
    parsed = []
    for name, ids in (("things", things), ("stuffs", stuffs)):
        ids = list(ids)
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids):
            raise TypeError(f"{name} must hold non-negative int class ids, got {ids!r}")
        parsed.append(sorted(set(ids)))
    if set(parsed[0]) & set(parsed[1]):
        raise ValueError(f"things and stuffs must not share class ids, got {parsed[0]} and {parsed[1]}")
    if not parsed[0] and not parsed[1]:
        raise ValueError("at least one of things and stuffs must name a class")
    return parsed[0], parsed[1]


def _segments(panoptic: torch.Tensor, things: list[int], stuffs: list[int], divisor: int) -> torch.Tensor:
    """Canonical segment ids: stuff loses its instance number; unknown classes become -1 (void)."""
    classes = panoptic // divisor
    known = torch.isin(classes, torch.tensor(things + stuffs, device=panoptic.device))
    is_stuff = torch.isin(classes, torch.tensor(stuffs, device=panoptic.device)) if stuffs else torch.zeros_like(known)
    segments = torch.where(is_stuff, classes * divisor, panoptic)
    return torch.where(known, segments, torch.full_like(segments, -1))


def panoptic_quality(pred: torch.Tensor, target: torch.Tensor, things: Collection[int], stuffs: Collection[int],
                     divisor: int = 1000) -> dict:
    """Panoptic quality PQ = SQ x RQ, per class and averaged over classes.

    In each image, a predicted and a true segment of the same class match
    when their IoU exceeds 0.5 (such a match is unique). Per class, over all
    images: ``SQ = sum of matched IoUs / TP``, ``RQ = TP / (TP + FP/2 + FN/2)``
    and ``PQ = SQ x RQ``; the averages run over the classes with
    ``TP + FP + FN > 0``. The segments of a stuff class are merged (its
    instance number is ignored). Pixels of a class in neither ``things`` nor
    ``stuffs`` are *void*: void pixels of the target do not count in an IoU's
    union, a predicted segment more than half void in the target is not a
    false positive, and (as in torchmetrics) a true segment more than half
    void in the prediction is not a false negative. The result equals
    ``torchmetrics.detection.PanopticQuality(things, stuffs,
    allow_unknown_preds_category=True, return_sq_and_rq=True)`` on
    :func:`panoptic_pairs` of the maps.

    Args:
        pred: int ``(B, H, W)`` (or ``(H, W)``) predicted panoptic map.
        target: int map of the same shape.
        things, stuffs: class ids of the countable and uncountable classes.
        divisor: panoptic id = ``class_id * divisor + instance``.

    Returns:
        ``{"pq", "sq", "rq"}`` floats (NaN if no class has a segment) and
        ``"per_class"``: class id -> ``{"pq", "sq", "rq", "tp", "fp", "fn"}``.
    """
    pred, target = _check_panoptic("pred", pred), _check_panoptic("target", target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise ValueError(f"divisor must be a positive int, got {divisor!r}")
    things, stuffs = _check_categories(things, stuffs)
    pred = _segments(pred.long(), things, stuffs, divisor).cpu()
    target = _segments(target.long(), things, stuffs, divisor).cpu()
    classes = things + stuffs
    stats = {c: {"iou": 0.0, "tp": 0, "fp": 0, "fn": 0} for c in classes}
    for p_map, t_map in zip(pred.flatten(1), target.flatten(1)):
        _update_image(p_map, t_map, divisor, stats)
    per_class, averaged = {}, []
    for c in classes:
        s = stats[c]
        sq = s["iou"] / s["tp"] if s["tp"] else 0.0
        denominator = s["tp"] + 0.5 * s["fp"] + 0.5 * s["fn"]
        rq = s["tp"] / denominator if denominator else 0.0
        per_class[c] = {"pq": sq * rq, "sq": sq, "rq": rq, "tp": s["tp"], "fp": s["fp"], "fn": s["fn"]}
        if denominator:
            averaged.append(per_class[c])
    mean = {k: float(np.mean([v[k] for v in averaged])) if averaged else float("nan") for k in ("pq", "sq", "rq")}
    return {**mean, "per_class": per_class}


def _update_image(pred: torch.Tensor, target: torch.Tensor, divisor: int, stats: dict) -> None:
    """Add the TP, FP, FN and matched IoUs of one image (flattened segment ids) to ``stats``."""
    pred_ids, pred_areas = torch.unique(pred, return_counts=True)
    target_ids, target_areas = torch.unique(target, return_counts=True)
    pred_area = dict(zip(pred_ids.tolist(), pred_areas.tolist()))
    target_area = dict(zip(target_ids.tolist(), target_areas.tolist()))
    # One int64 key per (pred, target) pair of segment ids (void = -1 becomes 0): a 1-D unique is fast.
    span = int(target.max()) + 2
    keys, counts = torch.unique((pred + 1) * span + (target + 1), return_counts=True)
    overlap = {(int(k) // span - 1, int(k) % span - 1): int(n) for k, n in zip(keys.tolist(), counts.tolist())}
    void = -1
    matched_pred, matched_target = set(), set()
    for (p, t), intersection in overlap.items():
        if t == void or p == void or p // divisor != t // divisor:
            continue
        union = (pred_area[p] - overlap.get((p, void), 0) + target_area[t] - overlap.get((void, t), 0)
                 - intersection)
        iou = intersection / union
        if iou > 0.5:
            matched_pred.add(p)
            matched_target.add(t)
            stats[t // divisor]["iou"] += iou
            stats[t // divisor]["tp"] += 1
    for t in set(target_area) - matched_target - {void}:
        if overlap.get((void, t), 0) / target_area[t] <= 0.5:
            stats[t // divisor]["fn"] += 1
    for p in set(pred_area) - matched_pred - {void}:
        if overlap.get((p, void), 0) / pred_area[p] <= 0.5:
            stats[p // divisor]["fp"] += 1


def panoptic_pairs(panoptic: torch.Tensor, divisor: int = 1000) -> torch.Tensor:
    """``(class, instance)`` pairs of a panoptic map, int64 ``(..., 2)`` (torchmetrics' format)."""
    _check_panoptic("panoptic", panoptic)
    return torch.stack([panoptic // divisor, panoptic % divisor], dim=-1)


def fill_stuff(semantic: torch.Tensor, stuff_ids: Collection[int]) -> torch.Tensor:
    """A stuff-only label map: each thing pixel takes the nearest stuff class in its column.

    Args:
        semantic: int64 ``(B, H, W)`` (or ``(H, W)``) label map.
        stuff_ids: the stuff class ids.

    Returns:
        int64 map of the same shape holding only stuff ids. A pixel of
        another class takes the stuff class of the nearest stuff pixel above
        or below it (above on a tie); a column without stuff takes
        ``min(stuff_ids)``.
    """
    squeeze = isinstance(semantic, torch.Tensor) and semantic.dim() == 2
    semantic = _check_panoptic("semantic", semantic)
    stuff_ids = sorted(set(stuff_ids))
    if not stuff_ids or any(isinstance(i, bool) or not isinstance(i, int) for i in stuff_ids):
        raise ValueError(f"stuff_ids must be a non-empty collection of ints, got {stuff_ids!r}")
    height = semantic.shape[1]
    is_stuff = torch.isin(semantic, torch.tensor(stuff_ids, device=semantic.device))
    rows = torch.arange(height, device=semantic.device).view(1, height, 1).expand_as(semantic)
    # Row of the nearest stuff pixel above (running max) and below (running min from the bottom).
    above = torch.where(is_stuff, rows, -1).cummax(dim=1).values
    below = torch.where(is_stuff, rows, height).flip(1).cummin(dim=1).values.flip(1)
    use_above = (above >= 0) & ((below >= height) | (rows - above <= below - rows))
    source = torch.where(use_above, above, below).clamp(0, height - 1)
    filled = semantic.gather(1, source)
    column_has_stuff = is_stuff.any(dim=1, keepdim=True).expand_as(semantic)
    filled = torch.where(column_has_stuff, filled, torch.full_like(filled, stuff_ids[0]))
    return filled[0] if squeeze else filled


def panoptic_from_instances(masks: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, stuff: torch.Tensor,
                            score_threshold: float = 0.5, overlap_threshold: float = 0.5,
                            divisor: int = 1000) -> torch.Tensor:
    """One panoptic map from instance predictions pasted over a stuff map.

    Instances scoring at least ``score_threshold`` are pasted from the highest
    score down; each takes only the pixels no earlier instance holds, and is
    dropped when more than ``overlap_threshold`` of its mask is already taken
    (the usual heuristic that turns overlapping masks into a partition).

    Args:
        masks: bool ``(N, H, W)`` instance masks.
        labels: int ``(N,)`` class ids (in the panoptic map's numbering).
        scores: float ``(N,)``.
        stuff: int64 ``(H, W)`` stuff class of every pixel.

    Returns:
        int64 ``(H, W)``: ``class * divisor + k`` for the k-th pasted thing
        (1-based), ``class * divisor`` for stuff.
    """
    _check_masks("masks", masks)
    if not isinstance(stuff, torch.Tensor) or stuff.dim() != 2 or stuff.shape != masks.shape[1:]:
        got = tuple(stuff.shape) if isinstance(stuff, torch.Tensor) else type(stuff).__name__
        raise ValueError(f"stuff must be an int (H,W) map of shape {tuple(masks.shape[1:])}, got {got}")
    for name, values in (("labels", labels), ("scores", scores)):
        if not isinstance(values, torch.Tensor) or values.shape != masks.shape[:1]:
            got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"{name} must have shape ({masks.shape[0]},), got {got}")
    if not 0 <= overlap_threshold <= 1:
        raise ValueError(f"overlap_threshold must be in [0, 1], got {overlap_threshold}")
    panoptic = stuff.long().cpu() * divisor
    taken = torch.zeros(masks.shape[1:], dtype=torch.bool)
    count = 0
    for i in torch.argsort(scores.cpu(), descending=True, stable=True).tolist():
        if float(scores[i]) < score_threshold:
            break
        mask = masks[i].cpu()
        area = int(mask.sum())
        free = mask & ~taken
        if area == 0 or int(free.sum()) < (1 - overlap_threshold) * area:
            continue
        count += 1
        panoptic[free] = int(labels[i]) * divisor + count
        taken |= free
    return panoptic
