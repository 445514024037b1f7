"""Checks of the overview exercises (notebook 00).

1. ``things_per_class(panoptic, num_classes)``: read a panoptic map
   (``class_id * 1000 + instance``, instance 0 for stuff) and count the things of each class.
2. ``largest_shift(width, threshold)``: the largest whole-pixel sideways shift of a
   ``width``-pixel-wide box whose IoU with the unshifted box is still at least ``threshold``
   (a question of reasoning: at IoU 0.5 and 0.75, the thresholds of AP50 and AP75).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

import torch

from seglib.checks.core import CheckFailed, call_student, passed, student_check
from seglib.data import SceneConfig, generate_scenes

__all__ = ["check_largest_shift", "check_things_per_class"]

PANOPTIC_DIVISOR = 1000
THRESHOLDS = (0.5, 0.75)
WIDTHS = range(1, 61)


def _things_reference(panoptic: torch.Tensor, num_classes: int) -> list[int]:
    counts = [0] * num_classes
    for pid in panoptic.unique().tolist():
        class_id, instance = divmod(pid, PANOPTIC_DIVISOR)
        counts[class_id] += instance > 0
    return counts


def _things_hint(panoptic: torch.Tensor, num_classes: int, got: list[int]) -> str:
    ids = [divmod(pid, PANOPTIC_DIVISOR) for pid in panoptic.unique().tolist()]
    present = [int(any(c == k for c, _ in ids)) for k in range(num_classes)]
    with_stuff = [sum(c == k for c, _ in ids) for k in range(num_classes)]
    variants = [(present, "you marked which classes are present: count each instance of a class"),
                (with_stuff, "you counted stuff too: sky and grass have instance number 0, they are no things")]
    return next((f" It looks like {hint}." for wrong, hint in variants if got == wrong), "")


@student_check
def check_things_per_class(student_fn: Callable) -> None:
    """Check ``student_fn(panoptic, num_classes)`` -> a list of ``num_classes`` ints.

    ``panoptic`` int64 ``(H, W)`` with ``class_id * 1000 + instance``; entry ``k`` of
    the answer is the number of things (instance > 0) of class ``k``: 0 for stuff.
    """
    config = SceneConfig(size=48, min_objects=2, max_objects=6)
    scenes = generate_scenes(6, config, seed=11)
    for index in range(len(scenes.panoptic)):
        panoptic = scenes.panoptic[index]
        got = call_student(student_fn, panoptic.clone(), config.num_classes)
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        if not isinstance(got, (list, tuple)) or len(got) != config.num_classes:
            raise CheckFailed(f"scene {index}: return a list of {config.num_classes} ints (one per class), "
                              f"got {got!r}")
        got = [int(v) for v in got]
        expected = _things_reference(panoptic, config.num_classes)
        if got != expected:
            raise CheckFailed(f"scene {index} (panoptic ids {panoptic.unique().tolist()}): got {got}, expected "
                              f"{expected}.{_things_hint(panoptic, config.num_classes, got)}")
    passed(f"things_per_class: the things of {len(scenes.panoptic)} generated scenes counted per class")


def _largest_shift_reference(width: int, threshold: float) -> int:
    limit = Fraction(threshold)
    return max(d for d in range(width + 1) if Fraction(width - d, width + d) >= limit)


def _shift_hint(width: int, threshold: float, got) -> str:
    expected = _largest_shift_reference(width, threshold)
    if got == expected + 1:
        return (" That shift is one too far: its IoU is below the threshold. Rounding to the nearest pixel "
                "(or up) does this; take the floor.")
    if got == int(width * (1 - threshold)):
        return (" It looks like you kept threshold x width of overlap; IoU divides the overlap (w - d) by the "
                "union (w + d), not by w.")
    return ""


@student_check
def check_largest_shift(student_fn: Callable) -> None:
    """Check ``student_fn(width, threshold)`` -> int for widths 1-60 and thresholds 0.5 and 0.75.

    A box of ``width`` pixels shifted ``d`` pixels sideways keeps ``w - d`` of its
    width; its IoU with the original is ``(w - d) / (w + d)``. Expected: the largest
    integer ``d >= 0`` with that IoU at least ``threshold``.
    """
    for threshold in THRESHOLDS:
        for width in WIDTHS:
            got = call_student(student_fn, width, threshold)
            if isinstance(got, bool) or not isinstance(got, int):
                raise CheckFailed(f"largest_shift({width}, {threshold}): return a whole number of pixels (int), "
                                  f"got {got!r}")
            expected = _largest_shift_reference(width, threshold)
            if got != expected:
                raise CheckFailed(f"largest_shift({width}, {threshold}): got {got}, expected {expected}."
                                  + _shift_hint(width, threshold, got))
    passed(f"largest_shift: widths 1-60 at IoU {THRESHOLDS[0]} and {THRESHOLDS[1]} "
           f"(AP50 forgives a shift of a third of the width, AP75 of a seventh)")
