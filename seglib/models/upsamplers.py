"""Learned upsampling layers and the checkerboard artifacts a transposed convolution can leave.

============================  ========================================================================
``UPSAMPLING_KINDS``          ``"transposed"``, ``"nearest"``, ``"bilinear"``
``transposed_padding``        padding and output_padding that make a transposed conv scale sizes exactly
``upsample_layer``            a layer that multiplies H and W by ``scale``: a transposed convolution,
                              or a fixed resize followed by a stride-1 convolution ("resize-convolution")
``SuperResolver``             a tiny network that learns to upsample images by ``scale`` with one such layer
============================  ========================================================================

(Its training batches are :func:`seglib.data.batches.superresolution_batches`;
the grid it draws is measured by :func:`seglib.labs.upsampling.checkerboard_amplitude`.)

A transposed convolution whose kernel size is not a multiple of its stride
adds more kernel taps to some output cells than to others (Odena, Dumoulin and
Olah, "Deconvolution and checkerboard artifacts", Distill 2016), so even a
constant input can come out as a grid pattern with the period of the stride.
An even overlap (kernel a multiple of the stride) does not prevent the grid:
it appears whenever the kernel taps that land on each output phase do not sum
to the same value, which random or learned weights rarely do exactly.
Resizing first (nearest or bilinear) and then convolving with stride 1 gives
every output cell the same number of taps by construction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seglib.validation import check_choice, check_float_tensor, check_int

__all__ = ["SuperResolver", "UPSAMPLING_KINDS", "transposed_padding", "upsample_layer"]

UPSAMPLING_KINDS = ("transposed", "nearest", "bilinear")


def transposed_padding(kernel_size: int, scale: int) -> tuple[int, int]:
    """``(padding, output_padding)`` that make ``ConvTranspose2d(k, stride=scale)`` output exactly ``scale * n``.

    The output size ``(n-1)s - 2p + k + output_padding`` equals ``s*n`` when
    ``2p - output_padding = k - s``; this picks the smallest such ``p >= 0``.
    """
    check_int("kernel_size", kernel_size)
    check_int("scale", scale, 2)
    padding = max(0, math.ceil((kernel_size - scale) / 2))
    return padding, 2 * padding - (kernel_size - scale)


def upsample_layer(kind: str, in_channels: int, out_channels: int, kernel_size: int = 3, scale: int = 2) -> nn.Module:
    """A learned layer mapping ``(B, in_channels, H, W)`` to ``(B, out_channels, scale*H, scale*W)``.

    Args:
        kind: ``"transposed"``: ``ConvTranspose2d(kernel_size, stride=scale)``
            with the padding and output_padding of :func:`transposed_padding`;
            ``"nearest"`` or ``"bilinear"``: ``Upsample(scale)`` with that mode,
            then a ``Conv2d(kernel_size)`` with stride 1 and "same" replicate padding.
        in_channels, out_channels: channel counts.
        kernel_size: side of the learned kernel.
        scale: integer upsampling factor, at least 2.
    """
    check_choice("kind", kind, UPSAMPLING_KINDS)
    check_int("in_channels", in_channels)
    check_int("out_channels", out_channels)
    check_int("kernel_size", kernel_size)
    check_int("scale", scale, 2)
    if kind == "transposed":
        padding, output_padding = transposed_padding(kernel_size, scale)
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=scale, padding=padding,
                                  output_padding=output_padding)
    resize = nn.Upsample(scale_factor=scale, mode=kind, **({"align_corners": False} if kind == "bilinear" else {}))
    return nn.Sequential(resize, nn.Conv2d(in_channels, out_channels, kernel_size, padding="same",
                                           padding_mode="replicate"))


class SuperResolver(nn.Module):
    """Learns to upsample images by ``scale``: 3x3 conv, ReLU, one upsampling layer, ReLU, 3x3 conv.

    The only difference between two ``SuperResolver`` of different ``kind`` is
    the upsampling layer (:func:`upsample_layer`), so comparing them isolates it.

    Args:
        kind: one of :data:`UPSAMPLING_KINDS`.
        width: channels of the hidden feature maps.
        kernel_size: kernel side of the upsampling layer.
        scale: upsampling factor.

    Shapes: ``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, scale*H, scale*W)`` (not clamped).
    """

    def __init__(self, kind: str = "transposed", width: int = 32, kernel_size: int = 3, scale: int = 2):
        super().__init__()
        self.kind = check_choice("kind", kind, UPSAMPLING_KINDS)
        check_int("width", width)
        self.head = nn.Conv2d(3, width, 3, padding=1, padding_mode="replicate")
        self.up = upsample_layer(kind, width, width, kernel_size, scale)
        self.tail = nn.Conv2d(width, 3, 3, padding=1, padding_mode="replicate")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor("x", x, "(B, 3, H, W)", 3)
        return self.tail(F.relu(self.up(F.relu(self.head(x)))))


