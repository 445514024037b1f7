"""RoIAlign from scratch, RoIPool's quantisation, and Mask R-CNN's mask targets.

A region of interest (RoI) is a box in image pixels; ``spatial_scale`` maps
it onto a feature map (``1 / stride``). Both pooling layers cut the box into
``output_size`` bins and reduce each bin to one value per channel:

* **RoIPool** (Fast R-CNN) rounds the box to whole feature cells, splits it
  into bins whose edges are rounded again, and max-pools each bin: the
  pooled features describe a slightly different box than the one asked for.
* **RoIAlign** (Mask R-CNN) keeps every coordinate fractional: in each bin it
  samples ``sampling_ratio x sampling_ratio`` regularly spaced points by
  bilinear interpolation of the four nearest feature values and averages
  them. ``aligned=True`` shifts the box by half a pixel so that feature
  ``f[i, j]`` sits at the centre of its pixel, which ``torchvision`` made the
  default for Detectron2-style models.

Coordinates: feature value ``f[..., i, j]`` sits at the point ``(x=j, y=i)``
of the feature map; a box ``(x1, y1, x2, y2)`` in image pixels covers
``x1 * scale - offset .. x2 * scale - offset`` with ``offset = 0.5`` if
``aligned`` else ``0``.

Everything here matches ``torchvision.ops.roi_align`` / ``roi_pool``
(tested), written with plain tensor indexing so that it can be read.
"""

from __future__ import annotations


import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import roi_align as tv_roi_align

from seglib.validation import check_boxes, check_masks, check_not_empty, check_tensor

__all__ = [
    "bilinear_interpolate",
    "mask_targets",
    "paste_masks",
    "quantisation_error",
    "roi_align",
    "roi_align_box",
    "sampling_points",
    "snap_boxes",
]


def _output_size(output_size) -> tuple[int, int]:
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"output_size must be a positive int or (height, width), got {output_size!r}")
    return size


def _coordinates(name: str, value: object) -> torch.Tensor:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value))
    return check_tensor(name, value, "(*S) of coordinates", "number", range(8))


def bilinear_interpolate(feature: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Values of ``feature`` at fractional points, with torchvision's border rules.

    The value at ``(y, x)`` mixes the four surrounding grid values with
    weights ``(1 - ly)(1 - lx)``, ``(1 - ly) lx``, ``ly (1 - lx)``, ``ly lx``,
    where ``ly, lx`` are the fractional parts. A point less than one cell
    outside the map is clamped onto its edge; a point farther out gives 0.

    Args:
        feature: float ``(C, H, W)``.
        y, x: float tensors of one shape ``S`` (or Python floats), in
            feature-map cells.

    Returns:
        float ``(C, *S)``.
    """
    check_tensor("feature", feature, "(C, H, W)", "float")
    y, x = (_coordinates(name, value).to(feature.device, feature.dtype) for name, value in (("y", y), ("x", x)))
    if y.shape != x.shape:
        raise ValueError(f"y and x must have the same shape, got {tuple(y.shape)} and {tuple(x.shape)}")
    height, width = feature.shape[-2:]
    outside = (y < -1.0) | (y > height) | (x < -1.0) | (x > width)
    y, x = y.clamp(min=0), x.clamp(min=0)
    y0, x0 = y.floor().long().clamp(max=height - 1), x.floor().long().clamp(max=width - 1)
    y1, x1 = (y0 + 1).clamp(max=height - 1), (x0 + 1).clamp(max=width - 1)
    # On the last row (column) torchvision snaps the point onto it: no weight beyond the edge.
    ly = torch.where(y0 >= height - 1, torch.zeros_like(y), y - y0)
    lx = torch.where(x0 >= width - 1, torch.zeros_like(x), x - x0)
    hy, hx = 1 - ly, 1 - lx
    value = (hy * hx * feature[:, y0, x0] + hy * lx * feature[:, y0, x1]
             + ly * hx * feature[:, y1, x0] + ly * lx * feature[:, y1, x1])
    return torch.where(outside, torch.zeros_like(value), value)


def sampling_points(box: torch.Tensor, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1,
                    aligned: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Where RoIAlign samples the feature map for one box.

    Args:
        box: float ``(4,)`` xyxy in image pixels.
        output_size: bins per side, an int or ``(height, width)``.
        spatial_scale: feature cells per image pixel (``1 / stride``).
        sampling_ratio: sample points per bin side; ``<= 0`` takes
            ``ceil(box side / bins)`` (adaptive, as torchvision does).
        aligned: shift the box by -0.5 cell (pixel-centre convention).

    Returns:
        ``(y, x)``, each float ``(out_h, gh, out_w, gw)``: sample ``(iy, ix)``
        of bin ``(ph, pw)`` sits at ``(y[ph, iy, pw, ix], x[ph, iy, pw, ix])``
        in feature cells.
    """
    box = check_boxes("box", box, "(4,)")
    out_h, out_w = _output_size(output_size)
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int):
        raise TypeError(f"sampling_ratio must be an int, got {type(sampling_ratio).__name__}")
    kwargs = {"dtype": box.dtype, "device": box.device}
    # Every step in the box's dtype, as torchvision's kernel does: in float32, 7.3 - 0.3 is exactly 7.0
    # (one sample per bin of 1.0), in float64 it is 7.000000238 (two samples per bin).
    x1, y1, x2, y2 = (box * torch.tensor(spatial_scale, **kwargs) - (0.5 if aligned else 0.0)).unbind()
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # the legacy version never lets a box shrink below one cell
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    grid_h = sampling_ratio if sampling_ratio > 0 else int(torch.ceil(roi_h / out_h))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(torch.ceil(roi_w / out_w))
    ys = y1 + torch.arange(out_h, **kwargs).view(-1, 1) * bin_h + (torch.arange(grid_h, **kwargs) + 0.5) * bin_h / grid_h
    xs = x1 + torch.arange(out_w, **kwargs).view(-1, 1) * bin_w + (torch.arange(grid_w, **kwargs) + 0.5) * bin_w / grid_w
    y = ys.view(out_h, grid_h, 1, 1).expand(out_h, grid_h, out_w, grid_w)
    x = xs.view(1, 1, out_w, grid_w).expand(out_h, grid_h, out_w, grid_w)
    return y, x


