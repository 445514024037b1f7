"""Synthetic scenes: the offline dataset that every notebook shares.

A scene is a background of *stuff* (sky above a wavy horizon, grass below, or
a plain textured background) with 1 to N *things* on top: circles, rectangles
and triangles of random colour, size, rotation and aspect, which may overlap
and occlude each other. Every scene carries all the targets of the task
ladder at once:

=================  ==============================================================
``images``         float32 ``(B,3,H,W)`` in [0,1]
``semantic``       int64 ``(B,H,W)``, class ids (see :attr:`SceneConfig.class_names`)
``instance_map``   int64 ``(B,H,W)``, 0 for stuff, ``k`` for the k-th thing (1-based)
``masks``          bool ``(B,N,H,W)``, visible part of each thing, padded to N
``boxes``          float32 ``(B,N,4)``, xyxy in pixels (pixel edges, so
                   ``x2 - x1`` is the width in pixels), padded with zeros
``labels``         int64 ``(B,N)``, class id of each thing, ``-1`` for padding
``valid``          bool ``(B,N)``, which of the N slots hold a thing
=================  ==============================================================

Generation is vectorised torch on the chosen device and deterministic per
seed (on a given device type). The fixed train/val/test splits are always
generated on the CPU so their content does not depend on the machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import torch
from torch.utils.data import Dataset

from seglib.data.drawing import SUPPORTED_SHAPES, _background, _boxes, _shape_masks, _uniform, _visible

BACKGROUNDS = ("sky_grass", "plain")
IGNORE_INDEX = 255
PANOPTIC_DIVISOR = 1000
MAX_OBJECTS = 16

SPLIT_SEEDS = {"train": 1_000_003, "val": 2_000_003, "test": 3_000_017}
SPLIT_SIZES = {"train": 2000, "val": 200, "test": 500}
_CHUNK = 128


@dataclass(frozen=True)
class SceneConfig:
    """Options of the scene generator.

    Args:
        size: image side in pixels (images are square), at least 8.
        min_objects, max_objects: number of things per scene, drawn uniformly
            in ``[min_objects, max_objects]`` (``0 <= min <= max <= 16``).
            Things hidden behind others are dropped, so a scene can end up with
            fewer.
        object_size: ``(low, high)`` diameter of a thing as a fraction of the
            image side, ``0 < low <= high <= 1``. Small values such as
            ``(0.04, 0.08)`` make the tiny objects of class-imbalance studies.
        shapes: which thing classes appear, a non-empty subset of
            ``("circle", "rectangle", "triangle")``.
        background: ``"sky_grass"`` (two stuff classes) or ``"plain"`` (one).
        noise: standard deviation of the (uniform) pixel noise, ``>= 0``.
        min_visible: a thing whose visible area is below this fraction of its
            own area (because others cover it) is removed, in ``[0, 1]``.
    """

    size: int = 64
    min_objects: int = 1
    max_objects: int = 4
    object_size: tuple[float, float] = (0.2, 0.5)
    shapes: tuple[str, ...] = SUPPORTED_SHAPES
    background: str = "sky_grass"
    noise: float = 0.04
    min_visible: float = 0.35

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise TypeError(f"size must be an int, got {type(self.size).__name__}")
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        for name in ("min_objects", "max_objects"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if not 0 <= self.min_objects <= self.max_objects <= MAX_OBJECTS:
            raise ValueError(
                "need 0 <= min_objects <= max_objects <= "
                f"{MAX_OBJECTS}, got min_objects={self.min_objects}, "
                f"max_objects={self.max_objects}"
            )
        if len(self.object_size) != 2:
            raise ValueError(f"object_size must be (low, high), got {self.object_size!r}")
        low, high = (float(v) for v in self.object_size)
        if not 0 < low <= high <= 1:
            raise ValueError(
                "object_size must satisfy 0 < low <= high <= 1 (fractions of the "
                f"image side), got {self.object_size!r}"
            )
        object.__setattr__(self, "object_size", (low, high))
        shapes = tuple(self.shapes)
        if not shapes:
            raise ValueError("shapes must name at least one thing class")
        unknown = [s for s in shapes if s not in SUPPORTED_SHAPES]
        if unknown or len(set(shapes)) != len(shapes):
            raise ValueError(
                f"shapes must be distinct names from {SUPPORTED_SHAPES} (at most "
                f"{len(SUPPORTED_SHAPES)} classes), got {self.shapes!r}"
            )
        object.__setattr__(self, "shapes", shapes)
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if not self.noise >= 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        if not 0 <= self.min_visible <= 1:
            raise ValueError(f"min_visible must be in [0, 1], got {self.min_visible}")

    @property
    def stuff_names(self) -> tuple[str, ...]:
        """Names of the stuff classes (ids ``0 .. len-1``)."""
        return ("sky", "grass") if self.background == "sky_grass" else ("background",)

    @property
    def class_names(self) -> tuple[str, ...]:
        """All class names; the index of a name is its id in label maps."""
        return self.stuff_names + self.shapes

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def thing_ids(self) -> tuple[int, ...]:
        """Class ids of the things."""
        return tuple(range(len(self.stuff_names), self.num_classes))

    @property
    def stuff_ids(self) -> tuple[int, ...]:
        """Class ids of the stuff classes."""
        return tuple(range(len(self.stuff_names)))


@dataclass
class SceneBatch:
    """A batch of generated scenes with all their targets (see module docstring)."""

    images: torch.Tensor
    semantic: torch.Tensor
    instance_map: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    valid: torch.Tensor
    config: SceneConfig = field(repr=False)

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> "SceneBatch":
        """A copy with every tensor on ``device``."""
        moved = {
            name: getattr(self, name).to(device)
            for name in ("images", "semantic", "instance_map", "masks", "boxes", "labels", "valid")
        }
        return SceneBatch(config=self.config, **moved)

    def __getitem__(self, index: int | slice) -> "SceneBatch":
        """Scenes ``index`` (an int keeps a batch dimension of 1)."""
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"scene index {index} out of range for {len(self)} scenes")
            index = slice(index % len(self), index % len(self) + 1)
        if not isinstance(index, slice):
            raise TypeError(f"index must be an int or a slice, got {type(index).__name__}")
        picked = {
            name: getattr(self, name)[index]
            for name in ("images", "semantic", "instance_map", "masks", "boxes", "labels", "valid")
        }
        return SceneBatch(config=self.config, **picked)

    @property
    def num_instances(self) -> torch.Tensor:
        """int64 ``(B,)``: number of things in each scene."""
        return self.valid.sum(dim=1)

    def instances(self, i: int) -> dict[str, torch.Tensor]:
        """Things of scene ``i`` without padding.

        Returns:
            ``masks`` bool ``(n,H,W)``, ``boxes`` float32 ``(n,4)`` xyxy,
            ``labels`` int64 ``(n,)`` class ids.
        """
        if not -len(self) <= i < len(self):
            raise IndexError(f"scene index {i} out of range for {len(self)} scenes")
        keep = self.valid[i]
        return {"masks": self.masks[i][keep], "boxes": self.boxes[i][keep], "labels": self.labels[i][keep]}

    def detection_targets(self) -> list[dict[str, torch.Tensor]]:
        """One target dict per scene in torchvision's detection format."""
        return [self.instances(i) for i in range(len(self))]

    @property
    def panoptic(self) -> torch.Tensor:
        """int64 ``(B,H,W)``: ``class_id * 1000 + instance number`` (0 for stuff)."""
        return self.semantic * PANOPTIC_DIVISOR + self.instance_map

    @property
    def scene_labels(self) -> torch.Tensor:
        """int64 ``(B,)``: class of the largest thing (the classification target),
        or ``-1`` for a scene without things."""
        areas = self.masks.flatten(2).sum(dim=2).masked_fill(~self.valid, -1)
        largest = areas.argmax(dim=1, keepdim=True)
        label = self.labels.gather(1, largest).squeeze(1)
        return torch.where(self.valid.any(dim=1), label, torch.full_like(label, -1))


