"""Two more ways to build a U-Net level, next to the plain and residual pairs of 3x3 convolutions.

==================  ==========================================================================
``InceptionBlock``  GoogLeNet's idea: parallel branches (1x1; 1x1 then 3x3; 1x1 then two 3x3,
                    a factorised 5x5; 3x3 max-pool then 1x1) see the input at several scales,
                    and their outputs are concatenated; two such modules per block
``DenseBlock``      DenseNet's idea: each 3x3 layer reads the concatenation of the block's
                    input and every earlier layer's output; a 1x1 convolution merges them
==================  ==========================================================================

Both keep the size ("same" padding) and map ``(B, in_channels, H, W)`` to
``(B, out_channels, H, W)``, normalised and rectified, as ``ConvBlock`` does.
"""

from __future__ import annotations

import torch
from torch import nn

from seglib.validation import check_positive_int

__all__ = ["DenseBlock", "InceptionBlock", "InceptionModule"]


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """conv-BN-ReLU keeping the size."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class InceptionModule(nn.Module):
    """Four parallel branches, each giving ``out_channels // 4`` channels (the first takes the remainder).

    Branches: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3 (the 5x5 view, factorised as in
    Inception-v2); 3x3 max-pool (stride 1) -> 1x1. The 3x3 branches work at
    ``mid`` channels inside (default ``out_channels // 2``). Each convolution is
    followed by batch norm and ReLU. Shapes: ``(B, in, H, W)`` -> ``(B, out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, mid: int | None = None) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        if out_channels < 4:
            raise ValueError(f"out_channels must be at least 4 (four branches), got {out_channels}")
        branch = out_channels // 4
        mid = out_channels // 2 if mid is None else check_positive_int("mid", mid)
        self.branches = nn.ModuleList([
            _conv(in_channels, out_channels - 3 * branch, 1),
            nn.Sequential(_conv(in_channels, mid, 1), _conv(mid, branch, 3)),
            nn.Sequential(_conv(in_channels, mid, 1), _conv(mid, mid, 3), _conv(mid, branch, 3)),
            nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _conv(in_channels, branch, 1)),
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class InceptionBlock(nn.Sequential):
    """Two :class:`InceptionModule` s, ``in_channels -> out_channels -> out_channels``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(InceptionModule(in_channels, out_channels), InceptionModule(out_channels, out_channels))


class DenseBlock(nn.Module):
    """``layers`` 3x3 conv-BN-ReLU layers, each adding ``growth`` channels, then a 1x1 merge.

    Layer ``i`` reads ``cat(x, y_1, ..., y_{i-1})`` (``in + (i-1) * growth`` channels);
    the 1x1 conv-BN-ReLU maps ``cat(x, y_1, ..., y_layers)`` to ``out_channels``.
    ``growth`` defaults to ``out_channels // 2``.

    Shapes: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, layers: int = 3, growth: int | None = None) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("layers", layers)
        growth = max(out_channels // 2, 1) if growth is None else check_positive_int("growth", growth)
        self.layers = nn.ModuleList(_conv(in_channels + i * growth, growth, 3) for i in range(layers))
        self.merge = _conv(in_channels + layers * growth, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return self.merge(torch.cat(features, dim=1))
