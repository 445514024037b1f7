import math

import pytest
import torch
from torch import nn
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex
from torchmetrics.functional.segmentation import mean_iou as tm_mean_iou
from torchmetrics.segmentation import MeanIoU

from seglib.metrics import (
    SegmentationMeter,
    boundary_f1,
    box_iou,
    confusion_matrix,
    dice_per_class,
    evaluate_segmentation,
    iou_per_class,
    mask_iou,
    mean_dice,
    mean_iou,
    per_image_mean_iou,
    pixel_precision_recall,
    pixel_accuracy,
    threshold_iou,
)

HAND_CM = torch.tensor([[3, 1, 0], [2, 4, 1], [0, 0, 5]])


def random_maps(batch=4, size=16, num_classes=4, seed=0, ignore_fraction=0.1):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, num_classes, (batch, size, size), generator=generator)
    pred = torch.where(torch.rand(batch, size, size, generator=generator) < 0.6, target,
                       torch.randint(0, num_classes, (batch, size, size), generator=generator))
    target[torch.rand(batch, size, size, generator=generator) < ignore_fraction] = 255
    return pred, target


def per_image_example():
    """Two 2x2 images where per-image, pooled and dataset-level mIoU all differ."""
    target = torch.tensor([[[0, 0], [0, 0]], [[0, 0], [1, 1]]])
    return torch.zeros_like(target), target


# -- confusion matrix and scores ------------------------------------------------------------------


def test_confusion_matrix_hand_made_with_ignore():
    pred = torch.tensor([[[0, 1], [1, 1]]])
    target = torch.tensor([[[0, 0], [1, 255]]])
    cm = confusion_matrix(pred, target, 2)
    assert cm.dtype == torch.int64
    assert cm.tolist() == [[1, 1], [0, 1]]
    assert confusion_matrix(pred[0], target[0], 2).tolist() == [[1, 1], [0, 1]]


def test_confusion_matrix_without_ignore_counts_every_pixel():
    pred = torch.tensor([[0, 1], [1, 1]])
    target = torch.tensor([[0, 0], [1, 1]])
    assert confusion_matrix(pred, target, 2, ignore_index=None).tolist() == [[1, 1], [0, 2]]


def test_prediction_under_ignored_pixels_may_be_anything():
    pred = torch.tensor([[0, 7]])
    target = torch.tensor([[0, 255]])
    assert confusion_matrix(pred, target, 2).tolist() == [[1, 0], [0, 0]]


def test_scores_from_hand_made_confusion_matrix():
    assert pixel_accuracy(HAND_CM) == pytest.approx(12 / 16)
    assert iou_per_class(HAND_CM).tolist() == pytest.approx([3 / 6, 4 / 8, 5 / 6])
    assert dice_per_class(HAND_CM).tolist() == pytest.approx([6 / 9, 8 / 12, 10 / 11])
    assert mean_iou(HAND_CM) == pytest.approx((3 / 6 + 4 / 8 + 5 / 6) / 3)
    assert mean_dice(HAND_CM) == pytest.approx((6 / 9 + 8 / 12 + 10 / 11) / 3)
    assert iou_per_class(HAND_CM).dtype == torch.float64


def test_absent_class_is_nan_and_skipped_by_the_means():
    cm = torch.tensor([[4, 0, 2], [0, 0, 0], [1, 0, 3]])
    iou = iou_per_class(cm)
    assert math.isnan(iou[1]) and math.isnan(dice_per_class(cm)[1])
    assert mean_iou(cm) == pytest.approx((4 / 7 + 3 / 6) / 2)
    assert math.isnan(pixel_accuracy(torch.zeros(2, 2, dtype=torch.int64)))


def test_confusion_matrix_matches_torchmetrics():
    pred, target = random_maps(num_classes=5)
    expected = MulticlassConfusionMatrix(num_classes=5, ignore_index=255)(pred, target)
    assert torch.equal(confusion_matrix(pred, target, 5), expected)


def test_iou_per_class_matches_torchmetrics_jaccard():
    pred, target = random_maps(num_classes=5, seed=1)
    expected = MulticlassJaccardIndex(num_classes=5, average=None, ignore_index=255)(pred, target)
    got = iou_per_class(confusion_matrix(pred, target, 5))
    assert torch.allclose(got.float(), expected, atol=1e-6)


