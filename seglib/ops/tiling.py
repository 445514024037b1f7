"""Overlap-tile inference: segment an image of any size with a network trained on small tiles.

The image is mirror-padded at its borders, cut into tiles of a fixed size
that overlap, each tile goes through the network, and the predictions are
blended back into one map. This is how U-Net's authors segmented large
microscopy images; it also makes a fixed-size network usable on any size.

Geometry (one axis; :func:`tile_grid` computes it):

* the model maps a tile of ``tile`` pixels to ``out_tile = tile - 2 * context``
  pixels (``context = 0`` for "same" padding, > 0 for "valid" convolutions,
  where the output is the centre of the input tile);
* neighbouring output tiles overlap by ``overlap`` pixels, so they start
  ``step = out_tile - overlap`` apart; the first one starts ``overlap / 2``
  pixels before the image;
* the image is mirror-padded by ``context + overlap / 2`` pixels on the top
  and left and as much as the last tile needs on the bottom and right.

Each tile's logits are weighted by a window that is 1 in its centre and falls
linearly over its outer ``overlap / 2`` pixels (where the tile lacks
context), and the weighted logits are averaged.

``border="inside"`` is the alternative for "same"-padded networks, which met
the zero padding of their own convolutions at every image edge in training:
the tiles stay inside the image (the last one flush with its far edge) and
nothing is mirrored, so each image edge is a tile edge, as in training.
Mirroring oriented texture (stripes) draws a chevron seam at the image edge
that such a network can read as an outline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from seglib.common import eval_mode
from seglib.validation import check_float_tensor, check_image, check_int, check_tensor

__all__ = ["TileGrid", "interior_agreement", "mirror_pad", "tile_grid", "tiled_predict"]


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of :func:`tiled_predict` lie.

    Attributes:
        height, width: size of the image.
        tile: side of an input tile; ``out_tile`` of its prediction.
        context: pixels the model removes on each side (``(tile - out_tile) / 2``).
        overlap: overlap of neighbouring output tiles; ``margin = overlap // 2``.
        step: distance between tile starts, ``out_tile - overlap``.
        pad: ``(top, bottom, left, right)`` mirror padding of the image.
        rows, cols: start of each tile in the padded image (the input tile
            covers ``[start, start + tile)``).
    """

    height: int
    width: int
    tile: int
    out_tile: int
    context: int
    overlap: int
    step: int
    pad: tuple[int, int, int, int]
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @property
    def margin(self) -> int:
        return self.overlap // 2

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def input_boxes(self) -> torch.Tensor:
        """float ``(N, 4)`` xyxy boxes of the input tiles in padded-image pixels, row by row."""
        return torch.tensor([[c, r, c + self.tile, r + self.tile] for r in self.rows for c in self.cols],
                            dtype=torch.float32)

    def image_box(self) -> torch.Tensor:
        """float ``(1, 4)`` xyxy box of the original image inside the padded image."""
        top, _, left, _ = self.pad
        return torch.tensor([[left, top, left + self.width, top + self.height]], dtype=torch.float32)


BORDERS = ("mirror", "inside")


def _starts(size: int, out_tile: int, margin: int, step: int) -> tuple[int, ...]:
    """Starts of the output tiles along one axis, relative to ``-margin``; enough to cover ``size``."""
    count = 1 if size + 2 * margin <= out_tile else 1 + math.ceil((size + 2 * margin - out_tile) / step)
    return tuple(k * step for k in range(count))


def _inside_starts(size: int, tile: int, step: int) -> tuple[int, ...]:
    """Starts of tiles that stay inside ``[0, size)``, ``step`` apart, the last one flush with the far edge."""
    return tuple(range(0, size - tile, step)) + (size - tile,)


