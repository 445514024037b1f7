"""Learned upsampling layers and the checkerboard artifacts a transposed convolution can leave.

============================  ========================================================================
``UPSAMPLING_KINDS``          ``"transposed"``, ``"nearest"``, ``"bilinear"``
``transposed_padding``        padding and output_padding that make a transposed conv scale sizes exactly
``upsample_layer``            a layer that multiplies H and W by ``scale``: a transposed convolution,
                              or a fixed resize followed by a stride-1 convolution ("resize-convolution")
``SuperResolver``             a tiny network that learns to upsample images by ``scale`` with one such layer
``superresolution_batches``   endless ``(low-res, full-res)`` pairs of generated scenes for training it
``checkerboard_score``        share of an image's variance that repeats with the period of the stride
``checkerboard_amplitude``    root-mean-square of that repeating pattern, in pixel units
============================  ========================================================================

A transposed convolution whose kernel size is not a multiple of its stride
adds more kernel taps to some output cells than to others (Odena, Dumoulin and
Olah, "Deconvolution and checkerboard artifacts", Distill 2016), so even a
constant input can come out as a grid pattern with the period of the stride.
Resizing first (nearest or bilinear) and then convolving with stride 1 gives
every output cell the same number of taps by construction.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from seglib.data.shapes import SceneConfig, scene_stream

__all__ = [
    "UPSAMPLING_KINDS",
    "SuperResolver",
    "checkerboard_amplitude",
    "checkerboard_score",
    "superresolution_batches",
    "transposed_padding",
    "upsample_layer",
]

UPSAMPLING_KINDS = ("transposed", "nearest", "bilinear")


def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def _check_kind(kind: object) -> str:
    if kind not in UPSAMPLING_KINDS:
        raise ValueError(f"kind must be one of {UPSAMPLING_KINDS}, got {kind!r}")
    return kind


def transposed_padding(kernel_size: int, scale: int) -> tuple[int, int]:
    """``(padding, output_padding)`` that make ``ConvTranspose2d(k, stride=scale)`` output exactly ``scale * n``.

    The output size ``(n-1)s - 2p + k + output_padding`` equals ``s*n`` when
    ``2p - output_padding = k - s``; this picks the smallest such ``p >= 0``.
    """
    _check_positive_int("kernel_size", kernel_size)
    _check_positive_int("scale", scale, 2)
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
    _check_kind(kind)
    _check_positive_int("in_channels", in_channels)
    _check_positive_int("out_channels", out_channels)
    _check_positive_int("kernel_size", kernel_size)
    _check_positive_int("scale", scale, 2)
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
        self.kind = _check_kind(kind)
        _check_positive_int("width", width)
        self.head = nn.Conv2d(3, width, 3, padding=1, padding_mode="replicate")
        self.up = upsample_layer(kind, width, width, kernel_size, scale)
        self.tail = nn.Conv2d(width, 3, 3, padding=1, padding_mode="replicate")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 4 or x.shape[1] != 3:
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a float tensor of shape (B, 3, H, W), got {got}")
        return self.tail(F.relu(self.up(F.relu(self.head(x)))))


def superresolution_batches(batch_size: int = 16, config: SceneConfig | None = None, scale: int = 2, seed: int = 0,
                            device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless training pairs ``(low_res, images)``: the scenes averaged down by ``scale``.

    ``low_res`` is ``(B, 3, H/scale, W/scale)``, ``images`` is ``(B, 3, H, W)``;
    ``config.size`` must be a multiple of ``scale``.
    """
    _check_positive_int("scale", scale, 2)
    config = config or SceneConfig()
    if config.size % scale:
        raise ValueError(f"config.size must be a multiple of scale ({scale}), got {config.size}")
    for scenes in scene_stream(batch_size, config, seed=seed, device=device):
        yield F.avg_pool2d(scenes.images, scale), scenes.images


def _periodic_part(images: object, period: object, border: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(crop, centred, pattern)``: the cropped images, the same minus their mean per channel, and the best
    ``period``-periodic approximation of ``centred``; all float64 ``(B, C, H - 2*border, W - 2*border)``."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor of shape (B, C, H, W), got {got}")
    _check_positive_int("period", period, 2)
    _check_positive_int("border", border, 0)
    height, width = images.shape[-2:]
    if min(height, width) - 2 * border < period:
        raise ValueError(f"images of {height}x{width} with border={border} leave less than one period ({period}) "
                         "of pixels; expected larger images or a smaller border")
    crop = images[..., border:height - border, border:width - border].double()
    centred = crop - crop.mean(dim=(-2, -1), keepdim=True)
    pattern = torch.empty_like(centred)
    for row in range(period):
        for column in range(period):
            phase = centred[..., row::period, column::period]
            pattern[..., row::period, column::period] = phase.mean(dim=(-2, -1), keepdim=True)
    return crop, centred, pattern


def checkerboard_score(images: torch.Tensor, period: int = 2, border: int = 0) -> torch.Tensor:
    """Share of each image's variance explained by a pattern that repeats every ``period`` pixels.

    The pixels split into ``period**2`` phases by ``(row % period, column %
    period)``. The best ``period``-periodic approximation of an image takes
    each phase's mean; its variance divided by the image's variance (both
    summed over channels) is the score: 1 for a pure grid pattern such as a
    checkerboard, about 0 for a smooth image, and 0 for a constant one.

    Args:
        images: float ``(B, C, H, W)``.
        period: the stride of the upsampling layer under test, at least 2.
        border: pixels cropped from every side first (padding effects).

    Returns:
        float ``(B,)`` in [0, 1].
    """
    crop, centred, pattern = _periodic_part(images, period, border)
    total = centred.pow(2).sum(dim=(1, 2, 3))
    periodic = pattern.pow(2).sum(dim=(1, 2, 3))
    # An image whose variance is rounding noise (below 1e-10 of its energy) counts as constant.
    constant = total <= 1e-10 * crop.pow(2).sum(dim=(1, 2, 3))
    score = torch.where(constant, torch.zeros_like(total), periodic / total.clamp_min(torch.finfo(total.dtype).tiny))
    return score.to(images.dtype)


def checkerboard_amplitude(images: torch.Tensor, period: int = 2, border: int = 0) -> torch.Tensor:
    """Root-mean-square of the ``period``-periodic pattern of each image, in the units of its pixels.

    The pattern is the one of :func:`checkerboard_score`; for an upsampler fed
    a constant image, whose output should be constant too, this is the
    strength of the grid it adds (e.g. in grey levels of [0, 1] images).

    Args:
        images: float ``(B, C, H, W)``.
        period, border: as in :func:`checkerboard_score`.

    Returns:
        float ``(B,)``, >= 0.
    """
    _, _, pattern = _periodic_part(images, period, border)
    return pattern.pow(2).mean(dim=(1, 2, 3)).sqrt().to(images.dtype)
