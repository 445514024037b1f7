"""Fully convolutional networks (Long, Shelhamer and Darrell, CVPR 2015), small.

The pieces, in the order notebook 02 uses them:

=========================  ===================================================
``Encoder``                plain VGG-like stages (convolutions, then a 2x2 max-pool);
                           stage ``i`` has stride ``2**(i+1)``
``PatchClassifier``        an encoder and a fully connected head: one class per patch
``conv_from_linear``       a ``Linear`` layer reading a ``(C, k, k)`` map as a ``k x k`` conv
``convolutionalize``       the classifier as a fully convolutional net: dense class scores
``bilinear_kernel``        the ``(k, k)`` kernel of bilinear upsampling by a factor
``bilinear_upsampler``     a ``ConvTranspose2d`` initialised to bilinear interpolation
``FCN``                    FCN-32s, FCN-16s or FCN-8s on one shared encoder
``sliding_window_scores``  the naive alternative: the classifier on a window per pixel
``receptive_field``        receptive field and stride of a chain of convs and pools
``forward_flops``          floating-point operations of one forward pass
``activation_bytes``       memory of the activations of one forward pass
``full_resolution_cost``   the other naive alternative: stride-1 convolutions only
=========================  ===================================================

Shapes: images float ``(B, 3, H, W)``; logits float ``(B, K, H, W)`` (no softmax).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from seglib.validation import check_choice, check_float_tensor, check_positive_int

__all__ = [
    "Encoder",
    "FCN",
    "PatchClassifier",
    "UPSAMPLER_INITS",
    "VARIANTS",
    "bilinear_kernel",
    "bilinear_upsampler",
    "build_fcn",
    "conv_from_linear",
    "convolutionalize",
]

#: FCN variant -> output strides whose class scores are summed (coarsest first).
VARIANTS: dict[str, tuple[int, ...]] = {"32s": (32,), "16s": (32, 16), "8s": (32, 16, 8)}
#: Starts of FCN's upsamplings: bilinear interpolation, or PyTorch's default random initialisation.
UPSAMPLER_INITS = ("bilinear", "random")


def _check_widths(widths: object, minimum_stages: int) -> tuple[int, ...]:
    if not isinstance(widths, (tuple, list)) or len(widths) < minimum_stages:
        raise ValueError(f"widths must be a sequence of at least {minimum_stages} channel counts, got {widths!r}")
    return tuple(check_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths))


class Encoder(nn.Sequential):
    """VGG-like encoder: per stage, ``convs`` x (3x3 conv, batch norm, ReLU), then a 2x2 max-pool.

    Stage ``i`` (0-based) halves the resolution, so its output has stride
    ``2**(i+1)`` and ``widths[i]`` channels. Called as a module it returns the
    last stage's map ``(B, widths[-1], H / 2**n, W / 2**n)``; :meth:`stages`
    returns every stage's output, which is what skip connections read.

    Args:
        widths: channels of each stage, e.g. ``(16, 32, 64, 128, 128)``.
        convs: convolutions per stage.
        in_channels: channels of the input image.
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128, 128), convs: int = 2, in_channels: int = 3):
        widths = _check_widths(widths, 1)
        check_positive_int("convs", convs)
        check_positive_int("in_channels", in_channels)
        stages = []
        previous = in_channels
        for width in widths:
            layers: list[nn.Module] = []
            for _ in range(convs):
                layers += [nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                           nn.ReLU(inplace=True)]
                previous = width
            layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
        super().__init__(*stages)
        self.widths = widths

    @property
    def stride(self) -> int:
        """Total downsampling factor, ``2 ** len(widths)``."""
        return 2 ** len(self.widths)

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of every stage for images ``(B, C, H, W)``: stage ``i`` is ``(B, widths[i], H/2**(i+1), W/2**(i+1))``."""
        outputs = []
        for stage in self:
            x = stage(x)
            outputs.append(x)
        return outputs


class PatchClassifier(nn.Module):
    """A small image classifier: :class:`Encoder`, then a fully connected head.

    ``patch_size x patch_size`` patches go through the encoder to a
    ``(C, k, k)`` map with ``k = patch_size / encoder.stride``, which is
    flattened and fed to ``Linear(C*k*k, hidden) -> ReLU -> Linear(hidden, num_classes)``.

    Args:
        num_classes: K.
        patch_size: side of the input patches; a multiple of ``2 ** len(widths)``.
        widths: channels of the encoder stages.
        hidden: width of the hidden fully connected layer.

    Shapes: ``(B, 3, patch_size, patch_size)`` -> logits ``(B, K)``.
    """

    def __init__(self, num_classes: int = 5, patch_size: int = 32, widths: Sequence[int] = (16, 32, 64),
                 hidden: int = 128):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("patch_size", patch_size)
        check_positive_int("hidden", hidden)
        self.encoder = Encoder(widths)
        if patch_size % self.encoder.stride:
            raise ValueError(f"patch_size must be a multiple of the encoder stride {self.encoder.stride}, "
                             f"got {patch_size}")
        self.patch_size = patch_size
        self.feature_size = patch_size // self.encoder.stride
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(self.encoder.widths[-1] * self.feature_size**2, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor("x", x, "(B, 3, H, W)", 3)
        if tuple(x.shape[2:]) != (self.patch_size, self.patch_size):
            raise ValueError(f"x must hold {self.patch_size}x{self.patch_size} patches (the fully connected head "
                             f"fixes the input size), got {tuple(x.shape[2:])}; convolutionalize() the "
                             "classifier to run it on larger images")
        return self.head(self.encoder(x))


def conv_from_linear(linear: nn.Linear, in_channels: int, kernel_size: int) -> nn.Conv2d:
    """The convolution that computes ``linear`` on every ``kernel_size x kernel_size`` window.

    ``linear`` reads a flattened ``(in_channels, k, k)`` map (``nn.Flatten``
    order: channel, then row, then column). Its weight ``(out, C*k*k)``
    reshaped to ``(out, C, k, k)`` is a convolution kernel; on a ``(C, k, k)``
    input the convolution gives the linear layer's output as a ``(out, 1, 1)``
    map, and on a larger input one output per window (stride 1). Use
    ``kernel_size=1`` for layers that follow the first fully connected one.

    Args:
        linear: the fully connected layer, ``in_features == in_channels * kernel_size**2``.
        in_channels: C.
        kernel_size: k.

    Returns:
        A new ``nn.Conv2d(in_channels, out_features, kernel_size)`` holding
        copies of the weights (and bias), on ``linear``'s device and dtype.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    check_positive_int("in_channels", in_channels)
    check_positive_int("kernel_size", kernel_size)
    if linear.in_features != in_channels * kernel_size**2:
        raise ValueError(f"linear.in_features must be in_channels * kernel_size**2 = {in_channels} * "
                         f"{kernel_size}**2 = {in_channels * kernel_size**2}, got {linear.in_features}")
    weight = linear.weight
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size, bias=linear.bias is not None,
                     device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight.view(linear.out_features, in_channels, kernel_size, kernel_size))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def convolutionalize(classifier: PatchClassifier) -> nn.Sequential:
    """The classifier with its fully connected layers turned into convolutions.

    The first ``Linear`` becomes a ``k x k`` convolution (``k`` = the
    encoder's output size on a patch), the others ``1 x 1`` convolutions; the
    encoder is shared (not copied). On a patch the result gives the
    classifier's scores as a ``(B, K, 1, 1)`` map; on an ``H x W`` image it
    gives a dense score map ``(B, K, H/s - k + 1, W/s - k + 1)`` (``s`` the
    encoder stride): the scores of every ``patch_size`` window at stride ``s``,
    computed in one pass that shares the encoder's work between windows.

    Args:
        classifier: a :class:`PatchClassifier`.

    Returns:
        ``nn.Sequential(encoder, conv k x k, ReLU, conv 1 x 1)``.
    """
    if not isinstance(classifier, PatchClassifier):
        raise TypeError(f"classifier must be a PatchClassifier, got {type(classifier).__name__}")
    layers: list[nn.Module] = [classifier.encoder]
    channels, kernel = classifier.encoder.widths[-1], classifier.feature_size
    for layer in classifier.head:
        if isinstance(layer, nn.Flatten):
            continue
        if isinstance(layer, nn.Linear):
            layers.append(conv_from_linear(layer, channels, kernel))
            channels, kernel = layer.out_features, 1
        else:
            layers.append(layer)
    return nn.Sequential(*layers)


