"""The checks of notebook 05's exercises accept correct answers and explain common mistakes."""

import math

import pytest
import torch

from seglib.ops import roi
from seglib.checks import CheckFailed
from seglib.checks.mask_rcnn import check_bilinear, check_mask_iou, check_match_predictions, check_roi_align_box
from seglib.metrics.instance import match_instances
from seglib.metrics.masks import mask_iou


def bilinear(feature, y, x):
    return roi.bilinear_interpolate(feature[None], y, x)[0]


def test_bilinear_accepts_reference_and_names_mistakes(capsys):
    check_bilinear(bilinear)
    assert "bilinear" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="swapped"):
        check_bilinear(lambda f, y, x: bilinear(f, x, y) if x <= f.shape[0] - 1 else 0.0)
    with pytest.raises(CheckFailed, match="nearest"):
        check_bilinear(lambda f, y, x: f[round(y), round(x)])
    with pytest.raises(CheckFailed, match="flipped"):
        check_bilinear(lambda f, y, x: bilinear(f, int(y) + 1 - (y - int(y)), int(x) + 1 - (x - int(x))))
    with pytest.raises(CheckFailed, match="not implemented"):
        check_bilinear(lambda f, y, x: (_ for _ in ()).throw(NotImplementedError))


def test_roi_align_box_accepts_reference_and_names_offset_mistake():
    check_roi_align_box(lambda f, b, s, sc, r, a: roi.roi_align_box(f, b, s, sc, r, a))
    with pytest.raises(CheckFailed, match="half-pixel offset"):
        check_roi_align_box(lambda f, b, s, sc, r, a: roi.roi_align_box(f, b, s, sc, r, not a))
    with pytest.raises(CheckFailed, match="spatial_scale"):
        check_roi_align_box(lambda f, b, s, sc, r, a: roi.roi_align_box(f, b, s, 1.0, r, a))
    with pytest.raises(CheckFailed, match="shape"):
        check_roi_align_box(lambda f, b, s, sc, r, a: roi.roi_align_box(f, b, s, sc, r, a)[0])

    def never_widened(feature, box, size, scale, ratio, aligned):  # aligned=False without the one-cell rule
        return roi.roi_align_box(feature, box + (0.0 if aligned else 0.5 / scale), size, scale, ratio, True)

    with pytest.raises(CheckFailed, match="at least one cell"):
        check_roi_align_box(never_widened)


def test_mask_iou_check():
    def iou(a, b):
        union = (a | b).sum()
        return (a & b).sum() / union if union else 1.0

    check_mask_iou(iou)
    with pytest.raises(CheckFailed, match="Dice"):
        check_mask_iou(lambda a, b: 2 * (a & b).sum() / (a.sum() + b.sum()) if a.any() else 1.0)
    with pytest.raises(CheckFailed, match="same .empty. set"):
        check_mask_iou(lambda a, b: iou(a, b) if (a | b).any() else 0.0)
    with pytest.raises(CheckFailed, match="two empty masks"):
        check_mask_iou(lambda a, b: (a & b).sum() / (a | b).sum() if (a | b).any() else math.nan)


def test_match_predictions_check():
    check_match_predictions(lambda p, s, g, t: match_instances(p, s, g, t))
    with pytest.raises(CheckFailed, match="highest score"):
        check_match_predictions(lambda p, s, g, t: match_instances(p, torch.linspace(1, 0, len(s)), g, t))
    with pytest.raises(CheckFailed, match=">= threshold"):
        check_match_predictions(lambda p, s, g, t: match_instances(p, s, g, t + 1e-6))

    def first_above(pred, scores, gt, threshold):  # the first free object above the threshold, not the best
        matched, taken = [-1] * len(pred), set()
        ious = mask_iou(pred, gt)
        for p in torch.argsort(scores, descending=True).tolist():
            free = [k for k in range(len(gt)) if k not in taken and ious[p, k] >= threshold]
            if free:
                matched[p] = free[0]
                taken.add(free[0])
        return matched

    with pytest.raises(CheckFailed, match="highest IoU, not the first"):
        check_match_predictions(first_above)
