"""seglib.ops.upsampling against torch.nn.functional over full grids of layer settings."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from seglib.ops.upsampling import (
    CONV_SIZE_FORMULA,
    CONV_TRANSPOSE_SIZE_FORMULA,
    bed_of_nails,
    conv_matrix,
    conv_output_size,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose_output_size,
    explain_output_size,
    nearest_unpool,
)

SIZES = range(1, 7)
KERNELS = range(1, 5)
STRIDES = range(1, 4)
PADDINGS = range(0, 4)
DILATIONS = range(1, 4)
OUTPUT_PADDINGS = range(0, 3)


def assert_relative_close(got: torch.Tensor, expected: torch.Tensor, context: object) -> None:
    assert got.shape == expected.shape, f"{context}: shape {tuple(got.shape)} != {tuple(expected.shape)}"
    scale = max(expected.abs().max().item(), 1e-12)
    error = (got - expected).abs().max().item() / scale
    assert error < 1e-10, f"{context}: relative error {error:.3g}"


def torch_or_none(function, *args, **kwargs):
    """PyTorch's result, or None where PyTorch rejects the settings."""
    try:
        return function(*args, **kwargs)
    except RuntimeError:
        return None


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# --------------------------------------------------------------------------- output sizes


def test_conv_output_size_matches_conv1d_on_full_grid(generator):
    checked = rejected = 0
    for n, k, s, p, d in itertools.product(SIZES, KERNELS, STRIDES, PADDINGS, DILATIONS):
        x = torch.randn(1, 1, n, dtype=torch.float64, generator=generator)
        w = torch.randn(1, 1, k, dtype=torch.float64, generator=generator)
        expected = torch_or_none(F.conv1d, x, w, stride=s, padding=p, dilation=d)
        if expected is None:
            with pytest.raises(ValueError, match="kernel_size"):
                conv_output_size(n, k, s, p, d)
            rejected += 1
        else:
            assert conv_output_size(n, k, s, p, d) == expected.shape[-1], (n, k, s, p, d)
            checked += 1
    assert checked > 500 and rejected > 50


@pytest.mark.parametrize("stride", STRIDES)
def test_conv_transpose1d_matches_torch_on_full_grid(stride, generator):
    """Sizes, values and rejections agree with F.conv_transpose1d for every setting of the grid."""
    checked = rejected = 0
    for n, k, p, d, op in itertools.product(SIZES, KERNELS, PADDINGS, DILATIONS, OUTPUT_PADDINGS):
        x = torch.randn(2, 3, n, dtype=torch.float64, generator=generator)
        w = torch.randn(3, 2, k, dtype=torch.float64, generator=generator)
        settings = dict(stride=stride, padding=p, dilation=d, output_padding=op)
        expected = torch_or_none(F.conv_transpose1d, x, w, **settings)
        if expected is None:
            with pytest.raises(ValueError, match="output_padding|padding"):
                conv_transpose_output_size(n, k, stride, p, d, op)
            with pytest.raises(ValueError):
                conv_transpose1d(x, w, **settings)
            rejected += 1
            continue
        assert conv_transpose_output_size(n, k, stride, p, d, op) == expected.shape[-1]
        assert_relative_close(conv_transpose1d(x, w, **settings), expected, (n, k, settings))
        checked += 1
    assert checked > 300 and rejected > 50


def _axis_settings() -> list[tuple[int, int, int, int, int, int]]:
    """(n, k, s, p, d, output_padding) along one axis, the ones PyTorch accepts."""
    settings = []
    for n, k, s, p, d, op in itertools.product((1, 2, 4, 5), (1, 2, 3), (1, 2, 3), (0, 1, 2), (1, 2), (0, 1, 2)):
        try:
            conv_transpose_output_size(n, k, s, p, d, op)
        except ValueError:
            continue
        settings.append((n, k, s, p, d, op))
    return settings


