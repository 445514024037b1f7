"""Drawing primitives of the scene generator: shape masks, boxes, visibility, backgrounds.

Shared by the still scenes (:mod:`seglib.data.shapes`) and the video clips
(:mod:`seglib.data.video`). Tensors live on the generator's device.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from seglib.data.shapes import SceneConfig

SUPPORTED_SHAPES = ("circle", "rectangle", "triangle")
"""Shapes the generator draws, in the order of their kind index."""


def _uniform(shape, low, high, generator, device):
    return low + (high - low) * torch.rand(shape, generator=generator, device=device)



def _half_planes(x, y, cx, cy, normals, offsets):
    """Points inside every half-plane ``n . (p - c) <= offset``, bool ``(M,H,W)``.

    ``x`` ``(1,W)`` and ``y`` ``(H,1)`` are pixel centres, ``cx, cy`` ``(M,)``,
    ``normals`` a list of ``(M,)`` angle tensors and ``offsets`` ``(M,)`` tensors.
    Each test is separable in x and y, so it costs one broadcast add.
    """
    inside = None
    for angle, offset in zip(normals, offsets):
        along_x = (torch.cos(angle)[:, None, None]) * (x - cx[:, None, None])
        along_y = (torch.sin(angle)[:, None, None]) * (y - cy[:, None, None])
        test = along_x + along_y <= offset[:, None, None]
        inside = test if inside is None else inside & test
    return inside



def _shape_masks(kind, cx, cy, diameter, angle, aspect, size):
    """Full (unoccluded) masks of the things, bool ``(B,N,H,W)``.

    All parameters are ``(B,N)`` tensors; ``kind`` indexes SUPPORTED_SHAPES.
    Each thing only pays for the test of its own shape.
    """
    device = cx.device
    coords = torch.arange(size, device=device, dtype=torch.float32) + 0.5
    x, y = coords.view(1, size), coords.view(size, 1)
    flat = [t.reshape(-1) for t in (kind, cx, cy, diameter, angle, aspect)]
    masks = torch.zeros(flat[0].numel(), size, size, dtype=torch.bool, device=device)
    for k in range(len(SUPPORTED_SHAPES)):
        rows = (flat[0] == k).nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        _, px, py, dia, theta, asp = (t[rows] for t in flat)
        half = dia / 2
        if SUPPORTED_SHAPES[k] == "circle":
            dx2 = (x - px[:, None, None]) ** 2
            dy2 = (y - py[:, None, None]) ** 2
            masks[rows] = dx2 + dy2 <= (half * half)[:, None, None]
        elif SUPPORTED_SHAPES[k] == "rectangle":
            normals = [theta + q * math.pi / 2 for q in range(4)]
            offsets = [half, half * asp, half, half * asp]
            masks[rows] = _half_planes(x, y, px, py, normals, offsets)
        else:  # equilateral triangle: three half-planes at the inradius
            normals = [theta - math.pi / 2 + 2 * math.pi * q / 3 for q in range(3)]
            masks[rows] = _half_planes(x, y, px, py, normals, [half * 0.625] * 3)
    return masks.view(*kind.shape, size, size)



def _visible(masks: torch.Tensor) -> torch.Tensor:
    """Visible part of each mask when slot ``k+1`` is painted over slot ``k``."""
    visible = masks.clone()
    covered = torch.zeros_like(masks[:, 0])
    for k in range(masks.shape[1] - 1, -1, -1):
        visible[:, k] &= ~covered
        covered |= masks[:, k]
    return visible



def _boxes(masks: torch.Tensor) -> torch.Tensor:
    """xyxy boxes (pixel edges) of bool masks ``(B,N,H,W)``; zeros for empty masks."""
    size_h, size_w = masks.shape[-2:]
    device = masks.device
    bytes_ = masks.view(torch.uint8)  # max over bytes: many times faster than any() on bools
    cols = bytes_.amax(dim=2).bool()  # (B,N,W)
    rows = bytes_.amax(dim=3).bool()  # (B,N,H)
    xs = torch.arange(size_w, device=device)
    ys = torch.arange(size_h, device=device)
    big = max(size_h, size_w) + 1
    x1 = torch.where(cols, xs, big).amin(dim=2)
    x2 = torch.where(cols, xs + 1, -1).amax(dim=2)
    y1 = torch.where(rows, ys, big).amin(dim=2)
    y2 = torch.where(rows, ys + 1, -1).amax(dim=2)
    boxes = torch.stack([x1, y1, x2, y2], dim=2).float()
    return torch.where(rows.any(dim=2, keepdim=True), boxes, torch.zeros_like(boxes))



def _background(config: SceneConfig, batch: int, generator, device):
    """Stuff label map int64 ``(B,H,W)`` and its image float ``(B,3,H,W)``."""
    size = config.size
    ys = torch.arange(size, device=device, dtype=torch.float32).view(1, size, 1) + 0.5
    xs = torch.arange(size, device=device, dtype=torch.float32).view(1, 1, size) + 0.5
    if config.background == "plain":
        tone = _uniform((batch, 1, 1, 1), 0.35, 0.65, generator, device)
        image = tone.expand(batch, 3, size, size).clone()
        return torch.zeros(batch, size, size, dtype=torch.int64, device=device), image
    level = _uniform((batch, 1, 1), 0.35, 0.65, generator, device) * size
    amplitude = _uniform((batch, 1, 1), 0.02, 0.08, generator, device) * size
    frequency = _uniform((batch, 1, 1), 0.5, 2.0, generator, device)
    phase = _uniform((batch, 1, 1), 0, 2 * math.pi, generator, device)
    horizon = level + amplitude * torch.sin(2 * math.pi * frequency * xs / size + phase)
    is_grass = ys >= horizon  # (B,H,W)

    depth = (ys / size).unsqueeze(1)  # (1,1,H,1)
    sky_top = torch.tensor([0.30, 0.50, 0.85], device=device).view(1, 3, 1, 1)
    sky_low = torch.tensor([0.70, 0.82, 0.95], device=device).view(1, 3, 1, 1)
    sky = sky_top + (sky_low - sky_top) * depth
    grass_colour = torch.tensor([0.25, 0.55, 0.20], device=device).view(1, 3, 1, 1)
    stripes = 0.06 * torch.sin(2 * math.pi * (xs + 0.6 * ys) / 6.0).unsqueeze(1)
    grass = grass_colour + stripes
    image = torch.where(is_grass.unsqueeze(1), grass, sky.expand(batch, 3, size, size))
    return is_grass.long(), image