def bilinear_kernel(factor: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 2-D kernel with which a transposed convolution upsamples bilinearly.

    Size ``k = 2 * factor - factor % 2``, centre ``c = (k - 1) / 2``; entry
    ``(i, j)`` is ``(1 - |i - c| / factor) * (1 - |j - c| / factor)``: a
    tent of radius ``factor`` in each direction. Used in
    ``ConvTranspose2d(kernel_size=k, stride=factor, padding=(factor - factor % 2) // 2)``
    it reproduces ``F.interpolate(scale_factor=factor, mode="bilinear",
    align_corners=False)`` away from the image border (within ``factor``
    pixels of it the convolution sees zeros where interpolation repeats the
    edge).

    Args:
        factor: upsampling factor, a positive int.
        dtype: floating dtype of the result.

    Returns:
        ``(k, k)`` tensor.
    """
    check_positive_int("factor", factor)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    size = 2 * factor - factor % 2
    centre = (size - 1) / 2
    tent = 1 - (torch.arange(size, dtype=torch.float64) - centre).abs() / factor
    return torch.outer(tent, tent).to(dtype)


def bilinear_upsampler(channels: int, factor: int, bias: bool = False) -> nn.ConvTranspose2d:
    """A ``ConvTranspose2d`` that upsamples ``(B, C, H, W)`` to ``(B, C, factor*H, factor*W)``, initialised bilinear.

    Channel ``c`` of the output starts as the bilinear interpolation of input
    channel ``c`` (the kernel of :func:`bilinear_kernel` on the diagonal, zeros
    elsewhere). The weights stay learnable: the FCN paper learns its 2x
    upsamplings from this start but keeps its final upsampling fixed to
    bilinear; our :class:`FCN` learns all of them.

    Args:
        channels: C (input and output).
        factor: upsampling factor.
        bias: add a learnable bias (initialised to 0).
    """
    check_positive_int("channels", channels)
    kernel = bilinear_kernel(factor)
    layer = nn.ConvTranspose2d(channels, channels, kernel.shape[0], stride=factor,
                               padding=(factor - factor % 2) // 2, bias=bias)
    with torch.no_grad():
        layer.weight.zero_()
        index = torch.arange(channels)
        layer.weight[index, index] = kernel
        if bias:
            layer.bias.zero_()
    return layer


class FCN(nn.Module):
    """FCN-32s, FCN-16s or FCN-8s: a fully convolutional network with summed skips.

    A five-stage :class:`Encoder` (strides 2 to 32) is followed by the
    convolutionalized classifier head of the paper (a 3x3 and a 1x1
    convolution with ReLUs, the "fc6" and "fc7" of VGG made convolutional) and
    a 1x1 convolution giving class scores at stride 32. Then, by ``variant``:

    * ``"32s"``: the stride-32 scores are upsampled 32x in one step;
    * ``"16s"``: they are upsampled 2x and summed with scores computed from
      stage 4 (stride 16), then the sum is upsampled 16x;
    * ``"8s"``: as 16s, then upsampled 2x again and summed with scores from
      stage 3 (stride 8), then upsampled 8x.

    Every upsampling is a learned transposed convolution, initialised to
    bilinear interpolation (:func:`bilinear_upsampler`) or, with
    ``upsampler_init="random"``, as PyTorch initialises any ``ConvTranspose2d``.
    The skip score layers start at zero, so with bilinear upsamplers every
    variant predicts the same as FCN-32s at initialisation. (The paper learns
    its 2x upsamplings from bilinear and keeps the final one fixed.)

    Args:
        num_classes: K.
        variant: ``"32s"``, ``"16s"`` or ``"8s"``.
        widths: channels of the five encoder stages.
        head_width: channels of the convolutionalized head.
        upsampler_init: ``"bilinear"`` or ``"random"`` start of the upsamplings.

    Shapes: images ``(B, 3, H, W)`` with ``H`` and ``W`` multiples of 32 ->
    logits ``(B, K, H, W)``.
    """

    def __init__(self, num_classes: int = 5, variant: str = "8s", widths: Sequence[int] = (16, 32, 64, 128, 128),
                 head_width: int = 128, upsampler_init: str = "bilinear"):
        super().__init__()
        check_choice("upsampler_init", upsampler_init, UPSAMPLER_INITS)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
        check_positive_int("num_classes", num_classes)
        check_positive_int("head_width", head_width)
        widths = _check_widths(widths, 5)
        if len(widths) != 5:
            raise ValueError(f"widths must name 5 stages (strides 2 to 32), got {len(widths)}: {widths!r}")
        self.variant = variant
        self.num_classes = num_classes
        self.encoder = Encoder(widths)
        self.head = nn.Sequential(
            nn.Conv2d(widths[4], head_width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(head_width, head_width, 1), nn.ReLU(inplace=True),
            nn.Conv2d(head_width, num_classes, 1),
        )
        strides = VARIANTS[variant]
        # Skip scores from stage 4 (stride 16) and stage 3 (stride 8), zero at the start.
        self.skip_scores = nn.ModuleDict({
            str(stride): nn.Conv2d(widths[int(math.log2(stride)) - 1], num_classes, 1) for stride in strides[1:]
        })
        for layer in self.skip_scores.values():
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.up2 = nn.ModuleList(bilinear_upsampler(num_classes, 2) for _ in strides[1:])
        self.final_up = bilinear_upsampler(num_classes, strides[-1])
        self.upsampler_init = upsampler_init
        if upsampler_init == "random":
            for layer in (*self.up2, self.final_up):
                layer.reset_parameters()

    @property
    def output_stride(self) -> int:
        """Stride of the finest score map before the last upsampling: 32, 16 or 8."""
        return VARIANTS[self.variant][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor("x", x, "(B, 3, H, W)", 3)
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"x must have a height and width that are multiples of 32, got {tuple(x.shape[2:])}")
        features = self.encoder.stages(x)
        scores = self.head(features[4])
        for stride, up in zip(VARIANTS[self.variant][1:], self.up2):
            scores = up(scores) + self.skip_scores[str(stride)](features[int(math.log2(stride)) - 1])
        return self.final_up(scores)


def build_fcn(variant: str = "8s", num_classes: int = 5, widths: Sequence[int] = (16, 32, 64, 128, 128),
              head_width: int = 128, upsampler_init: str = "bilinear") -> FCN:
    """An :class:`FCN` (the builder the model zoo records)."""
    return FCN(num_classes=num_classes, variant=variant, widths=tuple(widths), head_width=head_width,
               upsampler_init=upsampler_init)