# -- per-image mIoU -------------------------------------------------------------------------------


def test_per_image_and_dataset_level_miou_differ_on_constructed_example():
    pred, target = per_image_example()
    assert per_image_mean_iou(pred, target, 2) == pytest.approx(0.625)
    assert mean_iou(confusion_matrix(pred, target, 2)) == pytest.approx(0.375)


def test_per_image_mean_iou_is_the_mean_of_torchmetrics_per_image_scores():
    for pred, target in (per_image_example(), random_maps(num_classes=4, seed=2, ignore_fraction=0)):
        expected = tm_mean_iou(pred, target, num_classes=4, input_format="index").mean()
        assert per_image_mean_iou(pred, target, 4) == pytest.approx(float(expected))


def test_torchmetrics_mean_iou_class_matches_when_all_classes_occur_in_every_image():
    pred, target = random_maps(num_classes=3, seed=3, ignore_fraction=0)
    metric = MeanIoU(num_classes=3, input_format="index")
    metric.update(pred[:2], target[:2])
    metric.update(pred[2:], target[2:])
    assert per_image_mean_iou(pred, target, 3) == pytest.approx(float(metric.compute()))
    assert per_image_mean_iou(pred, target, 3) != pytest.approx(mean_iou(confusion_matrix(pred, target, 3)))


def test_torchmetrics_mean_iou_class_pools_image_class_pairs():
    pred, target = per_image_example()
    metric = MeanIoU(num_classes=2, input_format="index")
    metric.update(pred, target)
    assert float(metric.compute()) == pytest.approx((1 + 0.5 + 0) / 3)
    assert per_image_mean_iou(pred, target, 2) == pytest.approx(0.625)


def test_per_image_mean_iou_skips_fully_ignored_images():
    pred, target = per_image_example()
    target[0] = 255
    assert per_image_mean_iou(pred, target, 2) == pytest.approx(0.25)


# -- boundary F1 ----------------------------------------------------------------------------------


def vertical_edge(column, size=6):
    labels = torch.zeros(1, size, size, dtype=torch.int64)
    labels[..., column:] = 1
    return labels


def test_boundary_f1_is_one_for_identical_maps():
    _, target = random_maps(seed=4)
    assert boundary_f1(target, target, num_classes=4) == pytest.approx(1.0)
    assert boundary_f1(target, target, num_classes=4, tolerance=0) == pytest.approx(1.0)


def test_boundary_f1_of_a_shifted_edge_by_hand():
    target, pred = vertical_edge(3), vertical_edge(4)
    assert boundary_f1(pred, target, num_classes=2, tolerance=0) == 0.0
    assert boundary_f1(pred, target, num_classes=2, tolerance=1) == 1.0


def test_boundary_f1_below_one_for_shifted_maps_and_monotone_in_tolerance():
    generator = torch.Generator().manual_seed(5)
    blocks = torch.randint(0, 3, (3, 4, 4), generator=generator)
    target = blocks.repeat_interleave(6, dim=1).repeat_interleave(6, dim=2)
    pred = target.roll(shifts=2, dims=2)
    scores = [boundary_f1(pred, target, num_classes=3, tolerance=t) for t in range(5)]
    assert scores[0] < 1
    assert all(a <= b + 1e-12 for a, b in zip(scores, scores[1:]))
    assert scores[0] < scores[-1]


def test_boundary_f1_infers_classes_and_is_nan_without_boundaries():
    target, pred = vertical_edge(3), vertical_edge(4)
    assert boundary_f1(pred, target, tolerance=1) == 1.0
    uniform = torch.zeros(2, 5, 5, dtype=torch.int64)
    assert math.isnan(boundary_f1(uniform, uniform))


def test_boundary_f1_ignores_predictions_under_ignored_pixels():
    target = torch.zeros(1, 8, 8, dtype=torch.int64)
    target[..., 4:] = 1
    pred = target.clone()
    pred[0, 0, 0] = 1
    assert boundary_f1(pred, target, num_classes=2, tolerance=0) < 1
    target[0, :2, :2] = 255
    assert boundary_f1(pred, target, num_classes=2, tolerance=0) == pytest.approx(1.0)


