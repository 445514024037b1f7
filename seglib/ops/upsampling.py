"""Upsampling: output-size arithmetic, transposed convolution from scratch, unpooling.

Everything here follows the layout and the size rules of
``torch.nn.functional``, so each function can be compared with PyTorch:

====================================  =============================================
``conv_output_size``                  output length of ``conv1d``/``conv2d`` along one axis
``conv_transpose_output_size``        output length of ``conv_transpose1d``/``2d``
``explain_output_size``               either formula with the numbers filled in
``conv_transpose1d``/``2d``           scatter-add transposed convolution, ``(B,C,L)``/``(B,C,H,W)``
``conv_matrix``                       a convolution as a matrix ``C``; ``C.T`` is the transposed conv
``bed_of_nails``, ``nearest_unpool``  fixed upsampling of ``(B,C,H,W)`` by an integer ``scale``
====================================  =============================================

Symbols in the formulas: ``n`` input size, ``k`` kernel size, ``s`` stride,
``p`` padding, ``d`` dilation.
"""

from __future__ import annotations

import itertools
import numbers
from typing import Sequence, Union

import torch

from seglib.validation import check_int

IntOrPair = Union[int, Sequence[int]]

CONV_SIZE_FORMULA = "floor((n + 2p - d(k-1) - 1) / s) + 1"
CONV_TRANSPOSE_SIZE_FORMULA = "(n-1)s - 2p + d(k-1) + output_padding + 1"


# --------------------------------------------------------------------------- validation


def _check_pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, as ``(height, width)``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be an int or a pair of ints (height, width), got {value!r}")
    return (check_int(f"{name}[0]", value[0], minimum), check_int(f"{name}[1]", value[1], minimum))


def _check_tensor(name: str, value: object, shape: str) -> torch.Tensor:
    """A floating-point tensor with as many dimensions as ``shape`` names, e.g. ``"(B, C, H, W)"``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {shape}, got {type(value).__name__}")
    ndim = len([axis for axis in shape.strip("()").split(",") if axis.strip()])
    if value.dim() != ndim:
        raise ValueError(f"{name} must have shape {shape}, got shape {tuple(value.shape)}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def _check_input_and_weight(x: object, weight: object, bias: object, spatial: str) -> None:
    """Validate ``x (B, C_in, *spatial)``, ``weight (C_in, C_out, *kernel)`` and ``bias (C_out,)``."""
    kernel = spatial.replace("L", "k").replace("H", "kh").replace("W", "kw")
    _check_tensor("x", x, f"(B, C_in, {spatial})")
    _check_tensor("weight", weight, f"(C_in, C_out, {kernel})")
    if weight.shape[0] != x.shape[1]:
        raise ValueError(
            f"weight.shape[0] must equal the channels of x (C_in = {x.shape[1]}), "
            f"got weight of shape {tuple(weight.shape)}"
        )
    if weight.dtype != x.dtype or weight.device != x.device:
        raise ValueError(
            f"weight must have the dtype and device of x ({x.dtype}, {x.device}), "
            f"got {weight.dtype}, {weight.device}"
        )
    if bias is not None:
        _check_tensor("bias", bias, "(C_out,)")
        if tuple(bias.shape) != (weight.shape[1],):
            raise ValueError(f"bias must have shape ({weight.shape[1]},), got {tuple(bias.shape)}")


# --------------------------------------------------------------------------- output sizes


def _conv_filled(n: int, k: int, s: int, p: int, d: int) -> str:
    inner = n + 2 * p - d * (k - 1) - 1
    return f"floor(({n} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = floor({inner} / {s}) + 1"


def _transposed_filled(n: int, k: int, s: int, p: int, d: int, op: int) -> str:
    return f"({n}-1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1"


def _check_sizes(size, kernel_size, stride, padding, dilation) -> tuple[int, int, int, int, int]:
    return (
        check_int("size", size, 1),
        check_int("kernel_size", kernel_size, 1),
        check_int("stride", stride, 1),
        check_int("padding", padding, 0),
        check_int("dilation", dilation, 1),
    )


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis, as ``torch.nn.Conv1d``/``Conv2d`` compute it.

    ``floor((n + 2p - d(k-1) - 1) / s) + 1``: the kernel spans ``d(k-1) + 1``
    cells and fits ``floor(...) + 1`` times into the padded input, moving by ``s``.

    Raises:
        TypeError: an argument is not an int.
        ValueError: a size, kernel_size, stride or dilation below 1, a negative
            padding, or a dilated kernel wider than the padded input.
    """
    n, k, s, p, d = _check_sizes(size, kernel_size, stride, padding, dilation)
    span = d * (k - 1) + 1
    if span > n + 2 * p:
        raise ValueError(
            f"kernel_size={k} with dilation={d} spans {span} cells, more than the padded input "
            f"(size + 2*padding = {n} + 2*{p} = {n + 2 * p}), so the output would be empty; "
            "expected a smaller kernel_size or dilation, or more padding"
        )
    return (n + 2 * p - span) // s + 1


