"""Checks of the metric exercises: IoU per class from a confusion matrix."""

from __future__ import annotations

from typing import Callable

import torch

from seglib.checks import CheckFailed, call_student, passed
from seglib.checks.losses import matching_hint
from seglib.metrics import confusion_matrix, iou_per_class

__all__ = ["check_iou_from_confusion"]


def _iou_hints(cm: torch.Tensor) -> list[tuple[torch.Tensor, str]]:
    cm = cm.double()
    tp, true_total, predicted_total = cm.diagonal(), cm.sum(dim=1), cm.sum(dim=0)
    return [
        (tp / true_total, "you computed TP / row sum (recall): the union also holds the false positives"),
        (tp / predicted_total, "you computed TP / column sum (precision): the union also holds the false negatives"),
        (tp / (true_total + predicted_total), "the diagonal is counted twice in row sum + column sum: subtract TP"),
        (2 * tp / (true_total + predicted_total), "you computed Dice, 2 TP / (row + column sums), not IoU"),
    ]


def _iou_cases() -> list[tuple[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(2)
    pred = torch.randint(0, 5, (2, 12, 12), generator=generator)
    target = torch.where(torch.rand(2, 12, 12, generator=generator) < 0.6, pred,
                         torch.randint(0, 5, (2, 12, 12), generator=generator))
    return [
        ("the hand-made matrix [[3, 1, 0], [2, 4, 1], [0, 0, 5]]", torch.tensor([[3, 1, 0], [2, 4, 1], [0, 0, 5]])),
        ("a matrix where class 1 appears neither in target nor prediction",
         torch.tensor([[4, 0, 2], [0, 0, 0], [1, 0, 3]])),
        ("the confusion matrix of random (2,12,12) label maps with 5 classes", confusion_matrix(pred, target, 5)),
    ]


def check_iou_from_confusion(student_fn: Callable) -> None:
    """Check ``student_fn(cm)``, the IoU of every class from a confusion matrix.

    ``cm`` is int64 ``(C, C)`` with rows = true class, columns = predicted
    class. Expected: float ``(C,)`` with ``IoU_c = TP / (TP + FP + FN)``, where
    ``TP = cm[c, c]``, ``FN = row sum - TP``, ``FP = column sum - TP``, and NaN
    for a class with no pixel in target or prediction. Compared with
    :func:`seglib.metrics.iou_per_class`.
    """
    for description, cm in _iou_cases():
        got = call_student(student_fn, cm.clone())
        expected = iou_per_class(cm)
        name = f"IoU per class for {description}"
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{name}: return a torch.Tensor, got {type(got).__name__}")
        if got.shape != expected.shape:
            raise CheckFailed(f"{name}: return one IoU per class, shape {tuple(expected.shape)}, "
                              f"got shape {tuple(got.shape)}")
        got_float = got.detach().cpu().double()
        undefined = torch.isnan(expected)
        if not torch.equal(torch.isnan(got_float), undefined):
            index = int((torch.isnan(got_float) != undefined).nonzero()[0])
            if bool(undefined[index]):
                raise CheckFailed(
                    f"{name}: class {index} has no pixel in target or prediction, so its IoU is 0/0: "
                    f"return nan for it (got {got_float[index].item():.6g}) so that the mean can skip it"
                )
            raise CheckFailed(
                f"{name}: class {index} has pixels in the target or the prediction, but you returned nan for it; "
                "its union TP + FP + FN is not zero"
            )
        if not bool(torch.isclose(got_float[~undefined], expected[~undefined]).all()):
            raise CheckFailed(
                f"{name}: got {[round(v, 4) for v in got_float.tolist()]}, "
                f"expected {[round(v, 4) for v in expected.tolist()]}."
                + matching_hint(got, _iou_hints(cm))
                + " Formula: IoU_c = TP / (TP + FP + FN) = cm[c,c] / (row sum + column sum - cm[c,c])."
            )
    passed("iou_from_confusion: IoU per class matches the reference on 3 cases")
