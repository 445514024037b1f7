"""Instance matching, COCO AP through pycocotools, and PQ against torchmetrics."""

import math

import pytest
import torch

from seglib.data import generate_scenes, SceneConfig
from seglib.metrics.instance import coco_mask_ap, match_instances
from seglib.metrics.panoptic import (fill_stuff, panoptic_from_instances, panoptic_pairs, panoptic_quality,
                                     panoptic_summary)


def square_masks(boxes, size=32):
    masks = torch.zeros(len(boxes), size, size, dtype=torch.bool)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes):
        mask[y1:y2, x1:x2] = True
    return masks


def instances(boxes, labels, scores=None, size=32):
    out = {"masks": square_masks(boxes, size), "boxes": torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
           "labels": torch.tensor(labels, dtype=torch.int64)}
    if scores is not None:
        out["scores"] = torch.tensor(scores)
    return out


def test_match_instances_greedy_by_score():
    gt = square_masks([(0, 0, 10, 10), (20, 20, 30, 30)])
    pred = square_masks([(0, 0, 10, 9), (0, 0, 10, 10), (21, 21, 30, 30), (12, 0, 18, 8)])
    scores = torch.tensor([0.6, 0.9, 0.8, 0.95])
    # the best-scoring overlap of gt 0 is prediction 1; prediction 0 then finds gt 0 taken
    assert match_instances(pred, scores, gt).tolist() == [-1, 0, 1, -1]
    assert match_instances(pred, scores, gt, iou_threshold=0.95).tolist() == [-1, 0, -1, -1]
    assert match_instances(pred[:0], scores[:0], gt).tolist() == []
    with pytest.raises(ValueError, match="pred_scores"):
        match_instances(pred, scores[:2], gt)
    with pytest.raises(TypeError, match="gt_masks"):
        match_instances(pred, scores, gt.float())


def test_coco_ap_perfect_and_known_values():
    targets = [instances([(0, 0, 10, 10), (20, 20, 30, 30)], [1, 2]), instances([(5, 5, 25, 15)], [1])]
    perfect = [dict(t, scores=torch.ones(len(t["labels"]))) for t in targets]
    metrics = coco_mask_ap(perfect, targets)
    for key in ("mask_ap", "mask_ap50", "mask_ap75", "box_ap", "box_ap50"):
        assert metrics[key] == pytest.approx(1.0), key
    assert math.isnan(metrics["mask_ap_large"])  # no object above 96**2 pixels
    # image 2's object missed: class 1 finds 1 of 2 objects (precision 1 up to recall 0.5: 51 of COCO's 101
    # recall points), class 2 finds its only one; AP is the mean over classes
    missing = [dict(perfect[0]), dict(perfect[1])]
    missing[1] = {k: v[:0] for k, v in perfect[1].items()}
    metrics = coco_mask_ap(missing, targets, iou_types=("segm",))
    assert set(metrics) == {"unscored_detections"} | {f"mask_{key}" for key in (
        "ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10", "ar100", "ar_small", "ar_medium",
        "ar_large")}
    assert metrics["mask_ap50"] == pytest.approx((51 / 101 + 1) / 2)
    # a mask with IoU 0.8 counts at thresholds 0.50..0.80 (7 of 10): AP 0.7; its exact box keeps box AP at 1
    shifted = [dict(perfect[1])]
    shifted[0]["masks"] = square_masks([(5, 5, 21, 15)])
    metrics = coco_mask_ap(shifted, targets[1:])
    assert metrics["mask_ap"] == pytest.approx(0.7) and metrics["box_ap"] == pytest.approx(1.0)