def roi_align_box(feature: torch.Tensor, box: torch.Tensor, output_size, spatial_scale: float = 1.0,
                  sampling_ratio: int = -1, aligned: bool = False) -> torch.Tensor:
    """RoIAlign of one box: the mean of bilinear samples in each bin.

    Args:
        feature: float ``(C, H, W)``.
        box: float ``(4,)`` xyxy in image pixels.
        output_size, spatial_scale, sampling_ratio, aligned: as in
            :func:`sampling_points` (and ``torchvision.ops.roi_align``).

    Returns:
        float ``(C, out_h, out_w)``.
    """
    check_tensor("feature", feature, "(C, H, W)", "float")
    y, x = sampling_points(check_boxes("box", box, "(4,)").to(feature.dtype), output_size, spatial_scale, sampling_ratio, aligned)
    if y.numel() == 0:  # a box of zero size has no sample point: torchvision returns zeros
        return feature.new_zeros(feature.shape[0], *y.shape[::2])
    samples = bilinear_interpolate(feature, y, x)  # (C, out_h, gh, out_w, gw)
    return samples.mean(dim=(2, 4))


def roi_align(features: torch.Tensor, boxes, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1,
              aligned: bool = False) -> torch.Tensor:
    """RoIAlign over a batch, one box at a time (the readable twin of torchvision's op).

    Args:
        features: float ``(N, C, H, W)``.
        boxes: float ``(K, 5)`` rows ``(batch_index, x1, y1, x2, y2)``, or a
            list of ``N`` float ``(K_i, 4)`` tensors, one per image.
        output_size, spatial_scale, sampling_ratio, aligned: as in :func:`roi_align_box`.

    Returns:
        float ``(K, C, out_h, out_w)``.
    """
    check_tensor("features", features, "(N, C, H, W)", "float")
    if isinstance(boxes, (list, tuple)):
        if len(boxes) != features.shape[0]:
            raise ValueError(f"boxes must hold one (K_i,4) tensor per image ({features.shape[0]}), got {len(boxes)}")
        boxes = torch.cat([torch.cat([torch.full((len(b), 1), float(i), dtype=b.dtype, device=b.device), b], dim=1)
                           for i, b in enumerate(boxes)])
    if not isinstance(boxes, torch.Tensor) or boxes.dim() != 2 or boxes.shape[1] != 5:
        got = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
        raise ValueError(f"boxes must be a (K,5) tensor of (batch_index, x1, y1, x2, y2) or a list of (K_i,4), got {got}")
    out_h, out_w = _output_size(output_size)
    pooled = [roi_align_box(features[int(row[0])], row[1:], (out_h, out_w), spatial_scale, sampling_ratio, aligned)
              for row in boxes]
    if not pooled:
        return features.new_zeros(0, features.shape[1], out_h, out_w)
    return torch.stack(pooled)


def snap_boxes(boxes: torch.Tensor, stride: float) -> torch.Tensor:
    """The boxes RoIPool really pools: corners rounded to whole feature cells.

    RoIPool (torchvision, Fast R-CNN) rounds ``x1 * scale`` and ``x2 * scale``
    to the nearest integer cell and pools cells ``round(x1 / stride) ..
    round(x2 / stride)`` inclusive.

    Args:
        boxes: float ``(N, 4)`` xyxy in image pixels.
        stride: image pixels per feature cell (``1 / spatial_scale``), > 0.

    Returns:
        float ``(N, 4)``: the image region those cells cover, xyxy in pixels.
    """
    check_boxes("boxes", boxes)
    if isinstance(stride, bool) or not isinstance(stride, (int, float)):
        raise TypeError(f"stride must be a number, got {type(stride).__name__}")
    if not stride > 0:
        raise ValueError(f"stride must be positive, got {stride}")
    scaled = boxes / stride
    cells = torch.sign(scaled) * torch.floor(scaled.abs() + 0.5)  # C's round(): halves away from zero
    end = torch.maximum(cells[:, 2:], cells[:, :2])  # a box never shrinks below one cell
    return torch.cat([cells[:, :2], end + 1], dim=1) * stride