def conv_transpose_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
) -> int:
    """Output length of a transposed convolution along one axis, as ``torch.nn.ConvTranspose2d`` computes it.

    ``(n-1)s - 2p + d(k-1) + output_padding + 1``. A convolution with stride
    ``s`` maps ``s`` neighbouring input sizes to the same output size;
    ``output_padding`` picks which one the transposed convolution returns, so
    PyTorch requires it to be smaller than ``stride`` or than ``dilation``.

    Raises:
        TypeError: an argument is not an int.
        ValueError: a size, kernel_size, stride or dilation below 1, a negative
            padding or output_padding, an output_padding not smaller than stride
            or dilation, or a padding so large that the output is empty.
    """
    n, k, s, p, d = _check_sizes(size, kernel_size, stride, padding, dilation)
    op = check_int("output_padding", output_padding, 0)
    if op >= s and op >= d:
        raise ValueError(f"output_padding ({op}) must be smaller than stride ({s}) or dilation ({d})")
    out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
    if out < 1:
        raise ValueError(
            f"padding={p} is too large: the output size would be {_transposed_filled(n, k, s, p, d, op)} = {out}; "
            "expected a result of at least 1"
        )
    return out


def explain_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
    transposed: bool = False,
) -> str:
    """The output-size formula, then the same with the numbers filled in, then the result.

    Example: ``explain_output_size(7, 3, stride=2, padding=1)`` is
    ``"floor((n + 2p - d(k-1) - 1) / s) + 1 = floor((7 + 2*1 - 1*(3-1) - 1) / 2) + 1 = floor(6 / 2) + 1 = 4"``.

    Raises:
        ValueError, TypeError: as :func:`conv_output_size` or
            :func:`conv_transpose_output_size`; also a non-zero
            ``output_padding`` with ``transposed=False``.
    """
    if not isinstance(transposed, bool):
        raise TypeError(f"transposed must be a bool, got {type(transposed).__name__}")
    if transposed:
        out = conv_transpose_output_size(size, kernel_size, stride, padding, dilation, output_padding)
        filled = _transposed_filled(size, kernel_size, stride, padding, dilation, output_padding)
        return f"{CONV_TRANSPOSE_SIZE_FORMULA} = {filled} = {out}"
    if check_int("output_padding", output_padding, 0) != 0:
        raise ValueError(
            f"output_padding applies only to transposed convolutions, got output_padding={output_padding!r} "
            "with transposed=False"
        )
    out = conv_output_size(size, kernel_size, stride, padding, dilation)
    return f"{CONV_SIZE_FORMULA} = {_conv_filled(size, kernel_size, stride, padding, dilation)} = {out}"


# --------------------------------------------------------------------------- transposed convolution