# -- meter and evaluation -------------------------------------------------------------------------


def test_meter_accumulates_a_dataset_level_confusion_matrix():
    pred, target = random_maps(batch=6, num_classes=4, seed=6)
    meter = SegmentationMeter(4)
    meter.update(pred[:2], target[:2])
    meter.update(pred[2:], target[2:])
    result = meter.compute()
    cm = confusion_matrix(pred, target, 4)
    assert torch.equal(meter.confusion, cm)
    assert set(result) == {"miou", "pixel_accuracy", "mean_dice", "iou", "boundary_f1"}
    assert result["miou"] == pytest.approx(mean_iou(cm))
    assert result["pixel_accuracy"] == pytest.approx(pixel_accuracy(cm))
    assert result["mean_dice"] == pytest.approx(mean_dice(cm))
    assert result["iou"] == pytest.approx(iou_per_class(cm).tolist())
    assert result["boundary_f1"] == pytest.approx(boundary_f1(pred, target, num_classes=4))


def test_meter_accepts_logits_and_resets():
    pred, target = random_maps(batch=2, num_classes=3, seed=7)
    logits = nn.functional.one_hot(pred, 3).movedim(-1, 1).float() * 5
    from_logits, from_labels = SegmentationMeter(3), SegmentationMeter(3)
    from_logits.update(logits, target)
    from_labels.update(pred, target)
    a, b = from_logits.compute(), from_labels.compute()
    assert a.pop("iou") == b.pop("iou")
    assert a == pytest.approx(b)
    from_logits.reset()
    with pytest.raises(RuntimeError, match="call update"):
        from_logits.compute()


def test_meter_rejects_logits_with_the_wrong_number_of_classes():
    with pytest.raises(ValueError, match=r"pred_or_logits.*num_classes=4"):
        SegmentationMeter(4).update(torch.zeros(1, 3, 5, 5), torch.zeros(1, 5, 5, dtype=torch.int64))


class ColourClassifier(nn.Module):
    """Logits from a 1x1 convolution; optionally wrapped in a torchvision-style dict."""

    def __init__(self, as_dict=False):
        super().__init__()
        self.head = nn.Conv2d(3, 2, 1)
        self.as_dict = as_dict
        self.calls = []

    def forward(self, images):
        self.calls.append((self.training, torch.is_grad_enabled(), images.shape[0]))
        logits = self.head(images)
        return {"out": logits} if self.as_dict else logits


@pytest.mark.parametrize("as_dict", [False, True])
def test_evaluate_segmentation_batches_and_restores_training_mode(as_dict):
    torch.manual_seed(0)
    images = torch.rand(5, 3, 8, 8)
    labels = (images[:, 0] > 0.5).long()
    model = ColourClassifier(as_dict).train()
    result = evaluate_segmentation(model, images, labels, num_classes=2, batch_size=2)
    assert model.training
    assert model.calls == [(False, False, 2), (False, False, 2), (False, False, 1)]
    with torch.no_grad():
        expected = model.head(images).argmax(dim=1)
    assert result["miou"] == pytest.approx(mean_iou(confusion_matrix(expected, labels, 2)))


def test_evaluate_segmentation_checks_its_inputs():
    model = ColourClassifier()
    with pytest.raises(ValueError, match="labels must have shape"):
        evaluate_segmentation(model, torch.rand(2, 3, 8, 8), torch.zeros(2, 4, 4, dtype=torch.int64), 2)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        evaluate_segmentation(lambda x: x, torch.rand(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.int64), 2)


# -- masks and boxes ------------------------------------------------------------------------------


def test_mask_iou_by_hand_and_against_box_iou():
    a = torch.zeros(2, 6, 6, dtype=torch.bool)
    a[0, :2, :2] = True
    a[1, :4, :3] = True
    b = torch.zeros(1, 6, 6, dtype=torch.bool)
    b[0, 1:3, 1:4] = True
    iou = mask_iou(a, b)
    assert iou.shape == (2, 1)
    assert iou[:, 0].tolist() == pytest.approx([1 / 9, 4 / 14])
    boxes_a = torch.tensor([[0.0, 0, 2, 2], [0, 0, 3, 4]])
    boxes_b = torch.tensor([[1.0, 1, 4, 3]])
    assert torch.allclose(box_iou(boxes_a, boxes_b), iou)


