"""U-Net (Ronneberger, Fischer and Brox, MICCAI 2015), small and configurable.

A contracting path (encoder) of convolution blocks and 2x2 max-pools, a
bottleneck, and a symmetric expanding path (decoder): at each level a 2x2
up-convolution doubles the resolution and halves the channels, the encoder's
map of the same level is concatenated to it (the skip), and two convolutions
merge the two. A 1x1 convolution gives the class scores.

Shapes for ``UNet(num_classes=5, depth=4, base_width=16)`` on images
``(B, 3, 64, 64)`` (``padding="same"``)::

    stage        channels  size     what
    enc1         16        64 x 64  two 3x3 convs
    enc2         32        32 x 32  2x2 max-pool, two 3x3 convs
    enc3         64        16 x 16  2x2 max-pool, two 3x3 convs
    bottleneck   128        8 x 8   2x2 max-pool, two 3x3 convs
    dec3         64        16 x 16  up-conv 128 -> 64, concat enc3 (64 + 64), two 3x3 convs
    dec2         32        32 x 32  up-conv 64 -> 32, concat enc2 (32 + 32), two 3x3 convs
    dec1         16        64 x 64  up-conv 32 -> 16, concat enc1 (16 + 16), two 3x3 convs
    head         5         64 x 64  1x1 conv

With ``padding="same"`` a 3x3 convolution keeps the size (one pixel of zero
padding per side), so the input's sides must be multiples of
``2 ** (depth - 1)``. With ``padding="valid"`` (the paper's choice) every
convolution loses one pixel per side, a block loses 4 pixels, the skips are
centre-cropped to the decoder's size, and the output is smaller than the input
(572 -> 388 for the paper's depth 5); the sides must be such that every
max-pool sees an even size (:meth:`UNet.stage_shapes` explains which).

``block="residual"`` replaces each pair of convolutions by a residual block
(a shortcut around the two convolutions, a 1x1 convolution where the channels
change); ``"inception"`` and ``"dense"`` by the blocks of :mod:`seglib.models.blocks`. ``aux_head=True`` adds a 1x1 classifier on the bottleneck whose
coarse prediction gets its own loss during training (:class:`AuxLoss`): the
high-resolution skips let the decoder separate shape from background
locally, but *which* shape it is must come through the bottleneck, and the
auxiliary loss trains that path directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seglib.models.blocks import DenseBlock, InceptionBlock
from seglib.validation import check_choice, check_positive_int

__all__ = ["BLOCKS", "ConvBlock", "DecoderBlock", "PADDINGS", "UNet", "center_crop", "make_block"]

PADDINGS = ("same", "valid")
BLOCKS = ("plain", "residual", "inception", "dense")


def _check_features(name: str, x: object, channels: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a float tensor (B,C,H,W), got {got}")
    if x.dim() != 4 or (channels is not None and x.shape[1] != channels):
        expected = f"(B,{channels},H,W)" if channels is not None else "(B,C,H,W)"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    return x


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central ``height x width`` window of feature maps ``(B, C, H, W)``.

    When ``H - height`` is odd the extra row is cut at the bottom (likewise
    for columns at the right).

    Raises:
        ValueError: if the window is larger than the map.
    """
    _check_features("x", x)
    check_positive_int("height", height)
    check_positive_int("width", width)
    h, w = x.shape[-2:]
    if height > h or width > w:
        raise ValueError(f"cannot crop a {h}x{w} map to {height}x{width}: the window must not be larger")
    top, left = (h - height) // 2, (w - width) // 2
    return x[..., top:top + height, left:left + width]


class ConvBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and ReLU, plain or residual.

    * plain: ``conv-BN-ReLU-conv-BN-ReLU``;
    * residual (ResNet's basic block): ``relu(conv-BN-ReLU-conv-BN(x) + shortcut(x))``,
      where the shortcut is the identity, or a 1x1 convolution with batch norm
      when the channels or the stride change (centre-cropped for valid padding).

    Args:
        in_channels, out_channels: channels in and out.
        padding: ``"same"`` (size kept) or ``"valid"`` (4 pixels lost per side pair).
        residual: use the residual form.
        stride: stride of the first convolution (``"same"`` padding only).
        dilation: dilation of both convolutions (``"same"`` padding only); the
            padding grows with it so the size is kept.

    Shapes: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H', W')`` with
    ``H' = ceil(H / stride)`` for same padding, ``H - 4`` for valid.
    """

    def __init__(self, in_channels: int, out_channels: int, padding: str = "same", residual: bool = False,
                 stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_choice("padding", padding, PADDINGS)
        check_positive_int("stride", stride)
        check_positive_int("dilation", dilation)
        if padding == "valid" and (stride != 1 or dilation != 1):
            raise ValueError(f"stride and dilation need padding='same', got stride={stride}, dilation={dilation}")
        pad = dilation if padding == "same" else 0
        self.in_channels, self.out_channels = in_channels, out_channels
        self.padding, self.residual = padding, bool(residual)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=pad, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=pad, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module | None = None
        if self.residual and (in_channels != out_channels or stride != 1):
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        if not self.residual:
            return F.relu(y, inplace=True)
        shortcut = x if self.shortcut is None else self.shortcut(x)
        if shortcut.shape[-2:] != y.shape[-2:]:
            shortcut = center_crop(shortcut, *y.shape[-2:])
        return F.relu(y + shortcut, inplace=True)


def make_block(block: str, in_channels: int, out_channels: int, padding: str = "same") -> nn.Module:
    """The convolutions of one U-Net level, ``(B, in, H, W) -> (B, out, H', W')``.

    ``block`` is one of :data:`BLOCKS`: ``"plain"`` or ``"residual"`` (:class:`ConvBlock`,
    either padding), ``"inception"`` (:class:`~seglib.models.blocks.InceptionBlock`) or
    ``"dense"`` (:class:`~seglib.models.blocks.DenseBlock`), same padding only.
    """
    check_choice("block", block, BLOCKS)
    check_choice("padding", padding, PADDINGS)
    if block in ("plain", "residual"):
        return ConvBlock(in_channels, out_channels, padding, residual=block == "residual")
    if padding != "same":
        raise ValueError(f"block={block!r} needs padding='same', got padding={padding!r}")
    return InceptionBlock(in_channels, out_channels) if block == "inception" else DenseBlock(in_channels, out_channels)


class DecoderBlock(nn.Module):
    """One level of U-Net's expanding path: up-convolution, concatenation, two convolutions.

    1. ``up``: a 2x2 transposed convolution with stride 2, ``in_channels`` ->
       ``out_channels``, doubles the size;
    2. the skip from the encoder is centre-cropped to that size (only needed
       with valid convolutions) and concatenated *before* the upsampled map:
       ``cat([skip, up(x)], dim=1)`` has ``skip_channels + out_channels`` channels;
    3. ``block``: a :class:`ConvBlock` back to ``out_channels``.

    Shapes: ``x (B, in_channels, h, w)`` and ``skip (B, skip_channels, H, W)``
    with ``H, W >= 2h, 2w`` -> ``(B, out_channels, 2h, 2w)`` for same padding,
    ``(B, out_channels, 2h - 4, 2w - 4)`` for valid.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, padding: str = "same",
                 block: str = "plain") -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("skip_channels", skip_channels)
        check_positive_int("out_channels", out_channels)
        self.in_channels, self.skip_channels = in_channels, skip_channels
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.block = make_block(block, skip_channels + out_channels, out_channels, padding)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        _check_features("x", x, self.in_channels)
        _check_features("skip", skip, self.skip_channels)
        x = self.up(x)
        if skip.shape[-2] < x.shape[-2] or skip.shape[-1] < x.shape[-1]:
            raise ValueError(f"skip {tuple(skip.shape[-2:])} must be at least as large as the upsampled "
                             f"map {tuple(x.shape[-2:])}")
        skip = center_crop(skip, *x.shape[-2:])
        return self.block(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """U-Net with ``depth`` levels (``depth - 1`` poolings), see the module docstring for shapes.

    Args:
        num_classes: C, the channels of the logits.
        in_channels: channels of the images.
        depth: number of levels including the bottleneck (the paper has 5), ``>= 2``.
        base_width: channels of the first level; level ``i`` has ``base_width * 2**i``.
        padding: ``"same"`` or ``"valid"``.
        block: the convolutions of each level, one of :data:`BLOCKS` (:func:`make_block`).
        aux_head: add a 1x1 classifier on the bottleneck. In training mode the
            model then returns ``{"out": logits, "aux": coarse logits}`` (as
            torchvision's segmentation models do) for :class:`AuxLoss`; in eval
            mode it returns the logits tensor only, unless ``return_aux=True``.

    Shapes: images ``(B, in_channels, H, W)`` -> logits ``(B, C, H, W)`` for
    same padding, smaller for valid (:meth:`output_size`).
    """

    def __init__(self, num_classes: int = 5, in_channels: int = 3, depth: int = 4, base_width: int = 16,
                 padding: str = "same", block: str = "plain", aux_head: bool = False) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        check_positive_int("depth", depth)
        if depth < 2:
            raise ValueError(f"depth must be at least 2 (one pooling), got {depth}")
        check_positive_int("base_width", base_width)
        check_choice("padding", padding, PADDINGS)
        check_choice("block", block, BLOCKS)
        self.num_classes, self.in_channels, self.depth = num_classes, in_channels, depth
        self.padding, self.block = padding, block
        self.widths = tuple(base_width * 2 ** i for i in range(depth))
        if block not in ("plain", "residual") and padding != "same":
            raise ValueError(f"block={block!r} needs padding='same', got padding={padding!r}")
        channels = (in_channels,) + self.widths
        self.encoder = nn.ModuleList(make_block(block, channels[i], channels[i + 1], padding) for i in range(depth))
        self.decoder = nn.ModuleList(
            DecoderBlock(self.widths[i + 1], self.widths[i], self.widths[i], padding, block)
            for i in reversed(range(depth - 1))
        )
        self.head = nn.Conv2d(self.widths[0], num_classes, 1)
        self.aux = nn.Conv2d(self.widths[-1], num_classes, 1) if aux_head else None

    @property
    def stage_names(self) -> list[str]:
        """``enc1 .. enc{depth-1}, bottleneck, dec{depth-1} .. dec1, head``."""
        encoder = [f"enc{i + 1}" for i in range(self.depth - 1)] + ["bottleneck"]
        return encoder + [f"dec{i}" for i in reversed(range(1, self.depth))] + ["head"]

    def _trace(self, size: int) -> tuple[list[int], str | None]:
        """Sizes along one side after every stage, and why the size does not fit (None if it does)."""
        loss = 4 if self.padding == "valid" else 0
        sizes, current = [], size
        for level in range(self.depth):
            if level > 0:
                if current % 2:
                    return sizes, f"the max-pool before level {level + 1} would get an odd size {current}"
                current //= 2
            current -= loss
            if current < 1:
                return sizes, f"level {level + 1} would shrink it to {current}"
            sizes.append(current)
        for _ in range(self.depth - 1):
            current = current * 2 - loss
            if current < 1:
                return sizes, "the decoder would shrink it below 1 pixel"
            sizes.append(current)
        return sizes + [current], None

    def _side_sizes(self, size: int, axis: str) -> list[int]:
        """Spatial size after every stage along one side; raises if the size does not fit."""
        check_positive_int(axis, size)
        sizes, why = self._trace(size)
        if why is None:
            return sizes
        fits = [s for s in range(max(1, size - 64), size + 65) if self._trace(s)[1] is None]
        nearest = [s for s in fits if s < size][-1:] + [s for s in fits if s > size][:1]
        near = " or ".join(str(s) for s in nearest) or "none nearby"
        raise ValueError(f"input {axis} {size} does not fit a depth-{self.depth} U-Net with {self.padding} "
                         f"padding ({why}); nearest sizes that fit: {near}")

    def output_size(self, height: int, width: int | None = None) -> tuple[int, int]:
        """``(H_out, W_out)`` of the logits for an input of ``height x width`` (square if width is None).

        Raises:
            ValueError: if the size does not fit (odd size before a pooling,
                or shrunk below one pixel); the message gives the nearest sizes that fit.
        """
        width = height if width is None else width
        return self._side_sizes(height, "height")[-1], self._side_sizes(width, "width")[-1]

    def stage_shapes(self, height: int, width: int | None = None) -> list[tuple[str, tuple[int, int, int]]]:
        """``[(stage name, (channels, H, W)), ...]`` for every stage, computed without running the net.

        The stages are those of :attr:`stage_names`; the sizes are those the
        forward pass produces (a unit test checks this against real tensors).
        """
        width = height if width is None else width
        heights, widths = self._side_sizes(height, "height"), self._side_sizes(width, "width")
        channels = list(self.widths) + list(reversed(self.widths[:-1])) + [self.num_classes]
        return [(name, (c, h, w)) for name, c, h, w in zip(self.stage_names, channels, heights, widths)]

    def forward(self, x: torch.Tensor, return_aux: bool | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
        """Logits ``(B, C, H', W')``, or ``{"out": logits, "aux": bottleneck logits (B, C, h, w)}``.

        Args:
            x: images ``(B, in_channels, H, W)``.
            return_aux: return the dict; default: only in training mode and
                when the model has an auxiliary head.
        """
        if return_aux and self.aux is None:
            raise ValueError("return_aux=True needs a model built with aux_head=True")
        _check_features("x", x, self.in_channels)
        self.output_size(x.shape[-2], x.shape[-1])  # clear error for sizes that do not fit
        skips = []
        for level, block in enumerate(self.encoder):
            if level > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        bottleneck = skips.pop()
        x = bottleneck
        for block in self.decoder:
            x = block(x, skips.pop())
        logits = self.head(x)
        if return_aux is None:
            return_aux = self.aux is not None and self.training
        if return_aux:
            return {"out": logits, "aux": self.aux(bottleneck)}
        return logits


