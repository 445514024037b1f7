"""Checks for the exercises of the FCN notebook.

=============================  ====================================================================
``check_linear_to_conv(f)``    ``f(linear, in_channels, kernel_size)``: the equivalent ``nn.Conv2d``
``check_bilinear_kernel(f)``   ``f(factor)``: the ``(k, k)`` kernel of bilinear upsampling
=============================  ====================================================================

The third exercise of the notebook (IoU from a confusion matrix) uses
:func:`seglib.checks.check_iou_from_confusion`.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from seglib.checks.core import CheckFailed, assert_close, call_student, matching_hint, passed, student_check
from seglib.models.fcn import bilinear_kernel

__all__ = ["check_bilinear_kernel", "check_linear_to_conv"]

# (in_channels, kernel_size, out_features, bias)
_LINEAR_CASES = [(2, 3, 4, True), (8, 1, 5, True), (3, 2, 6, False), (4, 4, 3, True)]


def _wrong_orders(linear: nn.Linear, channels: int, k: int) -> list[tuple[torch.Tensor, str]]:
    """Weights a student gets from a wrong reshape, with the hint for each."""
    weight = linear.weight.detach()
    out = weight.shape[0]
    return [
        (weight.view(out, k, k, channels).permute(0, 3, 1, 2),
         "you reshaped the weight as (out, k, k, C): nn.Flatten reads the map channel first, "
         "so use weight.view(out, C, k, k)"),
        (weight.view(out, channels, k, k).transpose(2, 3),
         "rows and columns are swapped: flatten order is (channel, row, column)"),
    ]


@student_check
def check_linear_to_conv(student_fn: Callable) -> None:
    """Check ``student_fn(linear, in_channels, kernel_size)``: a convolution computing ``linear`` per window.

    ``linear`` reads a flattened ``(in_channels, k, k)`` map; the answer must
    be a module (an ``nn.Conv2d``) that maps ``(B, in_channels, k, k)`` to
    ``(B, out_features, 1, 1)`` equal to ``linear(x.flatten(1))``, and a
    larger ``(B, in_channels, H, W)`` map to one such output per ``k x k``
    window, ``(B, out_features, H-k+1, W-k+1)``.
    """
    generator = torch.Generator().manual_seed(3)
    for channels, k, out, bias in _LINEAR_CASES:
        torch.manual_seed(len(_LINEAR_CASES) * channels + k)
        linear = nn.Linear(channels * k * k, out, bias=bias)
        case = f"Linear({channels}*{k}*{k} -> {out}{'' if bias else ', bias=False'}) with in_channels={channels}, " \
               f"kernel_size={k}"
        conv = call_student(student_fn, linear, channels, k)
        if not isinstance(conv, nn.Module):
            raise CheckFailed(f"{case}: return an nn.Module (an nn.Conv2d), got {type(conv).__name__}")
        x = torch.randn(3, channels, k, k, generator=generator)
        with torch.no_grad():
            expected = linear(x.flatten(1)).view(3, out, 1, 1)
            try:
                got = conv(x)
            except RuntimeError as exc:
                raise CheckFailed(f"{case}: your layer fails on an input of shape {tuple(x.shape)}: {exc}") from None
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
            weight = getattr(conv, "weight", None)
            hint = ""
            if isinstance(weight, torch.Tensor):
                hint = matching_hint(weight, _wrong_orders(linear, channels, k))
                if not hint and bias and getattr(conv, "bias", None) is None:
                    hint = " It looks like the bias is missing: copy linear.bias into the convolution's bias."
            raise CheckFailed(f"{case}: the outputs on a {k}x{k} input differ from the linear layer's." + hint)
        assert_close(f"{case}: output on a ({channels}, {k}, {k}) input", got, expected, rtol=1e-4, atol=1e-5)
        big = torch.randn(2, channels, k + 3, k + 2, generator=generator)
        windows = F.unfold(big, k).transpose(1, 2)  # (B, L, C*k*k), in the flatten order
        with torch.no_grad():
            expected_big = linear(windows).transpose(1, 2).reshape(2, out, 4, 3)
            got_big = conv(big)
        assert_close(f"{case}: dense output on a ({channels}, {k + 3}, {k + 2}) input (one value per {k}x{k} "
                     "window, stride 1, no padding)", got_big, expected_big, rtol=1e-4, atol=1e-5)
    passed(f"linear_to_conv: the convolutions reproduce {len(_LINEAR_CASES)} linear layers, "
           "on one window and densely on larger maps")


def _kernel_hints(factor: int) -> list[tuple[torch.Tensor, str]]:
    size = 2 * factor - factor % 2
    positions = torch.arange(size, dtype=torch.float64)

    def tent(centre: float, radius: float) -> torch.Tensor:
        values = (1 - (positions - centre).abs() / radius).clamp_min(0)
        return torch.outer(values, values)

    return [
        (tent(size / 2, factor), "the centre is at k/2; with k taps numbered 0..k-1 it lies at (k-1)/2"),
        (tent((size - 1) / 2, size), "you divided by the kernel size k; the tent has radius `factor`"),
        (tent((size - 1) / 2, factor).sum(dim=0, keepdim=True).expand(size, size),
         "the 2-D kernel is the outer product of two 1-D tents, not a 1-D tent repeated"),
    ]


def _test_image() -> torch.Tensor:
    """A smooth-and-edgy test image ``(1, 1, 12, 10)``: a gradient plus a bright square."""
    ys, xs = torch.meshgrid(torch.arange(12.0), torch.arange(10.0), indexing="ij")
    image = 0.05 * xs + 0.03 * ys
    image[3:8, 2:6] += 1.0
    return image[None, None].double()


@student_check
def check_bilinear_kernel(student_fn: Callable) -> None:
    """Check ``student_fn(factor)``: the kernel of bilinear upsampling by an integer factor.

    Expected: a ``(k, k)`` tensor with ``k = 2*factor - factor % 2``, entry
    ``(i, j) = (1 - |i - c| / factor) * (1 - |j - c| / factor)``, ``c = (k-1)/2``.
    Used in a transposed convolution (stride ``factor``, padding
    ``(factor - factor % 2) // 2``) it must give the same image as
    ``F.interpolate(..., mode="bilinear", align_corners=False)`` away from the
    border (``factor`` pixels), which is how it is tested.
    """
    image = _test_image()
    for factor in (2, 3, 4, 8):
        size = 2 * factor - factor % 2
        got = call_student(student_fn, factor)
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"factor={factor}: return a torch.Tensor, got {type(got).__name__}")
        if tuple(got.shape) != (size, size):
            raise CheckFailed(f"factor={factor}: the kernel must be (k, k) with k = 2*factor - factor % 2 = {size}, "
                              f"got shape {tuple(got.shape)}")
        kernel = got.detach().double().cpu()
        upsampled = F.conv_transpose2d(image, kernel[None, None], stride=factor, padding=(factor - factor % 2) // 2)
        reference = F.interpolate(image, scale_factor=factor, mode="bilinear", align_corners=False)
        inner = (slice(None), slice(None), slice(factor, -factor), slice(factor, -factor))
        if not torch.allclose(upsampled[inner], reference[inner], atol=1e-6):
            difference = (upsampled[inner] - reference[inner]).abs().max().item()
            raise CheckFailed(
                f"factor={factor}: upsampling a 12x10 test image with your kernel differs from F.interpolate "
                f"(bilinear) by up to {difference:.3g} away from the border."
                + matching_hint(kernel, _kernel_hints(factor))
                + f" Expected kernel row {size // 2}: {[round(v, 4) for v in bilinear_kernel(factor)[size // 2].tolist()]}"
            )
    passed("bilinear_kernel: transposed convolutions with your kernels match F.interpolate (bilinear) "
           "for factors 2, 3, 4 and 8")
