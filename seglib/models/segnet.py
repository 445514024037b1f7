"""A small SegNet (Badrinarayanan, Kendall and Cipolla, 2017): the decoder upsamples with the encoder's pooling indices.

Each encoder stage is two 3x3 conv-BN-ReLU layers and a 2x2 max-pool that
remembers *where* each maximum was (``return_indices=True``). Each decoder
stage puts every value back at that position, zeros elsewhere
(``max_unpool2d``), then two 3x3 conv-BN-ReLU layers fill in the rest. The
indices cost no weights and carry the positions of strong responses (edges)
from the encoder to the decoder. ``upsampling="transposed"`` swaps each
unpooling for a learned 2x2 transposed convolution with stride 2 and nothing
else: the same network without the indices, for a like-for-like comparison.

Shapes for ``SegNet(widths=(16, 32, 64))`` on ``(B, 3, 64, 64)``::

    enc1  16 x 64 x 64 -> pool -> 16 x 32 x 32     dec3  unpool -> 64 x 16 x 16 -> 32 x 16 x 16
    enc2  32 x 32 x 32 -> pool -> 32 x 16 x 16     dec2  unpool -> 32 x 32 x 32 -> 16 x 32 x 32
    enc3  64 x 16 x 16 -> pool -> 64 x  8 x  8     dec1  unpool -> 16 x 64 x 64 -> 16 x 64 x 64
                                                   head  1x1 -> C x 64 x 64
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seglib.validation import check_choice, check_float_tensor, check_ints, check_positive_int

__all__ = ["SEGNET_UPSAMPLING", "SegNet"]

SEGNET_UPSAMPLING = ("unpool", "transposed")


def _pair(in_channels: int, out_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for channels in (in_channels, out_channels):
        layers += [nn.Conv2d(channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class SegNet(nn.Module):
    """Encoder-decoder with max-unpooling (or transposed convolutions), see the module docstring.

    Args:
        num_classes: C, the channels of the logits.
        widths: channels of the encoder stages; each stage halves H and W.
        upsampling: ``"unpool"`` (the pooling indices) or ``"transposed"``.

    Shapes: images ``(B, 3, H, W)``, H and W multiples of ``2 ** len(widths)`` ->
    logits ``(B, C, H, W)``.
    """

    def __init__(self, num_classes: int = 5, widths: Sequence[int] = (16, 32, 64), upsampling: str = "unpool") -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        widths = check_ints("widths", widths)
        self.upsampling = check_choice("upsampling", upsampling, SEGNET_UPSAMPLING)
        self.widths = widths
        channels = (3,) + widths
        self.encoder = nn.ModuleList(_pair(channels[i], channels[i + 1]) for i in range(len(widths)))
        # Decoder stage i (deepest first) works at widths[i] and hands widths[i - 1] on.
        self.decoder = nn.ModuleList(_pair(widths[i], widths[max(i - 1, 0)]) for i in reversed(range(len(widths))))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(w, w, 2, stride=2) if upsampling == "transposed" else nn.Identity()
            for w in reversed(widths))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor("x", x, "(B, 3, H, W)", 3)
        stride = 2 ** len(self.widths)
        if x.shape[-2] % stride or x.shape[-1] % stride:
            raise ValueError(f"x must have a height and width that are multiples of {stride}, got {tuple(x.shape[-2:])}")
        indices = []
        for stage in self.encoder:
            x, index = F.max_pool2d(stage(x), 2, return_indices=True)
            indices.append(index)
        for stage, up in zip(self.decoder, self.up):
            index = indices.pop()
            x = F.max_unpool2d(x, index, 2) if self.upsampling == "unpool" else up(x)
            x = stage(x)
        return self.head(x)