def _areas(masks: torch.Tensor) -> torch.Tensor:
    """Pixel counts int32 ``(B, N)`` of bool masks ``(B, N, H, W)``.

    Eight mask bytes are added at once as one int64 word: byte lanes never carry
    while fewer than 256 words are summed, so summing groups of at most 255
    words and then the lanes is exact, and many times faster than a bool sum.
    """
    flat = masks.reshape(*masks.shape[:2], -1).view(torch.uint8)
    words = -(-flat.shape[2] // 8)
    groups = -(-words // 255)
    per_group = -(-words // groups)
    flat = torch.nn.functional.pad(flat, (0, groups * per_group * 8 - flat.shape[2]))
    lanes = flat.reshape(*flat.shape[:2], groups, per_group * 8).view(torch.int64).sum(dim=3)
    return lanes.view(torch.uint8).sum(dim=2, dtype=torch.int32)


def _empty_batch(config: SceneConfig, n: int, device) -> SceneBatch:
    """Uninitialised storage for ``n`` scenes, filled chunk by chunk (no final concatenation)."""
    size, slots = config.size, max(config.max_objects, 1)
    return SceneBatch(
        images=torch.empty(n, 3, size, size, device=device),
        semantic=torch.empty(n, size, size, dtype=torch.int64, device=device),
        instance_map=torch.empty(n, size, size, dtype=torch.int64, device=device),
        masks=torch.empty(n, slots, size, size, dtype=torch.bool, device=device),
        boxes=torch.empty(n, slots, 4, device=device),
        labels=torch.empty(n, slots, dtype=torch.int64, device=device),
        valid=torch.empty(n, slots, dtype=torch.bool, device=device),
        config=config,
    )


def _generate_chunk(config: SceneConfig, generator, device, out: SceneBatch) -> None:
    """Draw ``len(out)`` scenes into the views of ``out``."""
    batch, size, slots = len(out), config.size, max(config.max_objects, 1)
    n_stuff = len(config.stuff_names)
    low, high = config.object_size

    counts = torch.randint(config.min_objects, config.max_objects + 1, (batch, 1), generator=generator, device=device)
    valid = torch.arange(slots, device=device).view(1, slots) < counts
    shape_index = torch.randint(0, len(config.shapes), (batch, slots), generator=generator, device=device)
    kind = torch.tensor([SUPPORTED_SHAPES.index(s) for s in config.shapes], device=device)[shape_index]
    diameter = _uniform((batch, slots), low, high, generator, device) * size
    margin = 0.35 * diameter
    cx = margin + (size - 2 * margin) * torch.rand((batch, slots), generator=generator, device=device)
    cy = margin + (size - 2 * margin) * torch.rand((batch, slots), generator=generator, device=device)
    angle = _uniform((batch, slots), 0, 2 * math.pi, generator, device)
    aspect = _uniform((batch, slots), 0.45, 1.0, generator, device)
    colour = _uniform((batch, slots, 3), 0.05, 0.95, generator, device)

    full = _shape_masks(kind, cx, cy, diameter, angle, aspect, size) & valid[..., None, None]
    full_area = _areas(full)
    visible_area = _areas(_visible(full))
    keep = valid & (full_area >= 4) & (visible_area >= config.min_visible * full_area)
    masks = _visible(full & keep[..., None, None])

    # Move kept things to the front of the slot axis, preserving paint order.
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    keep = keep.gather(1, order)
    masks = masks[torch.arange(batch, device=device)[:, None], order]  # indexing: 4x faster than gather here
    labels = (shape_index + n_stuff).gather(1, order).masked_fill(~keep, -1)
    colour = colour.gather(1, order[..., None].expand_as(colour))

    semantic, image = _background(config, batch, generator, device)
    # Things are disjoint after occlusion, so one reduction paints them all.
    slot_ids = torch.arange(1, slots + 1, device=device, dtype=torch.uint8).view(1, slots, 1, 1)
    instance_map = out.instance_map.copy_((masks.to(torch.uint8) * slot_ids).amax(dim=1))
    is_thing = instance_map > 0
    slot = (instance_map - 1).clamp(min=0)
    torch.where(is_thing, labels.gather(1, slot.flatten(1)).view_as(slot), semantic, out=out.semantic)
    palette = colour.transpose(1, 2)  # (B,3,N): a gather per channel is 4x faster than one over (B,HW,3)
    thing_colour = palette.gather(2, slot.flatten(1).unsqueeze(1).expand(-1, 3, -1)).view(batch, 3, size, size)
    image = torch.where(is_thing.unsqueeze(1), thing_colour, image, out=out.images)
    if config.noise > 0:
        # Uniform noise with standard deviation `noise`: as good as Gaussian
        # here and several times cheaper to draw on a CPU.
        spread = config.noise * math.sqrt(12)
        noise = torch.rand(image.shape, generator=generator, device=device)
        image.add_(noise.sub_(0.5).mul_(spread))
    image.clamp_(0, 1)
    out.masks.copy_(masks)
    out.boxes.copy_(_boxes(masks))
    out.labels.copy_(labels)
    out.valid.copy_(keep)


def generate_scenes(
    n: int,
    config: SceneConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> SceneBatch:
    """Generate ``n`` scenes, deterministically for a given seed and device type.

    Args:
        n: number of scenes, ``>= 1``.
        config: generator options (default :class:`SceneConfig`).
        seed: seed of the scenes; the same seed gives the same scenes.
        device: where to generate (``"cuda"`` keeps a GPU fed without host copies).

    Returns:
        A :class:`SceneBatch` of ``n`` scenes.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    config = config or SceneConfig()
    if not isinstance(config, SceneConfig):
        raise TypeError(f"config must be a SceneConfig, got {type(config).__name__}")
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    scenes = _empty_batch(config, n, device)
    for start in range(0, n, _CHUNK):
        _generate_chunk(config, generator, device, scenes[start : start + _CHUNK])
    return scenes


def scene_stream(
    batch_size: int,
    config: SceneConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Iterator[SceneBatch]:
    """An endless, seeded stream of fresh training batches generated on ``device``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    config = config or SceneConfig()
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    while True:
        scenes = _empty_batch(config, batch_size, device)
        _generate_chunk(config, generator, device, scenes)
        yield scenes


def split_scenes(split: str, config: SceneConfig | None = None, n: int | None = None) -> SceneBatch:
    """The fixed ``"train"``, ``"val"`` or ``"test"`` split, generated on the CPU.

    Args:
        split: which split; each has its own seed so splits never overlap in seed.
        config: generator options; the same split of the same config is always
            the same set of scenes.
        n: number of scenes (default: 2000 train, 200 val, 500 test). A smaller
            ``n`` gives a prefix of the larger split only when ``n`` is a
            multiple of 128; otherwise it is its own fixed set.
    """
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {tuple(SPLIT_SEEDS)}, got {split!r}")
    return generate_scenes(SPLIT_SIZES[split] if n is None else n, config, seed=SPLIT_SEEDS[split])


class ShapesDataset(Dataset):
    """A fixed split of generated scenes as a torch ``Dataset``.

    ``dataset[i]`` is ``(image, target)``: image float32 ``(3,H,W)`` and, by
    ``target``:

    * ``"semantic"``: int64 ``(H,W)`` label map;
    * ``"instances"``: dict with ``masks`` ``(n,H,W)``, ``boxes`` ``(n,4)``,
      ``labels`` ``(n,)`` (torchvision detection format);
    * ``"class"``: int64 scalar, the class of the largest thing;
    * ``"panoptic"``: int64 ``(H,W)`` panoptic ids.
    """

    TARGETS = ("semantic", "instances", "class", "panoptic")

    def __init__(self, split: str = "train", config: SceneConfig | None = None, n: int | None = None,
                 target: str = "semantic") -> None:
        if target not in self.TARGETS:
            raise ValueError(f"target must be one of {self.TARGETS}, got {target!r}")
        self.target = target
        self.scenes = split_scenes(split, config, n)
        self.config = self.scenes.config
        self._classes = self.scenes.scene_labels

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} scenes")
        image = self.scenes.images[i]
        if self.target == "semantic":
            return image, self.scenes.semantic[i]
        if self.target == "instances":
            return image, self.scenes.instances(i)
        if self.target == "class":
            return image, self._classes[i]
        return image, self.scenes.panoptic[i]


def with_options(config: SceneConfig | None = None, **changes) -> SceneConfig:
    """A copy of ``config`` (default :class:`SceneConfig`) with some options changed."""
    return replace(config or SceneConfig(), **changes)
