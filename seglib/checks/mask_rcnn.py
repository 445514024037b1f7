"""Checks of the instance-segmentation exercises (notebook 05).

1. ``bilinear(feature, y, x)`` and ``roi_align_box(feature, box, ...)``:
   RoIAlign from scratch, compared with ``torchvision.ops.roi_align``.
2. ``mask_iou(a, b)`` and ``match_predictions(pred_masks, scores, gt_masks)``:
   the overlap of two masks and COCO's greedy matching at IoU 0.5, compared
   with :func:`seglib.metrics.mask_iou` and
   :func:`seglib.metrics.instance.match_instances`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torchvision.ops import roi_align as tv_roi_align

from seglib.checks.core import CheckFailed, call_student, passed, student_check
from seglib.metrics.instance import match_instances
from seglib.metrics.masks import mask_iou

__all__ = ["check_bilinear", "check_mask_iou", "check_match_predictions", "check_roi_align_box"]


def _as_float(name: str, value) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{name}: return one number, got a tensor of shape {tuple(value.shape)}")
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise CheckFailed(f"{name}: return a number (float or 0-d tensor), got {type(value).__name__}")


def _bilinear_reference(feature: torch.Tensor, y: float, x: float) -> float:
    y0, x0 = int(y), int(x)
    y1, x1 = min(y0 + 1, feature.shape[0] - 1), min(x0 + 1, feature.shape[1] - 1)
    ly, lx = y - y0, x - x0
    return float((1 - ly) * (1 - lx) * feature[y0, x0] + (1 - ly) * lx * feature[y0, x1]
                 + ly * (1 - lx) * feature[y1, x0] + ly * lx * feature[y1, x1])


def _bilinear_hint(feature: torch.Tensor, y: float, x: float, got: float) -> str:
    y0, x0 = int(y), int(x)
    variants = [
        (lambda: _bilinear_reference(feature, x, y), "x and y are swapped: feature[i, j] is row i (y), column j (x)"),
        (lambda: float(feature[round(y), round(x)]), "you took the nearest value: blend the four neighbours instead"),
        (lambda: float(feature[y0, x0]), "you took the top-left neighbour only: blend all four"),
        (lambda: _bilinear_reference(feature, y0 + 1 - (y - y0), x0 + 1 - (x - x0)),
         "the weights are flipped: the nearer neighbour must weigh more, (1 - ly) for the row above"),
    ]
    for variant, hint in variants:
        try:
            if abs(got - variant()) < 1e-5:
                return f" It looks like {hint}."
        except IndexError:  # the variant does not exist at this point
            continue
    return ""


@student_check
def check_bilinear(student_fn: Callable) -> None:
    """Check ``student_fn(feature, y, x)``: bilinear interpolation at a fractional point.

    ``feature`` is float ``(H, W)`` with value ``feature[i, j]`` at the point
    ``(y=i, x=j)``; ``0 <= y <= H-1`` and ``0 <= x <= W-1``. Expected:
    ``(1-ly)(1-lx) f[y0,x0] + (1-ly) lx f[y0,x1] + ly (1-lx) f[y1,x0] + ly lx f[y1,x1]``
    with ``y0 = floor(y)``, ``y1 = y0 + 1``, ``ly = y - y0`` (same for x).
    """
    generator = torch.Generator().manual_seed(5)
    hand = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    feature = torch.randn(5, 7, generator=generator)
    cases = [("the centre of [[0, 1], [2, 3]]", hand, 0.5, 0.5),
             ("(y=0.25, x=0.0) on [[0, 1], [2, 3]]", hand, 0.25, 0.0),
             ("a grid point (y=2, x=3) of a random (5,7) map", feature, 2.0, 3.0),
             ("the last row (y=4, x=2.5) of a random (5,7) map", feature, 4.0, 2.5),
             ("the last column (y=1.5, x=6) of a random (5,7) map", feature, 1.5, 6.0),
             ("the last cell (y=4, x=6) of a random (5,7) map", feature, 4.0, 6.0)]
    points = torch.rand(6, 2, generator=generator) * torch.tensor([4.0, 6.0])
    cases += [(f"(y={y:.3f}, x={x:.3f}) of a random (5,7) map", feature, y, x) for y, x in points.tolist()]
    for description, fmap, y, x in cases:
        try:
            got = _as_float(f"bilinear at {description}", call_student(student_fn, fmap.clone(), y, x))
        except CheckFailed as exc:
            if not isinstance(exc.__cause__, IndexError):
                raise
            raise CheckFailed(f"bilinear at {description}: {exc.__cause__}. On the last row or column the "
                              "neighbour below or right does not exist: use the edge value (clamp y0 + 1 to "
                              "H - 1 and x0 + 1 to W - 1).") from exc.__cause__
        expected = _bilinear_reference(fmap, y, x)
        if not abs(got - expected) <= 1e-5:  # also catches NaN
            raise CheckFailed(f"bilinear at {description}: got {got:.6g}, expected {expected:.6g}."
                              + _bilinear_hint(fmap, y, x, got))
    passed(f"bilinear: {len(cases)} points interpolated like the reference")


@student_check
def check_roi_align_box(student_fn: Callable) -> None:
    """Check ``student_fn(feature, box, output_size, spatial_scale, sampling_ratio, aligned)``.

    ``feature`` float ``(C, H, W)``, ``box`` float ``(4,)`` xyxy in image
    pixels, ``output_size`` an int (square bins); returns ``(C, output_size,
    output_size)``. Compared with ``torchvision.ops.roi_align`` on boxes that
    stay inside the feature map.
    """
    generator = torch.Generator().manual_seed(11)
    feature = torch.randn(2, 12, 12, generator=generator, dtype=torch.float64)
    cases = [
        (torch.tensor([8.0, 8.0, 32.0, 24.0]), 2, 0.25, 2, False),
        (torch.tensor([10.0, 6.0, 30.0, 38.0]), 3, 0.25, 2, True),
        (torch.tensor([5.3, 9.1, 40.7, 27.9]), 4, 0.25, 1, True),
        (torch.tensor([3.5, 2.25, 9.75, 10.0]), 2, 1.0, 3, False),
        (torch.tensor([4.0, 6.0, 5.0, 30.0]), 2, 0.25, 2, False),  # a quarter of a cell wide: widened to one
    ]
    for box, size, scale, ratio, aligned in cases:
        box = box.double()
        description = (f"box {box.tolist()}, output_size={size}, spatial_scale={scale}, "
                       f"sampling_ratio={ratio}, aligned={aligned}")
        got = call_student(student_fn, feature.clone(), box.clone(), size, scale, ratio, aligned)
        expected = tv_roi_align(feature[None], [box[None]], size, scale, ratio, aligned)[0]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise CheckFailed(f"roi_align_box for {description}: expected a tensor of shape "
                              f"{tuple(expected.shape)}, got {shape}")
        if not torch.allclose(got.double(), expected, atol=1e-5):
            variants = [
                (tv_roi_align(feature[None], [box[None]], size, scale, ratio, not aligned)[0],
                 "the half-pixel offset is wrong: subtract 0.5 from the scaled corners only when aligned=True"),
                (tv_roi_align(feature[None], [box[None]], size, 1.0, ratio, aligned)[0],
                 "spatial_scale was not applied: multiply the box corners by it first"),
                (tv_roi_align(feature[None], [box[None] + 0.5 / scale], size, scale, ratio, True)[0],
                 "the box was not widened: with aligned=False a box is at least one cell wide and high"),
            ]
            hint = next((f" It looks like {text}." for value, text in variants
                         if torch.allclose(got.double(), value, atol=1e-5)), "")
            raise CheckFailed(f"roi_align_box for {description}: first bin of channel 0 is "
                              f"{float(got[0, 0, 0]):.6g}, expected {float(expected[0, 0, 0]):.6g}.{hint}")
    passed(f"roi_align_box: {len(cases)} boxes match torchvision.ops.roi_align (aligned False and True, "
           f"a box thinner than a cell included)")


def _masks(boxes, size: int = 16) -> torch.Tensor:
    masks = torch.zeros(len(boxes), size, size, dtype=torch.bool)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes):
        mask[y1:y2, x1:x2] = True
    return masks


@student_check
def check_mask_iou(student_fn: Callable) -> None:
    """Check ``student_fn(a, b)``: IoU of two bool ``(H, W)`` masks, 1 when both are empty."""
    generator = torch.Generator().manual_seed(3)
    squares = _masks([(0, 0, 8, 8), (4, 4, 12, 12), (0, 0, 8, 4)])
    empty = torch.zeros(16, 16, dtype=torch.bool)
    random = torch.rand(2, 16, 16, generator=generator) < 0.4
    cases = [("two 8x8 squares overlapping in 4x4", squares[0], squares[1]),
             ("a mask and its top half", squares[0], squares[2]),
             ("disjoint masks", squares[1], squares[2]),
             ("two empty masks", empty, empty),
             ("two random masks", random[0], random[1])]
    for description, a, b in cases:
        got = _as_float(f"mask_iou of {description}", call_student(student_fn, a.clone(), b.clone()))
        expected = float(mask_iou(a[None], b[None]))
        if not abs(got - expected) <= 1e-6:  # also catches NaN
            inter, total = float((a & b).sum()), float(a.sum() + b.sum())
            hint = ""
            if not total:
                hint = " Two empty masks have no union: they are the same (empty) set, so return 1 rather than 0/0."
            elif abs(got - 2 * inter / total) < 1e-6:
                hint = " It looks like you computed Dice, 2|A and B| / (|A| + |B|), not IoU."
            elif total and abs(got - inter / total) < 1e-6:
                hint = " The union counts the overlap once: |A| + |B| - |A and B|."
            raise CheckFailed(f"mask_iou of {description}: got {got:.6g}, expected {expected:.6g}.{hint}")
    passed(f"mask_iou: {len(cases)} pairs of masks, the empty pair included")


@student_check
def check_match_predictions(student_fn: Callable) -> None:
    """Check ``student_fn(pred_masks, scores, gt_masks, iou_threshold=0.5)``.

    Expected: for each prediction (in input order) the index of the true mask
    it matches, or -1; predictions are processed from the highest score
    down, each taking the unmatched true mask of highest IoU if that IoU is
    at least the threshold (:func:`seglib.metrics.instance.match_instances`).
    """
    gt = _masks([(0, 0, 6, 6), (8, 8, 16, 16), (0, 10, 8, 16)])
    nested = _masks([(0, 0, 8, 8), (0, 0, 8, 7)])  # two overlapping objects (e.g. amodal masks)
    cases = [
        ("one perfect and one shifted prediction", _masks([(0, 0, 6, 6), (9, 9, 16, 16)]), torch.tensor([0.9, 0.8]),
         gt),
        ("two predictions on one object: only the higher score may take it",
         _masks([(0, 0, 6, 5), (0, 0, 6, 6)]), torch.tensor([0.6, 0.9]), gt),
        ("a prediction of IoU exactly 0.5 (it counts)", _masks([(8, 8, 16, 12)]), torch.tensor([0.7]), gt),
        ("a false positive on the background", _masks([(10, 0, 16, 6)]), torch.tensor([0.95]), gt),
        ("a prediction above the threshold with two objects (IoU 0.875 and 1)", _masks([(0, 0, 8, 7)]),
         torch.tensor([0.8]), nested),
        ("two predictions whose best object is the same: the second takes its next best (IoU 0.857)",
         _masks([(0, 0, 8, 8), (0, 0, 8, 7)]), torch.tensor([0.9, 0.8]), _masks([(0, 0, 8, 8), (0, 0, 8, 6)])),
    ]
    for description, pred, scores, truth in cases:
        got = call_student(student_fn, pred.clone(), scores.clone(), truth.clone(), 0.5)
        expected = match_instances(pred, scores, truth, 0.5)
        got_list = got.tolist() if isinstance(got, torch.Tensor) else list(got) if isinstance(got, (list, tuple)) \
            else None
        if got_list is None or [int(v) for v in got_list] != expected.tolist():
            hint = ""
            in_order = []
            taken = set()
            ious = mask_iou(pred, truth)
            for row in ious:  # input order instead of score order
                best = max((j for j in range(len(truth)) if j not in taken), key=lambda j: float(row[j]))
                in_order.append(best if float(row[best]) >= 0.5 else -1)
                taken.update({best} if in_order[-1] >= 0 else set())
            if got_list == in_order:
                hint = " Process the predictions from the highest score down (torch.argsort(scores, descending=True))."
            elif got_list is not None and len([v for v in got_list if v >= 0]) != len({v for v in got_list if v >= 0}):
                hint = " A true mask may be matched only once: remember which are taken."
            elif "exactly 0.5" in description:
                hint = " A match needs IoU >= threshold, not > threshold."
            elif "two objects" in description:
                hint = " Take the unmatched object of highest IoU, not the first one above the threshold."
            elif "next best" in description:
                hint = (" When a prediction's best object is taken, it takes its best *unmatched* object "
                        "if that IoU is high enough.")
            raise CheckFailed(f"match_predictions for {description}: got {got_list}, "
                              f"expected {expected.tolist()}.{hint}")
    passed(f"match_predictions: {len(cases)} cases matched like COCO's greedy rule")
