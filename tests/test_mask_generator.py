"""Segment everything: the grid, the stability score, the filters and NMS, and object recall."""

import pytest
import torch

from seglib.mask_generator import GeneratedMasks, generate_masks, grid_points, object_recall, stability_scores
from seglib.models.promptable import build_small_sam


def test_grid_points_are_cell_centres():
    points = grid_points(2, 8)
    assert points.tolist() == [[2.0, 2.0], [6.0, 2.0], [2.0, 6.0], [6.0, 6.0]]
    with pytest.raises(ValueError, match="points_per_side"):
        grid_points(0, 8)


def test_stability_is_the_iou_of_the_two_thresholded_masks():
    logits = torch.full((1, 4, 4), -5.0)
    logits[0, :2, :2] = 5.0                            # 4 pixels sure
    logits[0, 2, :2] = 0.5                             # 2 pixels between -1 and +1
    assert stability_scores(logits).item() == pytest.approx(4 / 6)
    assert stability_scores(torch.full((1, 4, 4), -5.0)).item() == 0


def test_generated_masks_pass_the_filters_without_duplicates():
    torch.manual_seed(0)
    model = build_small_sam(image_size=32, embed_dim=16, widths=(8, 8, 16), encoder_depth=1, decoder_depth=1,
                            mlp_dim=16).eval()
    image = torch.rand(3, 32, 32)
    everything = generate_masks(model, image, points_per_side=4, iou_threshold=0.0, stability_threshold=0.0,
                                min_area=1)
    strict = generate_masks(model, image, points_per_side=4, iou_threshold=1.0, stability_threshold=1.0)
    with pytest.raises(ValueError, match="iou_threshold"):
        generate_masks(model, image, points_per_side=2, iou_threshold=1.5)
    assert len(strict.masks) <= len(everything.masks) <= 48
    assert bool((everything.iou_predictions[:-1] >= everything.iou_predictions[1:]).all())   # best first
    from torchvision.ops import box_iou, masks_to_boxes

    if len(everything.masks) > 1:
        overlap = box_iou(*(masks_to_boxes(everything.masks).float(),) * 2).fill_diagonal_(0)
        assert float(overlap.max()) <= 0.7 + 1e-6      # NMS left no two boxes above the threshold
    with pytest.raises(ValueError, match="image must be 32 x 32"):
        generate_masks(model, torch.rand(3, 16, 16))


def test_object_recall_by_hand():
    objects = torch.zeros(2, 8, 8, dtype=torch.bool)
    objects[0, :4, :4] = True
    objects[1, 4:, 4:] = True
    found = objects[:1].clone()
    found[0, 3, :] = False                             # IoU 12/16 = 0.75 with object 0, nothing on object 1
    generated = [GeneratedMasks(found, torch.ones(1), torch.ones(1), torch.zeros(1, 2))]
    recall = object_recall(generated, [objects])
    assert recall[0.5].tolist() == [True, False] and recall[0.75].tolist() == [True, False]
    assert object_recall(generated, [objects], thresholds=(0.8,))[0.8].tolist() == [False, False]
    with pytest.raises(ValueError, match="one entry per image"):
        object_recall(generated, [objects, objects])


def test_looser_filters_keep_more_masks():
    from seglib.mask_generator import filter_sweep, prompt_grid

    torch.manual_seed(0)
    model = build_small_sam(image_size=32, embed_dim=16, widths=(8, 8, 16), encoder_depth=1, decoder_depth=1,
                            mlp_dim=16).eval()
    images = torch.rand(2, 3, 32, 32)
    objects = torch.zeros(1, 32, 32, dtype=torch.bool)
    objects[0, 4:12, 4:12] = True
    sweep = filter_sweep([prompt_grid(model, image, 4) for image in images], [objects, objects],
                         {"none kept": (1.0, 1.0), "all kept": (0.0, 0.0)})
    assert sweep["none kept"]["masks_per_image"] <= sweep["all kept"]["masks_per_image"]
    assert sweep["none kept"]["recall50"] <= sweep["all kept"]["recall50"]
