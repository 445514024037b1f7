"""A small DeepLabv3 (Chen et al., 2017): atrous residual backbone, ASPP, and head.

DeepLab keeps the feature maps large by replacing the last strides of the
backbone with *atrous* (dilated) convolutions: a 3x3 kernel with dilation
``d`` samples the input ``d`` pixels apart, so it sees a ``(2d + 1) x (2d + 1)``
window with nine weights, and the receptive field keeps growing without
downsampling. *Atrous Spatial Pyramid Pooling* (ASPP) then looks at the same
map with several dilation rates in parallel, plus a global average (image
pooling), and merges them with a 1x1 convolution.

Shapes for ``DeepLab(num_classes=5)`` (``widths=(16, 32, 64, 128)``,
``output_stride=8``) on images ``(B, 3, 64, 64)``::

    stem    3x3 conv, stride 2                      (B, 16, 32, 32)
    layer1  residual block                          (B, 16, 32, 32)
    layer2  residual block, stride 2                (B, 32, 16, 16)
    layer3  residual block, stride 2                (B, 64,  8,  8)
    layer4  residual block, dilation 2 (no stride)  (B, 128, 8,  8)
    ASPP    1x1 + 3x3 at rates 1, 2, 3 + pooling    (B, 64,  8,  8)
    head    3x3 conv, 1x1 classifier                (B, 5,   8,  8)
    output  bilinear upsampling x8                  (B, 5,  64, 64)

With ``output_stride=16`` layer4 has stride 2 instead (features 4 x 4).

:func:`empirical_receptive_field` measures which input pixels one output
pixel depends on, by back-propagating from that pixel.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seglib.models.unet import ConvBlock
from seglib.validation import check_ints, check_positive_int

__all__ = ["ASPP", "AtrousBackbone", "DeepLab"]

OUTPUT_STRIDES = (4, 8, 16)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                  stride: int = 1) -> nn.Sequential:
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                   dilation=dilation, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class AtrousBackbone(nn.Module):
    """A small ResNet whose strides beyond ``output_stride`` become dilations.

    A stride-2 stem, then four residual blocks (:class:`~seglib.models.unet.ConvBlock`)
    with nominal strides 1, 2, 2, 2, i.e. overall strides 2, 4, 8, 16. Once
    the overall stride reaches ``output_stride``, each further stride-2 block
    keeps stride 1 and doubles the dilation instead, as DeepLab does.

    Args:
        widths: channels of the four blocks (the stem has ``widths[0]``).
        output_stride: 4, 8 or 16, input size / feature size.
        in_channels: channels of the images.

    Shapes: ``(B, in_channels, H, W)`` -> ``(B, widths[3], ceil(H / os), ceil(W / os))``.

    Attributes:
        strides, dilations: per block, what was used (for inspection).
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128), output_stride: int = 8, in_channels: int = 3):
        super().__init__()
        widths = check_ints("widths", widths, 4)
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride!r}")
        check_positive_int("in_channels", in_channels)
        self.output_stride = output_stride
        self.stem = _conv_bn_relu(in_channels, widths[0], 3, stride=2)
        stride_now, dilation = 2, 1
        self.strides, self.dilations = [], []
        blocks = []
        for i, nominal in enumerate((1, 2, 2, 2)):
            stride = nominal
            if nominal > 1 and stride_now >= output_stride:
                stride, dilation = 1, dilation * nominal
            stride_now *= stride
            self.strides.append(stride)
            self.dilations.append(dilation)
            blocks.append(ConvBlock(widths[i - 1] if i else widths[0], widths[i], "same", residual=True,
                                    stride=stride, dilation=dilation))
        self.layers = nn.Sequential(*blocks)
        self.out_channels = widths[3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling: parallel views of one map at several rates.

    Branches (each ``out_channels`` wide, with batch norm and ReLU): a 1x1
    convolution, one 3x3 convolution per dilation rate in ``rates``, and
    image pooling (global average, 1x1 convolution, broadcast back). They are
    concatenated and projected to ``out_channels`` by a 1x1 convolution.

    Args:
        in_channels, out_channels: channels in and out.
        rates: dilation rates of the 3x3 branches. Choose them for the size of
            the feature map: a rate close to the map's side mostly samples the
            zero padding, and the 3x3 branch degenerates into a 1x1 one.

    Shapes: ``(B, in_channels, h, w)`` -> ``(B, out_channels, h, w)``.
    """

    def __init__(self, in_channels: int, out_channels: int = 64, rates: Sequence[int] = (1, 2, 3)):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        self.rates = check_ints("rates", rates)
        self.branches = nn.ModuleList([_conv_bn_relu(in_channels, out_channels, 1)] +
                                      [_conv_bn_relu(in_channels, out_channels, 3, rate) for rate in self.rates])
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                     nn.ReLU(inplace=True))
        self.project = _conv_bn_relu(out_channels * (len(self.rates) + 2), out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = [branch(x) for branch in self.branches]
        views.append(self.pooling(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(views, dim=1))


class DeepLab(nn.Module):
    """DeepLabv3-style network: :class:`AtrousBackbone`, :class:`ASPP`, a small head, bilinear upsampling.

    Args:
        num_classes: C.
        widths: channels of the backbone's four blocks.
        output_stride: 4, 8 or 16.
        rates: ASPP dilation rates.
        aspp_channels: channels of ASPP and the head.
        in_channels: channels of the images.

    Shapes: images ``(B, in_channels, H, W)`` -> logits ``(B, C, H, W)``
    (any ``H, W``; the logits are computed at ``1 / output_stride`` and upsampled).
    """

    def __init__(self, num_classes: int = 5, widths: Sequence[int] = (16, 32, 64, 128), output_stride: int = 8,
                 rates: Sequence[int] = (1, 2, 3), aspp_channels: int = 64, in_channels: int = 3):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.backbone = AtrousBackbone(widths, output_stride, in_channels)
        self.aspp = ASPP(self.backbone.out_channels, aspp_channels, rates)
        self.head = nn.Sequential(_conv_bn_relu(aspp_channels, aspp_channels, 3),
                                  nn.Conv2d(aspp_channels, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"x must be a float tensor (B,{self.in_channels},H,W), got {got}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B,{self.in_channels},H,W), got {tuple(x.shape)}")
        logits = self.head(self.aspp(self.backbone(x)))
        return F.interpolate(logits, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)


def dilated_stack(kernel_sizes: Sequence[int], dilations: Sequence[int]) -> nn.Sequential:
    """Single-channel, linear stack of "same" 3x3-style convolutions with all weights 1 (no activation).

    With positive weights and no ReLU, every input pixel inside the receptive
    field gets a non-zero gradient, so :func:`empirical_receptive_field` finds it exactly.
    """
    layers = []
    for k, d in zip(kernel_sizes, dilations):
        conv = nn.Conv2d(1, 1, k, padding=d * (k - 1) // 2, dilation=d, bias=False)
        nn.init.ones_(conv.weight)
        layers.append(conv)
    return nn.Sequential(*layers)