def test_coco_mask_ap_sizes_a_detection_by_its_mask_not_its_box():
    # a 10 x 10 object found exactly, and a false alarm of the same class scored higher: a one-pixel-wide
    # diagonal of 60 pixels. Its mask is small (60 px); its box, 60 x 60 = 3600 px, would be medium.
    target = instances([(0, 0, 10, 10)], [1], size=64)
    diagonal = torch.zeros(1, 64, 64, dtype=torch.bool)
    diagonal[0, torch.arange(4, 64), torch.arange(4, 64)] = True
    prediction = {"masks": torch.cat([target["masks"], diagonal]), "labels": torch.tensor([1, 1]),
                  "scores": torch.tensor([0.5, 0.9]), "boxes": torch.tensor([[0.0, 0, 10, 10], [4.0, 4, 64, 64]])}
    metrics = coco_mask_ap([prediction], [target])
    assert metrics["mask_ap_small"] < 0.6  # the false alarm ranks first among the small detections
    assert metrics["box_ap_small"] == pytest.approx(1.0)  # as a box it is medium, outside the small range


def test_coco_ap_counts_detections_of_classes_without_ground_truth():
    target = instances([(0, 0, 10, 10)], [1])
    prediction = dict(instances([(0, 0, 10, 10), (20, 20, 30, 30)], [1, 3]), scores=torch.tensor([0.9, 0.95]))
    metrics = coco_mask_ap([prediction], [target], categories=[1, 2, 3])
    assert metrics["unscored_detections"] == 1 and metrics["mask_ap"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="categories must"):
        coco_mask_ap([prediction], [target], categories=[1, 2])


def test_coco_ap_accepts_probabilities_and_empty_predictions():
    targets = [instances([(0, 0, 10, 10)], [1])]
    pred = dict(targets[0], scores=torch.tensor([0.9]))
    pred["masks"] = pred["masks"].float()[:, None] * 0.8
    assert coco_mask_ap([pred], targets)["mask_ap"] == pytest.approx(1.0)
    empty = {k: v[:0] for k, v in pred.items()}
    assert coco_mask_ap([empty], targets)["mask_ap50"] == 0.0
    with pytest.raises(ValueError, match="one entry per image"):
        coco_mask_ap([pred, pred], targets)
    with pytest.raises(ValueError, match="iou_types"):
        coco_mask_ap([pred], targets, iou_types=("keypoints",))
    with pytest.raises(ValueError, match=r"predictions\[0\] must be a dict"):
        coco_mask_ap([{"boxes": pred["boxes"]}], targets)


def random_panoptic(generator, batch=3, size=12):
    classes = torch.tensor([0, 1, 5, 6, 9])  # stuff 0, 1; things 5, 6; 9 is unknown (void)
    cls = classes[torch.randint(0, 5, (batch, 3, 3), generator=generator)]
    inst = torch.randint(0, 3, (batch, 3, 3), generator=generator)
    coarse = cls * 1000 + inst
    fine = coarse.repeat_interleave(size // 3, 1).repeat_interleave(size // 3, 2)
    noise = torch.rand(fine.shape, generator=generator) < 0.15
    return torch.where(noise, classes[torch.randint(0, 5, fine.shape, generator=generator)] * 1000, fine)


def test_panoptic_quality_equals_torchmetrics():
    from torchmetrics.detection import PanopticQuality

    generator = torch.Generator().manual_seed(0)
    for _ in range(4):
        target = random_panoptic(generator)
        pred = torch.where(torch.rand(target.shape, generator=generator) < 0.8, target, random_panoptic(generator))
        metric = PanopticQuality(things={5, 6}, stuffs={0, 1}, allow_unknown_preds_category=True,
                                 return_sq_and_rq=True, return_per_class=True)
        expected = metric(panoptic_pairs(pred), panoptic_pairs(target)).double()
        ours = panoptic_quality(pred, target, things=[5, 6], stuffs=[0, 1])
        got = torch.tensor([[ours["per_class"][c][k] for k in ("pq", "sq", "rq")] for c in (5, 6, 0, 1)],
                           dtype=torch.float64)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)  # torchmetrics mixes in float32
        averaged = PanopticQuality(things={5, 6}, stuffs={0, 1}, allow_unknown_preds_category=True,
                                   return_sq_and_rq=True)(panoptic_pairs(pred), panoptic_pairs(target))
        assert [ours["pq"], ours["sq"], ours["rq"]] == pytest.approx(averaged.tolist(), abs=1e-6)