def test_conv_transpose2d_and_module_shapes_match_torch(generator):
    """Every accepted axis setting is used for the height, each paired with a different one for the width."""
    axes = _axis_settings()
    for index, (height, width) in enumerate(zip(axes, axes[7:] + axes[:7])):
        (h, kh, sh, ph, dh, oph), (wd, kw, sw, pw, dw, opw) = height, width
        x = torch.randn(1, 2, h, wd, dtype=torch.float64, generator=generator)
        w = torch.randn(2, 3, kh, kw, dtype=torch.float64, generator=generator)
        b = torch.randn(3, dtype=torch.float64, generator=generator)
        settings = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), output_padding=(oph, opw))
        expected = F.conv_transpose2d(x, w, b, **settings)
        assert_relative_close(conv_transpose2d(x, w, bias=b, **settings), expected, (height, width))
        expected_size = (conv_transpose_output_size(*height), conv_transpose_output_size(*width))
        assert tuple(expected.shape[-2:]) == expected_size
        if index % 5 == 0:  # building a module is slower than the functional call
            module = torch.nn.ConvTranspose2d(2, 3, (kh, kw), **settings).double()
            assert tuple(module(x).shape[-2:]) == expected_size
    assert len(axes) > 150


def _conv_size_or_none(*settings: int) -> int | None:
    try:
        return conv_output_size(*settings)
    except ValueError:
        return None


def test_conv2d_output_sizes_match_torch(generator):
    checked = 0
    for height, width in itertools.product(itertools.product((2, 6), (1, 3), (1, 2), (0, 1), (1, 2)), repeat=2):
        (h, kh, sh, ph, dh), (wd, kw, sw, pw, dw) = height, width
        x = torch.randn(1, 1, h, wd, dtype=torch.float64, generator=generator)
        w = torch.randn(1, 1, kh, kw, dtype=torch.float64, generator=generator)
        out = torch_or_none(F.conv2d, x, w, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
        expected = None if out is None else tuple(out.shape[-2:])
        sizes = (_conv_size_or_none(*height), _conv_size_or_none(*width))
        assert (None if None in sizes else sizes) == expected, (height, width)
        checked += out is not None
    assert checked > 500


def test_padding_by_half_the_kernel_keeps_the_size():
    assert conv_output_size(32, 3, padding=1) == 32
    assert conv_output_size(32, 3, stride=2, padding=1) == 16
    assert conv_transpose_output_size(16, 4, stride=2, padding=1) == 32


def test_output_padding_picks_among_sizes_that_stride_merges():
    """Inputs of 7 and 8 both give 4 outputs with stride 2; output_padding recovers either."""
    assert conv_output_size(7, 3, stride=2, padding=1) == conv_output_size(8, 3, stride=2, padding=1) == 4
    assert conv_transpose_output_size(4, 3, stride=2, padding=1) == 7
    assert conv_transpose_output_size(4, 3, stride=2, padding=1, output_padding=1) == 8


def test_explain_output_size_fills_in_the_numbers():
    assert explain_output_size(7, 3, stride=2, padding=1) == (
        f"{CONV_SIZE_FORMULA} = floor((7 + 2*1 - 1*(3-1) - 1) / 2) + 1 = floor(6 / 2) + 1 = 4"
    )
    assert explain_output_size(4, 4, stride=2, padding=1, transposed=True) == (
        f"{CONV_TRANSPOSE_SIZE_FORMULA} = (4-1)*2 - 2*1 + 1*(4-1) + 0 + 1 = 8"
    )


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: conv_output_size(0, 3), ValueError, r"size must be a positive int, got 0"),
        (lambda: conv_output_size(5, 0), ValueError, r"kernel_size must be a positive int, got 0"),
        (lambda: conv_output_size(5, 3, stride=0), ValueError, r"stride must be a positive int, got 0"),
        (lambda: conv_output_size(5, 3, padding=-1), ValueError, r"padding must be an int >= 0, got -1"),
        (lambda: conv_output_size(5, 3, dilation=0), ValueError, r"dilation must be a positive int, got 0"),
        (lambda: conv_output_size(2, 3), ValueError, r"kernel_size=3 with dilation=1 spans 3 cells.*2 \+ 2\*0 = 2"),
        (lambda: conv_output_size(5, 3, dilation=3), ValueError, r"kernel_size=3 with dilation=3 spans 7 cells"),
        (lambda: conv_output_size(5.0, 3), TypeError, r"size must be an int, got float 5.0"),
        (lambda: conv_output_size(5, True), TypeError, r"kernel_size must be an int, got bool"),
        (
            lambda: conv_transpose_output_size(5, 3, stride=2, output_padding=2),
            ValueError,
            r"output_padding \(2\) must be smaller than stride \(2\) or dilation \(1\)",
        ),
        (
            lambda: conv_transpose_output_size(5, 3, output_padding=1),
            ValueError,
            r"output_padding \(1\) must be smaller than stride \(1\) or dilation \(1\)",
        ),
        (
            lambda: conv_transpose_output_size(5, 3, output_padding=-1),
            ValueError,
            r"output_padding must be an int >= 0, got -1",
        ),
        (
            lambda: conv_transpose_output_size(2, 1, padding=1),
            ValueError,
            r"padding=1 is too large: the output size would be \(2-1\)\*1 - 2\*1 \+ 1\*\(1-1\) \+ 0 \+ 1 = 0",
        ),
        (
            lambda: explain_output_size(5, 3, output_padding=1),
            ValueError,
            r"output_padding applies only to transposed convolutions",
        ),
    ],
)
def test_size_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- transposed convolution


