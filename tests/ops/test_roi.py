"""The from-scratch RoIAlign against torchvision, RoIPool's snapping, mask targets."""

import pytest
import torch
from torchvision.ops import roi_align as tv_roi_align
from torchvision.ops import roi_pool as tv_roi_pool

from seglib.ops import roi


def random_boxes(generator, n, size):
    corners = torch.rand(n, 2, 2, generator=generator) * size * 1.1 - 0.05 * size
    return torch.cat([corners.min(dim=1).values, corners.max(dim=1).values], dim=1)


def test_bilinear_interpolate_by_hand():
    feature = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    assert roi.bilinear_interpolate(feature, 0.5, 0.5).item() == pytest.approx(1.5)
    assert roi.bilinear_interpolate(feature, 0.0, 1.0).item() == pytest.approx(1.0)
    assert roi.bilinear_interpolate(feature, 0.25, 0.0).item() == pytest.approx(0.5)
    # less than a cell outside: clamped onto the edge; farther: zero
    assert roi.bilinear_interpolate(feature, -0.5, 0.0).item() == pytest.approx(0.0)
    assert roi.bilinear_interpolate(feature, 1.7, 1.0).item() == pytest.approx(3.0)
    assert roi.bilinear_interpolate(feature, 3.5, 0.0).item() == 0.0


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2, 3])
def test_roi_align_matches_torchvision(aligned, sampling_ratio):
    generator = torch.Generator().manual_seed(sampling_ratio + 10 * aligned)
    for height, width, scale, out in [(9, 13, 0.5, 7), (16, 16, 0.25, (5, 3)), (6, 20, 1.0, 2)]:
        features = torch.randn(2, 3, height, width, generator=generator, dtype=torch.float64)
        boxes = [random_boxes(generator, 5, 1 / scale * max(height, width)).double() for _ in range(2)]
        expected = tv_roi_align(features, boxes, out, scale, sampling_ratio, aligned)
        got = roi.roi_align(features, boxes, out, scale, sampling_ratio, aligned)
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_counts_samples_in_the_feature_dtype(dtype, aligned):
    # 7.3 - 0.3 over 7 bins: exactly 1.0 per bin in float32 (one sample), 1.00000003 in float64 (two)
    features = torch.randn(1, 2, 12, 12, generator=torch.Generator().manual_seed(0)).to(dtype)
    boxes = torch.tensor([[0.0, 0.3, 0.3, 7.3, 7.3], [0.0, 1.1, 2.2, 8.1, 9.2]]).to(dtype)
    expected = tv_roi_align(features, boxes, 7, 1.0, 0, aligned)
    torch.testing.assert_close(roi.roi_align(features, boxes, 7, 1.0, 0, aligned), expected)


def test_roi_align_box_degenerate_and_errors():
    feature = torch.rand(2, 5, 5)
    flat = torch.tensor([2.0, 2.0, 2.0, 2.0])
    expected = tv_roi_align(feature[None], [flat[None]], 3, 1.0, -1, True)[0]
    assert torch.equal(roi.roi_align_box(feature, flat, 3, aligned=True), expected)
    with pytest.raises(TypeError, match="box must be a float tensor"):
        roi.roi_align_box(feature, torch.tensor([1, 2, 3, 4]), 3)
    with pytest.raises(ValueError, match="output_size"):
        roi.roi_align_box(feature, flat, 0)
    with pytest.raises(ValueError, match="feature must have shape"):
        roi.roi_align_box(torch.rand(5, 5), flat, 3)
    with pytest.raises(ValueError, match="boxes must be"):
        roi.roi_align(feature[None], torch.rand(3, 4), 2)


def test_sampling_points_layout():
    y, x = roi.sampling_points(torch.tensor([0.0, 0.0, 4.0, 2.0]), (1, 2), sampling_ratio=2)
    assert y.shape == (1, 2, 2, 2)
    assert y[0, :, 0, 0].tolist() == [0.5, 1.5]
    assert x[0, 0, :, :].flatten().tolist() == [0.5, 1.5, 2.5, 3.5]


def test_snap_boxes_matches_roi_pool():
    # RoIPool of a feature map holding each cell's x index: min and max show the cells it read.
    stride = 4.0
    xs = torch.arange(12.0).view(1, 1, 1, 12).expand(1, 1, 12, 12)
    boxes = torch.tensor([[5.0, 6.0, 21.0, 30.0], [1.9, 0.0, 2.1, 9.0], [10.0, 10.0, 45.0, 45.0]])
    snapped = roi.snap_boxes(boxes, stride)
    pooled = tv_roi_pool(xs, [boxes], (12, 12), 1 / stride)
    for box, cells in zip(snapped, pooled):
        first, last = cells.min().item(), cells.max().item()
        assert box[0].item() == first * stride and box[2].item() == min((last + 1) * stride, 48)
    with pytest.raises(ValueError, match="stride"):
        roi.snap_boxes(boxes, 0)


def test_mask_targets_and_paste_roundtrip():
    masks = torch.zeros(2, 32, 32, dtype=torch.bool)
    masks[0, 4:20, 6:14] = True
    masks[1, 10:30, 16:30] = True
    boxes = torch.tensor([[6.0, 4.0, 14.0, 20.0], [16.0, 10.0, 30.0, 30.0]])
    targets = roi.mask_targets(masks, boxes, torch.tensor([0, 1]), size=28)
    # tight boxes: foreground but for the last row and column (torchvision's aligned=False half-pixel shift)
    assert targets.shape == (2, 28, 28) and bool((targets[:, :-2, :-2] == 1).all())
    wide = boxes + torch.tensor([-4.0, -4.0, 4.0, 4.0])
    crops = roi.mask_targets(masks, wide, torch.tensor([0, 1]), size=28)
    assert 0 < crops.mean() < 1
    pasted = roi.paste_masks(crops, wide, 32, 32)
    from seglib.metrics import mask_iou
    assert mask_iou(pasted, masks).diagonal().min() > 0.75  # 28x28 crops and the half-pixel shift cost a little
    with pytest.raises(ValueError, match="matched must index"):
        roi.mask_targets(masks, boxes, torch.tensor([0, 2]))