def test_panoptic_quality_by_hand():
    target = torch.zeros(4, 4, dtype=torch.int64)  # stuff 0 everywhere ...
    target[:2, :2] = 2001                           # ... and one thing of class 2
    pred = target.clone()
    pred[0, 0] = 0                                  # thing IoU 3/4, stuff IoU 12/13
    result = panoptic_quality(pred, target, things=[2], stuffs=[0])
    assert result["per_class"][2]["sq"] == pytest.approx(0.75)
    assert result["per_class"][0]["sq"] == pytest.approx(12 / 13)
    assert result["rq"] == 1.0 and result["pq"] == pytest.approx((0.75 + 12 / 13) / 2)
    assert result["pq_things"] == pytest.approx(0.75) and result["pq_stuff"] == pytest.approx(12 / 13)
    assert result["per_image"].shape == (1, 2, 4) and result["per_image"][0, 0].tolist() == [0.75, 1, 0, 0]
    # a second image where the thing is missed: the summary of both rows, and of a bootstrap resample
    missed = torch.stack([pred, torch.zeros_like(pred)])
    both = panoptic_quality(missed, torch.stack([target, target]), things=[2], stuffs=[0])
    assert both["per_class"][2]["fn"] == 1 and both["rq_things"] == pytest.approx(1 / 1.5)
    again = panoptic_summary(both["per_image"][[0, 0]].sum(dim=0), [2, 0], things=[2])
    assert again["pq_things"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="totals must be"):
        panoptic_summary(both["per_image"], [2, 0], things=[2])
    with pytest.raises(ValueError, match="share"):
        panoptic_quality(pred, target, things=[0], stuffs=[0])
    with pytest.raises(ValueError, match="same shape"):
        panoptic_quality(pred, target[:2], things=[2], stuffs=[0])
    with pytest.raises(TypeError, match="integer panoptic map"):
        panoptic_quality(pred.float(), target, things=[2], stuffs=[0])


def test_fill_stuff_and_panoptic_from_instances():
    scenes = generate_scenes(4, SceneConfig(size=32), seed=3)
    stuff = fill_stuff(scenes.semantic, scenes.config.stuff_ids)
    assert stuff.shape == scenes.semantic.shape
    assert set(stuff.unique().tolist()) <= set(scenes.config.stuff_ids)
    is_stuff = scenes.semantic < len(scenes.config.stuff_ids)
    assert torch.equal(stuff[is_stuff], scenes.semantic[is_stuff])
    assert fill_stuff(torch.tensor([[0, 3], [3, 3], [1, 3]]), [0, 1]).tolist() == [[0, 0], [0, 0], [1, 0]]

    # pasting the true instances over the filled stuff rebuilds the panoptic map exactly
    for i in range(4):
        inst = scenes.instances(i)
        n = len(inst["labels"])
        rebuilt = panoptic_from_instances(inst["masks"], inst["labels"], torch.linspace(1, 0.6, n) if n else
                                          torch.zeros(0), stuff[i])
        assert panoptic_quality(rebuilt, scenes.panoptic[i], scenes.config.thing_ids,
                                scenes.config.stuff_ids)["pq"] == 1.0
    masks = square_masks([(0, 0, 10, 10), (2, 2, 10, 10), (20, 20, 30, 30)])
    out = panoptic_from_instances(masks, torch.tensor([2, 3, 4]), torch.tensor([0.9, 0.8, 0.3]),
                                  torch.zeros(32, 32, dtype=torch.int64))
    # the second mask lies inside the first (dropped), the third scores below 0.5
    assert sorted(out.unique().tolist()) == [0, 2001]
