"""The one validation policy of seglib's public functions.

A wrong *type* raises ``TypeError``; a wrong *value*, range or shape raises
``ValueError``. Every message names the argument, says what was expected and
what came: ``"stride must be a positive int, got 0"``. Public functions validate
where students call in (ops, losses, metrics, checks, widgets, predictors,
data generators, zoo); internal builders document their preconditions.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch


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


def check_ints(name: str, values: object, length: int | None = None, minimum: int | None = 1) -> tuple[int, ...]:
    """Return ``values`` as a tuple if it is a non-empty list or tuple of ints >= ``minimum`` (of ``length``)."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list or tuple of ints, got {type(values).__name__} {values!r}")
    if not values or (length is not None and len(values) != length):
        expected = f"{length} ints" if length is not None else "at least one int"
        raise ValueError(f"{name} must hold {expected}, got {len(values)}: {values!r}")
    return tuple(check_int(f"{name}[{i}]", value, minimum) for i, value in enumerate(values))


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is ``True`` or ``False``; else raise ``TypeError`` naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; else raise ``ValueError`` naming ``name``."""
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


def _got(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


_KINDS = {
    "float": (lambda t: t.is_floating_point(), "float"),
    "int": (lambda t: not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool, "integer"),
    "bool": (lambda t: t.dtype == torch.bool, "bool"),
    "number": (lambda t: t.dtype != torch.bool and not t.is_complex(), "real-valued"),
    "any": (lambda t: True, ""),
}


def check_tensor(name: str, value: object, shape: str, kind: str = "any", ndim: int | Sequence[int] | None = None,
                 hint: str = "") -> torch.Tensor:
    """Return ``value`` if it is a tensor of ``kind`` with ``ndim`` dimensions; else raise naming ``name``.

    Args:
        name: the argument's name, for the message.
        value: what came.
        shape: the expected shape in words, such as ``"(N, 4)"``; by default its
            number of comma-separated sizes is the number of dimensions.
        kind: ``"float"``, ``"int"``, ``"bool"``, ``"number"`` (not bool) or ``"any"``.
        ndim: allowed numbers of dimensions (default: from ``shape``).
        hint: appended to a dtype error, e.g. how to convert.

    Raises:
        TypeError: not a tensor, or a tensor of another kind.
        ValueError: another number of dimensions.
    """
    test, word = _KINDS[kind]
    described = f"{word} tensor" if word else "tensor"
    article = "an" if described[0] in "aeiou" else "a"
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be {article} {described} {shape}, got {_got(value)}")
    if not test(value):
        raise TypeError(f"{name} must be {article} {described} {shape}, got dtype {value.dtype}{hint}")
    if ndim is None:
        ndim = len([part for part in shape.split(")")[0].strip("( ").split(",") if part.strip()])
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if value.dim() not in allowed:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    return value


def check_float_tensor(name: str, value: object, shape: str = "(B, C, H, W)", channels: int | None = None
                       ) -> torch.Tensor:
    """:func:`check_tensor` of a float tensor, with ``channels`` the size of dimension 1 if fixed."""
    check_tensor(name, value, shape, "float")
    if channels is not None and value.shape[1] != channels:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    return value


def check_image(name: str, value: object, batched: bool = False, allow_uint8: bool = False,
                check_range: bool = True) -> torch.Tensor:
    """Return ``value`` if it is an RGB image float ``(3, H, W)`` (``(B, 3, H, W)`` if ``batched``) in [0, 1].

    The messages spell out the usual mistakes: a missing batch dimension, a
    single image where a batch is expected, channels last ``(H, W, 3)``,
    values in 0-255, an integer dtype. ``allow_uint8`` also accepts uint8
    images (0-255); ``check_range=False`` skips the value check (it reads the
    tensor, which waits for a GPU).
    """
    shape = "(B, 3, H, W)" if batched else "(3, H, W)"
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a float image tensor {shape} in [0, 1], got {_got(value)}")
    if allow_uint8 and value.dtype == torch.uint8:
        pass
    elif not value.is_floating_point():
        raise TypeError(f"{name} must be a float image tensor {shape} in [0, 1], got dtype {value.dtype}; "
                        "convert 0-255 integers with .float() / 255")
    want = 4 if batched else 3
    if value.dim() != want:
        if batched and value.dim() == 3:
            raise ValueError(f"{name} must be a batch {shape}, got one image of shape {tuple(value.shape)}; "
                             f"add the batch dimension with {name}[None]")
        if not batched and value.dim() == 4:
            raise ValueError(f"{name} must be one image {shape}, got a batch of shape {tuple(value.shape)}; "
                             f"pass {name}[0]")
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    if value.shape[-3] != 3:
        last = " (it looks channels-last: use .permute(2, 0, 1))" if value.shape[-1] == 3 else ""
        raise ValueError(f"{name} must have shape {shape} with 3 colour channels, got {tuple(value.shape)}{last}")
    if check_range and value.is_floating_point() and value.numel():
        low, high = float(value.min()), float(value.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{name} must hold finite values in [0, 1], got NaN or inf")
        if low < -1e-3 or high > 1 + 1e-3:
            hint = "; it looks like 0-255 values: divide by 255" if high > 2 else ""
            raise ValueError(f"{name} must hold values in [0, 1], got values in [{low:.3g}, {high:.3g}]{hint}")
    return value


def check_label_map(name: str, value: object, num_classes: int | None = None, ignore_index: int | None = 255,
                    shape: str = "(B, H, W)", ndim: int | Sequence[int] | None = None,
                    values: bool = True) -> torch.Tensor:
    """Return ``value`` if it is an integer label map with ids in ``[0, num_classes)`` or ``ignore_index``.

    A float map gets the hint to take ``.argmax(dim=1)`` of logits or ``.long()``.
    ``values=False`` skips the id check (it reads the tensor, which waits for a GPU).
    """
    check_tensor(name, value, shape, "int", ndim,
                 hint="; for logits take .argmax(dim=1) first, for a float copy of labels use .long()")
    if values and num_classes is not None and value.numel():
        bad = (value < 0) | (value >= num_classes)
        if ignore_index is not None:
            bad &= value != ignore_index
        if bool(bad.any()):
            example = int(value[bad][0])
            allowed = f"[0, {num_classes})" + (f" or {ignore_index}" if ignore_index is not None else "")
            raise ValueError(f"{name} must hold class ids in {allowed}, got {example}")
    return value


def check_logits(name: str, value: object, shape: str = "(B, C, H, W)", ndim: int | Sequence[int] | None = None
                 ) -> torch.Tensor:
    """Return ``value`` if it is a float tensor of logits with finite values.

    The finiteness check runs on CPU tensors only: on a GPU it would make the
    host wait inside every training step (there, a NaN loss shows it instead).
    """
    check_tensor(name, value, shape, "float", ndim)
    if value.device.type == "cpu" and value.numel() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf values (has the training diverged?)")
    return value


def check_masks(name: str, value: object, shape: str = "(N, H, W)", ndim: int | Sequence[int] | None = None
                ) -> torch.Tensor:
    """Return ``value`` if it is a bool tensor of masks (compare float masks with ``> 0.5`` first)."""
    return check_tensor(name, value, shape, "bool", ndim, hint="; threshold a float mask first, e.g. mask > 0.5")


def check_boxes(name: str, value: object, shape: str = "(N, 4)") -> torch.Tensor:
    """Return ``value`` if it is a float tensor of xyxy boxes ``(N, 4)`` with ``x2 >= x1`` and ``y2 >= y1``."""
    check_tensor(name, value, shape, "float")
    if value.shape[-1] != 4:
        raise ValueError(f"{name} must have shape {shape} (x1, y1, x2, y2), got {tuple(value.shape)}")
    flipped = (value[..., 2:] < value[..., :2]).any(dim=-1)
    if bool(flipped.any()):
        row = value.reshape(-1, 4)[flipped.reshape(-1)][0].tolist()
        raise ValueError(f"{name} must be xyxy boxes with x2 >= x1 and y2 >= y1, got {row}")
    return value


def check_same_size(name: str, value: torch.Tensor, other_name: str, other: torch.Tensor, dims: int = 2) -> None:
    """Raise ``ValueError`` unless the last ``dims`` sizes of ``value`` and ``other`` agree."""
    if tuple(value.shape[-dims:]) != tuple(other.shape[-dims:]):
        raise ValueError(f"{name} and {other_name} must have the same last {dims} sizes, got "
                         f"{name} {tuple(value.shape)} and {other_name} {tuple(other.shape)}")


def check_not_empty(name: str, value: object) -> None:
    """Raise ``ValueError`` if ``value`` (a tensor or a sequence) holds no instance."""
    if len(value) == 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must hold at least one instance, got an empty {type(value).__name__}")