def _add_bias(out: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if bias is None:
        return out
    return out + bias.reshape(1, -1, *([1] * (out.dim() - 2)))


def conv_transpose1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
    *,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Transposed 1-D convolution written as a scatter-add; matches ``F.conv_transpose1d``.

    Each input element ``x[:, :, i]`` scales the whole kernel and adds it into
    the output starting at ``i * stride`` (kernel taps ``dilation`` apart);
    where two scaled kernels overlap, their contributions are summed. The
    first and last ``padding`` cells of that sum are then cropped away.

    Args:
        x: ``(B, C_in, L)``.
        weight: ``(C_in, C_out, k)``, PyTorch's layout for transposed convolutions.
        stride, padding, dilation, output_padding: ints, as in PyTorch.
        bias: optional ``(C_out,)``.

    Returns:
        ``(B, C_out, L_out)`` with ``L_out = conv_transpose_output_size(L, k, ...)``.
    """
    _check_input_and_weight(x, weight, bias, "L")
    k = weight.shape[-1]
    length = conv_transpose_output_size(x.shape[-1], k, stride, padding, dilation, output_padding)
    span = dilation * (k - 1) + 1
    full = x.new_zeros(x.shape[0], weight.shape[1], length + 2 * padding)
    for i in range(x.shape[-1]):
        start = i * stride
        # (B, C_in) times (C_in, C_out, k) -> (B, C_out, k): the kernel scaled by the input element
        full[:, :, start : start + span : dilation] += torch.einsum("bc,cok->bok", x[:, :, i], weight)
    return _add_bias(full[:, :, padding : padding + length], bias)


def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    output_padding: IntOrPair = 0,
    *,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Transposed 2-D convolution written as a scatter-add; matches ``F.conv_transpose2d``.

    The 2-D version of :func:`conv_transpose1d`: input pixel ``(i, j)`` adds the
    kernel scaled by its value at rows ``i*stride_h + dilation_h*t`` and columns
    ``j*stride_w + dilation_w*u``; overlaps are summed, then ``padding`` is
    cropped from every side.

    Args:
        x: ``(B, C_in, H, W)``.
        weight: ``(C_in, C_out, kh, kw)``.
        stride, padding, dilation, output_padding: an int or a pair ``(height, width)``.
        bias: optional ``(C_out,)``.

    Returns:
        ``(B, C_out, H_out, W_out)``, each side given by :func:`conv_transpose_output_size`.
    """
    _check_input_and_weight(x, weight, bias, "H, W")
    (sh, sw), (ph, pw) = _check_pair("stride", stride, 1), _check_pair("padding", padding, 0)
    (dh, dw), (oph, opw) = _check_pair("dilation", dilation, 1), _check_pair("output_padding", output_padding, 0)
    kh, kw = weight.shape[-2:]
    height = conv_transpose_output_size(x.shape[-2], kh, sh, ph, dh, oph)
    width = conv_transpose_output_size(x.shape[-1], kw, sw, pw, dw, opw)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    full = x.new_zeros(x.shape[0], weight.shape[1], height + 2 * ph, width + 2 * pw)
    for i, j in itertools.product(range(x.shape[-2]), range(x.shape[-1])):
        top, left = i * sh, j * sw
        # (B, C_in) times (C_in, C_out, kh, kw) -> (B, C_out, kh, kw)
        scaled = torch.einsum("bc,cohw->bohw", x[:, :, i, j], weight)
        full[:, :, top : top + span_h : dh, left : left + span_w : dw] += scaled
    return _add_bias(full[:, :, ph : ph + height, pw : pw + width], bias)


# --------------------------------------------------------------------------- convolution as a matrix


def conv_matrix(
    weight: torch.Tensor,
    input_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> torch.Tensor:
    """The matrix ``C`` of a single-channel convolution: ``C @ x.flatten()`` is the convolution of ``x``.

    Row ``o`` of ``C`` holds the kernel weights at the input positions that
    output ``o`` reads (positions that fall into the zero padding are left
    out). Its transpose ``C.T`` maps outputs back to inputs: ``C.T @ y`` is
    ``F.conv_transpose1d``/``2d`` of ``y`` with the same weight, stride,
    padding and dilation (with ``output_padding`` chosen so that the sizes
    match). ``C.T`` restores the shape, not the values: it is not ``C``'s inverse.

    Args:
        weight: ``(k,)`` for 1-D or ``(kh, kw)`` for 2-D, floating point.
        input_size: ``n`` (1-D) or ``(H, W)`` (2-D).
        stride, padding, dilation: ints (1-D), or ints or pairs (2-D).

    Returns:
        1-D: ``(n_out, n)``. 2-D: ``(H_out * W_out, H * W)``, rows and columns
        in row-major order of the output and input images.
    """
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor of shape (k,) or (kh, kw), got {type(weight).__name__}")
    if weight.dim() == 1:
        return _conv_matrix_1d(_check_tensor("weight", weight, "(k,)"), input_size, stride, padding, dilation)
    if weight.dim() == 2:
        return _conv_matrix_2d(_check_tensor("weight", weight, "(kh, kw)"), input_size, stride, padding, dilation)
    raise ValueError(f"weight must have shape (k,) or (kh, kw), got shape {tuple(weight.shape)}")


def _conv_matrix_1d(weight: torch.Tensor, n: int, stride: int, padding: int, dilation: int) -> torch.Tensor:
    n = check_int("input_size", n, 1)
    n_out = conv_output_size(n, weight.shape[0], stride, padding, dilation)
    matrix = weight.new_zeros(n_out, n)
    for o, t in itertools.product(range(n_out), range(weight.shape[0])):
        i = o * stride - padding + t * dilation
        if 0 <= i < n:
            matrix[o, i] = weight[t]
    return matrix


def _conv_matrix_2d(weight: torch.Tensor, input_size, stride, padding, dilation) -> torch.Tensor:
    height, width = _check_pair("input_size", input_size, 1)
    (sh, sw), (ph, pw) = _check_pair("stride", stride, 1), _check_pair("padding", padding, 0)
    dh, dw = _check_pair("dilation", dilation, 1)
    kh, kw = weight.shape
    out_h = conv_output_size(height, kh, sh, ph, dh)
    out_w = conv_output_size(width, kw, sw, pw, dw)
    matrix = weight.new_zeros(out_h * out_w, height * width)
    for oy, ox, t, u in itertools.product(range(out_h), range(out_w), range(kh), range(kw)):
        iy, ix = oy * sh - ph + t * dh, ox * sw - pw + u * dw
        if 0 <= iy < height and 0 <= ix < width:
            matrix[oy * out_w + ox, iy * width + ix] = weight[t, u]
    return matrix


# --------------------------------------------------------------------------- unpooling


def _check_upsampling(x: object, scale: object) -> int:
    _check_tensor("x", x, "(B, C, H, W)")
    return check_int("scale", scale, 1)


def bed_of_nails(x: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """Bed-of-nails unpooling: each value goes to the top-left cell of its ``scale x scale`` block, zeros elsewhere.

    Args:
        x: ``(B, C, H, W)``, floating point.
        scale: a positive int.

    Returns:
        ``(B, C, H*scale, W*scale)``.
    """
    scale = _check_upsampling(x, scale)
    batch, channels, height, width = x.shape
    out = x.new_zeros(batch, channels, height * scale, width * scale)
    out[:, :, ::scale, ::scale] = x
    return out


def nearest_unpool(x: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """Nearest-neighbour unpooling: each value fills its whole ``scale x scale`` block.

    Equals ``F.interpolate(x, scale_factor=scale, mode="nearest")``.

    Args:
        x: ``(B, C, H, W)``, floating point.
        scale: a positive int.

    Returns:
        ``(B, C, H*scale, W*scale)``.
    """
    scale = _check_upsampling(x, scale)
    return x.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


__all__ = [
    "CONV_SIZE_FORMULA",
    "CONV_TRANSPOSE_SIZE_FORMULA",
    "bed_of_nails",
    "conv_matrix",
    "conv_output_size",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose_output_size",
    "explain_output_size",
    "nearest_unpool",
]
