"""Panoptic segmentation: its quality and panoptic maps built from instances.

* :func:`panoptic_quality`: PQ = SQ x RQ (Kirillov et al., CVPR 2019) on panoptic
  maps, with the same rules as ``torchmetrics.detection.PanopticQuality``;
* :func:`panoptic_pairs`: a map as ``(class, instance)`` pairs (torchmetrics' format);
* :func:`fill_stuff` and :func:`panoptic_from_instances`: a panoptic prediction
  from instance masks pasted over a stuff map.

Panoptic maps are int64 ``(B, H, W)`` (or ``(H, W)``) holding ``class_id * divisor + instance``
(``SceneBatch.panoptic`` uses divisor 1000).
"""

from __future__ import annotations

from typing import Collection, Sequence

import numpy as np
import torch

from seglib.metrics.instance import _check_masks
from seglib.validation import check_label_map, check_same_size, check_tensor


def _check_panoptic(name: str, panoptic) -> torch.Tensor:
    if not isinstance(panoptic, torch.Tensor) or panoptic.is_floating_point() or panoptic.dtype == torch.bool:
        got = panoptic.dtype if isinstance(panoptic, torch.Tensor) else type(panoptic).__name__
        raise TypeError(f"{name} must be an integer panoptic map (class * divisor + instance), got {got}")
    if panoptic.dim() not in (2, 3):
        raise ValueError(f"{name} must have shape (B,H,W) or (H,W), got {tuple(panoptic.shape)}")
    if panoptic.numel() and int(panoptic.min()) < 0:
        raise ValueError(f"{name} must hold ids class * divisor + instance >= 0, got {int(panoptic.min())}")
    return panoptic.unsqueeze(0) if panoptic.dim() == 2 else panoptic


def _check_not_class_ids(name: str, panoptic: torch.Tensor, things: list[int], divisor: int) -> None:
    """Refuse a class-id map passed as a panoptic map (every id below ``divisor``, several of them)."""
    if 0 not in things and bool((panoptic < divisor).all()) and panoptic.unique().numel() > 1:
        raise ValueError(f"{name} looks like a map of class ids (every value below divisor={divisor}); a panoptic "
                         f"map holds class_id * {divisor} + instance (SceneBatch.panoptic)")



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
        ``{"pq", "sq", "rq"}`` floats (NaN if no class has a segment), the
        same averages over the thing classes only (``"pq_things"``,
        ``"sq_things"``, ``"rq_things"``) and over the stuff classes
        (``"pq_stuff"`` ...), as Kirillov et al. report PQ, PQ^Th and PQ^St;
        ``"per_class"``: class id -> ``{"pq", "sq", "rq", "tp", "fp", "fn"}``;
        and ``"per_image"``: float64 ``(B, C, 4)``, each image's summed
        matched IoU, TP, FP and FN of the classes ``things + stuffs`` in that
        order (:func:`panoptic_summary` of a resample of its rows gives a
        bootstrap replicate). PQ = SQ x RQ holds per class; the class means
        of PQ, SQ and RQ need not obey it.
    """
    pred, target = _check_panoptic("pred", pred), _check_panoptic("target", target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise ValueError(f"divisor must be a positive int, got {divisor!r}")
    things, stuffs = _check_categories(things, stuffs)
    _check_not_class_ids("pred", pred, things, divisor)
    _check_not_class_ids("target", target, things, divisor)
    pred = _segments(pred.long(), things, stuffs, divisor).cpu()
    target = _segments(target.long(), things, stuffs, divisor).cpu()
    classes = things + stuffs
    per_image = torch.zeros(pred.shape[0], len(classes), 4, dtype=torch.float64)
    for b, (p_map, t_map) in enumerate(zip(pred.flatten(1), target.flatten(1))):
        stats = {c: {"iou": 0.0, "tp": 0, "fp": 0, "fn": 0} for c in classes}
        _update_image(p_map, t_map, divisor, stats)
        per_image[b] = torch.tensor([[stats[c][k] for k in ("iou", "tp", "fp", "fn")] for c in classes],
                                    dtype=torch.float64)
    return {**panoptic_summary(per_image.sum(dim=0), classes, things), "per_image": per_image}


def panoptic_summary(totals: torch.Tensor, classes: Sequence[int], things: Collection[int]) -> dict:
    """PQ, SQ and RQ from summed statistics: per class, over all classes, over things and over stuff.

    Args:
        totals: float ``(C, 4)``: summed matched IoU, TP, FP and FN of each class.
        classes: the ``C`` class ids, in the order of the rows.
        things: which of them are things (the others are stuff).

    Returns:
        ``pq``, ``sq``, ``rq``, ``pq_things`` ... ``rq_stuff`` and ``per_class``,
        as :func:`panoptic_quality` returns them (means over the classes with
        ``TP + FP + FN > 0``, NaN where there is none).
    """
    if not isinstance(totals, torch.Tensor) or totals.dim() != 2 or totals.shape != (len(classes), 4):
        got = tuple(totals.shape) if isinstance(totals, torch.Tensor) else type(totals).__name__
        raise ValueError(f"totals must be a float tensor of shape ({len(classes)}, 4), got {got}")
    per_class = {}
    for c, (iou, tp, fp, fn) in zip(classes, totals.tolist()):
        sq = iou / tp if tp else 0.0
        denominator = tp + 0.5 * fp + 0.5 * fn
        rq = tp / denominator if denominator else 0.0
        per_class[c] = {"pq": sq * rq, "sq": sq, "rq": rq, "tp": int(tp), "fp": int(fp), "fn": int(fn)}
    things = set(things)
    result = {}
    for suffix, members in (("", classes), ("_things", [c for c in classes if c in things]),
                            ("_stuff", [c for c in classes if c not in things])):
        counted = [per_class[c] for c in members if per_class[c]["tp"] + per_class[c]["fp"] + per_class[c]["fn"]]
        for k in ("pq", "sq", "rq"):
            result[k + suffix] = float(np.mean([v[k] for v in counted])) if counted else float("nan")
    return {**result, "per_class": per_class}


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
    check_label_map("stuff", stuff, shape="(H, W)")
    check_same_size("stuff", stuff, "masks", masks)
    for name, values, kind in (("labels", labels, "int"), ("scores", scores, "float")):
        check_tensor(name, values, "(N,)", kind)
        if values.shape != masks.shape[:1]:
            raise ValueError(f"{name} must have shape ({masks.shape[0]},), got {tuple(values.shape)}")
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
