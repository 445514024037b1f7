"""A small convolutional autoencoder, and measures of what its reconstructions lose.

==========================  ================================================================
``ConvAutoencoder``         strided convolutions down to a narrow bottleneck, learned
                            upsampling back up; trained to reproduce its input
``reconstruction_batches``  endless ``(images, images)`` pairs of generated scenes
``band_energy_ratio``       power of the reconstructions over power of the inputs, per
                            band of spatial frequency (1 = kept, 0 = lost)
==========================  ================================================================

Shapes: images float ``(B, 3, H, W)`` in [0, 1], ``H`` and ``W`` multiples of
``2 ** len(widths)``; the code (bottleneck) is ``(B, latent_channels, H / 2**n, W / 2**n)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from seglib.models.upsamplers import UPSAMPLING_KINDS, upsample_layer
from seglib.validation import check_float_tensor, check_int

__all__ = ["ConvAutoencoder"]


def _norm_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class ConvAutoencoder(nn.Module):
    """Encoder: per entry of ``widths`` a 3x3 convolution with stride 2 (halving H and W), batch norm
    and ReLU, then a 1x1 convolution down to ``latent_channels``: the bottleneck. Decoder: a 1x1
    convolution back up, per stage an upsampling layer doubling H and W with batch norm and ReLU,
    then a 3x3 convolution and a sigmoid.

    Args:
        widths: channels of the encoder stages (the decoder mirrors them).
        latent_channels: channels of the bottleneck; with ``n = len(widths)``
            the code holds ``latent_channels * H * W / 4**n`` numbers.
        upsampling: the decoder's layer, one of ``UPSAMPLING_KINDS``:
            ``"transposed"`` uses 4x4 transposed convolutions with stride 2
            (kernel divisible by the stride), the others resize then apply a 3x3 convolution.

    Shapes: ``(B, 3, H, W)`` -> reconstruction ``(B, 3, H, W)`` in [0, 1].
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64), latent_channels: int = 8,
                 upsampling: str = "transposed") -> None:
        super().__init__()
        if not isinstance(widths, (tuple, list)) or not widths:
            raise ValueError(f"widths must be a non-empty sequence of channel counts, got {widths!r}")
        widths = tuple(check_int(f"widths[{i}]", w) for i, w in enumerate(widths))
        check_int("latent_channels", latent_channels)
        if upsampling not in UPSAMPLING_KINDS:
            raise ValueError(f"upsampling must be one of {UPSAMPLING_KINDS}, got {upsampling!r}")
        self.widths, self.latent_channels = widths, latent_channels
        encoder: list[nn.Module] = []
        previous = 3
        for width in widths:
            encoder += [nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=False), *_norm_relu(width)]
            previous = width
        encoder.append(nn.Conv2d(previous, latent_channels, 1))
        self.encoder = nn.Sequential(*encoder)
        kernel_size = 4 if upsampling == "transposed" else 3
        decoder: list[nn.Module] = [nn.Conv2d(latent_channels, widths[-1], 1, bias=False), *_norm_relu(widths[-1])]
        for width, next_width in zip(widths[::-1], widths[::-1][1:] + (widths[0],)):
            decoder += [upsample_layer(upsampling, width, next_width, kernel_size), *_norm_relu(next_width)]
        decoder += [nn.Conv2d(widths[0], 3, 3, padding=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*decoder)

    @property
    def stride(self) -> int:
        """Downsampling factor from the image to the code, ``2 ** len(widths)``."""
        return 2 ** len(self.widths)

    def code_size(self, height: int, width: int) -> int:
        """Numbers in the code of one ``height x width`` image."""
        return self.latent_channels * (height // self.stride) * (width // self.stride)

    def _check_input(self, x: object) -> torch.Tensor:
        x = check_float_tensor("x", x)
        if x.shape[1] != 3 or x.shape[-2] % self.stride or x.shape[-1] % self.stride:
            raise ValueError(f"x must have shape (B, 3, H, W) with H and W multiples of {self.stride}, "
                             f"got {tuple(x.shape)}")
        return x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` -> code ``(B, latent_channels, H / stride, W / stride)``."""
        return self.encoder(self._check_input(x))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Code ``(B, latent_channels, h, w)`` -> images ``(B, 3, h * stride, w * stride)`` in [0, 1]."""
        code = check_float_tensor("code", code)
        if code.shape[1] != self.latent_channels:
            raise ValueError(f"code must have {self.latent_channels} channels, got shape {tuple(code.shape)}")
        return self.decoder(code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


