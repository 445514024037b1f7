"""Checks of notebook 03's exercises: the U-Net decoder block and the receptive field of dilated convolutions."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from seglib.checks.core import CheckFailed, assert_close, call_student, passed, student_check
from seglib.models.deeplab import dilated_stack
from seglib.models.unet import DecoderBlock
from seglib.ops.receptive_field import empirical_receptive_field

__all__ = ["RECEPTIVE_FIELD_CASES", "check_decoder_block", "check_receptive_field"]

#: ``(kernel_sizes, dilations)`` stacks the receptive-field check asks about.
RECEPTIVE_FIELD_CASES: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((3,), (1,)),
    ((3, 3, 3), (1, 1, 1)),
    ((3, 3), (2, 2)),
    ((3, 3, 3), (1, 2, 4)),
    ((5, 3), (1, 3)),
    ((1, 3, 3), (4, 2, 1)),
    ((3, 3, 3, 3), (1, 2, 4, 8)),
)

_IN, _SKIP, _OUT = 24, 12, 12


def _describe(state: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{name} {tuple(value.shape)}" for name, value in state.items())


def _copy_reference_weights(student: nn.Module, reference: nn.Module) -> None:
    """Load the reference's state into the student's block entry by entry, in registration order."""
    ours, theirs = reference.state_dict(), student.state_dict()
    if [tuple(v.shape) for v in ours.values()] != [tuple(v.shape) for v in theirs.values()]:
        raise CheckFailed(
            "your block's parameters and buffers differ from the reference's. Create, in this order, "
            "up (ConvTranspose2d, kernel 2, stride 2), conv1 (3x3, padding 1, bias=False), bn1, conv2 "
            f"(3x3, padding 1, bias=False), bn2.\n  expected: {_describe(ours)}\n  got:      {_describe(theirs)}"
        )
    student.load_state_dict(dict(zip(theirs, ours.values())))


def _swapped_concat(reference: DecoderBlock) -> DecoderBlock:
    """The reference as it would compute with ``cat([up(x), skip])`` instead of ``cat([skip, up(x)])``."""
    swapped = DecoderBlock(_IN, _SKIP, _OUT)
    swapped.load_state_dict(reference.state_dict())
    weight = reference.block.conv1.weight.detach()
    with torch.no_grad():
        swapped.block.conv1.weight.copy_(torch.cat([weight[:, _OUT:], weight[:, :_OUT]], dim=1))
    return swapped.eval()


@student_check
def check_decoder_block(student_cls: Callable[..., nn.Module]) -> None:
    """Check a U-Net decoder block class ``student_cls(in_channels, skip_channels, out_channels)``.

    Its ``forward(x, skip)`` must up-convolve ``x`` (B, in, h, w) to
    (B, out, 2h, 2w), centre-crop ``skip`` to that size, concatenate
    ``[skip, upsampled]`` along the channels, and apply two 3x3 convolutions
    with batch norm and ReLU. The check compares shapes, then outputs with the
    reference :class:`~seglib.models.unet.DecoderBlock` on the same weights.
    """
    student = call_student(student_cls, _IN, _SKIP, _OUT)
    if not isinstance(student, nn.Module):
        raise CheckFailed(f"{getattr(student_cls, '__name__', 'your class')} must build an nn.Module, "
                          f"got {type(student).__name__}")
    torch.manual_seed(0)
    reference = DecoderBlock(_IN, _SKIP, _OUT)
    with torch.no_grad():  # non-trivial batch-norm statistics, so that using them matters
        for bn in (reference.block.bn1, reference.block.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    reference.eval()
    _copy_reference_weights(student, reference)
    student.eval()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, _IN, 5, 7, generator=generator)
    for skip_size, why in (((10, 14), "a skip of the same size (same padding)"),
                           ((14, 17), "a larger skip, as with valid convolutions")):
        skip = torch.randn(2, _SKIP, *skip_size, generator=generator)
        with torch.no_grad():
            try:
                got = call_student(student, x, skip)
            except CheckFailed as exc:
                if not isinstance(exc.__cause__, RuntimeError):
                    raise
                raise CheckFailed(f"forward(x {tuple(x.shape)}, skip {tuple(skip.shape)}) failed with {why}: "
                                  f"{str(exc.__cause__).rstrip('.')}. Did you centre-crop the skip to the upsampled "
                                  "size (seglib.models.unet.center_crop)?") from exc.__cause__
            expected = reference(x, skip)
            if isinstance(got, torch.Tensor) and got.shape == expected.shape \
                    and not torch.allclose(got, expected, atol=1e-4) \
                    and torch.allclose(got, _swapped_concat(reference)(x, skip), atol=1e-4):
                raise CheckFailed("the values match a concatenation in the order [upsampled, skip]; "
                                  "concatenate the skip first: torch.cat([skip, up], dim=1)")
        assert_close(f"forward with {why}", got, expected, rtol=1e-4, atol=1e-4)
    passed(f"decoder block: (B,{_IN},5,7) + skip -> (B,{_OUT},10,14), centre-cropped skips, "
           "same outputs as the reference")


def _rf_hint(kernel_sizes: Sequence[int], dilations: Sequence[int], got: object) -> str:
    guesses = {
        "you ignored the dilation": 1 + sum(k - 1 for k in kernel_sizes),
        "you forgot the '+ 1' for the centre pixel": sum((k - 1) * d for k, d in zip(kernel_sizes, dilations)),
        "you added k * d per layer instead of (k - 1) * d": 1 + sum(k * d for k, d in zip(kernel_sizes, dilations)),
        "you used the span of one layer only": max((k - 1) * d + 1 for k, d in zip(kernel_sizes, dilations)),
    }
    for reason, value in guesses.items():
        if got == value:
            return f" ({reason})"
    return ""


@student_check
def check_receptive_field(student_fn: Callable[[Sequence[int], Sequence[int]], int]) -> None:
    """Check ``student_fn(kernel_sizes, dilations) -> int``: the receptive field of a stride-1 conv stack.

    Each case is compared with the receptive field found empirically, by
    back-propagating from one output pixel of :func:`dilated_stack`.
    """
    for kernel_sizes, dilations in RECEPTIVE_FIELD_CASES:
        got = call_student(student_fn, list(kernel_sizes), list(dilations))
        expected, _ = empirical_receptive_field(dilated_stack(kernel_sizes, dilations), input_size=81,
                                                in_channels=1)
        if isinstance(got, bool) or not isinstance(got, int):
            raise CheckFailed(f"receptive_field({list(kernel_sizes)}, {list(dilations)}) must return an int, "
                              f"got {type(got).__name__}")
        if got != expected:
            raise CheckFailed(f"receptive_field({list(kernel_sizes)}, {list(dilations)}) returned {got}, but "
                              f"back-propagating from one output pixel reaches {expected} input pixels"
                              f"{_rf_hint(kernel_sizes, dilations, got)}")
    passed(f"receptive field of {len(RECEPTIVE_FIELD_CASES)} dilated stacks, e.g. kernels 3,3,3,3 with "
           "dilations 1,2,4,8 see 31 pixels, as back-propagation confirms")
