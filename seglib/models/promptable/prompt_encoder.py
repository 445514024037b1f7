"""The prompt encoder: points, boxes and masks to tokens and a dense map.

SAM splits prompts in two kinds:

* **sparse** prompts (points and boxes) become one token each: the random
  Fourier-feature encoding of the position plus a learned embedding of what
  the point is (foreground click, background click, top-left or
  bottom-right corner of a box). A box is two corner tokens.
* **dense** prompts (a mask, usually the low-resolution logits of an earlier
  prediction) are downsampled by small convolutions to the embedding grid
  and later added to the image embedding; without a mask a learned
  "no mask" vector is added instead.

Positions use *random Fourier features* (Tancik et al., 2020): the point
``p`` in ``[0, 1]^2`` is mapped to ``[sin(2 pi (2p - 1) G), cos(2 pi (2p - 1) G)]``
with a fixed Gaussian matrix ``G`` of shape ``(2, D/2)``. The same encoding,
evaluated at every cell centre of the embedding grid, is the dense
positional encoding the mask decoder adds to the image embedding, so a
click token and the grid cell under it have matching codes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seglib.models.common import LayerNorm2d

NOT_A_POINT, NEGATIVE, POSITIVE, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT = -1, 0, 1, 2, 3
"""Point labels inside the prompt encoder (SAM's convention); users pass 0, 1 (and -1 for padding)."""


def random_fourier_features(coords: torch.Tensor, gaussian: torch.Tensor) -> torch.Tensor:
    """Random Fourier-feature encoding of normalised 2-D positions.

    Args:
        coords: float ``(..., 2)`` positions ``(x, y)`` in ``[0, 1]`` (fractions of
            the image width and height).
        gaussian: float ``(2, F)`` the fixed random projection.

    Returns:
        float ``(..., 2F)``: ``[sin(a), cos(a)]`` with ``a = 2 pi ((2 coords - 1) @ gaussian)``.
    """
    if not isinstance(coords, torch.Tensor) or not coords.is_floating_point() or coords.shape[-1:] != (2,):
        raise ValueError(f"coords must be a float tensor (..., 2), got "
                         f"{tuple(coords.shape) if isinstance(coords, torch.Tensor) else type(coords).__name__}")
    if not isinstance(gaussian, torch.Tensor) or gaussian.dim() != 2 or gaussian.shape[0] != 2:
        raise ValueError(f"gaussian must be a tensor (2, F), got "
                         f"{tuple(gaussian.shape) if isinstance(gaussian, torch.Tensor) else type(gaussian).__name__}")
    angles = 2 * math.pi * ((2 * coords - 1) @ gaussian.to(coords.dtype))
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier-feature position encoding with ``dim`` channels (``dim`` even).

    Args:
        dim: number of output channels.
        scale: standard deviation of the Gaussian matrix; larger values give
            finer (higher-frequency) codes.
        seed: the matrix is drawn from this seed, so every model built with the
            same arguments shares it (it is also saved as a buffer).
    """

    def __init__(self, dim: int, scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"dim must be even (sine and cosine halves), got {dim}")
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("gaussian", scale * torch.randn(2, dim // 2, generator=generator))

    def grid(self, height: int, width: int) -> torch.Tensor:
        """Encoding of the cell centres of an ``height x width`` grid: ``(dim, height, width)``."""
        ys = (torch.arange(height, device=self.gaussian.device, dtype=torch.float32) + 0.5) / height
        xs = (torch.arange(width, device=self.gaussian.device, dtype=torch.float32) + 0.5) / width
        coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
        return random_fourier_features(coords, self.gaussian).permute(2, 0, 1)

    def points(self, coords: torch.Tensor, image_size: int) -> torch.Tensor:
        """Encoding of pixel positions ``(B, N, 2)`` in an image of side ``image_size``: ``(B, N, dim)``."""
        return random_fourier_features(coords / image_size, self.gaussian)


class PromptEncoder(nn.Module):
    """Prompts to sparse tokens ``(B, N, D)`` and a dense embedding ``(B, D, h, w)``.

    Args:
        embed_dim: D, the width of the image embedding and of every token.
        image_size: side of the (square) input image in pixels.
        embedding_size: side of the image embedding grid (``image_size / 4``).
        mask_channels: hidden channels of the mask downscaler.
        dense_points: also draw the points and the box as images
            (:meth:`prompt_maps`) and pass them, with the mask, through the
            mask downscaler into the dense embedding. SAM does not (its points
            and boxes are tokens only, ``dense_points=False``); trained from
            scratch on a CPU budget the decoder learns several times faster
            with it, while the encoder still never sees a prompt.
    """

    CLICK_SIGMA = 3.0
    """Standard deviation in pixels of the bump drawn at a point by :meth:`prompt_maps`."""

    def __init__(self, embed_dim: int = 64, image_size: int = 64, embedding_size: int = 16,
                 mask_channels: int = 16, dense_points: bool = False) -> None:
        super().__init__()
        self.dense_points = dense_points
        if image_size != 4 * embedding_size:
            raise ValueError(f"image_size must be 4 * embedding_size (mask prompts are downscaled 4x), "
                             f"got image_size={image_size}, embedding_size={embedding_size}")
        self.embed_dim, self.image_size, self.embedding_size = embed_dim, image_size, embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim)
        # One learned vector per kind of point: negative, positive, box corners.
        self.point_embeddings = nn.Embedding(4, embed_dim)
        self.not_a_point_embed = nn.Parameter(torch.zeros(embed_dim))
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(4 if dense_points else 1, mask_channels // 4, 2, stride=2),
            LayerNorm2d(mask_channels // 4),
            nn.GELU(),
            nn.Conv2d(mask_channels // 4, mask_channels, 2, stride=2),
            LayerNorm2d(mask_channels),
            nn.GELU(),
            nn.Conv2d(mask_channels, embed_dim, 1),
        )
        self.no_mask_embed = nn.Parameter(torch.zeros(embed_dim))
        nn.init.normal_(self.not_a_point_embed, std=0.02)
        nn.init.normal_(self.no_mask_embed, std=0.02)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the embedding grid, ``(1, D, h, w)``."""
        return self.pe_layer.grid(self.embedding_size, self.embedding_size).unsqueeze(0)

    def embed_points(self, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Tokens of points ``(B, N, 2)`` with labels ``(B, N)`` in {-1, 0, 1, 2, 3}: ``(B, N, D)``."""
        tokens = self.pe_layer.points(points, self.image_size)
        kind = self.point_embeddings(labels.clamp(min=0))
        padding = (labels == NOT_A_POINT).unsqueeze(-1)
        return torch.where(padding, self.not_a_point_embed.expand_as(tokens), tokens + kind)

    def prompt_maps(self, points: torch.Tensor | None, labels: torch.Tensor | None,
                    boxes: torch.Tensor | None, batch: int) -> torch.Tensor:
        """The sparse prompts drawn as images, float ``(B, 3, H, W)`` at the input resolution.

        Channel 0 holds a Gaussian bump (standard deviation
        :attr:`CLICK_SIGMA` pixels) at every foreground point, channel 1 at
        every background point, channel 2 is 1 inside the box.
        """
        size, device = self.image_size, self.no_mask_embed.device
        centres = torch.arange(size, device=device, dtype=torch.float32) + 0.5
        xs, ys = centres.view(1, 1, 1, size), centres.view(1, 1, size, 1)
        maps = torch.zeros(batch, 3, size, size, device=device)
        if points is not None and points.shape[1] > 0:
            px, py = points[..., 0, None, None].float(), points[..., 1, None, None].float()
            bumps = torch.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * self.CLICK_SIGMA ** 2))  # (B, N, H, W)
            for channel, label in enumerate((POSITIVE, NEGATIVE)):
                maps[:, channel] = (bumps * (labels == label)[..., None, None]).amax(dim=1)
        if boxes is not None:
            x1, y1, x2, y2 = (boxes[:, i, None, None, None].float() for i in range(4))
            maps[:, 2:] = ((xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)).float()
        return maps

    def forward(self, points: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                boxes: torch.Tensor | None = None, masks: torch.Tensor | None = None,
                mask_valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed one prompt set per batch element.

        Args:
            points: float ``(B, N, 2)`` ``(x, y)`` in pixels, or ``None``.
            labels: int64 ``(B, N)``: 1 foreground, 0 background, -1 padding.
            boxes: float ``(B, 4)`` xyxy in pixels, or ``None``.
            masks: float ``(B, 1, H, W)`` mask logits at image resolution, or ``None``.
            mask_valid: bool ``(B,)``, which rows of ``masks`` are prompts (the
                others are treated as without a mask); default all.

        Returns:
            ``(sparse, dense)``: float ``(B, N', D)`` with ``N' = N + 2`` for a
            box (or ``N + 1``: SAM pads point-only prompts with one "not a
            point" token), and float ``(B, D, h, w)``.
        """
        batch = _batch_size(points, boxes, masks)
        device = self.no_mask_embed.device
        tokens = [torch.empty(batch, 0, self.embed_dim, device=device)]
        if points is not None:
            _check_points(points, labels, batch)
            tokens.append(self.embed_points(points.float(), labels.long()))
            if boxes is None:
                tokens.append(self.not_a_point_embed.expand(batch, 1, -1))
        if boxes is not None:
            if boxes.shape != (batch, 4):
                raise ValueError(f"boxes must have shape (B,4) = ({batch},4), got {tuple(boxes.shape)}")
            corners = boxes.float().reshape(batch, 2, 2)
            corner_labels = torch.tensor([BOX_TOP_LEFT, BOX_BOTTOM_RIGHT], device=boxes.device).expand(batch, 2)
            tokens.append(self.embed_points(corners, corner_labels))
        sparse = torch.cat(tokens, dim=1)
        if masks is not None and masks.shape != (batch, 1, self.image_size, self.image_size):
            raise ValueError(f"masks must have shape (B,1,H,W) = ({batch},1,{self.image_size},"
                             f"{self.image_size}), got {tuple(masks.shape)}")
        no_mask = self.no_mask_embed.view(1, -1, 1, 1)
        if masks is None and not self.dense_points:
            return sparse, no_mask.expand(batch, -1, self.embedding_size, self.embedding_size)
        has_mask = torch.zeros(batch, dtype=torch.bool, device=device)
        if masks is not None:
            has_mask = mask_valid.to(device) if mask_valid is not None else ~has_mask
        mask_channel = (masks.float() * has_mask.view(-1, 1, 1, 1) if masks is not None
                        else torch.zeros(batch, 1, self.image_size, self.image_size, device=device))
        if not self.dense_points:  # SAM: the downscaled mask, or the "no mask" vector
            grid = (batch, self.embed_dim, self.embedding_size, self.embedding_size)
            return sparse, torch.where(has_mask.view(-1, 1, 1, 1), self.mask_downscaling(mask_channel),
                                       no_mask.expand(grid))
        maps = self.prompt_maps(points, labels, boxes, batch)
        dense = self.mask_downscaling(torch.cat([mask_channel, maps], dim=1))
        return sparse, dense + torch.where(has_mask.view(-1, 1, 1, 1), torch.zeros_like(no_mask), no_mask)


def _batch_size(points, boxes, masks) -> int:
    for value in (points, boxes, masks):
        if value is not None:
            return value.shape[0]
    raise ValueError("give at least one prompt: points, boxes or masks")


def _check_points(points: torch.Tensor, labels: torch.Tensor | None, batch: int) -> None:
    if points.dim() != 3 or points.shape[-1] != 2:
        raise ValueError(f"points must have shape (B,N,2), got {tuple(points.shape)}")
    if labels is None or labels.shape != points.shape[:2]:
        got = None if labels is None else tuple(labels.shape)
        raise ValueError(f"labels must have shape (B,N) = {tuple(points.shape[:2])}, got {got}")
    if points.shape[0] != batch:
        raise ValueError(f"points hold {points.shape[0]} prompt sets but the other prompts {batch}")
