"""Simulated clicks, corrections, boxes and nested spots."""

import pytest
import torch

from seglib.data import SceneConfig, generate_scenes
from seglib.data.prompts import (
    NO_CLICK,
    center_clicks,
    correction_clicks,
    distance_to_boundary,
    jitter_boxes,
    nest_spots,
    random_clicks,
)


def square(size=12, low=2, high=9):
    mask = torch.zeros(1, size, size, dtype=torch.bool)
    mask[0, low:high, low:high] = True
    return mask


def hit(masks, points):
    return masks[torch.arange(len(masks)), points[:, 1].long(), points[:, 0].long()]


def test_distance_to_boundary_counts_erosions():
    d = distance_to_boundary(square())[0]
    assert d[0, 0] == 0 and d[2, 2] == 1 and d[3, 3] == 2 and d[5, 5] == 4
    assert d.max() == 4  # a 7 x 7 square survives 3 erosions
    edge = torch.ones(1, 5, 5, dtype=torch.bool)
    assert distance_to_boundary(edge)[0, 0, 0] == 1, "the image border counts as outside"


def test_center_click_is_deepest_and_central():
    points = center_clicks(square())
    assert torch.equal(points, torch.tensor([[5.5, 5.5]]))
    scenes = generate_scenes(16, seed=3)
    masks = scenes.masks[scenes.valid]
    points = center_clicks(masks)
    assert hit(masks, points).all()
    assert torch.equal(points, center_clicks(masks)), "deterministic"
    assert ((points - 0.5) % 1 == 0).all(), "clicks sit on pixel centres"


def test_random_clicks_land_inside_and_follow_the_generator():
    scenes = generate_scenes(16, seed=4)
    masks = scenes.masks[scenes.valid]
    a = random_clicks(masks, torch.Generator().manual_seed(0))
    b = random_clicks(masks, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and hit(masks, a).all()


def test_clicks_reject_bad_input():
    with pytest.raises(TypeError, match="masks must be a bool tensor"):
        center_clicks(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="empty masks"):
        random_clicks(torch.zeros(2, 4, 4, dtype=torch.bool))


def test_correction_clicks_fix_the_largest_error():
    target = square()
    missed = target.clone()
    missed[0, 2:9, 6:9] = False  # the right part is missed
    points, labels = correction_clicks(missed, target)
    assert labels.tolist() == [1] and target[0, int(points[0, 1]), int(points[0, 0])]
    extra = target.clone()
    extra[0, 0:2, :] = True  # a strip of false positives
    extra[0, 9:12, 0:12] = True
    points, labels = correction_clicks(extra, target)
    assert labels.tolist() == [0] and not target[0, int(points[0, 1]), int(points[0, 0])]
    points, labels = correction_clicks(target, target)
    assert labels.tolist() == [NO_CLICK]
    sampled, labels = correction_clicks(missed, target, torch.Generator().manual_seed(0))
    assert labels.tolist() == [1] and (target & ~missed)[0, int(sampled[0, 1]), int(sampled[0, 0])]
    with pytest.raises(ValueError, match="same shape"):
        correction_clicks(target, target[:, :5])


def test_jitter_boxes_stay_valid():
    boxes = torch.tensor([[10.0, 12.0, 30.0, 40.0], [0.0, 0.0, 2.0, 1.0]])
    out = jitter_boxes(boxes, 64, noise=0.3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 4)
    assert (out[:, 2:] > out[:, :2]).all() and (out >= 0).all() and (out <= 64).all()
    assert ((out - boxes).abs()[0] <= 0.6 * torch.tensor([20.0, 28.0, 20.0, 28.0]) + 1e-4).all()
    assert torch.equal(jitter_boxes(boxes, 64, noise=0.0), boxes)
    with pytest.raises(ValueError, match="noise"):
        jitter_boxes(boxes, 64, noise=-1)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        jitter_boxes(boxes[:, :3], 64)


def test_nest_spots_makes_a_part_inside_a_whole():
    scenes = generate_scenes(32, SceneConfig(max_objects=3), seed=5)
    nested, whole_of = nest_spots(scenes, fraction=1.0, generator=torch.Generator().manual_seed(0))
    rows, spots = (whole_of >= 0).nonzero(as_tuple=True)
    assert len(rows) >= 8
    for b, k in zip(rows.tolist(), spots.tolist()):
        parent = int(whole_of[b, k])
        spot = nested.masks[b, k]
        assert nested.valid[b, k] and spot.any()
        assert not (spot & nested.masks[b, parent]).any(), "visible masks stay disjoint"
        assert torch.equal(spot | nested.masks[b, parent], scenes.masks[b, parent]), "spot + host = old host"
        assert (nested.instance_map[b][spot] == k + 1).all()
        assert nested.boxes[b, k, 2] > nested.boxes[b, k, 0]
    untouched = ~(whole_of >= 0).any(dim=1)
    assert torch.equal(nested.images[untouched], scenes.images[untouched])
    same, none = nest_spots(scenes, fraction=0.0)
    assert same is scenes and (none == -1).all()
    with pytest.raises(ValueError, match="fraction"):
        nest_spots(scenes, fraction=2.0)


def test_the_evaluation_user_leaves_errors_without_an_interior_alone():
    target = torch.zeros(1, 12, 12, dtype=torch.bool)
    target[0, 2:10, 2:10] = True
    sliver = target.clone()
    sliver[0, 2:10, 9] = False                         # a one-pixel-wide miss along the outline
    point, label = correction_clicks(sliver, target)
    assert int(label[0]) == 1                          # min_depth=1: any error gets a click
    point, label = correction_clicks(sliver, target, min_depth=2)
    assert int(label[0]) == -1                         # no interior: the user keeps the mask
    hole = target.clone()
    hole[0, 4:7, 4:7] = False                          # a 3 x 3 miss has an interior pixel
    point, label = correction_clicks(hole, target, min_depth=2)
    assert int(label[0]) == 1 and point[0].tolist() == [5.5, 5.5]
    with pytest.raises(ValueError, match="min_depth"):
        correction_clicks(hole, target, min_depth=0)