def tile_grid(height: int, width: int, tile: int, overlap: int, context: int = 0, border: str = "mirror"
              ) -> TileGrid:
    """The tiling of a ``height x width`` image (see the module docstring).

    Args:
        height, width: image size, any positive ints.
        tile: side of the square input tile.
        overlap: overlap of neighbouring output tiles, an even int ``>= 0``
            (with ``border="inside"``, the least overlap: the last tile may overlap more).
        context: pixels the model loses on each side of a tile (valid convolutions).
        border: ``"mirror"`` (pad the image by reflection) or ``"inside"``
            (tiles inside the image; needs ``context == 0`` and an image at least one tile large).

    Raises:
        ValueError: if the overlap is odd, or not smaller than the output tile
            ``tile - 2 * context``; for ``"inside"``, a model with context or an
            image smaller than a tile.
    """
    check_int("height", height, 1)
    check_int("width", width, 1)
    check_int("tile", tile, 1)
    check_int("overlap", overlap, 0)
    check_int("context", context, 0)
    if overlap % 2:
        raise ValueError(f"overlap must be even (half of it is blended on each side of a tile), got {overlap}")
    out_tile = tile - 2 * context
    if out_tile < 1:
        raise ValueError(f"tile {tile} leaves no output after the model's context of {context} pixels per side")
    if overlap >= out_tile:
        what = f"the output tile ({tile} - 2 x {context} context = {out_tile})" if context else f"tile ({tile})"
        raise ValueError(f"overlap ({overlap}) must be smaller than {what}; use a larger tile or a smaller overlap")
    margin, step = overlap // 2, out_tile - overlap
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    if border == "inside":
        if context or min(height, width) < tile:
            raise ValueError(f"border='inside' needs a 'same'-padded model (context 0, got {context}) and an image "
                             f"at least one tile large ({tile}), got {height}x{width}; use border='mirror'")
        rows, cols = _inside_starts(height, tile, step), _inside_starts(width, tile, step)
        return TileGrid(height, width, tile, out_tile, context, overlap, step, (0, 0, 0, 0), rows, cols)
    rows, cols = _starts(height, out_tile, margin, step), _starts(width, out_tile, margin, step)
    lead = context + margin
    pad = (lead, rows[-1] + tile - lead - height, lead, cols[-1] + tile - lead - width)
    return TileGrid(height, width, tile, out_tile, context, overlap, step, pad, rows, cols)


