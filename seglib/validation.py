"""The one validation policy of seglib's public functions.

A wrong *type* raises ``TypeError``; a wrong *value*, range or shape raises
``ValueError``. Every message names the argument, says what was expected and
what came: ``"stride must be an int >= 1, got 0"``. Public functions validate
where students call in (ops, losses, metrics, checks, widgets, predictors,
data generators, zoo); internal builders document their preconditions.
"""

from __future__ import annotations

import numbers
from typing import Sequence


def check_int(name: str, value: object, minimum: int | None = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an int if it is one in ``[minimum, maximum]``; else raise naming ``name``.

    Raises:
        TypeError: ``value`` is not an integer (bools are refused too).
        ValueError: ``value`` is outside the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if maximum is None:
            expected = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        elif minimum is None:
            expected = f"an int <= {maximum}"
        else:
            expected = f"an int in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {expected}, got {value}")
    return int(value)


def check_positive_int(name: str, value: object) -> int:
    """:func:`check_int` with ``minimum=1``."""
    return check_int(name, value, 1)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; else raise ``ValueError`` naming ``name``."""
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


def check_float_tensor(name: str, value: object, shape: str = "(B, C, H, W)", channels: int | None = None):
    """Return ``value`` if it is a floating-point tensor with as many dimensions as ``shape`` names.

    Args:
        name: the argument's name, for the message.
        value: what came.
        shape: the expected shape in words, such as ``"(B, 3, H, W)"``; its
            number of comma-separated parts is the number of dimensions.
        channels: the size of dimension 1, if it is fixed.

    Raises:
        TypeError: ``value`` is not a tensor, or not a floating-point one.
        ValueError: it has another number of dimensions or channels.
    """
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a float tensor {shape}, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a float tensor {shape}, got dtype {value.dtype}")
    ndim = shape.count(",") + 1
    if value.dim() != ndim or (channels is not None and value.shape[1] != channels):
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    return value
