"""Checks of the Segment Anything exercises: the Fourier encoding of a point, the best of several masks."""

from __future__ import annotations

import math
from typing import Callable

import torch

from seglib.checks.core import CheckFailed, assert_close, call_student, passed, student_check
from seglib.metrics.masks import paired_iou
from seglib.models.promptable.prompt_encoder import random_fourier_features
from seglib.predictor import select_best_mask

__all__ = ["check_best_mask", "check_fourier_encoding", "fourier_encoding_reference"]


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


def _mask_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    target = torch.zeros(8, 8, dtype=torch.bool)
    target[2:6, 2:6] = True
    part = torch.zeros_like(target)
    part[3:5, 3:5] = True
    whole = torch.zeros_like(target)
    whole[1:7, 1:7] = True
    generator = torch.Generator().manual_seed(3)
    noisy = torch.rand(3, 10, 10, generator=generator) > 0.5
    return [
        ("part / object / whole with the object ranked best",
         torch.stack([part, target, whole]), torch.tensor([0.4, 0.9, 0.6]), target),
        ("part / object / whole with the whole ranked best (a wrong guess of the model)",
         torch.stack([part, target, whole]), torch.tensor([0.2, 0.5, 0.8]), target),
        ("three random masks", noisy, torch.tensor([0.1, 0.3, 0.2]), noisy[0]),
    ]


@student_check
def check_best_mask(student_fn: Callable) -> None:
    """Check ``student_fn(masks, iou_predictions, target)`` -> ``(best_mask, index, true_iou)``.

    ``masks`` bool ``(C, H, W)``, ``iou_predictions`` float ``(C,)``, ``target``
    bool ``(H, W)``. Expected: the mask with the highest *predicted* IoU, its
    index, and its *true* IoU with the target, ``|A & B| / |A | B|``, as a float.
    """
    for description, masks, scores, target in _mask_cases():
        got = call_student(student_fn, masks.clone(), scores.clone(), target.clone())
        if not (isinstance(got, tuple) and len(got) == 3):
            raise CheckFailed(f"{description}: return a tuple (best_mask, index, true_iou), got {type(got).__name__}")
        best, index, iou = got
        expected_mask, expected_index = select_best_mask(masks[None], scores[None])
        expected_index = int(expected_index)
        if int(index) != expected_index:
            hint = " (that is the lowest: use argmax)" if int(index) == int(scores.argmin()) else ""
            raise CheckFailed(f"{description}: picked mask {int(index)}{hint}, expected mask {expected_index}, "
                              f"the highest predicted IoU {scores[expected_index]:.2f}")
        if not isinstance(best, torch.Tensor) or not torch.equal(best.bool(), expected_mask[0]):
            raise CheckFailed(f"{description}: best_mask must be masks[{expected_index}]")
        true_iou = float(paired_iou(expected_mask[0], target))
        picked = masks[expected_index]
        if abs(float(iou) - true_iou) > 1e-5:
            inter = float((picked & target).sum())
            hints = {inter / max(float(target.sum()), 1): "you divided by the target's area: divide by the union",
                     inter / max(float(picked.sum()), 1): "you divided by the mask's area: divide by the union",
                     float(scores[expected_index]): "that is the predicted IoU: compare the mask with the target"}
            hint = next((h for v, h in hints.items() if abs(float(iou) - v) < 1e-5), "IoU = |A & B| / |A | B|")
            raise CheckFailed(f"{description}: true IoU {float(iou):.4f}, expected {true_iou:.4f}; {hint}.")
    passed("best_mask: picks the highest predicted IoU and measures the true IoU on 3 cases")
