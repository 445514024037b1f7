"""Simulated prompts for promptable segmentation: clicks, corrections and boxes.

A promptable model such as SAM is trained and evaluated with prompts that a
program plays in place of a user:

* :func:`random_clicks`: a positive click anywhere inside each object (training);
* :func:`center_clicks`: the click a careful user makes, at the pixel farthest
  from the object's outline (evaluation, as in the SAM paper);
* :func:`correction_clicks`: the next click after a prediction: positive in a
  missed region, negative in a false positive, at the error pixel farthest
  from the error region's outline (or a random error pixel when training);
* :func:`jitter_boxes`: boxes with the noise of a hurried user;
* :func:`nest_spots`: scenes with a spot painted inside a thing, where a
  click on the spot is ambiguous (the spot, or the whole thing under it).

Conventions (DESIGN.md): masks bool ``(N,H,W)``; points float ``(N,2)`` as
``(x, y)`` in pixels where pixel ``(i, j)`` (column, row) covers
``[i, i+1) x [j, j+1)``, so clicks land on pixel centres ``(i + 0.5, j + 0.5)``;
labels int64 ``(N,)`` with 1 = foreground, 0 = background and -1 = no click
(padding when there was nothing left to correct); boxes float ``(N,4)`` xyxy
on pixel edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from seglib.data.drawing import _boxes
from seglib.data.shapes import SceneBatch, SceneConfig, scene_stream
from seglib.validation import check_boxes, check_not_empty

__all__ = [
    "NO_CLICK",
    "center_clicks",
    "correction_clicks",
    "distance_to_boundary",
    "jitter_boxes",
    "nest_spots",
    "random_clicks",
]

NO_CLICK = -1
"""Label of a padding click (nothing left to correct); SAM's "not a point"."""


def _check_masks(masks, name: str = "masks") -> None:
    if not isinstance(masks, torch.Tensor) or masks.dtype != torch.bool:
        got = masks.dtype if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise TypeError(f"{name} must be a bool tensor (N,H,W), got {got}")
    if masks.dim() != 3:
        raise ValueError(f"{name} must have shape (N,H,W), got {tuple(masks.shape)}")


def _check_not_empty(masks: torch.Tensor, name: str = "masks") -> None:
    check_not_empty(name, masks)
    empty = ~masks.flatten(1).any(dim=1)
    if bool(empty.any()):
        raise ValueError(f"{name} must not contain empty masks (a click needs a pixel), "
                         f"got {int(empty.sum())} empty, the first at index {int(empty.nonzero()[0])}")