def test_transposed_convolution_sums_overlapping_kernels():
    """Input [1, 2] with kernel [1, 1, 1] and stride 1: the middle cells receive both copies."""
    x = torch.tensor([[[1.0, 2.0]]])
    w = torch.ones(1, 1, 3)
    assert conv_transpose1d(x, w).flatten().tolist() == [1.0, 3.0, 3.0, 2.0]
    assert conv_transpose1d(x, w, stride=3).flatten().tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]


def test_conv_transpose1d_bias_matches_torch(generator):
    x = torch.randn(2, 3, 4, dtype=torch.float64, generator=generator)
    w = torch.randn(3, 5, 3, dtype=torch.float64, generator=generator)
    b = torch.randn(5, dtype=torch.float64, generator=generator)
    assert_relative_close(conv_transpose1d(x, w, 2, 1, bias=b), F.conv_transpose1d(x, w, b, stride=2, padding=1), "bias")


def test_transposed_convolution_is_the_gradient_of_convolution(generator):
    """The transpose of a convolution is what backpropagation computes through it."""
    x = torch.randn(1, 2, 7, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, generator=generator)
    y = F.conv2d(x, w, stride=2, padding=1)
    upstream = torch.randn(y.shape, dtype=torch.float64, generator=generator)
    y.backward(upstream)
    transposed = conv_transpose2d(upstream, w, stride=2, padding=1, output_padding=(0, 1))
    assert_relative_close(transposed, x.grad, "gradient")


def _ones(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.ones(*shape, dtype=dtype)


@pytest.mark.parametrize(
    "arguments, error, match",
    [
        (([1.0, 2.0], _ones(1, 1, 3)), TypeError, r"x must be a torch.Tensor.*got list"),
        ((_ones(4), _ones(1, 1, 3)), ValueError, r"x must have shape \(B, C_in, L\), got shape \(4,\)"),
        ((_ones(1, 1, 4), _ones(3)), ValueError, r"weight must have shape \(C_in, C_out, k\), got shape \(3,\)"),
        ((_ones(1, 2, 4), _ones(1, 1, 3)), ValueError, r"weight.shape\[0\] must equal the channels of x \(C_in = 2\)"),
        (
            (_ones(1, 1, 4, dtype=torch.int64), _ones(1, 1, 3)),
            TypeError,
            r"x must be a floating-point tensor, got dtype torch.int64",
        ),
        ((_ones(1, 1, 4), _ones(1, 1, 3, dtype=torch.float64)), ValueError, r"weight must have the dtype and device of x"),
        ((_ones(1, 1, 4), _ones(1, 1, 3), 0), ValueError, r"stride must be a positive int, got 0"),
    ],
)
def test_conv_transpose1d_errors(arguments, error, match):
    with pytest.raises(error, match=match):
        conv_transpose1d(*arguments)


def test_bias_shape_error():
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\), got \(3,\)"):
        conv_transpose1d(_ones(1, 1, 4), _ones(1, 2, 3), bias=_ones(3))


