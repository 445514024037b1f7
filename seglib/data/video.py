"""Generated video clips: shapes that move, turn and hide behind each other.

A clip keeps one static background (sky and grass, as in the scenes of
:mod:`seglib.data.shapes`) and moves a few things across it: each thing
travels in a straight line at constant speed, bounces off the image border
and slowly turns. Things are painted in a fixed order, so when two meet the
later one hides the earlier one. With ``occlude=True`` the top thing is
sent through the bottom thing's position in the middle of the clip and is
made larger and faster, so the bottom thing disappears for some frames and comes back:
the situation where a video model needs a memory.

Every frame carries the visible mask of every thing, with identities kept
across frames (thing ``k`` is slot ``k`` in every frame):

=========  =====================================================
``frames``  float32 ``(T, 3, H, W)`` in [0, 1]
``masks``   bool ``(T, N, H, W)``, visible part of each thing (may be empty)
``boxes``   float32 ``(T, N, 4)`` xyxy on pixel edges, zeros when hidden
=========  =====================================================

:func:`clip_batches` stacks clips into the endless training batches of
SAM 2's memory (:class:`ClipBatch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import torch

from seglib.data.shapes import SUPPORTED_SHAPES, SceneConfig, _background, _boxes, _shape_masks, _visible

MAX_DRAWS = 100
"""Attempts of :func:`generate_clip` at a clip whose bottom thing starts at least half visible."""


@dataclass
class VideoClip:
    """A generated clip (see the module docstring for the tensors)."""

    frames: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    config: SceneConfig = field(repr=False)

    def __len__(self) -> int:
        return self.frames.shape[0]

    @property
    def num_objects(self) -> int:
        """N, the number of things (the same in every frame)."""
        return self.masks.shape[1]

    @property
    def present(self) -> torch.Tensor:
        """bool ``(T, N)``: which things show at least one pixel in each frame."""
        return self.masks.flatten(2).any(dim=2)


def _bounce(raw: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Fold unconstrained positions into ``[low, high]`` as a ball bouncing off walls would move."""
    span = (high - low).clamp(min=1e-6)
    folded = torch.remainder(raw - low, 2 * span)
    return low + torch.where(folded > span, 2 * span - folded, folded)


