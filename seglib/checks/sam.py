"""Checks of the Segment Anything exercises: a point's Fourier encoding, the click that resolves an ambiguous one."""

from __future__ import annotations

import math
from typing import Callable

import torch

from seglib.checks.core import CheckFailed, assert_close, call_student, passed, student_check
from seglib.models.promptable.prompt_encoder import random_fourier_features

__all__ = ["check_disambiguating_click", "check_fourier_encoding", "fourier_encoding_reference"]


def fourier_encoding_reference(points: torch.Tensor, gaussian: torch.Tensor, image_size: int) -> torch.Tensor:
    """The exercise's answer: points float ``(N, 2)`` pixels to ``(N, 2F)`` features."""
    return random_fourier_features(points / image_size, gaussian)


def _fourier_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    generator = torch.Generator().manual_seed(6)
    gaussian = torch.randn(2, 8, generator=generator)
    return [
        ("the image centre and two corners of a 64 x 64 image",
         torch.tensor([[32.0, 32.0], [0.0, 0.0], [64.0, 64.0]]), gaussian, 64),
        ("five random clicks in a 100 x 100 image", torch.rand(5, 2, generator=generator) * 100, gaussian, 100),
        ("one click with a 2 x 3 matrix", torch.tensor([[10.5, 3.5]]), torch.randn(2, 3, generator=generator), 16),
    ]


def _fourier_hints(points, gaussian, image_size) -> list[tuple[torch.Tensor, str]]:
    unit = points / image_size
    raw = 2 * math.pi * ((2 * unit - 1) @ gaussian)
    return [
        (torch.cat([torch.cos(raw), torch.sin(raw)], -1), "sine first, then cosine: [sin(a), cos(a)]"),
        (random_fourier_features(points, gaussian), "divide the pixel coordinates by image_size first"),
        (torch.cat([torch.sin(2 * math.pi * unit @ gaussian), torch.cos(2 * math.pi * unit @ gaussian)], -1),
         "map [0, 1] to [-1, 1] with 2p - 1 before projecting"),
        (torch.cat([torch.sin(raw / (2 * math.pi)), torch.cos(raw / (2 * math.pi))], -1),
         "multiply the projection by 2 pi"),
    ]


@student_check
def check_fourier_encoding(student_fn: Callable) -> None:
    """Check ``student_fn(points, gaussian, image_size)``, the random Fourier features of clicks.

    Expected: ``[sin(a), cos(a)]`` along the last axis, with
    ``a = 2 pi ((2 p - 1) @ gaussian)`` and ``p = points / image_size``:
    float ``(N, 2F)`` for points ``(N, 2)`` and gaussian ``(2, F)``.
    """
    for description, points, gaussian, image_size in _fourier_cases():
        got = call_student(student_fn, points.clone(), gaussian.clone(), image_size)
        expected = fourier_encoding_reference(points, gaussian, image_size)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.allclose(
                got.detach().float(), expected, atol=1e-4):
            for wrong, hint in _fourier_hints(points, gaussian, image_size):
                if torch.allclose(got.detach().float(), wrong, atol=1e-4):
                    raise CheckFailed(f"encoding of {description}: close, but {hint}.")
        assert_close(f"encoding of {description}", got, expected, rtol=1e-4, atol=1e-4)
    passed("fourier_encoding: matches the reference on 3 cases (sine and cosine of 2 pi (2p - 1) G)")


def _nested_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(description, part, whole): a spot off the centre of a rectangle in a wide image, a spot in a disc."""
    whole = torch.zeros(12, 20, dtype=torch.bool)
    whole[2:10, 3:17] = True
    part = torch.zeros_like(whole)
    part[4:7, 12:16] = True
    ys, xs = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    radius = ((ys - 8.0) ** 2 + (xs - 7.0) ** 2).sqrt()
    return [("a 3 x 4 spot near the right end of a 8 x 14 rectangle (image 12 x 20)", part, whole),
            ("a spot of radius 2 in a disc of radius 6 (image 16 x 16)", radius <= 2, radius <= 6)]


def _click_hint(x: int, y: int, label: int, part: torch.Tensor, whole: torch.Tensor, want: str) -> str:
    height, width = whole.shape
    if not (0 <= x < width and 0 <= y < height):
        if 0 <= y < width and 0 <= x < height and bool((whole & ~part)[x, y]):
            return "x and y are swapped: x is the column, y the row (mask[y, x])"
        return f"the click lies outside the {height} x {width} image"
    if bool(part[y, x]):
        return "a click inside the spot lies in both readings, the spot and the whole: it decides nothing"
    if not bool(whole[y, x]):
        if 0 <= y < width and 0 <= x < height and bool((whole & ~part)[x, y]):
            return "x and y are swapped: x is the column, y the row (mask[y, x])"
        return "a click on the background says nothing about the shape: click the shape outside the spot"
    return ("the label: a positive click outside the spot asks for the whole shape; to keep only the spot, the "
            "click outside it must be negative (label 0)") if want == "part" else \
        "the label: to get the whole shape, the click outside the spot must be positive (label 1)"


@student_check
def check_disambiguating_click(student_fn: Callable) -> None:
    """Check ``student_fn(part, whole, want)`` -> ``(x, y, label)``.

    ``part`` and ``whole`` bool ``(H, W)``, the spot inside the shape; ``want`` is
    ``"part"`` or ``"whole"``. Expected: a click on the shape outside the spot
    (``whole & ~part`` at row ``y``, column ``x``) with label 1 for the whole and 0 for the part.
    """
    cases = _nested_cases()
    for description, part, whole in cases:
        for want in ("whole", "part"):
            got = call_student(student_fn, part.clone(), whole.clone(), want)
            if not (isinstance(got, (tuple, list)) and len(got) == 3):
                raise CheckFailed(f"{description}, want={want!r}: return (x, y, label), got {got!r}")
            try:
                x, y, label = (int(v) for v in got)
            except (TypeError, ValueError):
                raise CheckFailed(f"{description}, want={want!r}: x, y and label must be ints, got {got!r}") from None
            right_place = 0 <= x < whole.shape[1] and 0 <= y < whole.shape[0] and bool((whole & ~part)[y, x])
            if not right_place or label != int(want == "whole"):
                raise CheckFailed(f"{description}, want={want!r}: the click (x={x}, y={y}, label={label}) does "
                                  f"not resolve it: {_click_hint(x, y, label, part, whole, want)}.")
    passed(f"disambiguating_click: {2 * len(cases)} cases resolved by one click on the shape outside the spot")