@pytest.mark.parametrize(
    "settings, error, match",
    [
        (dict(stride=(1, 2, 3)), TypeError, r"stride must be an int or a pair of ints"),
        (dict(padding=(0, -1)), ValueError, r"padding\[1\] must be an int >= 0, got -1"),
        (dict(stride=2, output_padding=(0, 2)), ValueError, r"output_padding \(2\) must be smaller than stride \(2\)"),
    ],
)
def test_conv_transpose2d_errors(settings, error, match):
    with pytest.raises(error, match=match):
        conv_transpose2d(_ones(1, 1, 4, 4), _ones(1, 1, 3, 3), **settings)


# --------------------------------------------------------------------------- convolution as a matrix


def test_conv_matrix_1d_and_its_transpose_on_full_grid(generator):
    """C @ x is conv1d; C.T @ y is conv_transpose1d, with output_padding = the cells the stride dropped."""
    checked = 0
    for n, k, s, p, d in itertools.product(SIZES, KERNELS, STRIDES, PADDINGS, DILATIONS):
        try:
            n_out = conv_output_size(n, k, s, p, d)
        except ValueError:
            continue
        w = torch.randn(k, dtype=torch.float64, generator=generator)
        x = torch.randn(n, dtype=torch.float64, generator=generator)
        y = torch.randn(n_out, dtype=torch.float64, generator=generator)
        C = conv_matrix(w, n, s, p, d)
        settings = dict(stride=s, padding=p, dilation=d)
        assert_relative_close(C @ x, F.conv1d(x[None, None], w[None, None], **settings)[0, 0], (n, k, settings))
        dropped = (n + 2 * p - d * (k - 1) - 1) % s
        transposed = F.conv_transpose1d(y[None, None], w[None, None], output_padding=dropped, **settings)[0, 0]
        assert_relative_close(C.T @ y, transposed, (n, k, settings, "transpose"))
        checked += 1
    assert checked > 500


def test_conv_matrix_transpose_without_output_padding_when_sizes_line_up(generator):
    w = torch.randn(3, dtype=torch.float64, generator=generator)
    y = torch.randn(4, dtype=torch.float64, generator=generator)
    C = conv_matrix(w, 9, stride=2, padding=0)  # (9 - 3) is a multiple of 2: nothing dropped
    assert C.shape == (4, 9)
    assert_relative_close(C.T @ y, F.conv_transpose1d(y[None, None], w[None, None], stride=2)[0, 0], "lined up")


def test_conv_matrix_2d_and_its_transpose(generator):
    for (h, wd), (kh, kw), stride, padding, dilation in [
        ((5, 6), (3, 2), (1, 2), (1, 0), (1, 1)),
        ((7, 7), (3, 3), (2, 2), (1, 1), (1, 1)),
        ((6, 5), (2, 3), (1, 1), (0, 2), (2, 1)),
    ]:
        w = torch.randn(kh, kw, dtype=torch.float64, generator=generator)
        x = torch.randn(h, wd, dtype=torch.float64, generator=generator)
        C = conv_matrix(w, (h, wd), stride, padding, dilation)
        settings = dict(stride=stride, padding=padding, dilation=dilation)
        y = F.conv2d(x[None, None], w[None, None], **settings)
        assert C.shape == (y.shape[-2] * y.shape[-1], h * wd)
        assert_relative_close(C @ x.flatten(), y.flatten(), settings)
        upstream = torch.randn(y.shape, dtype=torch.float64, generator=generator)
        back = F.conv_transpose2d(upstream, w[None, None], **settings)  # these sizes line up: back is (h, wd)
        assert_relative_close(C.T @ upstream.flatten(), back.flatten(), (settings, "transpose"))


