"""Exercise checks.

Each exercise in a notebook is followed by a cell such as::

    seglib.checks.check_conv_transpose1d(conv_transpose1d)

A check calls the student's function on fixed and random inputs, compares with
seglib's reference and either prints one line saying what passed or raises
:class:`CheckFailed` whose message says what was wrong (the first mismatch,
the formula that gives the right answer...). A stub that still raises
``NotImplementedError`` gives a short reminder instead of a traceback wall.

Checks live in one module per topic (``seglib/checks/<topic>.py``) and are
re-exported here, so notebooks only ever write ``seglib.checks.check_...``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


class CheckFailed(AssertionError):
    """An exercise check did not pass; the message says why."""


def passed(message: str) -> None:
    """Print the one-line success message of a check."""
    print(f"\u2714 {message}")


def call_student(function: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the student's ``function``; turn an unfinished stub into a short message."""
    if not callable(function):
        raise TypeError(f"expected your function, got {type(function).__name__}")
    try:
        return function(*args, **kwargs)
    except NotImplementedError as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise CheckFailed(
            f"{getattr(function, '__name__', 'your function')} is not implemented yet{detail}: "
            "replace the `raise NotImplementedError` line with your code and run the cell again."
        ) from None


def assert_close(name: str, got: Any, expected: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Raise :class:`CheckFailed` naming the first element where ``got`` differs from ``expected``."""
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"{name}: expected a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(expected.shape):
        raise CheckFailed(f"{name}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    got_cmp = got.detach().to(expected.dtype).cpu()
    expected = expected.detach().cpu()
    close = torch.isclose(got_cmp, expected, rtol=rtol, atol=atol)
    if not bool(close.all()):
        index = tuple(int(i) for i in (~close).nonzero()[0])
        raise CheckFailed(
            f"{name}: {int((~close).sum())} of {close.numel()} values differ; first at index {index}: "
            f"got {got_cmp[index].item():.6g}, expected {expected[index].item():.6g}"
        )


__all__ = ["CheckFailed", "assert_close", "call_student", "passed"]

from seglib.checks.losses import check_class_weights, check_soft_dice_loss  # noqa: E402
from seglib.checks.metrics import check_iou_from_confusion  # noqa: E402

__all__ += ["check_class_weights", "check_iou_from_confusion", "check_soft_dice_loss"]

from seglib.checks.upsampling import (  # noqa: E402
    OUTPUT_SIZE_QUESTIONS,
    check_conv_matrix,
    check_conv_transpose1d,
    check_output_sizes,
)

__all__ += ["OUTPUT_SIZE_QUESTIONS", "check_conv_matrix", "check_conv_transpose1d", "check_output_sizes"]

from seglib.checks.fcn import check_bilinear_kernel, check_linear_to_conv  # noqa: E402

__all__ += ["check_bilinear_kernel", "check_linear_to_conv"]

from seglib.checks.unet import check_decoder_block, check_receptive_field  # noqa: E402

__all__ += ["check_decoder_block", "check_receptive_field"]

from seglib.checks.sam import check_best_mask, check_fourier_encoding  # noqa: E402

__all__ += ["check_best_mask", "check_fourier_encoding"]

from seglib.checks.instance import (  # noqa: E402
    check_bilinear,
    check_mask_iou,
    check_match_predictions,
    check_roi_align_box,
)

__all__ += ["check_bilinear", "check_mask_iou", "check_match_predictions", "check_roi_align_box"]
