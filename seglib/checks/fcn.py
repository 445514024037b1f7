"""Checks for the exercises of the FCN notebook.

=============================  ====================================================================
``check_linear_to_conv(f)``    ``f(linear, in_channels, kernel_size)``: the equivalent ``nn.Conv2d``
``check_upsampler_padding(f)`` ``f(factor)``: the padding of an exact bilinear upsampler
``check_confusion_matrix(f)``  ``f(pred, target, num_classes)``: the ``(C, C)`` confusion matrix
=============================  ====================================================================
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from seglib.checks.core import CheckFailed, assert_close, call_student, matching_hint, passed, student_check
from seglib.metrics.semantic import confusion_matrix

__all__ = ["check_confusion_matrix", "check_linear_to_conv", "check_upsampler_padding"]

IGNORE_INDEX = 255

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


def _padding_hint(factor: int, got: int) -> str:
    size = 2 * factor - factor % 2
    variants = [(0, "without padding the output has k - factor extra cells; padding crops p from each end"),
                ((size - 1) // 2, "that is the 'same' padding of a stride-1 convolution; here the output "
                                  "(n - 1) * factor - 2p + k must equal factor * n"),
                ((factor + 1) // 2, "you rounded half the factor up: k - factor is even, p = (k - factor) / 2"),
                (size - factor, "padding crops p cells at *each* end: 2p = k - factor")]
    return next((f" It looks like {hint}." for wrong, hint in variants if got == wrong), "")


@student_check
def check_upsampler_padding(student_fn: Callable) -> None:
    """Check ``student_fn(factor)`` -> int for factors 1-8.

    Expected: the padding ``p`` with which ``ConvTranspose2d(kernel_size=2*factor - factor % 2,
    stride=factor, padding=p)`` maps every size ``n`` to ``factor * n``.
    """
    for factor in (2, 5, 3, 4, 6, 7, 8, 1):  # 5 tells the typical mistakes apart, so it comes early
        size = 2 * factor - factor % 2
        got = call_student(student_fn, factor)
        if isinstance(got, bool) or not isinstance(got, int):
            raise CheckFailed(f"upsampler_padding({factor}): return an int (a number of cells), got {got!r}")
        for n in (1, 2, 5, 8):
            out = (n - 1) * factor - 2 * got + size       # the output size of ConvTranspose2d
            if out != factor * n:
                raise CheckFailed(f"upsampler_padding({factor}) = {got}: kernel {size}, stride {factor} maps {n} "
                                  f"cells to {max(out, 0)}, expected {factor * n}." + _padding_hint(factor, got))
    passed("upsampler_padding: factors 1-8 upsample every size exactly (p = (k - factor) / 2 = factor // 2)")


def _confusion_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    generator = torch.Generator().manual_seed(9)
    target = torch.randint(0, 4, (2, 6, 7), generator=generator)
    pred = torch.where(torch.rand(2, 6, 7, generator=generator) < 0.6, target,
                       torch.randint(0, 4, (2, 6, 7), generator=generator))
    ignored = target.clone()
    ignored[:, :2] = IGNORE_INDEX
    absent = torch.tensor([[0, 0, 1], [1, 2, 2]])
    return [("a batch of two 6x7 maps, 4 classes", pred, target, 4),
            ("the same with the top two rows ignored (255)", pred, ignored, 4),
            ("class 3 of 4 absent from both maps", absent.flip(1), absent, 4)]


@student_check
def check_confusion_matrix(student_fn: Callable) -> None:
    """Check ``student_fn(pred, target, num_classes)`` -> int ``(C, C)``, rows true, columns predicted.

    Pixels whose target is 255 are left out; compared with :func:`seglib.metrics.confusion_matrix`.
    """
    for description, pred, target, num_classes in _confusion_cases():
        got = call_student(student_fn, pred.clone(), target.clone(), num_classes)
        expected = confusion_matrix(pred, target, num_classes)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.equal(got.long(), expected):
            continue
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.equal(got.long(), expected.T):
            raise CheckFailed(f"{description}: your matrix is the transpose of the expected one: rows are the "
                              "true classes, columns the predicted ones (cm[true, predicted]).")
        kept = target != IGNORE_INDEX
        counted_all = confusion_matrix(pred, target.clamp(max=num_classes - 1), num_classes, ignore_index=None)
        if isinstance(got, torch.Tensor) and bool((~kept).any()) and got.shape == expected.shape \
                and torch.equal(got.long(), counted_all):
            raise CheckFailed(f"{description}: the ignored pixels (target 255) were counted: leave them out.")
        assert_close(f"confusion matrix of {description}", got, expected)
    passed("confusion_matrix: 3 cases match seglib.metrics.confusion_matrix (ignored pixels left out)")