def _pixel_centres(flat_index: torch.Tensor, width: int) -> torch.Tensor:
    """Flat pixel indices ``(N,)`` to click coordinates ``(N,2)`` ``(x+0.5, y+0.5)``."""
    return torch.stack([flat_index % width, flat_index // width], dim=1).float() + 0.5


def _erode(masks: torch.Tensor) -> torch.Tensor:
    """3x3 erosion of bool ``(N,H,W)``, the image border counting as outside.

    Written as two 3-tap minimums of shifted slices (rows, then columns),
    which on a CPU is many times faster than a max-pooling call.
    """
    padded = F.pad(masks, (1, 1, 1, 1), value=False)
    rows = padded[:, :, :-2] & padded[:, :, 1:-1] & padded[:, :, 2:]
    return rows[:, :-2] & rows[:, 1:-1] & rows[:, 2:]


def distance_to_boundary(masks: torch.Tensor) -> torch.Tensor:
    """Chessboard distance of every mask pixel to the nearest pixel outside the mask.

    Args:
        masks: bool ``(N,H,W)``; pixels beyond the image border count as outside.

    Returns:
        float32 ``(N,H,W)``: 0 outside the mask, 1 on its outline, 2 one pixel
        further in, and so on (the number of 3x3 erosions a pixel survives).
    """
    _check_masks(masks)
    inside = masks
    distance = torch.zeros(masks.shape, dtype=torch.float32, device=masks.device)
    while bool(inside.any()):
        distance += inside
        inside = _erode(inside)
    return distance


def center_clicks(masks: torch.Tensor) -> torch.Tensor:
    """The click at the pixel of each mask farthest from its outline.

    Ties (a plateau of equal distance) go to the pixel nearest the mask's
    centroid, so the click is deterministic and central.

    Args:
        masks: bool ``(N,H,W)``, none empty.

    Returns:
        float32 ``(N,2)`` click coordinates ``(x, y)`` at pixel centres.
    """
    _check_masks(masks)
    _check_not_empty(masks)
    n, height, width = masks.shape
    distance = distance_to_boundary(masks)
    ys = torch.arange(height, device=masks.device, dtype=torch.float32).view(1, height, 1) + 0.5
    xs = torch.arange(width, device=masks.device, dtype=torch.float32).view(1, 1, width) + 0.5
    area = masks.flatten(1).sum(dim=1).float().view(n, 1, 1)
    cy = (masks * ys).flatten(1).sum(dim=1).view(n, 1, 1) / area
    cx = (masks * xs).flatten(1).sum(dim=1).view(n, 1, 1) / area
    off_centre = ((xs - cx) ** 2 + (ys - cy) ** 2).sqrt()
    # Distances are integers, so a penalty below 1 only breaks ties.
    score = distance - off_centre / (height + width)
    score = torch.where(masks, score, torch.full_like(score, -1.0))
    return _pixel_centres(score.flatten(1).argmax(dim=1), width)


def random_clicks(masks: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One click drawn uniformly among the pixels of each mask.

    Args:
        masks: bool ``(N,H,W)``, none empty.
        generator: random source on the masks' device (``None``: global state).

    Returns:
        float32 ``(N,2)`` click coordinates ``(x, y)`` at pixel centres.
    """
    _check_masks(masks)
    _check_not_empty(masks)
    # Gumbel-free sampling: the argmax of uniform noise restricted to the mask.
    noise = torch.rand(masks.shape, generator=generator, device=masks.device)
    noise = torch.where(masks, noise, torch.full_like(noise, -1.0))
    return _pixel_centres(noise.flatten(1).argmax(dim=1), masks.shape[-1])


def correction_clicks(predicted: torch.Tensor, target: torch.Tensor,
                      generator: torch.Generator | None = None, min_depth: int = 1
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The next click a user makes to correct each predicted mask.

    The error region is ``predicted XOR target``. The click goes to the error
    pixel farthest from the outline of its error region (missed pixels and
    false positives are separate regions), that is, into the interior of the
    widest error region, as the interactive-segmentation benchmarks place
    it; or, with a ``generator``, to an error pixel drawn uniformly (the
    cheaper, more varied choice for training). It is positive (1) on a
    missed pixel and negative (0) on a false positive. A mask without error,
    or whose errors are all thinner than ``min_depth`` (see below), gets
    label -1 (no click).

    Args:
        predicted: bool ``(N,H,W)`` current predictions.
        target: bool ``(N,H,W)`` the masks the user wants.
        generator: ``None`` for the deterministic evaluation protocol.
        min_depth: the deterministic user clicks only an error region with a
            pixel at least this deep (:func:`distance_to_boundary`): 1 clicks
            any error; 2 leaves errors one or two pixels wide, which have no
            interior, alone (a click on an outline pixel is ambiguous).

    Returns:
        ``(points, labels)``: float32 ``(N,2)`` and int64 ``(N,)``.
    """
    _check_masks(predicted, "predicted")
    _check_masks(target, "target")
    if predicted.shape != target.shape:
        raise ValueError(f"predicted and target must have the same shape, got {tuple(predicted.shape)} "
                         f"and {tuple(target.shape)}")
    if isinstance(min_depth, bool) or not isinstance(min_depth, int) or min_depth < 1:
        raise ValueError(f"min_depth must be an int >= 1, got {min_depth!r}")
    missed, extra = target & ~predicted, predicted & ~target
    if generator is None:
        score = torch.maximum(distance_to_boundary(missed), distance_to_boundary(extra))
        has_error = score.flatten(1).amax(dim=1) >= min_depth
    else:
        score = torch.rand(target.shape, generator=generator, device=target.device)
        score = torch.where(missed | extra, score + 1, torch.zeros_like(score))
        has_error = (missed | extra).flatten(1).any(dim=1)
    index = score.flatten(1).argmax(dim=1)
    positive = missed.flatten(1).gather(1, index[:, None]).squeeze(1)
    labels = torch.where(has_error, positive.long(), torch.full_like(index, NO_CLICK))
    return _pixel_centres(index, target.shape[-1]), labels


def jitter_boxes(boxes: torch.Tensor, size: int, noise: float = 0.1,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Boxes with every coordinate moved by Gaussian noise scaled to the box side.

    Each x coordinate moves by ``N(0, noise * width)`` and each y coordinate by
    ``N(0, noise * height)``, clipped to twice that standard deviation, as SAM
    does during training; the result stays inside the image and keeps
    ``x2 > x1``, ``y2 > y1``.

    Args:
        boxes: float ``(N,4)`` xyxy on pixel edges.
        size: image side in pixels (square images).
        noise: relative standard deviation, ``>= 0``.
        generator: random source on the boxes' device.

    Returns:
        float32 ``(N,4)`` jittered boxes.
    """
    check_boxes("boxes", boxes)
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    sides = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    shift = torch.randn(boxes.shape, generator=generator, device=boxes.device) * noise
    jittered = (boxes + (shift.clamp(-2 * noise, 2 * noise) * sides)).clamp(0, size)
    low = torch.minimum(jittered[:, :2], jittered[:, 2:] - 1).clamp(min=0)
    high = torch.maximum(jittered[:, 2:], low + 1)
    return torch.cat([low, high], dim=1).float()


def nest_spots(scenes: SceneBatch, fraction: float = 0.25,
               generator: torch.Generator | None = None) -> tuple[SceneBatch, torch.Tensor]:
    """Paint a round spot inside the largest thing of some scenes: a part inside a whole.

    A click on such a spot is ambiguous: the user may want the spot or the
    whole thing it sits on (SAM's part/whole ambiguity). Generated scenes
    rarely nest one thing inside another by chance, so training adds nested
    spots on purpose. The spot becomes a new thing (class "circle" when the
    scenes have circles, else the class of the thing it sits on) in the first
    free slot; the thing under it loses those pixels, as with any occlusion.

    Args:
        scenes: a :class:`~seglib.data.shapes.SceneBatch`.
        fraction: probability that a scene gets a spot, in [0, 1]. Scenes
            whose slots are all taken or whose largest thing is too thin
            (fewer than 5 erosions) get none.
        generator: random source on the scenes' device.

    Returns:
        ``(nested, whole_of)``: the new scenes and int64 ``(B,N)``, for each
        thing the slot of the thing it lies inside, or -1.
    """
    if not isinstance(scenes, SceneBatch):
        raise TypeError(f"scenes must be a SceneBatch, got {type(scenes).__name__}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    b, n, size = scenes.masks.shape[0], scenes.masks.shape[1], scenes.config.size
    device = scenes.images.device
    rows = torch.arange(b, device=device)
    count = scenes.num_instances
    areas = scenes.masks.flatten(2).sum(dim=2).masked_fill(~scenes.valid, -1)
    largest = areas.argmax(dim=1)
    host = scenes.masks[rows, largest] & (count > 0)[:, None, None]
    depth = distance_to_boundary(host).flatten(1).amax(dim=1)
    draw = torch.rand(b, generator=generator, device=device) < fraction
    chosen = draw & (count < n) & (depth >= 5)
    whole_of = torch.full((b, n), -1, dtype=torch.int64, device=device)
    if not bool(chosen.any()):
        return scenes, whole_of

    centre = center_clicks(torch.where(chosen[:, None, None], host, torch.ones_like(host)))
    radius = depth * (0.35 + 0.25 * torch.rand(b, generator=generator, device=device))
    coords = torch.arange(size, device=device, dtype=torch.float32) + 0.5
    dx = coords.view(1, 1, size) - centre[:, 0].view(b, 1, 1)
    dy = coords.view(1, size, 1) - centre[:, 1].view(b, 1, 1)
    spot = (dx * dx + dy * dy <= (radius * radius).view(b, 1, 1)) & host & chosen[:, None, None]

    host_colour = (scenes.images * host[:, None]).flatten(2).sum(dim=2) / host.flatten(1).sum(dim=1).clamp(min=1)[:, None]
    shift = 0.3 + 0.4 * torch.rand(b, 3, generator=generator, device=device)
    colour = (host_colour + shift) % 1.0
    spread = scenes.config.noise * 12 ** 0.5
    painted = colour[:, :, None, None] + spread * (torch.rand(scenes.images.shape, generator=generator,
                                                               device=device) - 0.5)
    images = torch.where(spot[:, None], painted.clamp(0, 1), scenes.images)

    slot = count.clamp(max=n - 1)
    masks = scenes.masks.clone()
    masks[rows, largest] &= ~spot
    masks[rows, slot] = torch.where(chosen[:, None, None], spot, masks[rows, slot])
    valid = scenes.valid.clone()
    valid[rows, slot] |= chosen
    names = scenes.config.class_names
    host_label = scenes.labels[rows, largest]
    spot_label = torch.full_like(host_label, names.index("circle")) if "circle" in names else host_label
    labels = scenes.labels.clone()
    labels[rows, slot] = torch.where(chosen, spot_label, labels[rows, slot])
    semantic = torch.where(spot, spot_label[:, None, None], scenes.semantic)
    instance_map = torch.where(spot, (slot + 1)[:, None, None], scenes.instance_map)
    whole_of[rows[chosen], slot[chosen]] = largest[chosen]
    nested = SceneBatch(images=images, semantic=semantic, instance_map=instance_map, masks=masks,
                        boxes=_boxes(masks), labels=labels, valid=valid, config=scenes.config)
    return nested, whole_of


@dataclass
class PromptTask:
    """The inputs of one training step (see the module docstring).

    Attributes:
        images: float ``(N, 3, H, W)``, the batch's distinct images (N divides B).
        image_of: int64 ``(B,)`` the image of every row (row ``r`` prompts image ``r % N``).
        targets: bool ``(B, H, W)`` the mask each row's prompt asks for.
        clicks: float ``(B, 2)`` first positive click of every row.
        boxes: float ``(B, 4)`` jittered boxes of the object of every row.
        num_clicks, num_boxes: rows ``[0, num_clicks)`` are one-click rows,
            the next ``num_boxes`` box rows, the rest correction rows.
        corrections: correction clicks of the correction rows (1 or 2).
        generator: random source for the correction clicks.
        asks_whole: bool ``(B,)`` one-click rows whose click is on a nested
            spot and whose target is the whole thing under it.
    """

    images: torch.Tensor
    image_of: torch.Tensor
    targets: torch.Tensor
    clicks: torch.Tensor
    boxes: torch.Tensor
    num_clicks: int
    num_boxes: int
    corrections: int
    generator: torch.Generator
    asks_whole: torch.Tensor



def prompt_tasks(batch_size: int = 32, config: SceneConfig | None = None, seed: int = 0,
                 device: torch.device | str = "cpu", click_fraction: float = 0.4, box_fraction: float = 0.3,
                 nest_fraction: float = 0.25, prompts_per_image: int = 1
                 ) -> Iterator[tuple[PromptTask, torch.Tensor]]:
    """Endless ``(PromptTask, targets)`` training batches generated on ``device``.

    Args:
        batch_size: prompts (rows) per batch, at least 3.
        config: scene options (default :class:`SceneConfig`, 64 x 64).
        seed: seed of the scenes and of the prompts.
        click_fraction, box_fraction: shares of one-click and box rows; the
            rest are correction rows.
        nest_fraction: share of scenes that get a nested spot (ambiguous clicks).
        prompts_per_image: rows per scene, each about a different object
            where the scene has enough (SAM trains several prompts per
            image: the encoder then runs on ``batch_size / prompts_per_image``
            images); must divide ``batch_size``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 3:
        raise ValueError(f"batch_size must be an int >= 3, got {batch_size!r}")
    if (isinstance(prompts_per_image, bool) or not isinstance(prompts_per_image, int) or prompts_per_image < 1
            or batch_size % prompts_per_image):
        raise ValueError(f"prompts_per_image must be a positive int that divides batch_size ({batch_size}), "
                         f"got {prompts_per_image!r}")
    if not (0 <= click_fraction and 0 <= box_fraction and click_fraction + box_fraction <= 1):
        raise ValueError(f"click_fraction and box_fraction must be >= 0 with a sum <= 1, "
                         f"got {click_fraction} and {box_fraction}")
    config = config or SceneConfig(min_objects=1)
    if config.min_objects < 1:
        raise ValueError(f"config.min_objects must be at least 1 (every scene needs a target), got {config.min_objects}")
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(int(seed) + 1)
    num_clicks = round(batch_size * click_fraction)
    num_boxes = round(batch_size * box_fraction)
    num_images = batch_size // prompts_per_image
    rows = torch.arange(batch_size, device=device)
    image_of = rows % num_images
    for scenes in scene_stream(num_images, config, seed=seed, device=device):
        scenes, whole_of = nest_spots(scenes, nest_fraction, generator)
        pick = torch.rand(scenes.valid.shape, generator=generator, device=device).masked_fill(~scenes.valid, -1)
        order = pick.argsort(dim=1, descending=True)[:, :prompts_per_image]  # (N, K) distinct objects
        order = torch.where(scenes.valid.gather(1, order), order, order[:, :1])  # a scene with fewer: repeat
        chosen = order.T.reshape(-1)  # row k * N + n: object k of image n
        own = scenes.masks[image_of, chosen]
        clicks = random_clicks(own, generator)
        # A click on a nested spot asks, half the time, for the whole thing under it.
        parent = whole_of[image_of, chosen]
        whole = scenes.masks[image_of, parent.clamp(min=0)] | own
        ask_whole = (parent >= 0) & (torch.rand(batch_size, generator=generator, device=device) < 0.5)
        ask_whole &= rows < num_clicks
        targets = torch.where(ask_whole[:, None, None], whole, own)
        boxes = jitter_boxes(scenes.boxes[image_of, chosen], config.size, generator=generator)
        corrections = int(torch.randint(1, 3, (1,), generator=generator, device=device))
        yield (PromptTask(scenes.images, image_of, targets, clicks, boxes, num_clicks, num_boxes, corrections,
                          generator, ask_whole), targets)