def test_conv_matrix_transpose_is_not_the_inverse(generator):
    """C.T brings back the shape of x but not its values."""
    C = conv_matrix(torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64), 6, padding=1)
    assert C.shape == (6, 6)
    assert not torch.allclose(C.T @ C, torch.eye(6, dtype=torch.float64))
    x = torch.randn(6, dtype=torch.float64, generator=generator)
    assert not torch.allclose(C.T @ (C @ x), x)
    assert torch.allclose(torch.linalg.solve(C, C @ x), x)  # this C happens to be invertible; C.T is not its inverse
    strided = conv_matrix(torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64), 6, stride=2, padding=1)
    assert strided.shape == (3, 6) and torch.linalg.matrix_rank(strided.T @ strided) == 3  # no inverse at all


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: conv_matrix([1.0, 2.0], 4), TypeError, r"weight must be a torch.Tensor of shape \(k,\) or \(kh, kw\), got list"),
        (lambda: conv_matrix(torch.ones(1, 1, 3), 4), ValueError, r"weight must have shape \(k,\) or \(kh, kw\), got shape \(1, 1, 3\)"),
        (lambda: conv_matrix(torch.ones(3), 0), ValueError, r"input_size must be a positive int, got 0"),
        (lambda: conv_matrix(torch.ones(3), (4, 4)), TypeError, r"input_size must be an int, got tuple"),
        (lambda: conv_matrix(torch.ones(3, 3), (4,)), TypeError, r"input_size must be an int or a pair of ints"),
        (lambda: conv_matrix(torch.ones(3), 2), ValueError, r"kernel_size=3 with dilation=1 spans 3 cells"),
        (lambda: conv_matrix(torch.ones(3, dtype=torch.int64), 4), TypeError, r"weight must be a floating-point tensor"),
    ],
)
def test_conv_matrix_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- unpooling


def test_bed_of_nails_places_values_top_left():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = torch.tensor([[1.0, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]])
    assert torch.equal(bed_of_nails(x)[0, 0], expected)


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_unpooling_equals_transposed_convolution_with_a_fixed_kernel(scale, generator):
    """Bed of nails is a transposed conv with a one-hot kernel; nearest is one with a kernel of ones."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=generator)
    per_channel = torch.eye(3, dtype=torch.float64)[:, :, None, None]  # (C, C, 1, 1): channel c -> c
    one_hot = torch.zeros(1, 1, scale, scale, dtype=torch.float64)
    one_hot[..., 0, 0] = 1
    ones = torch.ones(1, 1, scale, scale, dtype=torch.float64)
    assert torch.equal(bed_of_nails(x, scale), conv_transpose2d(x, per_channel * one_hot, stride=scale))
    assert torch.equal(nearest_unpool(x, scale), conv_transpose2d(x, per_channel * ones, stride=scale))
    assert torch.equal(nearest_unpool(x, scale), F.interpolate(x, scale_factor=scale, mode="nearest"))
    assert bed_of_nails(x, scale).shape == (2, 3, 4 * scale, 5 * scale)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: bed_of_nails(torch.ones(3, 4, 4), 2), ValueError, r"x must have shape \(B, C, H, W\), got shape \(3, 4, 4\)"),
        (lambda: nearest_unpool(torch.ones(1, 1, 2, 2), 0), ValueError, r"scale must be a positive int, got 0"),
        (lambda: nearest_unpool(torch.ones(1, 1, 2, 2), 1.5), TypeError, r"scale must be an int, got float"),
        (lambda: bed_of_nails("image"), TypeError, r"x must be a torch.Tensor of shape \(B, C, H, W\), got str"),
    ],
)
def test_unpooling_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