def _draw_things(num_frames: int, config: SceneConfig, speed: tuple[float, float], occlude: bool,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw the things of one clip and their paths: colours ``(N, 3)`` and full masks bool ``(T, N, H, W)``."""
    low_speed, high_speed = speed

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=generator)

    size = config.size
    least = max(config.min_objects, 2 if occlude else 1)
    n = int(torch.randint(least, config.max_objects + 1, (1,), generator=generator))
    kind = torch.tensor([SUPPORTED_SHAPES.index(s) for s in config.shapes])[
        torch.randint(0, len(config.shapes), (n,), generator=generator)]
    low, high = config.object_size
    diameter = uniform(n, low, high) * size
    if occlude:  # a small thing at the bottom, a larger and faster one on top
        diameter[0] = low * size
        diameter[-1] = (low + 0.6 * (high - low)) * size
    aspect = uniform(n, 0.45, 1.0)
    colour = uniform((n, 3), 0.05, 0.95)
    margin = 0.35 * diameter
    start = margin[:, None] + (size - 2 * margin[:, None]) * torch.rand((n, 2), generator=generator)
    heading = uniform(n, 0, 2 * math.pi)
    pace = uniform(n, low_speed, high_speed)
    if occlude:
        pace[-1] = 1.5 * high_speed
    velocity = pace[:, None] * torch.stack([heading.cos(), heading.sin()], dim=1)
    time = torch.arange(num_frames, dtype=torch.float32).view(num_frames, 1, 1)
    lo, hi = margin.view(1, n, 1), (size - margin).view(1, n, 1)
    raw = start.unsqueeze(0) + velocity.unsqueeze(0) * time  # (T, N, 2)
    if occlude:
        middle = num_frames // 2
        meeting = _bounce(raw[middle, 0], lo[0, 0], hi[0, 0])
        # Positions fold with a fixed function of the unfolded path, so an
        # unfolded path through `meeting` at frame `middle` passes there.
        raw[:, -1] = meeting + velocity[-1] * (time[:, 0] - middle)
    centre = _bounce(raw, lo, hi)
    angle = uniform(n, 0, 2 * math.pi) + uniform(n, -0.08, 0.08) * time.view(num_frames, 1)

    full = _shape_masks(kind.expand(num_frames, n), centre[..., 0], centre[..., 1], diameter.expand(num_frames, n),
                        angle, aspect.expand(num_frames, n), size)
    return colour, full


def generate_clip(num_frames: int = 20, config: SceneConfig | None = None, seed: int = 0,
                  speed: tuple[float, float] = (1.0, 2.5), occlude: bool = True) -> VideoClip:
    """One clip, deterministic for a seed (generated on the CPU).

    Args:
        num_frames: T, at least 2.
        config: scene options; its size, object count (at least 2 with
            ``occlude``), object sizes, shapes, background and noise are used.
        seed: the same seed gives the same clip.
        speed: ``(low, high)`` speed of the things in pixels per frame.
        occlude: make the top thing, larger than the bottom one and 1.5 times
            the top speed, cross it in the middle of the clip; the bottom
            thing is at least half visible on frame 0.

    Returns:
        A :class:`VideoClip`.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 2:
        raise ValueError(f"num_frames must be an int >= 2, got {num_frames!r}")
    config = config or SceneConfig(min_objects=2, max_objects=3)
    if not isinstance(config, SceneConfig):
        raise TypeError(f"config must be a SceneConfig, got {type(config).__name__}")
    low_speed, high_speed = (float(v) for v in speed)
    if not 0 <= low_speed <= high_speed:
        raise ValueError(f"speed must be (low, high) with 0 <= low <= high, got {speed!r}")
    if occlude and config.max_objects < 2:
        raise ValueError(f"occlude needs at least 2 things, got config.max_objects={config.max_objects}")
    generator = torch.Generator().manual_seed(int(seed))
    # With `occlude`, a clip whose bottom thing starts more than half hidden is drawn again
    # (with the next random numbers), so that a user can click it on frame 0.
    for _ in range(MAX_DRAWS):
        colour, full = _draw_things(num_frames, config, (low_speed, high_speed), occlude, generator)
        masks = _visible(full)
        if not occlude or 2 * int(masks[0, 0].sum()) >= int(full[0, 0].sum()):
            break
    else:
        raise ValueError(f"no clip with a visible bottom thing in {MAX_DRAWS} draws for seed {seed}: "
                         "check config.object_size")
    _, background = _background(config, 1, generator, "cpu")
    painted = (masks.unsqueeze(2) * colour.view(1, -1, 3, 1, 1)).sum(dim=1)
    frames = torch.where(masks.any(dim=1, keepdim=True), painted, background.expand(num_frames, -1, -1, -1))
    if config.noise > 0:
        spread = config.noise * math.sqrt(12)
        frames = frames + spread * (torch.rand(frames.shape, generator=generator) - 0.5)
    return VideoClip(frames=frames.clamp(0, 1).float(), masks=masks, boxes=_boxes(masks), config=config)


def generate_clips(n: int, num_frames: int = 20, config: SceneConfig | None = None, seed: int = 0,
                   **options) -> list[VideoClip]:
    """``n`` clips with seeds ``seed, seed + 1, ...`` (options as in :func:`generate_clip`)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    return [generate_clip(num_frames, config, seed + i, **options) for i in range(n)]


TRAIN_SEED_OFFSET = 1_000_000
"""Training clips use seeds from here on; seeds below it are left for test clips."""


@dataclass
class ClipBatch:
    """One training batch of clips, one target thing each (the bottom thing, slot 0).

    Attributes:
        frames: float ``(B, T, 3, H, W)``.
        targets: bool ``(B, T, H, W)``, the visible part of the target on each frame.
        correction_frame: frame that gets a correction click in training (``-1``: none).
        generator: random source for the clicks.
    """

    frames: torch.Tensor
    targets: torch.Tensor
    correction_frame: int
    generator: torch.Generator


def clip_batches(batch_size: int = 8, num_frames: int = 10, config: SceneConfig | None = None, seed: int = 0,
                 device: torch.device | str = "cpu", correction_rate: float = 0.5
                 ) -> Iterator[tuple[ClipBatch, torch.Tensor]]:
    """Endless ``(ClipBatch, targets)`` training batches of occluded clips (generated on the CPU, moved to ``device``).

    Clip ``k`` of the stream has seed ``TRAIN_SEED_OFFSET + seed * 10**6 + k``.

    Args:
        batch_size: clips per batch, at least 1.
        num_frames: frames per clip, at least 2.
        config: as for :func:`generate_clip`.
        seed: seed of the stream.
        device: where the tensors go.
        correction_rate: share of batches in which one later frame gets a correction click.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if not 0 <= correction_rate <= 1:
        raise ValueError(f"correction_rate must be in [0, 1], got {correction_rate!r}")
    device = torch.device(device)
    generator = torch.Generator().manual_seed(int(seed) + 7)
    clicks = torch.Generator(device=device).manual_seed(int(seed) + 11)
    start = TRAIN_SEED_OFFSET + int(seed) * 10**6
    while True:
        clips = generate_clips(batch_size, num_frames, config, seed=start)
        start += batch_size
        frames = torch.stack([c.frames for c in clips]).to(device)
        targets = torch.stack([c.masks[:, 0] for c in clips]).to(device)
        corrected = float(torch.rand((), generator=generator)) < correction_rate
        frame = int(torch.randint(1, num_frames, (), generator=generator)) if corrected else -1
        yield ClipBatch(frames, targets, frame, clicks), targets