def test_two_empty_masks_have_iou_one_everywhere():
    from seglib.metrics import j_scores, paired_iou

    empty = torch.zeros(1, 3, 3, dtype=torch.bool)
    full = torch.ones(1, 3, 3, dtype=torch.bool)
    assert mask_iou(empty, empty).item() == 1.0 and mask_iou(empty, full).item() == 0.0
    assert paired_iou(empty, empty).item() == 1.0 and j_scores(empty, empty).item() == 1.0


# -- errors ---------------------------------------------------------------------------------------


def test_errors_name_the_argument_and_what_came():
    labels = torch.zeros(1, 4, 4, dtype=torch.int64)
    with pytest.raises(TypeError, match=r"pred must be an integer label map.*float32.*argmax"):
        confusion_matrix(labels.float(), labels, 2)
    with pytest.raises(ValueError, match=r"same shape.*\(1, 4, 4\).*\(1, 4, 3\)"):
        confusion_matrix(labels, labels[..., :3], 2)
    with pytest.raises(ValueError, match=r"target must hold class ids in \[0, 2\) or 255.*e\.g\. 3"):
        confusion_matrix(labels, labels + 3, 2)
    with pytest.raises(ValueError, match=r"pred must hold class ids in \[0, 2\).*e\.g\. 2"):
        confusion_matrix(labels + 2, labels, 2)
    with pytest.raises(TypeError, match="num_classes must be an int, got bool"):
        confusion_matrix(labels, labels, True)
    with pytest.raises(ValueError, match=r"shape \(B,H,W\) or \(H,W\), got \(4,\)"):
        confusion_matrix(labels[0, 0], labels[0, 0], 2)
    with pytest.raises(ValueError, match=r"cm must be a square \(C,C\).*\(2, 3\)"):
        iou_per_class(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="cm must be a torch.Tensor"):
        mean_iou([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="tolerance must be an int >= 0, got -1"):
        boundary_f1(labels, labels, tolerance=-1)
    with pytest.raises(TypeError, match="a must be a bool tensor"):
        mask_iou(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"b must be xyxy.*row 0"):
        box_iou(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([[2.0, 2, 1, 1]]))


def test_threshold_iou_matches_thresholding_by_hand():
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(4, 8, 8, generator=generator)
    truth = torch.rand(4, 8, 8, generator=generator) < scores  # higher scores are more often true
    thresholds = torch.tensor([0.9, 0.1, 0.5, 0.5, float(scores[0, 0, 0])])  # unsorted, repeated, a score itself
    by_hand = [((scores > t) & truth).sum() / ((scores > t) | truth).sum() for t in thresholds]
    assert threshold_iou(scores, truth, thresholds).tolist() == pytest.approx([float(v) for v in by_hand])
    with pytest.raises(ValueError, match="truth must hold at least one"):
        threshold_iou(scores, torch.zeros_like(truth), thresholds)
    with pytest.raises(ValueError, match="same shape"):
        threshold_iou(scores, truth[:2], thresholds)
    with pytest.raises(TypeError, match="thresholds"):
        threshold_iou(scores, truth, [0.5])


def test_pixel_average_precision_matches_torchmetrics():
    from torchmetrics.functional.classification import binary_average_precision

    generator = torch.Generator().manual_seed(1)
    scores = (torch.rand(3, 16, 16, generator=generator) * 20).round() / 20  # many ties
    truth = torch.rand(3, 16, 16, generator=generator) < scores
    precision, recall, ap = pixel_precision_recall(scores, truth)
    assert ap == pytest.approx(float(binary_average_precision(scores.flatten(), truth.flatten().long())), abs=1e-6)
    assert recall[-1] == 1 and precision[-1] == pytest.approx(truth.double().mean().item())
    assert len(precision) == scores.unique().numel()  # one point per distinct score
    perfect = pixel_precision_recall(truth.float(), truth)[2]
    assert perfect == 1.0
    with pytest.raises(TypeError, match="truth must be a bool"):
        pixel_precision_recall(scores, truth.long())
