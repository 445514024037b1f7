"""Checks of the loss exercises: soft Dice loss, class weights, which loss trained a network."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from seglib.checks.core import CheckFailed, assert_close, call_student, matching_hint, passed, student_check
from seglib.losses import class_weights, soft_dice_loss

__all__ = ["check_class_weights", "check_soft_dice_loss", "check_weighted_ce_detector"]


def _dice_variant(probs: torch.Tensor, onehot: torch.Tensor, smooth: float, per_image: bool) -> torch.Tensor:
    """``1 - mean (2 sum p g + s) / (sum p + sum g + s)``, summed per image or over the batch."""
    dims = (2, 3) if per_image else (0, 2, 3)
    intersection = (probs * onehot).sum(dim=dims)
    cardinality = probs.sum(dim=dims) + onehot.sum(dim=dims)
    return 1 - ((2 * intersection + smooth) / (cardinality + smooth)).mean()


def _dice_hints(logits: torch.Tensor, target: torch.Tensor) -> list[tuple[torch.Tensor, str]]:
    onehot = torch.nn.functional.one_hot(target, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
    probs = logits.softmax(dim=1)
    return [
        (_dice_variant(logits, onehot, 1.0, False),
         "you used the raw logits: turn them into p = softmax(logits, dim=1)"),
        (_dice_variant(logits.sigmoid(), onehot, 1.0, False),
         "you used sigmoid: the classes compete for each pixel, use softmax over dim=1"),
        (_dice_variant(probs, onehot, 0.0, False),
         "smooth is missing: add 1 to the numerator and the denominator"),
        (_dice_variant(probs, onehot, 1.0, True),
         "you computed one Dice per image: sum over the batch dimension too"),
    ]


def _dice_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    hand_logits = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]], [[0.0, 1.0], [0.5, -2.0]]]])
    hand_target = torch.tensor([[[0, 1], [1, 0]]])
    return [
        ("a hand-made (1,2,2,2) case", hand_logits, hand_target),
        ("random logits (2,3,8,8)", torch.randn(2, 3, 8, 8, generator=generator) * 2,
         torch.randint(0, 3, (2, 8, 8), generator=generator)),
        ("random logits (3,4,6,5) with class 3 absent from the target", torch.randn(3, 4, 6, 5, generator=generator),
         torch.randint(0, 3, (3, 6, 5), generator=generator)),
    ]


@student_check
def check_soft_dice_loss(student_fn: Callable) -> None:
    """Check ``student_fn(logits, target)``, a multi-class soft Dice loss.

    Expected: ``1 - mean_c (2 sum p g + 1) / (sum p + sum g + 1)`` with
    ``p = softmax(logits, dim=1)`` for class c, ``g`` the one-hot target, sums
    over the batch and all pixels; logits ``(B, C, H, W)``, target int64
    ``(B, H, W)`` without ignored pixels. Both the value and its gradient with
    respect to the logits are compared with :func:`seglib.losses.soft_dice_loss`.
    """
    for description, logits, target in _dice_cases():
        student_logits = logits.clone().requires_grad_(True)
        got = call_student(student_fn, student_logits, target.clone())
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(
                f"soft Dice on {description}: return a torch.Tensor, got {type(got).__name__} "
                "(avoid .item(): the loss must stay a tensor to be backpropagated)"
            )
        if got.dim() != 0:
            raise CheckFailed(
                f"soft Dice on {description}: return a scalar (shape ()), got shape {tuple(got.shape)}; "
                "average the per-class Dice scores"
            )
        reference_logits = logits.clone().requires_grad_(True)
        expected = soft_dice_loss(reference_logits, target)
        if not torch.isclose(got.detach().double(), expected.detach().double(), rtol=1e-4, atol=1e-6):
            raise CheckFailed(
                f"soft Dice on {description}: got {got.item():.6g}, expected {expected.item():.6g}."
                + matching_hint(got, _dice_hints(logits, target))
                + " Formula: 1 - mean_c (2 sum p*g + 1) / (sum p + sum g + 1), p = softmax(logits, dim=1)."
            )
        if got.grad_fn is None:
            raise CheckFailed(
                f"soft Dice on {description}: the value is right but it is not connected to the logits "
                "(no grad_fn); compute it with torch operations on the logits, without .detach() or .item()"
            )
        got.backward()
        expected.backward()
        assert_close(f"soft Dice on {description}, gradient w.r.t. logits", student_logits.grad,
                     reference_logits.grad, rtol=1e-4, atol=1e-6)
    passed("soft_dice_loss: values and gradients match the reference on 3 cases")


def _weight_hints(labels: torch.Tensor, num_classes: int) -> list[tuple[torch.Tensor, str]]:
    counts = torch.bincount(labels[labels != 255], minlength=num_classes).double()
    present = counts > 0
    frequency = counts / counts.sum()
    raw = torch.where(present, 1 / frequency, torch.zeros_like(frequency))
    return [
        (raw, "the weights are 1/f_c but not normalised: divide them by their mean over the present classes"),
        (torch.where(present, frequency / frequency[present].mean(), frequency),
         "you weighted by frequency: rare classes must get the large weights, w_c proportional to 1/f_c"),
        (raw / raw.mean(), "you averaged over all classes: take the mean over the classes present in labels only"),
    ]


def _weight_cases() -> list[tuple[str, torch.Tensor, int]]:
    generator = torch.Generator().manual_seed(1)
    hand = torch.zeros(1, 4, 4, dtype=torch.int64)
    hand[0, 3] = 1
    with_gaps = torch.randint(0, 2, (2, 6, 6), generator=generator)
    with_gaps[0, :2] = 255
    return [
        ("a hand-made 4x4 map (12 pixels of class 0, 4 of class 1)", hand, 2),
        ("labels with 255 (ignored) pixels and class 2 absent", with_gaps, 3),
        ("random labels (4,16,16) with 5 classes", torch.randint(0, 5, (4, 16, 16), generator=generator), 5),
    ]


@student_check
def check_class_weights(student_fn: Callable) -> None:
    """Check ``student_fn(labels, num_classes)``, inverse-frequency class weights.

    Expected: a float ``(C,)`` tensor with ``w_c`` proportional to ``1 / f_c``,
    ``f_c`` the fraction of non-ignored pixels (label != 255) of class c,
    scaled so that the mean over the classes present in ``labels`` is 1;
    classes absent from ``labels`` get weight 0. Compared with
    :func:`seglib.losses.class_weights`.
    """
    for description, labels, num_classes in _weight_cases():
        got = call_student(student_fn, labels.clone(), num_classes)
        expected = class_weights(labels, num_classes)
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"class weights for {description}: return a torch.Tensor, got {type(got).__name__}")
        if got.shape != expected.shape:
            raise CheckFailed(
                f"class weights for {description}: return one weight per class, shape ({num_classes},), "
                f"got shape {tuple(got.shape)}"
                + (". Label 255 got a bin of its own: leave ignored pixels out before counting"
                   if got.numel() > 255 else "")
            )
        got_float = got.detach().double()
        absent = (expected == 0) & (got_float != 0)
        if bool(absent.any()):
            index = int(absent.nonzero()[0])
            raise CheckFailed(
                f"class weights for {description}: class {index} has no pixel, so its weight should be 0 "
                f"(there is no frequency to invert), got {got_float[index].item():.6g}"
            )
        if not bool(torch.isclose(got_float, expected.double(), rtol=1e-4, atol=1e-6).all()):
            raise CheckFailed(
                f"class weights for {description}: got {[round(w, 4) for w in got_float.tolist()]}, "
                f"expected {[round(w, 4) for w in expected.tolist()]}."
                + matching_hint(got, _weight_hints(labels, num_classes))
            )
    passed("class_weights: inverse-frequency weights match the reference on 3 cases")


CONSTRUCTED = (
    ("ce", "constructed: trained longer", 0.95, 0.97),
    ("weighted_ce", "constructed: trained briefly", 0.75, 0.60),
    ("ce", "constructed: a harder data set", 0.40, 0.45),
)
"""Matrices the zoo does not hold, so that no threshold on recall or precision alone passes:
``(loss, description, recall, precision)`` of the small class (weighted CE over-predicts it,
the other losses under-predict it)."""


def _constructed(classes: int, small_class: int, recall: float, precision: float,
                 true: int = 2_000, total: int = 100_000) -> torch.Tensor:
    """An int64 ``(classes, classes)`` confusion matrix with this recall and precision of ``small_class``."""
    other = (small_class + 1) % classes
    tp = round(recall * true)
    fp = round(tp / precision) - tp
    cm = torch.zeros(classes, classes, dtype=torch.int64)
    cm[small_class, small_class], cm[small_class, other] = tp, true - tp
    cm[other, small_class], cm[other, other] = fp, total - true - fp
    return cm


@student_check
def check_weighted_ce_detector(student_fn: Callable, networks: Sequence[tuple[str, int, torch.Tensor]],
                               small_class: int) -> None:
    """Check ``student_fn(cm, small_class) -> bool`` on ``networks``: ``(loss name, seed, cm)`` triples,
    ``cm`` int64 ``(C, C)`` rows true, columns predicted (notebook 04 passes its 15 zoo networks),
    and on the matrices of :data:`CONSTRUCTED`.

    Expected: ``True`` exactly for the networks trained with ``"weighted_ce"``.
    """
    if not networks or "weighted_ce" not in {name for name, _, _ in networks}:
        raise ValueError("networks must hold (loss, seed, confusion matrix) triples, weighted_ce among them, "
                         f"got {len(networks)} triples")
    classes = networks[0][2].shape[0]
    cases = [(name, f"seed {seed}", cm) for name, seed, cm in networks]
    cases += [(name, what, _constructed(classes, small_class, recall, precision))
              for name, what, recall, precision in CONSTRUCTED]
    for name, where, cm in cases:
        got = call_student(student_fn, cm.clone(), small_class)
        if not isinstance(got, (bool, torch.Tensor)) or (isinstance(got, torch.Tensor) and got.numel() != 1):
            raise CheckFailed(f"return True or False, got {got!r}")
        if bool(got) != (name == "weighted_ce"):
            predicted, true = int(cm[:, small_class].sum()), int(cm[small_class].sum())
            recall = int(cm[small_class, small_class]) / true
            raise CheckFailed(
                f"the network trained with {name} ({where}, recall {recall:.2f}) got {bool(got)}. Its matrix "
                f"predicts the small class on {predicted} pixels, and {true} pixels are of that class: which "
                "losses predict the small class too often, which too rarely (recall against precision)?")
    passed(f"weighted_ce_detector: {len(networks)} zoo networks and {len(CONSTRUCTED)} constructed matrices "
           "told apart")
