"""Checks of notebook 03's exercises: the U-Net decoder block and the input offsets a dilated stack reads."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seglib.checks.core import CheckFailed, assert_close, call_student, passed, student_check
from seglib.models.unet import DecoderBlock

__all__ = ["OFFSET_CASES", "check_decoder_block", "check_reached_offsets"]

#: Dilations of the stacks of 3-tap convolutions that the offsets check asks about.
OFFSET_CASES: tuple[tuple[int, ...], ...] = ((1,), (2,), (1, 1), (2, 2, 2), (1, 2, 3), (1, 2, 5), (3, 3), (4, 1))

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


def measured_offsets(dilations: Sequence[int]) -> list[int]:
    """Offsets a stack of 3-tap convolutions with ``dilations`` reads, found by pushing a single 1 through it."""
    reach = sum(dilations)
    signal = torch.zeros(1, 1, 2 * reach + 1, dtype=torch.float64)
    signal[..., reach] = 1.0
    for d in dilations:  # kernels of ones: nothing cancels, so every offset reached stays non-zero
        signal = F.conv1d(signal, torch.ones(1, 1, 3, dtype=torch.float64), padding=d, dilation=d)
    return [i - reach for i in signal[0, 0].nonzero().flatten().tolist()]


def _offsets_hint(dilations: Sequence[int], got: list) -> str:
    reach = sum(dilations)
    variants = [(list(range(-reach, reach + 1)), "you listed every offset of the receptive field: a dilated kernel "
                                                  "skips the pixels between its taps"),
                (sorted({sum(c) for c in _sign_choices(dilations, (-1, 1))}), "you forgot the centre tap: each layer "
                                                                               "also reads offset 0")]
    return next((f" It looks like {hint}." for wrong, hint in variants if got == wrong), "")


def _sign_choices(dilations: Sequence[int], signs: tuple[int, ...]) -> list[tuple[int, ...]]:
    choices = [()]
    for d in dilations:
        choices = [c + (sign * d,) for c in choices for sign in signs]
    return choices


@student_check
def check_reached_offsets(student_fn: Callable[[Sequence[int]], list]) -> None:
    """Check ``student_fn(dilations) -> sorted list of ints``: the input offsets a 1-D stack of
    3-tap, stride-1 convolutions with these dilations reads (measured by :func:`measured_offsets`)."""
    for dilations in OFFSET_CASES:
        got = call_student(student_fn, list(dilations))
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        if not isinstance(got, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in got):
            raise CheckFailed(f"reached_offsets({list(dilations)}): return a list of ints, got {got!r}")
        expected = measured_offsets(dilations)
        if list(got) != expected:
            hint = " Return them sorted, each once." if sorted(set(got)) == expected else \
                _offsets_hint(dilations, list(got))
            raise CheckFailed(f"reached_offsets({list(dilations)}): got {list(got)}, but a 1 pushed through the "
                              f"stack reaches {expected}.{hint}")
    gridded, mixed = len(measured_offsets((2, 2, 2))), len(measured_offsets((1, 2, 3)))
    passed(f"reached_offsets: {len(OFFSET_CASES)} stacks; of the 13 offsets in their field (2, 2, 2) reads "
           f"{gridded} (gridding), (1, 2, 3) reads {mixed}")
