"""Receptive fields, computed from the layers and measured by back-propagation.

* :func:`receptive_field`: size and stride of a stack of convolutions and poolings, from their settings;
* :func:`empirical_receptive_field`: the input pixels that reach an output pixel, read
  off the gradient of that pixel (dilations and padding included).
"""

from __future__ import annotations

import torch
from torch import nn

from seglib.common import eval_mode
from seglib.validation import check_positive_int


def receptive_field(module: nn.Module) -> tuple[int, int]:
    """Receptive field and stride (in input pixels) of a chain of convolutions and pools.

    Walks ``module.modules()`` in registration order and treats every
    ``Conv2d``, ``MaxPool2d`` and ``AvgPool2d`` as one layer of a plain chain
    (true for :class:`Encoder` and for :func:`convolutionalize`'s output, not
    for networks with skips). With kernel ``k``, stride ``s`` and dilation
    ``d``: ``rf += (k - 1) * d * jump``, then ``jump *= s``.

    Returns:
        ``(rf, jump)``: one output pixel sees an ``rf x rf`` window of the
        input, and neighbouring outputs are ``jump`` pixels apart.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    rf, jump, layers = 1, 1, 0
    for layer in module.modules():
        if not isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            continue
        kernel, stride = layer.kernel_size, layer.stride
        dilation = getattr(layer, "dilation", 1)
        kernel, stride, dilation = (v[0] if isinstance(v, tuple) else v for v in (kernel, stride, dilation))
        rf += (kernel - 1) * dilation * jump
        jump *= stride
        layers += 1
    if layers == 0:
        raise ValueError("module must contain at least one Conv2d, MaxPool2d or AvgPool2d layer")
    return rf, jump


def empirical_receptive_field(model: nn.Module, input_size: int = 65, in_channels: int = 3,
                              position: tuple[int, int] | None = None, seed: int = 0) -> tuple[int, int]:
    """Height and width of the input window that one output pixel depends on, found by back-propagation.

    A random input ``(1, in_channels, input_size, input_size)`` goes through
    ``model`` (in eval mode, so batch norm uses its running statistics); the
    sum over channels of the output at ``position`` is back-propagated, and
    the bounding box of the input pixels with a non-zero gradient is measured.
    The result is capped by ``input_size``: choose it larger than the field
    you expect (a global pooling layer makes the field the whole input).

    Args:
        model: maps ``(1, in_channels, S, S)`` to ``(1, C, S', S')``; a dict
            output uses its ``"out"``.
        input_size: side of the square input.
        in_channels: channels of the input.
        position: ``(row, column)`` of the output pixel; default its centre.
        seed: seed of the random input.

    Returns:
        ``(height, width)`` of the receptive field in input pixels.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_positive_int("input_size", input_size)
    check_positive_int("in_channels", in_channels)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(1, in_channels, input_size, input_size, generator=generator).to(device).requires_grad_(True)
    with eval_mode(model):
        out = model(x)
    if isinstance(out, dict):
        out = out["out"]
    if out.dim() != 4:
        raise ValueError(f"model must return (1,C,H,W) maps, got shape {tuple(out.shape)}")
    rows, cols = out.shape[-2:]
    row, col = position if position is not None else (rows // 2, cols // 2)
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"position must lie in the {rows}x{cols} output, got {(row, col)}")
    out[0, :, row, col].sum().backward()
    touched = x.grad[0].abs().sum(dim=0) > 0
    if not bool(touched.any()):
        return 0, 0
    ys, xs = touched.any(dim=1).nonzero(), touched.any(dim=0).nonzero()
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)
