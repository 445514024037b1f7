"""The image encoder: the heavy part of a promptable model, run once per image.

SAM's encoder is a Vision Transformer (ViT-H, -L or -B; MobileSAM's is a tiny
ViT) that turns a 1024 x 1024 image into a 64 x 64 grid of 256-d embeddings,
a stride of 16. Ours is a small CNN that turns a 64 x 64 image into a
16 x 16 grid of ``embed_dim``-d embeddings (stride 4), then mixes the whole
grid with a few transformer blocks, as a ViT does. Like SAM 2's encoder it
also hands the mask decoder its higher-resolution feature maps (strides 2
and 1), which the decoder adds while upsampling, for sharp mask edges.

The encoder never sees a prompt: that is what lets a predictor encode an
image once and answer many prompts cheaply.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from seglib.models.common import LayerNorm2d


class ImageFeatures(NamedTuple):
    """What the image encoder hands the mask decoder.

    Attributes:
        embedding: float ``(B, D, H/4, W/4)``, the image embedding.
        high_res: ``(B, C1, H/2, W/2)`` and ``(B, C0, H, W)`` feature maps,
            coarse to fine.
    """

    embedding: torch.Tensor
    high_res: tuple[torch.Tensor, torch.Tensor]

    def expand(self, repeats: torch.Tensor | int) -> "ImageFeatures":
        """Features repeated along the batch for several prompt sets per image.

        Args:
            repeats: int, or int64 ``(B,)`` number of prompt sets of each image.
        """
        def rep(t):
            return t.repeat_interleave(repeats, dim=0)

        return ImageFeatures(rep(self.embedding), tuple(rep(t) for t in self.high_res))

    def take(self, index: torch.Tensor | slice) -> "ImageFeatures":
        """The features of some images, in the order of ``index`` (int64 ``(K,)`` or a slice); may repeat."""
        return ImageFeatures(self.embedding[index], tuple(t[index] for t in self.high_res))

    @staticmethod
    def cat(parts: "list[ImageFeatures]") -> "ImageFeatures":
        """Features of several batches as one batch, in order."""
        return ImageFeatures(torch.cat([p.embedding for p in parts]),
                             tuple(torch.cat(level) for level in zip(*(p.high_res for p in parts))))


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
    )


class EncoderBlock(nn.Module):
    """A pre-norm transformer block on the ``(B, h*w, C)`` tokens of the grid."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self._self_attention(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))

    def _self_attention(self, x: torch.Tensor) -> torch.Tensor:
        """``self.attn(x, x, x)`` computed with ``scaled_dot_product_attention``: ``(B, n, C)`` to ``(B, n, C)``.

        The same weights and result as ``nn.MultiheadAttention``, without its
        inference fast path, which on a CPU takes about twice as long here.
        """
        b, n, c = x.shape
        heads = self.attn.num_heads
        qkv = F.linear(x, self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = qkv.view(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)                 # (B, heads, n, C / heads)
        return self.attn.out_proj(out.transpose(1, 2).reshape(b, n, c))


class ImageEncoder(nn.Module):
    """Image ``(B, 3, H, W)`` in [0, 1] to :class:`ImageFeatures`.

    Args:
        embed_dim: D, channels of the embedding.
        widths: channels at strides 1, 2 and 4 of the convolutional stem.
        depth: transformer blocks on the stride-4 grid.
        heads: attention heads of those blocks.
        image_size: side of the (square) input; fixes the learned position
            embedding of the grid.
    """

    def __init__(self, embed_dim: int = 64, widths: tuple[int, int, int] = (16, 32, 64), depth: int = 2,
                 heads: int = 4, image_size: int = 64) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4 (the stride of the embedding), got {image_size}")
        c0, c1, c2 = widths
        self.image_size = image_size
        self.stage0 = nn.Sequential(_conv(3, c0), _conv(c0, c0))
        self.stage1 = nn.Sequential(_conv(c0, c1, stride=2), _conv(c1, c1))
        self.stage2 = nn.Sequential(_conv(c1, c2, stride=2), _conv(c2, c2))
        grid = image_size // 4
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, c2))
        self.blocks = nn.Sequential(*[EncoderBlock(c2, heads) for _ in range(depth)])
        self.neck = nn.Sequential(
            nn.Conv2d(c2, embed_dim, 1, bias=False),
            LayerNorm2d(embed_dim),
            nn.Conv2d(embed_dim, embed_dim, 3, padding=1, bias=False),
            LayerNorm2d(embed_dim),
        )
        self.high_res_channels = (c1, c0)

    def forward(self, images: torch.Tensor) -> ImageFeatures:
        """Encode a batch of images; see :class:`ImageFeatures` for the shapes."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B,3,H,W), got {tuple(images.shape)}")
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"images must be {self.image_size}x{self.image_size} (the encoder's image_size), "
                             f"got {tuple(images.shape[-2:])}")
        f0 = self.stage0(images - 0.5)
        f1 = self.stage1(f0)
        f2 = self.stage2(f1)
        b, c, h, w = f2.shape
        tokens = self.blocks(f2.flatten(2).transpose(1, 2) + self.pos_embed)
        grid = tokens.transpose(1, 2).reshape(b, c, h, w)
        return ImageFeatures(self.neck(grid), (f1, f0))