def mirror_pad(images: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Mirror (reflect) padding of ``(B, C, H, W)`` maps by ``(top, bottom, left, right)`` pixels.

    Reflection repeats, so the padding may be larger than the image (a pad of
    ``H`` or more reflects the reflection).
    """
    check_float_tensor("images", images)
    if len(pad) != 4:
        raise ValueError(f"pad must be (top, bottom, left, right), got {pad!r}")
    top, bottom, left, right = (check_int(f"pad[{i}]", p, 0) for i, p in enumerate(pad))
    rows = _reflect_index(images.shape[-2], top, bottom, images.device)
    cols = _reflect_index(images.shape[-1], left, right, images.device)
    return images[..., rows[:, None], cols[None, :]]


def _reflect_index(size: int, before: int, after: int, device) -> torch.Tensor:
    """Indices of a repeated mirror reflection (edge pixel not repeated) of ``range(size)``."""
    positions = torch.arange(-before, size + after, device=device)
    if size == 1:
        return torch.zeros_like(positions)
    period = 2 * (size - 1)
    folded = positions.remainder(period)
    return torch.where(folded < size, folded, period - folded)


def _window(out_tile: int, margin: int, device, dtype) -> torch.Tensor:
    """``(out_tile, out_tile)`` blending weights: 1 inside, a linear ramp over ``margin`` pixels at the edges."""
    i = torch.arange(out_tile, device=device, dtype=dtype)
    ramp = torch.minimum(i + 1, out_tile - i) / (margin + 1)
    ramp = ramp.clamp(max=1)
    return ramp[:, None] * ramp[None, :]


def _run(model: nn.Module, tiles: torch.Tensor) -> torch.Tensor:
    out = model(tiles)
    if isinstance(out, dict):
        out = out["out"]
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise TypeError(f"model must return logits (B,C,H,W) (or a dict with 'out'), got {type(out).__name__}")
    return out


def _context(model: nn.Module, tile: int, channels: int, device, dtype) -> int:
    """Pixels the model loses per side on a ``tile x tile`` input; clear errors if it does not fit."""
    try:
        with torch.no_grad():
            out = _run(model, torch.zeros(1, channels, tile, tile, device=device, dtype=dtype))
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"tile {tile} is not compatible with the model: {exc}") from exc
    out_h, out_w = out.shape[-2:]
    lost = tile - out_h
    if out_h != out_w or lost < 0 or lost % 2:
        raise ValueError(f"tile {tile} is not compatible with the model: it maps a {tile}x{tile} tile to "
                         f"{out_h}x{out_w}; overlap-tile inference needs a square output that is the input "
                         "or its centre")
    return lost // 2


def tiled_predict(model: nn.Module, image: torch.Tensor, tile: int, overlap: int, batch_size: int = 16,
                  border: str = "mirror") -> torch.Tensor:
    """Segment an image of any size tile by tile, with mirror padding and blending.

    Args:
        model: maps ``(N, 3, tile, tile)`` to logits ``(N, C, t, t)`` where
            ``t = tile`` ("same" padding) or ``t = tile - 2 * context`` (valid
            convolutions: the centre). It runs in eval mode under ``no_grad``
            and its training mode is restored afterwards.
        image: float ``(3, H, W)`` or ``(B, 3, H, W)``, any ``H, W``.
        tile: side of the input tiles, one size the model accepts.
        overlap: overlap of neighbouring output tiles in pixels, even, smaller
            than the output tile.
        batch_size: tiles per forward pass.
        border: ``"mirror"`` or ``"inside"`` (see :func:`tile_grid`).

    Returns:
        Blended logits ``(C, H, W)`` or ``(B, C, H, W)`` (as ``image``), on the image's device.

    Raises:
        ValueError: overlap not smaller than the tile, odd overlap, or a tile
            size the model does not accept.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_tensor("image", image, "(3, H, W) or (B, 3, H, W)", "float", (3, 4))
    check_image("image", image, batched=image.dim() == 4)
    check_int("tile", tile, 1)
    check_int("overlap", overlap, 0)
    check_int("batch_size", batch_size, 1)
    if overlap >= tile:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    single = image.dim() == 3
    images = image[None] if single else image
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else images.device
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else images.dtype
    with eval_mode(model):
        context = _context(model, tile, images.shape[1], device, dtype)
        grid = tile_grid(images.shape[-2], images.shape[-1], tile, overlap, context, border)
        logits = _blend(model, mirror_pad(images.to(device, dtype), grid.pad), grid, batch_size)
    logits = logits.to(image.device)
    return logits[0] if single else logits


def _blend(model: nn.Module, padded: torch.Tensor, grid: TileGrid, batch_size: int) -> torch.Tensor:
    """Weighted mean of the tile logits, cropped to the image: ``(B, C, H, W)``."""
    starts = [(r, c) for r in grid.rows for c in grid.cols]
    out_h = grid.rows[-1] + grid.out_tile
    out_w = grid.cols[-1] + grid.out_tile
    total = weight = None
    with torch.no_grad():
        for b in range(padded.shape[0]):
            for first in range(0, len(starts), batch_size):
                chunk = starts[first:first + batch_size]
                tiles = torch.stack([padded[b, :, r:r + grid.tile, c:c + grid.tile] for r, c in chunk])
                out = _run(model, tiles).float()
                if total is None:
                    total = out.new_zeros(padded.shape[0], out.shape[1], out_h, out_w)
                    weight = out.new_zeros(out_h, out_w)
                    window = _window(grid.out_tile, grid.margin, out.device, out.dtype)
                for (r, c), logits in zip(chunk, out):
                    total[b, :, r:r + grid.out_tile, c:c + grid.out_tile] += window * logits
                    if b == 0:
                        weight[r:r + grid.out_tile, c:c + grid.out_tile] += window
    top, left = grid.pad[0] - grid.context, grid.pad[2] - grid.context  # the image's first output pixel
    return (total / weight)[..., top:top + grid.height, left:left + grid.width]


def interior_agreement(a: torch.Tensor, b: torch.Tensor, border: int) -> float:
    """Fraction of pixels where two label maps agree, leaving out ``border`` pixels at each image edge.

    Args:
        a, b: integer label maps of the same shape ``(H, W)`` or ``(B, H, W)``.
        border: pixels ignored at every edge, ``>= 0``, less than half the
            smaller side.
    """
    for name, labels in (("a", a), ("b", b)):
        if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.dim() not in (2, 3):
            got = (labels.dtype, tuple(labels.shape)) if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise TypeError(f"{name} must be an integer label map (H,W) or (B,H,W), got {got}")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    check_int("border", border, 0)
    h, w = a.shape[-2:]
    if 2 * border >= min(h, w):
        raise ValueError(f"border ({border}) must be less than half of the smaller side of {h}x{w}")
    inner = (slice(None),) * (a.dim() - 2) + (slice(border, h - border), slice(border, w - border))
    return float((a[inner] == b[inner]).float().mean())