def mask_targets(gt_masks: torch.Tensor, proposals: torch.Tensor, matched: torch.Tensor, size: int = 28,
                 ) -> torch.Tensor:
    """Mask R-CNN's training targets: each proposal's true mask, cropped and resized.

    A proposal matched to a true instance learns that instance's mask inside
    the proposal's box, resampled to ``size x size`` with RoIAlign (as
    torchvision's ``project_masks_on_boxes``); a target pixel is 1 where the
    resampled mask is at least 0.5.

    Args:
        gt_masks: bool ``(G, H, W)`` true instance masks.
        proposals: float ``(K, 4)`` xyxy boxes in pixels.
        matched: int64 ``(K,)`` index into ``gt_masks`` of each proposal's instance.
        size: side of the targets (28 in the paper).

    Returns:
        float ``(K, size, size)`` in {0, 1}.
    """
    check_masks("gt_masks", gt_masks, "(G, H, W)")
    check_boxes("proposals", proposals, "(K, 4)")
    check_tensor("matched", matched, "(K,)", "int")
    if matched.shape != proposals.shape[:1]:
        raise ValueError(f"matched must have shape ({proposals.shape[0]},), got {getattr(matched, 'shape', matched)}")
    if len(matched) and (int(matched.min()) < 0 or int(matched.max()) >= gt_masks.shape[0]):
        raise ValueError(f"matched must index gt_masks (0..{gt_masks.shape[0] - 1}), got {matched.tolist()}")
    size = _output_size(size)
    rois = torch.cat([matched.to(proposals.dtype).view(-1, 1), proposals.float()], dim=1)
    crops = tv_roi_align(gt_masks[:, None].float(), rois, size, spatial_scale=1.0)[:, 0]
    return (crops >= 0.5).float()


def paste_masks(crops: torch.Tensor, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Paste ``size x size`` mask crops back into an image inside their boxes.

    The inverse of :func:`mask_targets` (torchvision's
    ``paste_masks_in_image``, the last step of Mask R-CNN's inference).

    Args:
        crops: float ``(K, M, M)`` mask probabilities or {0, 1} values.
        boxes: float ``(K, 4)`` xyxy boxes in pixels.
        height, width: size of the image.

    Returns:
        bool ``(K, height, width)``: pixels whose pasted value is at least 0.5.
    """
    check_tensor("crops", crops, "(K, M, M)", "float")
    check_boxes("boxes", boxes, "(K, 4)")
    if boxes.shape != (crops.shape[0], 4):
        raise ValueError(f"boxes must have shape ({crops.shape[0]}, 4), got {getattr(boxes, 'shape', boxes)}")
    if crops.shape[0] == 0:
        return torch.zeros(0, height, width, dtype=torch.bool)
    return paste_masks_in_image(crops[:, None], boxes.float(), (height, width), padding=1)[:, 0] >= 0.5


def quantisation_error(masks: torch.Tensor, boxes: torch.Tensor, stride: float, size: int = 28) -> dict[str, float]:
    """What snapping boxes to the feature grid costs a mask, measured on true instances.

    Each instance's mask is cut out of its own box at ``size x size``
    (:func:`mask_targets`) and pasted back (:func:`paste_masks`) either into
    the same box (what RoIAlign allows) or into the box RoIPool reads at this
    ``stride`` (:func:`snap_boxes`).

    Args:
        masks: bool ``(N, H, W)`` instance masks, ``N >= 1``.
        boxes: float ``(N, 4)`` their xyxy boxes.
        stride: feature stride in pixels.
        size: side of the mask crops.

    Returns:
        ``{"shift_px": mean |snapped corner - true corner| in pixels,
        "iou_align": mean mask IoU after the round trip through the true box,
        "iou_pool": the same through the snapped box}``.
    """
    from seglib.metrics.masks import mask_iou

    check_masks("masks", masks)
    check_not_empty("masks", masks)
    check_boxes("boxes", boxes)
    if len(boxes) != len(masks):
        raise ValueError(f"boxes must hold one box per mask ({len(masks)}), got {len(boxes)}")
    height, width = masks.shape[-2:]
    snapped = snap_boxes(boxes.float(), stride)
    crops = mask_targets(masks, boxes.float(), torch.arange(len(masks)), size)
    align = paste_masks(crops, boxes.float(), height, width)
    pool = paste_masks(crops, snapped, height, width)
    return {"shift_px": float((snapped - boxes).abs().mean()),
            "iou_align": float(mask_iou(align, masks).diagonal().mean()),
            "iou_pool": float(mask_iou(pool, masks).diagonal().mean())}


